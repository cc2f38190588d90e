"""The composition root: the services, the FastAPI app and its mounts, wrapped in the edge.

A request goes edge (app/http/edge.py) → route: REST (app/rest/), GraphQL (schema/endpoint.py)
or health (app/http/health.py) → service (app/<domain>/service.py) → repository → database.
Errors become bodies in one place per transport: app/rest/errors.py, schema/rendering.py,
chosen by path (app/http/errors.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import orjson
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from app.catalogs.store import warm_up
from app.core.config import Settings, get_settings
from app.core.logs import configure_logging
from app.db.upkeep import start_upkeep
from app.http.deps import Services
from app.http.edge import EdgeMiddleware
from app.http.errors import ErrorRenderers
from app.http.handlers import install_error_handlers
from app.http.metrics import instrument_pools, mount_metrics
from app.http.ui import mount_ui
from app.rest.errors import render_error

DESCRIPTION = """
Clients of a CFDI invoicing platform: GraphQL at `/graphql`, and the documented `/v2/clients`
REST routes kept working over the same service layer.

Authenticate with `Authorization: Bearer sk_live_…` (or `sk_test_…` for the test world).
"""


def create_app(settings: Settings | None = None) -> Any:
    """The FastAPI app wrapped in the edge middleware (what servers and tests run)."""
    settings = settings or get_settings()
    if not logging.getLogger().handlers:
        # A worker of `serve --workers N` is a new process that has not inherited the logging
        # `serve` set up: without this, its access lines (INFO) would go nowhere.
        configure_logging(settings.log_level)
    services = Services.build(settings)
    app = _fastapi_app(services, settings)
    _add_cors(app, settings)
    renderers = ErrorRenderers(default=render_error)
    install_error_handlers(app, renderers)
    _mount_routes(app, settings, renderers)
    return EdgeMiddleware(app, renderers, body_timeout=settings.http_body_timeout)


def _fastapi_app(services: Services, settings: Settings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        from app.events.runtime import EventsRuntime

        # The zip catalog takes about a second to load: in a thread, while serving starts.
        warming = asyncio.get_running_loop().run_in_executor(None, warm_up)
        runtime = EventsRuntime(services, deliver=settings.webhook_delivery == "internal")
        runtime.start()
        upkeep = start_upkeep(services.db, settings.sqlite_upkeep_interval_s)
        try:
            yield
        finally:
            if upkeep is not None:
                upkeep.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await upkeep
            await runtime.stop()
            await warming
            await services.db.dispose()

    app = FastAPI(
        title="Clients gateway",
        version="1.0.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,  # served by app.http.ui from the packaged assets
        redoc_url=None,
        # `/v2/clients/` is an unknown route (404), not a redirect to `/v2/clients`.
        redirect_slashes=False,
        # operationId = the handler's name (`create_client`, `list_clients`, …): what
        # generated clients name their functions after.
        generate_unique_id_function=lambda route: route.name,
    )
    app.state.services = services
    instrument_pools(services)
    return app


def _add_cors(app: FastAPI, settings: Settings) -> None:
    if settings.cors_origin_list:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origin_list,
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "Idempotency-Key", "If-Match"],
            expose_headers=["ETag", "X-Request-Id", "Retry-After"],
        )


def _mount_routes(app: FastAPI, settings: Settings, renderers: ErrorRenderers) -> None:
    # Imported here: the route modules build their models and schema on import.
    from app.http.health import router as health_router
    from app.rest.catalogs import router as catalogs_router
    from app.rest.clients import router as clients_router
    from app.rest.events import router as events_router
    from app.rest.transfer import router as export_router
    from app.rest.webhooks import router as webhooks_router
    from schema.endpoint import mount_graphql

    app.include_router(health_router)
    app.include_router(export_router)  # before /v2/clients/{clientId}
    app.include_router(clients_router)
    app.include_router(catalogs_router)
    app.include_router(events_router)
    app.include_router(webhooks_router)
    _document_errors_only_as_they_are(app)
    mount_ui(app)
    mount_metrics(app, settings)
    mount_graphql(app, settings, renderers)


def _document_errors_only_as_they_are(app: FastAPI) -> None:
    """FastAPI documents a 422 with its own body on every route with parameters; this API
    answers 400 with the documented envelope instead, so the generated 422s are removed."""
    original = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            doc = original()
            for item in doc.get("paths", {}).values():
                for op in item.values():
                    if isinstance(op, dict):
                        responses = op.get("responses", {})
                        # Only FastAPI's own; a 422 a route declares (IDEMPOTENCY_KEY_REUSED)
                        # is a real answer.
                        if "HTTPValidationError" in orjson.dumps(responses.get("422")).decode():
                            responses.pop("422")
            schemas = doc.get("components", {}).get("schemas", {})
            for name in ("HTTPValidationError", "ValidationError"):
                schemas.pop(name, None)
            app.openapi_schema = doc
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
