"""Queries and mutations: translate arguments, call the service, translate the result."""

from __future__ import annotations

from dataclasses import asdict, fields, is_dataclass
from datetime import datetime
from typing import Annotated, Any

import orjson
import strawberry

from app.clients.service import DEFAULT_LIMIT, ListFields
from app.clients.types import Client, client_from_json, client_to_json
from app.core.errors import DuplicateRfc
from app.http import metrics
from app.platform.idempotency import Outcome, fingerprint
from schema.context import Context
from schema.errors import (
    ClientInUseError,
    ConflictError,
    DuplicateRfcError,
    FieldError,
    NotFoundError,
    ValidationError,
)
from schema.inputs import ClientFilterInput, CreateClientInput, UpdateClientInput
from schema.types import (
    ClientConnection,
    ClientType,
    ClientValidation,
    DeletedClient,
    InvoiceReadiness,
    PageInfo,
)

Info = strawberry.Info[Context, None]

ClientResult = Annotated[ClientType | NotFoundError, strawberry.union("ClientResult")]
CreateClientResult = Annotated[
    ClientType | ValidationError | DuplicateRfcError, strawberry.union("CreateClientResult")
]
UpdateClientResult = Annotated[
    ClientType | ValidationError | DuplicateRfcError | NotFoundError | ConflictError,
    strawberry.union("UpdateClientResult"),
]
DeleteClientResult = Annotated[
    DeletedClient | NotFoundError | ClientInUseError | ConflictError,
    strawberry.union("DeleteClientResult"),
]

# The list arguments as this schema names them, so the service's errors name them so.
LIST_FIELDS = ListFields(
    limit="first",
    after="after",
    name="filter.name",
    rfc="filter.rfc",
    email="filter.email",
    created_from="filter.createdFrom",
    created_to="filter.createdTo",
    tax_system="filter.taxSystem",
    invoice_ready="filter.invoiceReady",
)


# The bodies of the root fields, shared with schema/fast.py (which calls them with the
# arguments Strawberry would pass, by the same names), so neither path owns a rule.


async def find_client(ctx: Context, *, id: str) -> ClientType:
    found = await ctx.services.clients.get_record(principal=ctx.principal, client_id=str(id))
    return ClientType.from_record(found)


async def list_clients(
    ctx: Context,
    *,
    first: int,
    filter: ClientFilterInput | None = None,
    after: str | None = None,
    offset: int | None = None,
) -> ClientConnection:
    service = ctx.services.clients
    page = await service.list(
        principal=ctx.principal,
        filters=filter.to_domain() if filter is not None else None,
        limit=first,
        offset=offset,
        after=after,
        fields=LIST_FIELDS,
        as_records=True,
    )
    found = bool(page.records)
    return ClientConnection(
        page_info=PageInfo(
            has_next_page=page.has_more,
            has_previous_page=after is not None or bool(offset),
            start_cursor=service.cursor(ctx.principal, page.position(0)) if found else None,
            end_cursor=service.cursor(ctx.principal, page.position(-1)) if found else None,
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
        filter: ClientFilterInput | None = None,
        first: int = DEFAULT_LIMIT,
        after: str | None = None,
        offset: int | None = None,
    ) -> ClientConnection:
        return await list_clients(
            info.context, filter=filter, first=first, after=after, offset=offset
        )

    @strawberry.field(
        description="The errors and invoice readiness createClient would give for `input`, "
        "without saving anything (for forms, as the user types)"
    )
    async def validate_client(self, info: Info, input: CreateClientInput) -> ClientValidation:
        ctx = info.context
        result = await ctx.services.clients.validate(
            principal=ctx.principal, data=input.to_domain()
        )
        errors = dict(result.errors)
        if result.duplicate_of is not None:
            errors.setdefault("rfc", DuplicateRfc.message)
        return ClientValidation(
            valid=result.valid,
            fields=[FieldError(field=f, message=m) for f, m in errors.items()],
            cfdi_name=result.cfdi_name,
            invoice_readiness=InvoiceReadiness.from_issues(result.issues),
        )


def _create_answer(result: Client | DuplicateRfc) -> Outcome:
    """What an idempotent createClient keeps for its retries: the client, or the refusal."""
    if isinstance(result, DuplicateRfc):
        kept = {"duplicate": {"rfc": result.rfc, "id": result.existing_client_id}}
        return Outcome(409, orjson.dumps(kept).decode(), {})
    return Outcome(200, orjson.dumps({"client": client_to_json(result)}).decode(), {})


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
            return ClientType.from_domain(
                await ctx.services.clients.create(principal=ctx.principal, data=data)
            )
        outcome = await ctx.services.clients.create_idempotent(
            principal=ctx.principal,
            data=data,
            key=idempotency_key,
            key_field="idempotencyKey",
            request_fingerprint=fingerprint("graphql createClient", _fields_of(data)),
            answer=_create_answer,
        )
        if outcome.replayed:
            metrics.idempotent_replay()
        kept = orjson.loads(outcome.body)
        if "duplicate" in kept:
            raise DuplicateRfc(kept["duplicate"]["rfc"], kept["duplicate"]["id"])
        return ClientType.from_domain(client_from_json(kept["client"]))

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
        return ClientType.from_domain(updated)

    @strawberry.mutation(description="Refused (ClientInUseError) while invoices or payments exist")
    async def delete_client(
        self, info: Info, id: strawberry.ID, expected_updated_at: datetime | None = None
    ) -> DeleteClientResult:
        ctx = info.context
        deleted = await ctx.services.clients.delete(
            principal=ctx.principal, client_id=str(id), expected_updated_at=expected_updated_at
        )
        return DeletedClient(id=strawberry.ID(deleted), deleted=True)


def _fields_of(data: Any) -> dict[str, Any]:
    """`asdict(data)` one level deep (the address too): asdict copies every nested value
    recursively, which a deeply nested `metadata` value makes a RecursionError."""
    values = {f.name: getattr(data, f.name) for f in fields(data)}
    return {
        k: asdict(v) if is_dataclass(v) and not isinstance(v, type) else v
        for k, v in values.items()
    }
