"""The `Error` interface and its types: business errors are data (union members), and each
carries the code and message of the matching REST error."""

from __future__ import annotations

from datetime import datetime

import strawberry
from strawberry.types.field import StrawberryField
from strawberry.types.info import Info

from app.core import errors as domain


@strawberry.interface(description="A business error returned as data")
class Error:
    code: str
    message: str


@strawberry.type
class FieldError:
    field: str = strawberry.field(description="The input field, dotted when nested")
    message: str


@strawberry.type
class ValidationError(Error):
    fields: list[FieldError]


@strawberry.type
class DuplicateRfcError(Error):
    rfc: str
    existing_client_id: strawberry.ID


@strawberry.type
class NotFoundError(Error):
    id: strawberry.ID


@strawberry.type
class ClientInUseError(Error):
    invoice_count: int
    payment_count: int


@strawberry.type(description="The client changed since `expectedUpdatedAt`: read it again")
class ConflictError(Error):
    id: strawberry.ID
    current_updated_at: datetime


def field_errors(fields: dict[str, str]) -> list[FieldError]:
    return [FieldError(field=k, message=m) for k, m in fields.items()]


# Exception handlers: domain exceptions become union members wherever the field's union has
# the matching type (and stay top-level errors elsewhere, e.g. argument errors of `clients`).


class ValidationHandler(strawberry.ExceptionHandler[domain.ValidationFailed, ValidationError]):
    def handle(
        self, exception: domain.ValidationFailed, *, field: StrawberryField, info: Info
    ) -> ValidationError:
        return ValidationError(
            code=exception.code, message=exception.message, fields=field_errors(exception.fields)
        )


class DuplicateRfcHandler(strawberry.ExceptionHandler[domain.DuplicateRfc, DuplicateRfcError]):
    def handle(
        self, exception: domain.DuplicateRfc, *, field: StrawberryField, info: Info
    ) -> DuplicateRfcError:
        return DuplicateRfcError(
            code=exception.code,
            message=exception.message,
            rfc=exception.rfc,
            existing_client_id=strawberry.ID(exception.existing_client_id),
        )


class NotFoundHandler(strawberry.ExceptionHandler[domain.ClientNotFound, NotFoundError]):
    def handle(
        self, exception: domain.ClientNotFound, *, field: StrawberryField, info: Info
    ) -> NotFoundError:
        return NotFoundError(
            code=exception.code, message=exception.message, id=strawberry.ID(exception.client_id)
        )


class ClientInUseHandler(strawberry.ExceptionHandler[domain.ClientInUse, ClientInUseError]):
    def handle(
        self, exception: domain.ClientInUse, *, field: StrawberryField, info: Info
    ) -> ClientInUseError:
        return ClientInUseError(
            code=exception.code,
            message=exception.message,
            invoice_count=exception.invoice_count,
            payment_count=exception.payment_count,
        )


class ConflictHandler(strawberry.ExceptionHandler[domain.PreconditionFailed, ConflictError]):
    def handle(
        self, exception: domain.PreconditionFailed, *, field: StrawberryField, info: Info
    ) -> ConflictError:
        return ConflictError(
            code=exception.code,
            message=exception.message,
            id=strawberry.ID(exception.client_id),
            current_updated_at=exception.current_updated_at,
        )


EXCEPTION_HANDLERS = (
    ValidationHandler(),
    DuplicateRfcHandler(),
    NotFoundHandler(),
    ClientInUseHandler(),
    ConflictHandler(),
)
