"""`/graphql` over WebSocket: GraphQL subscriptions with the graphql-transport-ws protocol,
on Strawberry's own WebSocket support (its FastAPI router, WebSocket route only: the HTTP
side of /graphql is schema/endpoint.py).

The connection is authenticated once, by the key in `connection_init`'s payload
(`{"Authorization": "Bearer …"}`): a missing, unknown or revoked key closes the socket with
4403 (Forbidden); no `connection_init` within WEBSOCKET_INIT_TIMEOUT closes it with 4408.
Revoking the key later closes its open sockets with 4403 as well, once the subscription hub
hears of it (app/events/hub.py): the socket belongs to the key, so none of its subscriptions
outlives it, and a client that reconnects meets the same 4403 at connect.
Only subscriptions run here (queries and mutations go through POST, with its rate limits and
idempotency). Shutting the server down closes every socket (uvicorn sends 1012).
"""

from __future__ import annotations

import contextlib
from datetime import timedelta
from typing import Any, cast

from fastapi import FastAPI, WebSocket
from fastapi.routing import APIWebSocketRoute
from strawberry.exceptions import ConnectionRejectionError
from strawberry.fastapi import BaseContext, GraphQLRouter
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from strawberry.types.graphql import OperationType
from strawberry.types.unset import UNSET, UnsetType

from app.auth.principal import Principal
from app.core.config import Settings
from app.core.errors import DomainError
from app.http.deps import Services
from schema import GatewaySchema

_INIT_TIMEOUT = timedelta(seconds=10)
_SUBSCRIPTIONS_ONLY = frozenset({OperationType.SUBSCRIPTION})


class SocketContext(BaseContext):
    """The context of every operation on one socket (the caller is known after
    connection_init)."""

    def __init__(self, services: Services) -> None:
        super().__init__()
        self.services = services
        self.principal: Principal | None = None
        self.connection_params: dict[str, Any] = {}
        self._closed = False

    async def close_revoked(self) -> None:
        """Close the socket as a revoked key's (4403), once for all its subscriptions."""
        socket = self.request
        if self._closed or not isinstance(socket, WebSocket):
            return
        self._closed = True
        with contextlib.suppress(RuntimeError):  # the client closed it first
            await socket.close(code=4403, reason="Forbidden")


class _SubscriptionsOnly:
    """The schema, refusing queries and mutations sent over the socket."""

    def __init__(self, schema: GatewaySchema) -> None:
        self._schema = schema

    def __getattr__(self, name: str) -> Any:
        return getattr(self._schema, name)

    async def stream(self, *args: Any, **kwargs: Any) -> Any:
        kwargs["allowed_operation_types"] = _SUBSCRIPTIONS_ONLY
        return await self._schema.stream(*args, **kwargs)


class SubscriptionRouter(GraphQLRouter[SocketContext, None]):
    def __init__(self, schema: GatewaySchema, services: Services, settings: Settings) -> None:
        self.services = services

        def context() -> SocketContext:
            return SocketContext(services)

        super().__init__(
            cast(GatewaySchema, _SubscriptionsOnly(schema)),
            path="/graphql",
            graphql_ide=None,
            allow_queries_via_get=False,
            context_getter=context,
            subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL,),
            connection_init_wait_timeout=_INIT_TIMEOUT,
            max_subscriptions_per_connection=settings.subscriptions_per_key,
            allowed_origins=settings.cors_origin_list,
        )
        # The HTTP routes of /graphql are schema/endpoint.py's.
        self.routes = [r for r in self.routes if isinstance(r, APIWebSocketRoute)]

    async def on_ws_connect(self, context: SocketContext) -> UnsetType | dict[str, object] | None:
        params = context.connection_params
        header = params.get("Authorization", params.get("authorization"))
        if not isinstance(header, str):
            raise ConnectionRejectionError()
        try:
            context.principal = await self.services.keys.authenticate(header)
        except DomainError:  # unauthorized, or the database is away: no half-open socket
            raise ConnectionRejectionError() from None
        return UNSET


def mount_subscriptions(app: FastAPI, schema: GatewaySchema, settings: Settings) -> None:
    services: Services = app.state.services
    app.include_router(SubscriptionRouter(schema, services, settings))
