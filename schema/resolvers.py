"""Queries and mutations: translate arguments, call the service, translate the result."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import strawberry

from app.clients.types import ClientFilter as DomainFilter
from app.errors import ValidationFailed
from schema.context import Context
from schema.errors import (
    ClientInUseError,
    ConflictError,
    DuplicateRfcError,
    NotFoundError,
    ValidationError,
)
from schema.inputs import ClientFilter, CreateClientInput, UpdateClientInput
from schema.types import Client, ClientConnection, DeletedClient, PageInfo

Info = strawberry.Info[Context, None]

ClientResult = Annotated[Client | NotFoundError, strawberry.union("ClientResult")]
CreateClientResult = Annotated[
    Client | ValidationError | DuplicateRfcError, strawberry.union("CreateClientResult")
]
UpdateClientResult = Annotated[
    Client | ValidationError | DuplicateRfcError | NotFoundError | ConflictError,
    strawberry.union("UpdateClientResult"),
]
DeleteClientResult = Annotated[
    DeletedClient | NotFoundError | ClientInUseError | ConflictError,
    strawberry.union("DeleteClientResult"),
]

# Service names of list arguments → GraphQL argument paths, for top-level error fields.
_ARGUMENT_NAMES = {
    "limit": "first",
    "offset": "offset",
    "after": "after",
    "name": "filter.name",
    "rfc": "filter.rfc",
    "email": "filter.email",
    "created_from": "filter.createdFrom",
    "created_to": "filter.createdTo",
}


@strawberry.type
class Query:
    @strawberry.field(description="One client of the caller's team and mode")
    async def client(self, info: Info, id: strawberry.ID) -> ClientResult:
        ctx = info.context
        found = await ctx.services.clients.get(principal=ctx.principal, client_id=str(id))
        return Client.from_domain(found)

    @strawberry.field(
        description="Clients, newest first. `after` takes an `endCursor` (send the same filter "
        "again); `offset` skips rows after it."
    )
    async def clients(
        self,
        info: Info,
        filter: ClientFilter | None = None,
        first: int = 20,
        after: str | None = None,
        offset: int | None = None,
    ) -> ClientConnection:
        ctx = info.context
        service = ctx.services.clients
        try:
            position = None if after is None else service.parse_cursor(ctx.principal, after)
            filters = filter.to_domain() if filter is not None else DomainFilter()
            page = await service.list(
                principal=ctx.principal,
                filters=filters,
                limit=first,
                offset=offset or 0,
                after=position,
            )
        except ValidationFailed as exc:
            raise ValidationFailed(
                {_ARGUMENT_NAMES.get(k, k): m for k, m in exc.fields.items()}
            ) from None
        nodes = [Client.from_domain(c) for c in page.items]
        positions = page.positions
        return ClientConnection(
            nodes=nodes,
            page_info=PageInfo(
                has_next_page=page.has_more,
                has_previous_page=after is not None or bool(offset),
                start_cursor=service.cursor(ctx.principal, positions[0]) if positions else None,
                end_cursor=service.cursor(ctx.principal, positions[-1]) if positions else None,
            ),
            _page=page,
            _principal=ctx.principal,
        )


@strawberry.type
class Mutation:
    @strawberry.mutation
    async def create_client(self, info: Info, input: CreateClientInput) -> CreateClientResult:
        ctx = info.context
        created = await ctx.services.clients.create(principal=ctx.principal, data=input.to_domain())
        return Client.from_domain(created)

    @strawberry.mutation(
        description="Partial update: omitted fields are unchanged, null clears. With "
        "`expectedUpdatedAt`, a client changed since then answers ConflictError."
    )
    async def update_client(
        self,
        info: Info,
        id: strawberry.ID,
        input: UpdateClientInput,
        expected_updated_at: datetime | None = None,
    ) -> UpdateClientResult:
        ctx = info.context
        updated = await ctx.services.clients.update(
            principal=ctx.principal,
            client_id=str(id),
            patch=input.to_domain(),
            expected_updated_at=expected_updated_at,
        )
        return Client.from_domain(updated)

    @strawberry.mutation(description="Refused (ClientInUseError) while invoices or payments exist")
    async def delete_client(
        self, info: Info, id: strawberry.ID, expected_updated_at: datetime | None = None
    ) -> DeleteClientResult:
        ctx = info.context
        deleted = await ctx.services.clients.delete(
            principal=ctx.principal, client_id=str(id), expected_updated_at=expected_updated_at
        )
        return DeletedClient(id=strawberry.ID(deleted), deleted=True)
