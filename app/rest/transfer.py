"""`GET /v2/clients/export`: every client of the key's team and mode as JSON Lines, one client
per line as `GET /v2/clients/{id}` shows it, streamed a page at a time (app/clients/transfer.py).
The list's filters apply (`name`, `rfc`, `email`, `from`, `to`, `taxSystem`, `invoiceReady`);
paging parameters do not."""

from __future__ import annotations

from collections.abc import AsyncIterator

from fastapi import APIRouter, Depends, Request
from fastapi.responses import StreamingResponse
from fastapi.security import HTTPBearer
from starlette.exceptions import HTTPException

from app.clients.transfer import export_lines
from app.core.errors import ValidationFailed
from app.http.deps import client_service
from app.rest.clients import (
    Auth,
    EmailQuery,
    FromQuery,
    InvoiceReadyQuery,
    NameQuery,
    RfcQuery,
    TaxSystemQuery,
    ToQuery,
    _errors,
    client_record_json,
    list_filter,
)

EXPORT_PARAMS = frozenset({"name", "rfc", "email", "from", "to", "taxSystem", "invoiceReady"})
NDJSON = "application/x-ndjson"

router = APIRouter(
    prefix="/v2/clients",
    tags=["clients"],
    dependencies=[Depends(HTTPBearer(auto_error=False, description="sk_live_… or sk_test_…"))],
)


def _check_export_query(request: Request) -> None:
    seen: dict[str, int] = {}
    for key, _ in request.query_params.multi_items():
        seen[key] = seen.get(key, 0) + 1
    errors = {k: "Unknown query parameter" for k in seen if k not in EXPORT_PARAMS}
    errors.update({k: "Repeated query parameter" for k, n in seen.items() if n > 1})
    if errors:
        raise ValidationFailed(errors)


@router.get(
    "/export",
    summary="Export clients as JSON Lines",
    description="Every client of the key's team and mode that matches the filters, newest "
    "first, one JSON object per line (the client as `GET /v2/clients/{clientId}` shows it).",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "One client per line",
            "content": {NDJSON: {"schema": {"type": "string"}}},
        },
        **_errors(400),
    },
)
async def export_clients(
    request: Request,
    who: Auth,
    name: NameQuery = None,
    rfc: RfcQuery = None,
    email: EmailQuery = None,
    from_: FromQuery = None,
    to: ToQuery = None,
    tax_system: TaxSystemQuery = None,
    invoice_ready: InvoiceReadyQuery = None,
) -> StreamingResponse:
    _check_export_query(request)
    service = client_service(request)
    filters = list_filter(name, rfc, email, from_, to, tax_system, invoice_ready)
    lines = export_lines(service, who, client_record_json, filters=filters)
    # The first page is read here, so a bad filter is a 400 before the 200 starts.
    first = await anext(lines, b"")

    async def body() -> AsyncIterator[bytes]:
        if first:
            yield first
        async for line in lines:
            yield line

    return StreamingResponse(body(), media_type=NDJSON)


@router.api_route("/export", methods=["POST", "PUT", "PATCH", "DELETE"], include_in_schema=False)
async def export_other_methods() -> None:
    """Without this, `/v2/clients/{clientId}` would take these methods with the id "export"
    (a 404); the export only reads: 405, with Allow: GET."""
    raise HTTPException(405)
