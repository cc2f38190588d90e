"""The ASGI application: REST routes, GraphQL, health, error rendering."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import Response
from sqlalchemy import text
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.catalogs.store import warm_up
from app.core.config import Settings, get_settings
from app.core.errors import DomainError, ServiceUnavailable, ValidationFailed
from app.core.logs import configure_logging
from app.db.migrate import is_at_head
from app.http.deps import Services
from app.http.edge import EdgeMiddleware, error_body
from app.http.metrics import instrument_pools, mount_metrics
from app.http.ui import mount_ui
from app.rest.errors import domain_error_response

log = logging.getLogger("clients")

DESCRIPTION = """
Clients of a CFDI invoicing platform: GraphQL at `/graphql`, and the documented `/v2/clients`
REST routes kept working over the same service layer.

Authenticate with `Authorization: Bearer sk_live_…` (or `sk_test_…` for the test world).
"""


def _render(request: Request, exc: DomainError) -> Response:
    return domain_error_response(request.url.path, exc)


_PYDANTIC_MESSAGES = {
    "string_type": "Must be a string",
    "extra_forbidden": "Unknown field",
    "model_type": "Must be an object",
    "model_attributes_type": "Must be an object",
    "dict_type": "Must be an object",
    "int_parsing": "Must be an integer",
    "int_type": "Must be an integer",
    "missing": "Is required",
}


def validation_details(errors: Any) -> dict[str, str]:
    details: dict[str, str] = {}
    for err in errors:
        loc = [p for p in err.get("loc", ()) if p not in ("body", "query", "path", "header")]
        kind = err.get("type", "")
        if kind == "json_invalid":
            key = "body"
            msg = f"Malformed JSON: {err.get('ctx', {}).get('error', 'decode error')}"
        elif not loc:
            key = "body"
            msg = (
                "The body must be a JSON object" if kind != "missing" else "A JSON body is required"
            )
        else:
            key = ".".join(str(p) for p in loc)
            msg = _PYDANTIC_MESSAGES.get(kind) or str(err.get("msg", "Invalid value"))
        details.setdefault(key, msg)
    return details


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


_METHOD_ORDER = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")


def _allowed_methods(request: Request) -> str:
    """The methods /openapi.json documents for this path (the Allow header of a 405):
    Starlette's names those of the first route on the path only. GET /graphql, the IDE page,
    is not documented; its own 405 says Allow: POST as well."""
    path = request.url.path
    methods: set[str] = set()
    paths = request.app.openapi().get("paths", {})
    # OpenAPI: a concrete path (`/v2/clients/validate`) is matched before a templated one.
    concrete = paths.get(path)
    for template, item in [(path, concrete)] if concrete else paths.items():
        pattern = re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(template))
        if re.fullmatch(pattern, path):
            methods.update(m.upper() for m in item if m.upper() in _METHOD_ORDER)
    return ", ".join(sorted(methods, key=_METHOD_ORDER.index))


def create_app(settings: Settings | None = None) -> Any:
    """The FastAPI app wrapped in the edge middleware (what servers and tests run)."""
    settings = settings or get_settings()
    if not logging.getLogger().handlers:
        # A worker of `serve --workers N` is a new process that has not inherited the logging
        # `serve` set up: without this, its access lines (INFO) would go nowhere.
        configure_logging(settings.log_level)
    services = Services.build(settings)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        from app.events.runtime import EventsRuntime

        # The zip catalog takes about a second to load: in a thread, while serving starts.
        warming = asyncio.get_running_loop().run_in_executor(None, warm_up)
        runtime = EventsRuntime(services, deliver=settings.webhook_delivery == "internal")
        runtime.start()
        try:
            yield
        finally:
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
    if settings.cors_origin_list:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origin_list,
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "Idempotency-Key", "If-Match"],
            expose_headers=["ETag", "X-Request-Id", "Retry-After"],
        )

    @app.exception_handler(DomainError)
    async def domain_error(request: Request, exc: DomainError) -> Response:
        return _render(request, exc)

    @app.exception_handler(RequestValidationError)
    async def request_validation(request: Request, exc: RequestValidationError) -> Response:
        return _render(request, ValidationFailed(validation_details(exc.errors())))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        path = request.url.path
        headers = dict(exc.headers or {})
        if exc.status_code == 404:
            body = error_body(
                path,
                code="ROUTE_NOT_FOUND",
                message=f"No route for {request.method} {path}",
                summary="The requested route does not exist",
            )
        elif exc.status_code == 405:
            # Starlette's Allow names the methods of the first route on this path only.
            headers["Allow"] = _allowed_methods(request) or headers.get("Allow", "")
            body = error_body(
                path,
                code="METHOD_NOT_ALLOWED",
                message=f"Method {request.method} is not allowed on {path}",
                summary="Method not allowed",
            )
        elif exc.status_code == 400:
            return _render(request, ValidationFailed({"body": str(exc.detail)}))
        else:
            body = error_body(
                path, code="HTTP_ERROR", message=str(exc.detail), summary=str(exc.detail)
            )
        return Response(
            body, status_code=exc.status_code, media_type="application/json", headers=headers
        )

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error")
        request_id = getattr(request.state, "request_id", "")
        body = error_body(
            request.url.path,
            code="INTERNAL_ERROR",
            message="Internal server error",
            summary="An unexpected error occurred",
            extra={"requestId": request_id},
        )
        return Response(body, status_code=500, media_type="application/json")

    @app.get("/healthz", tags=["health"], summary="The process is up")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get(
        "/readyz",
        tags=["health"],
        summary="The database is reachable and migrated",
        responses={503: {"description": "SERVICE_UNAVAILABLE"}},
    )
    async def readyz(request: Request) -> Response:
        try:
            async with services.db.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
            migrated = await is_at_head(services.db.engine)
        except Exception:
            return _render(request, ServiceUnavailable())
        if not migrated:
            return _render(request, ServiceUnavailable("The database is not migrated to head"))
        return Response(orjson.dumps({"status": "ready"}), media_type="application/json")

    from app.rest.clients import router as clients_router
    from app.rest.events import router as events_router
    from app.rest.transfer import router as export_router
    from app.rest.webhooks import router as webhooks_router

    app.include_router(export_router)  # before /v2/clients/{clientId}
    app.include_router(clients_router)
    from app.rest.catalogs import router as catalogs_router

    app.include_router(catalogs_router)
    app.include_router(events_router)
    app.include_router(webhooks_router)
    _document_errors_only_as_they_are(app)
    mount_ui(app)
    mount_metrics(app, settings)

    from schema.endpoint import mount_graphql

    mount_graphql(app, settings)

    return EdgeMiddleware(app, body_timeout=settings.http_body_timeout)
