"""Queries and mutations: translate arguments, call the service, translate the result."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from datetime import datetime
from typing import Annotated

import orjson
import strawberry
from sqlalchemy.ext.asyncio import AsyncSession

from app.clients.service import check_page_args, normalize_filter
from app.clients.types import Client as DomainClient
from app.clients.types import ClientFilter as DomainFilter
from app.clients.types import Position, client_from_json, client_to_json
from app.core.errors import DuplicateRfc, ValidationFailed
from app.http import metrics
from app.platform.idempotency import DoNotStore, Outcome, Recorder, check_key, fingerprint
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


def _check_arguments(
    ctx: Context, filters: DomainFilter, first: int, after: str | None, offset: int
) -> Position | None:
    """The position `after` names; every bad argument at once (ValidationFailed) otherwise."""
    errors: dict[str, str] = {}
    position = None
    try:
        if after is not None:
            position = ctx.services.clients.parse_cursor(ctx.principal, after)
    except ValidationFailed as exc:
        errors.update(exc.fields)
    checks: tuple[Callable[[], object], ...] = (
        lambda: check_page_args(limit=first, offset=offset),
        lambda: normalize_filter(filters),
    )
    for check in checks:
        try:
            check()
        except ValidationFailed as exc:
            errors.update(exc.fields)
    if errors:
        raise ValidationFailed({_ARGUMENT_NAMES.get(k, k): m for k, m in errors.items()})
    return position


# The bodies of the root fields, shared with schema/fast.py (which calls them with the
# arguments Strawberry would pass, by the same names), so neither path owns a rule.


async def find_client(ctx: Context, *, id: str) -> Client:
    found = await ctx.services.clients.get(principal=ctx.principal, client_id=str(id))
    return Client.from_domain(found)


async def list_clients(
    ctx: Context,
    *,
    first: int,
    filter: ClientFilter | None = None,
    after: str | None = None,
    offset: int | None = None,
) -> ClientConnection:
    service = ctx.services.clients
    filters = filter.to_domain() if filter is not None else DomainFilter()
    position = _check_arguments(ctx, filters, first, after, offset or 0)
    page = await service.list(
        principal=ctx.principal,
        filters=filters,
        limit=first,
        offset=offset or 0,
        after=position,
    )
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
class Query:
    @strawberry.field(description="One client of the caller's team and mode")
    async def client(self, info: Info, id: strawberry.ID) -> ClientResult:
        return await find_client(info.context, id=id)

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
        return await list_clients(
            info.context, filter=filter, first=first, after=after, offset=offset
        )


@strawberry.type
class Mutation:
    @strawberry.mutation
    async def create_client(
        self,
        info: Info,
        input: CreateClientInput,
        idempotency_key: Annotated[
            str | None,
            strawberry.argument(
                description="Up to 255 characters. A retry with the same key within 24 hours "
                "gets the first result again; with a different input, an "
                "IDEMPOTENCY_KEY_REUSED error."
            ),
        ] = None,
    ) -> CreateClientResult:
        ctx = info.context
        data = input.to_domain()
        if idempotency_key is None:
            return Client.from_domain(
                await ctx.services.clients.create(principal=ctx.principal, data=data)
            )

        def answer(client: DomainClient) -> Outcome:
            return Outcome(200, orjson.dumps({"client": client_to_json(client)}).decode(), {})

        async def work(recorder: Recorder) -> Outcome:
            async def keep(session: AsyncSession, client: DomainClient) -> None:
                # Recorded in the creating transaction: the client and its answer commit
                # together.
                await recorder.record(session, answer(client))

            try:
                created = await ctx.services.clients.create(
                    principal=ctx.principal, data=data, on_created=keep
                )
            except DuplicateRfc as exc:  # an answer, kept like a success
                kept = {"duplicate": {"rfc": exc.rfc, "id": exc.existing_client_id}}
                return Outcome(409, orjson.dumps(kept).decode(), {})
            except ValidationFailed as exc:  # not kept: a corrected retry may reuse the key
                raise DoNotStore(exc) from None
            return answer(created)

        outcome = await ctx.services.idempotency.run(
            principal=ctx.principal,
            key=check_key(idempotency_key, field="idempotencyKey"),
            fingerprint=fingerprint("graphql createClient", asdict(data)),
            work=work,
        )
        if outcome.replayed:
            metrics.idempotent_replay()
        kept = orjson.loads(outcome.body)
        if "duplicate" in kept:
            raise DuplicateRfc(kept["duplicate"]["rfc"], kept["duplicate"]["id"])
        return Client.from_domain(client_from_json(kept["client"]))

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
