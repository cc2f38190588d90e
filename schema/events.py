"""GraphQL of events and webhooks: the `Event` and `Webhook` types, the `events`/`event`/
`webhooks` queries, the `createWebhook`/`deleteWebhook` mutations and the `clientEvents`
subscription. Resolvers translate and call app/events and app/webhooks services only."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated, Any, cast

import strawberry
from graphql import GraphQLError
from strawberry.scalars import JSON
from strawberry.types.field import StrawberryField
from strawberry.types.info import Info as StrawberryInfo

from app.core import errors as domain
from app.events import types as events_domain
from app.events.hub import KeyRevoked, TooManySubscriptions
from app.webhooks import types as webhooks_domain
from schema.context import Context
from schema.errors import NotFoundError, ValidationError
from schema.types import PageInfo

Info = strawberry.Info[Context, None]


@strawberry.type(description="A change of a client (kept 30 days)")
class Event:
    id: strawberry.ID
    type: str = strawberry.field(description=" | ".join(events_domain.EVENT_TYPES))
    created: datetime
    livemode: bool
    data: JSON = strawberry.field(
        description='{"object": the client as REST returns it; {id, deleted} for a delete}'
    )
    previous_attributes: JSON | None = strawberry.field(
        description="client.updated: the changed fields' old values"
    )
    _seq: strawberry.Private[int]

    @classmethod
    def from_domain(cls, e: events_domain.Event) -> Event:
        return cls(
            id=strawberry.ID(e.id),
            type=e.type,
            created=e.created_at,
            livemode=e.livemode,
            data=cast(JSON, e.data),
            previous_attributes=cast(JSON | None, e.previous_attributes),
            _seq=e.seq,
        )


@strawberry.type
class EventEdge:
    cursor: str
    node: Event


@strawberry.type
class EventConnection:
    nodes: list[Event]
    page_info: PageInfo
    _type: strawberry.Private[str | None]

    @strawberry.field
    def edges(self, info: Info) -> list[EventEdge]:
        service = info.context.services.events
        return [
            EventEdge(cursor=service.cursor(info.context.principal, n._seq), node=n)
            for n in self.nodes
        ]

    @strawberry.field(description="Number of the team's events of this type; only when asked")
    async def total_count(self, info: Info) -> int:
        page = await info.context.services.events.list_events(
            principal=info.context.principal, type_=self._type, limit=1, with_total=True
        )
        return page.total or 0


@strawberry.type(description="One attempt to deliver an event to a webhook endpoint")
class WebhookDelivery:
    event_id: strawberry.ID
    attempt: int
    status_code: int | None = strawberry.field(description="The receiver's HTTP status")
    error: str | None = strawberry.field(description="What went wrong when there was no answer")
    duration_ms: int
    created_at: datetime

    @classmethod
    def from_domain(cls, a: webhooks_domain.Attempt) -> WebhookDelivery:
        return cls(
            event_id=strawberry.ID(a.event_id),
            attempt=a.attempt,
            status_code=a.status_code,
            error=a.error,
            duration_ms=a.duration_ms,
            created_at=a.created_at,
        )


@strawberry.type(description="An endpoint that receives the team's events, signed")
class Webhook:
    id: strawberry.ID
    url: str
    events: list[str]
    description: str | None
    livemode: bool
    created_at: datetime
    secret: str | None = strawberry.field(
        description="whsec_… (base64): only in the createWebhook answer; keep it to verify"
    )

    @classmethod
    def from_domain(cls, w: webhooks_domain.Webhook) -> Webhook:
        return cls(
            id=strawberry.ID(w.id),
            url=w.url,
            events=list(w.events),
            description=w.description,
            livemode=w.livemode,
            created_at=w.created_at,
            secret=w.secret,
        )

    @strawberry.field(description="Recent delivery attempts, newest first")
    async def deliveries(self, info: Info, first: int = 20) -> list[WebhookDelivery]:
        found = await info.context.services.webhooks.attempts(
            principal=info.context.principal, webhook_id=str(self.id), limit=first
        )
        return [WebhookDelivery.from_domain(a) for a in found]


@strawberry.type
class DeletedWebhook:
    id: strawberry.ID
    deleted: bool


@strawberry.input
class CreateWebhookInput:
    url: str
    events: list[str] = strawberry.field(description='Event types, or ["*"] for all')
    description: str | None = None


EventResult = Annotated[Event | NotFoundError, strawberry.union("EventResult")]
CreateWebhookResult = Annotated[Webhook | ValidationError, strawberry.union("CreateWebhookResult")]
DeleteWebhookResult = Annotated[
    DeletedWebhook | NotFoundError, strawberry.union("DeleteWebhookResult")
]


@strawberry.type
class EventsQuery:
    @strawberry.field(description="The team's events, newest first")
    async def events(
        self, info: Info, first: int = 20, after: str | None = None, type: str | None = None
    ) -> EventConnection:
        ctx = info.context
        service = ctx.services.events
        errors: dict[str, str] = {}
        before = None
        if after is not None:
            try:
                before = service.parse_cursor(ctx.principal, after)
            except domain.ValidationFailed as exc:
                errors.update(exc.fields)
        try:
            page = await service.list_events(
                principal=ctx.principal, type_=type, limit=first, before_seq=before
            )
        except domain.ValidationFailed as exc:
            errors.update({"first" if k == "limit" else k: m for k, m in exc.fields.items()})
        if errors:
            raise domain.ValidationFailed(errors)
        nodes = [Event.from_domain(e) for e in page.items]
        return EventConnection(
            nodes=nodes,
            page_info=PageInfo(
                has_next_page=page.has_more,
                has_previous_page=after is not None,
                start_cursor=service.cursor(ctx.principal, nodes[0]._seq) if nodes else None,
                end_cursor=service.cursor(ctx.principal, nodes[-1]._seq) if nodes else None,
            ),
            _type=type,
        )

    @strawberry.field(description="One event of the team")
    async def event(self, info: Info, id: strawberry.ID) -> EventResult:
        found = await info.context.services.events.get(
            principal=info.context.principal, event_id=str(id)
        )
        return Event.from_domain(found)

    @strawberry.field(description="The team's webhook endpoints, newest first")
    async def webhooks(self, info: Info) -> list[Webhook]:
        found = await info.context.services.webhooks.list_webhooks(principal=info.context.principal)
        return [Webhook.from_domain(w) for w in found]


@strawberry.type
class WebhooksMutation:
    @strawberry.mutation(description="The answer carries the signing secret, shown only here")
    async def create_webhook(self, info: Info, input: CreateWebhookInput) -> CreateWebhookResult:
        from app.webhooks.types import NewWebhook

        created = await info.context.services.webhooks.create(
            principal=info.context.principal,
            data=NewWebhook(url=input.url, events=input.events, description=input.description),
        )
        return Webhook.from_domain(created)

    @strawberry.mutation(description="Pending deliveries to it are dropped")
    async def delete_webhook(self, info: Info, id: strawberry.ID) -> DeleteWebhookResult:
        deleted = await info.context.services.webhooks.delete(
            principal=info.context.principal, webhook_id=str(id)
        )
        return DeletedWebhook(id=strawberry.ID(deleted), deleted=True)


def _graphql_error(exc: domain.DomainError) -> GraphQLError:
    extensions: dict[str, Any] = {"code": exc.code}
    if isinstance(exc, domain.ValidationFailed):
        extensions["fields"] = [{"field": k, "message": m} for k, m in exc.fields.items()]
    return GraphQLError(exc.message, extensions=extensions)


@strawberry.type
class Subscription:
    @strawberry.subscription(
        description="The team's events committed from now on, in commit order; with `after` "
        "(an event id), first those committed after it. Over graphql-transport-ws on /graphql, "
        'the key in connection_init: {"Authorization": "Bearer …"}.'
    )
    async def client_events(
        self,
        info: Info,
        types: list[str] | None = None,
        after: strawberry.ID | None = None,
    ) -> AsyncIterator[Event]:
        ctx = info.context
        try:
            stream = await ctx.services.events.subscribe(
                principal=ctx.principal, types=types, after=None if after is None else str(after)
            )
        except domain.EventNotFound as exc:
            raise _graphql_error(domain.ValidationFailed({"after": exc.message})) from None
        except domain.DomainError as exc:
            raise _graphql_error(exc) from None
        except TooManySubscriptions:
            raise GraphQLError(
                "Too many subscriptions for this API key",
                extensions={"code": "TOO_MANY_SUBSCRIPTIONS"},
            ) from None
        return _events(stream, ctx)


async def _events(stream: AsyncIterator[events_domain.Event], ctx: Any) -> AsyncIterator[Event]:
    try:
        async for event in stream:
            yield Event.from_domain(event)
    except KeyRevoked:
        # Over the socket (schema/websocket.py): it closes with 4403, as a revoked key gets at
        # connect, ending every subscription of the key on it; this operation then waits for
        # the handler to cancel it (nothing more may be sent on a closed socket).
        close = getattr(ctx, "close_revoked", None)
        if close is None:
            raise GraphQLError(
                "Unknown or revoked API key", extensions={"code": "UNAUTHORIZED"}
            ) from None
        await close()
        await asyncio.Event().wait()


# Not-found errors of events and webhooks become `NotFoundError` members of the unions.


class EventNotFoundHandler(strawberry.ExceptionHandler[domain.EventNotFound, NotFoundError]):
    def handle(
        self, exception: domain.EventNotFound, *, field: StrawberryField, info: StrawberryInfo
    ) -> NotFoundError:
        return NotFoundError(
            code=exception.code, message=exception.message, id=strawberry.ID(exception.event_id)
        )


class WebhookNotFoundHandler(strawberry.ExceptionHandler[domain.WebhookNotFound, NotFoundError]):
    def handle(
        self, exception: domain.WebhookNotFound, *, field: StrawberryField, info: StrawberryInfo
    ) -> NotFoundError:
        return NotFoundError(
            code=exception.code,
            message=exception.message,
            id=strawberry.ID(exception.webhook_id),
        )


EXCEPTION_HANDLERS = (EventNotFoundHandler(), WebhookNotFoundHandler())
