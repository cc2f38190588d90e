"""The Strawberry schema of the Clients gateway: types, inputs, error unions, resolvers."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import strawberry
from strawberry.extensions import SchemaExtension
from strawberry.schema.config import StrawberryConfig
from strawberry.tools import merge_types

from schema.catalogs import CatalogQuery
from schema.errors import (
    EXCEPTION_HANDLERS,
    ClientInUseError,
    ConflictError,
    DuplicateRfcError,
    NotFoundError,
    ValidationError,
)
from schema.events import EXCEPTION_HANDLERS as EVENT_EXCEPTION_HANDLERS
from schema.events import EventsQuery, Subscription, WebhooksMutation
from schema.resolvers import Mutation, Query
from schema.scalars import SCALAR_MAP

SDL_PATH = Path(__file__).with_name("schema.graphql")


class GatewaySchema(strawberry.Schema):
    def process_errors(self, errors: list[Any], execution_context: Any = None) -> None:
        # The HTTP layer logs unexpected errors once, with the request id; expected ones
        # (invalid documents, argument errors) are the caller's and are not logged.
        return None


def build_schema(
    extensions: Sequence[type[SchemaExtension] | Callable[[], SchemaExtension]] = (),
) -> GatewaySchema:
    return GatewaySchema(
        query=merge_types("Query", (Query, CatalogQuery, EventsQuery)),
        mutation=merge_types("Mutation", (Mutation, WebhooksMutation)),
        subscription=Subscription,
        types=[ValidationError, DuplicateRfcError, NotFoundError, ClientInUseError, ConflictError],
        extensions=list(extensions),
        exception_handlers=(*EXCEPTION_HANDLERS, *EVENT_EXCEPTION_HANDLERS),
        config=StrawberryConfig(auto_camel_case=True, scalar_map=SCALAR_MAP),
    )


def sdl() -> str:
    """The SDL of the schema, as committed in schema/schema.graphql."""
    return build_schema().as_str() + "\n"


__all__: list[Any] = ["SDL_PATH", "build_schema", "sdl"]
