"""Domain errors as HTTP responses: the documented envelope on REST, a GraphQL error body on
/graphql (see `app.http.edge.error_body`), with the headers each error calls for."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi.responses import Response

from app.core.clock import format_timestamp
from app.core.errors import (
    ClientInUse,
    DomainError,
    DuplicateRfc,
    PreconditionFailed,
    RateLimited,
    Unauthorized,
    ValidationFailed,
)
from app.http.edge import error_body, is_graphql


def error_extra(exc: DomainError) -> dict[str, Any]:
    """The error's own details (REST `error.details`)."""
    if isinstance(exc, DuplicateRfc):
        return {"details": {"existingClientId": exc.existing_client_id, "rfc": exc.rfc}}
    if isinstance(exc, ClientInUse):
        return {"details": {"invoiceCount": exc.invoice_count, "paymentCount": exc.payment_count}}
    if isinstance(exc, PreconditionFailed):
        return {"details": {"currentUpdatedAt": format_timestamp(exc.current_updated_at)}}
    return {}


def domain_error_response(path: str, exc: DomainError) -> Response:
    headers: dict[str, str] = {}
    if isinstance(exc, Unauthorized):
        headers["WWW-Authenticate"] = 'Bearer realm="clients"'
    elif isinstance(exc, RateLimited):
        headers["Retry-After"] = str(exc.retry_after)
    if isinstance(exc, Unauthorized) and is_graphql(path):
        # The contract's GraphQL 401 body says only "Authentication required".
        body = orjson.dumps(
            {"errors": [{"message": "Authentication required", "extensions": {"code": exc.code}}]}
        )
    else:
        body = error_body(
            path,
            code=exc.code,
            message=exc.message,
            summary=exc.summary,
            details=exc.fields if isinstance(exc, ValidationFailed) else None,
            extra=error_extra(exc),
        )
    return Response(body, status_code=exc.status, media_type="application/json", headers=headers)
