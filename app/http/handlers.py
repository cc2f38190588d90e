"""The framework's exception handlers: a domain error raised by a route, FastAPI's request
validation, Starlette's 404/405/400 and anything unexpected all become a `DomainError`,
rendered by the renderer of the mount the path belongs to (app.http.errors)."""

from __future__ import annotations

import logging
import re
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.core.errors import (
    DomainError,
    HttpError,
    InternalError,
    MethodNotAllowed,
    RouteNotFound,
    ValidationFailed,
)
from app.http.errors import ErrorRenderers, error_response

log = logging.getLogger("clients")

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

_METHOD_ORDER = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")


def validation_details(errors: Any) -> dict[str, str]:
    """Pydantic's errors as the envelope's `details`: field path to message."""
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


def _http_error(request: Request, exc: StarletteHTTPException) -> DomainError:
    method, path = request.method, request.url.path
    if exc.status_code == 404:
        return RouteNotFound(method, path)
    if exc.status_code == 405:
        # Starlette's Allow names the methods of the first route on this path only.
        allow = _allowed_methods(request) or (exc.headers or {}).get("Allow", "")
        return MethodNotAllowed(f"Method {method} is not allowed on {path}", allow=allow)
    if exc.status_code == 400:
        return ValidationFailed({"body": str(exc.detail)})
    return HttpError(exc.status_code, str(exc.detail))


def install_error_handlers(app: FastAPI, renderers: ErrorRenderers) -> None:
    def respond(request: Request, error: DomainError) -> Response:
        return error_response(renderers.for_path(request.url.path), error)

    @app.exception_handler(DomainError)
    async def domain_error(request: Request, exc: DomainError) -> Response:
        return respond(request, exc)

    @app.exception_handler(RequestValidationError)
    async def request_validation(request: Request, exc: RequestValidationError) -> Response:
        return respond(request, ValidationFailed(validation_details(exc.errors())))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        response = respond(request, _http_error(request, exc))
        for name, value in (exc.headers or {}).items():
            response.headers.setdefault(name, value)
        return response

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error")
        return respond(request, InternalError(getattr(request.state, "request_id", "")))
