"""Output types. `Client.from_domain` is the one place a service value becomes GraphQL."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, cast

import strawberry
from strawberry.scalars import JSON

from app.auth.principal import Principal
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


@strawberry.type(description="Whether an invoice can be made from this client alone, and why not")
class InvoiceReadiness:
    ready: bool
    issues: list[FieldError] = strawberry.field(description="One per missing or wrong field")

    @classmethod
    def from_issues(cls, issues: list[Issue]) -> InvoiceReadiness:
        return cls(
            ready=not issues, issues=[FieldError(field=i.field, message=i.message) for i in issues]
        )


@strawberry.type
class Client:
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
    def from_domain(cls, c: domain.Client) -> Client:
        a = c.address
        return cls(
            id=strawberry.ID(c.id),
            name=c.name,
            legal_name=c.legal_name,
            rfc=c.rfc,
            rfc_check_digit_valid=c.rfc_check_digit_valid,
            email=c.email,
            phone=c.phone,
            address=None if a is None else Address.from_domain(a),
            livemode=c.livemode,
            created_at=c.created_at,
            updated_at=c.updated_at,
            tax_system=c.tax_system,
            cfdi_use=c.cfdi_use,
            metadata=cast(JSON, c.metadata),
            cfdi_name=c.cfdi_name,
            invoice_readiness=InvoiceReadiness.from_issues(c.invoice_issues()),
        )


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
    node: Client


@strawberry.type
class ClientConnection:
    nodes: list[Client]
    page_info: PageInfo
    _page: strawberry.Private[domain.ClientPage]
    _principal: strawberry.Private[Principal]

    def make_edges(self, service: ClientService) -> list[ClientEdge]:
        """`edges`, for the resolver below and for schema/fast.py."""
        # Cursors are signed: computed only when edges are selected.
        return [
            ClientEdge(cursor=service.cursor(self._principal, pos), node=node)
            for pos, node in zip(self._page.positions, self.nodes, strict=True)
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
