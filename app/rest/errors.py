"""The documented REST error envelope: every REST error body is built here.

`{"error": {"code", "message", "details"?, "requestId"?}, "message": summary}`; the error's
own details (the existing client of a duplicate RFC, the counts that block a delete, the
current version on a failed precondition) under `error.details`.
"""

from __future__ import annotations

from typing import Any

import orjson

from app.core.clock import format_timestamp
from app.core.errors import (
    ClientInUse,
    DomainError,
    DuplicateRfc,
    InternalError,
    PreconditionFailed,
    ValidationFailed,
)


def error_details(error: DomainError) -> dict[str, Any] | None:
    """The error's own details (REST `error.details`)."""
    if isinstance(error, ValidationFailed):
        return dict(error.fields)
    if isinstance(error, DuplicateRfc):
        return {"existingClientId": error.existing_client_id, "rfc": error.rfc}
    if isinstance(error, ClientInUse):
        return {"invoiceCount": error.invoice_count, "paymentCount": error.payment_count}
    if isinstance(error, PreconditionFailed):
        return {"currentUpdatedAt": format_timestamp(error.current_updated_at)}
    return None


def render_error(error: DomainError) -> bytes:
    body: dict[str, Any] = {"code": error.code, "message": error.message}
    details = error_details(error)
    if details is not None:
        body["details"] = details
    if isinstance(error, InternalError):
        body["requestId"] = error.request_id
    return orjson.dumps({"error": body, "message": error.summary})
