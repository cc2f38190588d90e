"""Output types. `ClientType.from_domain` is the one place a service value becomes GraphQL."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from operator import itemgetter
from typing import TYPE_CHECKING, Any, cast

import strawberry
from strawberry.scalars import JSON

from app.auth.principal import Principal
from app.clients import fiscal
from app.clients import types as domain
from app.clients.fiscal import Issue
from schema.errors import FieldError

if TYPE_CHECKING:
    from app.clients.service import ClientService
    from schema.context import Context


@strawberry.type
class Address:
    street: str | None
    city: str | None
    state: str | None
    zip_code: str | None
    country: str | None
    exterior: str | None = strawberry.field(description="Exterior number")
    interior: str | None = strawberry.field(description="Interior number")
    neighborhood: str | None = strawberry.field(description="Colonia")
    municipality: str | None = strawberry.field(description="Municipio or alcaldía")

    @classmethod
    def from_domain(cls, a: domain.Address) -> Address:
        return cls(**{attr: getattr(a, attr) for attr in domain.ADDRESS_ATTRS})

    @classmethod
    def from_record(cls, record: domain.ClientRecord) -> Address | None:
        a = domain.record_address(record)
        return None if a is None else cls.from_domain(a)


@strawberry.type(description="Whether an invoice can be made from this client alone, and why not")
class InvoiceReadiness:
    ready: bool
    issues: list[FieldError] = strawberry.field(description="One per missing or wrong field")

    @classmethod
    def from_issues(cls, issues: list[Issue]) -> InvoiceReadiness:
        return cls(
            ready=not issues, issues=[FieldError(field=i.field, message=i.message) for i in issues]
        )


@strawberry.type(name="Client")
class ClientType:
    id: strawberry.ID
    name: str
    legal_name: str | None
    rfc: str
    rfc_check_digit_valid: bool
    email: str | None
    phone: str | None
    address: Address | None
    livemode: bool
    created_at: datetime
    updated_at: datetime
    tax_system: str | None = strawberry.field(description="c_RegimenFiscal code")
    cfdi_use: str | None = strawberry.field(description="Default c_UsoCFDI of its invoices")
    metadata: JSON = strawberry.field(description="An object of string values")
    cfdi_name: str | None = strawberry.field(
        description="Receptor name for an invoice: legalName upper-cased, corporate suffix removed"
    )
    invoice_readiness: InvoiceReadiness

    @classmethod
    def from_record(cls, record: domain.ClientRecord) -> ClientType:
        """The one way a client becomes GraphQL: from a record (a database row of the
        repository's SELECT_COLUMNS, or a domain object's values)."""
        return cls(**{name: get(record) for name, get in CLIENT_FROM_RECORD.items()})

    @classmethod
    def from_domain(cls, c: domain.Client) -> ClientType:
        return cls.from_record(domain.client_record(c))


def _record_getter(column: str) -> Callable[[domain.ClientRecord], Any]:
    return itemgetter(domain.RECORD_FIELDS.index(column))


def _metadata(record: domain.ClientRecord) -> JSON:
    return cast(JSON, dict(record[_METADATA] or {}))


def _cfdi_name(record: domain.ClientRecord) -> str | None:
    return fiscal.cfdi_name(record[_LEGAL_NAME])


def _invoice_readiness(record: domain.ClientRecord) -> InvoiceReadiness:
    return InvoiceReadiness.from_issues(domain.record_issues(record))


_METADATA = domain.RECORD_FIELDS.index("metadata_json")
_LEGAL_NAME = domain.RECORD_FIELDS.index("legal_name")

# Each field of ClientType (by its Python name) as a function of a record, in declaration
# order: ClientType.from_record builds the whole object with them, and schema/fast.py reads
# only the selected ones straight from a list's rows. One table, so the two cannot differ.
CLIENT_FROM_RECORD: dict[str, Callable[[domain.ClientRecord], Any]] = {
    "id": _record_getter("public_id"),
    "name": _record_getter("name"),
    "legal_name": _record_getter("legal_name"),
    "rfc": _record_getter("rfc"),
    "rfc_check_digit_valid": _record_getter("rfc_check_digit_valid"),
    "email": _record_getter("email"),
    "phone": _record_getter("phone"),
    "address": Address.from_record,
    "livemode": _record_getter("livemode"),
    "created_at": _record_getter("created_at"),
    "updated_at": _record_getter("updated_at"),
    "tax_system": _record_getter("tax_system"),
    "cfdi_use": _record_getter("cfdi_use"),
    "metadata": _metadata,
    "cfdi_name": _cfdi_name,
    "invoice_readiness": _invoice_readiness,
}


@strawberry.type(description="What createClient would answer for an input, without saving")
class ClientValidation:
    valid: bool = strawberry.field(description="createClient would succeed")
    fields: list[FieldError] = strawberry.field(description="Its ValidationError's fields")
    cfdi_name: str | None
    invoice_readiness: InvoiceReadiness


@strawberry.type
class DeletedClient:
    id: strawberry.ID
    deleted: bool


@strawberry.type
class PageInfo:
    has_next_page: bool
    has_previous_page: bool
    start_cursor: str | None
    end_cursor: str | None


@strawberry.type
class ClientEdge:
    cursor: str
    node: ClientType


def _nodes(root: ClientConnection) -> list[ClientType]:
    return [ClientType.from_record(r) for r in root.records]


@strawberry.type
class ClientConnection:
    # Built from the page's records when selected (schema/fast.py reads the records).
    nodes: list[ClientType] = strawberry.field(resolver=_nodes)
    page_info: PageInfo
    _page: strawberry.Private[domain.ClientPage]
    _principal: strawberry.Private[Principal]

    @property
    def records(self) -> Sequence[domain.ClientRecord]:
        return self._page.records

    def make_edges(self, service: ClientService) -> list[ClientEdge]:
        """`edges`, for the resolver below and for schema/fast.py."""
        # Cursors are signed: computed only when edges are selected.
        return [
            ClientEdge(
                cursor=service.cursor(self._principal, domain.record_position(record)),
                node=ClientType.from_record(record),
            )
            for record in self._page.records
        ]

    async def count_matches(self, service: ClientService) -> int:
        """`totalCount`, for the resolver below and for schema/fast.py."""
        return await service.count(principal=self._principal, filters=self._page.filters)

    @strawberry.field
    def edges(self, info: strawberry.Info[Context, None]) -> list[ClientEdge]:
        return self.make_edges(info.context.services.clients)

    @strawberry.field(description="Exact number of matches of the filter; computed only when asked")
    async def total_count(self, info: strawberry.Info[Context, None]) -> int:
        return await self.count_matches(info.context.services.clients)
