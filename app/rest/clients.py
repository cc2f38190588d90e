"""`/v2/clients`: the documented REST routes, kept working over the service layer.

Handlers only translate: request → service input, domain result → the documented JSON.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Header, Path, Query, Request, Response
from fastapi.security import HTTPBearer

from app.auth.principal import Principal
from app.clients import fiscal, validation
from app.clients.fiscal import Issue
from app.clients.service import (
    DEFAULT_LIMIT,
    MAX_LIMIT,
    MAX_OFFSET,
    entity_tag,
    record_entity_tag,
)
from app.clients.types import (
    ADDRESS_ATTRS,
    UNSET,
    Address,
    AddressPatch,
    Client,
    ClientFilter,
    ClientPatch,
    ClientRecord,
    NewClient,
    client_record,
)
from app.core.clock import format_timestamp
from app.core.errors import DuplicateRfc, UnsupportedMediaType, ValidationFailed
from app.http import metrics
from app.http.deps import client_service, principal
from app.platform.idempotency import HEADER as IDEMPOTENCY_HEADER
from app.platform.idempotency import Outcome, fingerprint
from app.rest import patterns
from app.rest.errors import render_error
from app.rest.schemas import (
    READ_ONLY_FIELDS,
    ClientCreateBody,
    ClientEnvelope,
    ClientListEnvelope,
    ClientRefBody,
    ClientUpdateBody,
    DeletedEnvelope,
    ErrorEnvelope,
    ValidationEnvelope,
    _ClientBody,
    not_null,
    tax_system_filter_schema,
)

JSON_TYPES = ("application/json", "application/merge-patch+json")
LIST_PARAMS = frozenset(
    {"limit", "offset", "name", "rfc", "email", "from", "to", "next", "taxSystem", "invoiceReady"}
)

_ERROR_DESCRIPTIONS = {
    400: "VALIDATION_ERROR: invalid body, parameters or pagination token",
    401: "UNAUTHORIZED: missing, malformed, unknown or revoked API key",
    404: "NOT_FOUND: no such client in this team and mode",
    409: "DUPLICATE_RFC; CLIENT_IN_USE on delete; IDEMPOTENCY_KEY_IN_USE while a first request "
    "with the same Idempotency-Key runs",
    412: "PRECONDITION_FAILED: If-Match does not match the current ETag",
    413: "PAYLOAD_TOO_LARGE: body over 256 KiB",
    415: "UNSUPPORTED_MEDIA_TYPE: the body must be JSON",
    422: "IDEMPOTENCY_KEY_REUSED: the Idempotency-Key was used with a different request",
    429: "RATE_LIMITED",
    500: "INTERNAL_ERROR",
    503: "SERVICE_UNAVAILABLE: the database is unreachable",
}


def idempotency_key_schema(schema: dict[str, Any]) -> None:
    not_null(schema)
    # No control characters (the service's rule); not blank (HTTP strips the spaces around it).
    cc = r"\x00-\x1f\x7f-\x9f"
    schema.update(minLength=1, maxLength=255, pattern=f"^[^{cc}]*[^\\s{cc}][^{cc}]*$")


def _errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    common = (401, 429, 500, 503)
    return {
        s: {"model": ErrorEnvelope, "description": _ERROR_DESCRIPTIONS[s]}
        for s in sorted({*statuses, *common})
    }


# OpenAPI links: from an answer that carries a client to what may be done with it next (its
# id, and its ETag as If-Match), so generated call sequences can follow them.
_ITEM = "#/paths/~1v2~1clients~1{clientId}"
_NEXT = {
    "GetClient": "get",
    "UpdateClient": "put",
    "PatchClient": "patch",
    "DeleteClient": "delete",
}


def _client_links(status: int) -> dict[int | str, dict[str, Any]]:
    links = {}
    for name, method in _NEXT.items():
        parameters = {"clientId": "$response.body#/data/id"}
        if method != "get":
            parameters["header.If-Match"] = "$response.header.ETag"
        links[name] = {"operationRef": f"{_ITEM}/{method}", "parameters": parameters}
    return {status: {"links": links}}


router = APIRouter(
    prefix="/v2/clients",
    tags=["clients"],
    dependencies=[Depends(HTTPBearer(auto_error=False, description="sk_live_… or sk_test_…"))],
)

Auth = Annotated[Principal, Depends(principal)]
# No length bound here: an id that cannot be one is a 404 (the service says so), never a 400.
ClientId = Annotated[str, Path(description="client_… id")]


def require_json(request: Request) -> None:
    content_type = request.headers.get("content-type", "")
    media = content_type.split(";", 1)[0].strip().lower()
    if media not in JSON_TYPES:
        raise UnsupportedMediaType()


def _json(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        orjson.dumps(payload), status_code=status, media_type="application/json", headers=headers
    )


# The client this task rendered last, with its rendering: a create or update renders the
# client for its event inside the transaction (app/events/outbox.py), then the route renders
# the same object for its answer. Per task (a request's own context), by identity (a Client is
# frozen, and the memo holds it, so its id cannot be reused while it is there).
_LAST_RENDERED: ContextVar[tuple[Client, dict[str, Any]] | None] = ContextVar(
    "last_rendered_client", default=None
)


def client_json(c: Client) -> dict[str, Any]:
    """A client in the REST shape: the domain object's values through the one renderer. The
    dict may be shared with another rendering of the same object: read it, never change it."""
    last = _LAST_RENDERED.get()
    if last is not None and last[0] is c:
        return last[1]
    rendered = client_record_json(client_record(c))
    _LAST_RENDERED.set((c, rendered))
    return rendered


def client_record_json(record: ClientRecord) -> dict[str, Any]:
    """The REST client shape, built straight from a record (SELECT_COLUMNS order; the list and
    get-by-id routes pass the database rows themselves). The only renderer of this shape:
    `client_json` feeds it a domain object's values, so every route answers the same bytes."""
    (
        _,
        public_id,
        name,
        legal_name,
        rfc,
        rfc_valid,
        email,
        phone,
        street,
        city,
        state,
        zip_code,
        country,
        exterior,
        interior,
        neighborhood,
        municipality,
        tax_system,
        cfdi_use,
        metadata,
        livemode,
        created_at,
        updated_at,
        *_,  # what else the statement selected (a list's total)
    ) = record
    # As Address.is_empty: an address of only empty values is no address.
    has_address = (
        street or exterior or interior or neighborhood or city or municipality or state
    ) or (zip_code or country)
    issues = fiscal.readiness(
        rfc=rfc,
        legal_name=legal_name,
        tax_system=tax_system,
        cfdi_use=cfdi_use,
        zip_code=zip_code if has_address else None,
    )
    return {
        "id": public_id,
        "name": name,
        "legalName": legal_name,
        "client": {"rfc": rfc, "email": email},
        "phone": phone,
        "address": {
            "street": street,
            "exterior": exterior,
            "interior": interior,
            "neighborhood": neighborhood,
            "city": city,
            "municipality": municipality,
            "state": state,
            "zipCode": zip_code,
            "country": country,
        }
        if has_address
        else None,
        "timestamp": format_timestamp(created_at),
        "updatedAt": format_timestamp(updated_at),
        "livemode": livemode,
        "rfcCheckDigitValid": rfc_valid,
        "taxSystem": tax_system,
        "cfdiUse": cfdi_use,
        "metadata": metadata or {},
        "cfdiName": fiscal.cfdi_name(legal_name),
        "invoiceReady": not issues,
        "invoiceIssues": [{"field": i.field, "message": i.message} for i in issues],
    }


def issues_json(issues: list[Issue]) -> list[dict[str, str]]:
    return [{"field": i.field, "message": i.message} for i in issues]


# Address attributes whose API name differs.
_API_NAMES = {"zip_code": "zipCode"}


def if_match_tags(value: str | None) -> list[str] | None:
    """The entity tags an If-Match header lists, as sent; None for absent or `*` (any).
    The service compares them with the client's own, as text, under its row lock."""
    if value is None or value.strip() == "*":
        return None
    return [part.strip() for part in value.split(",")]


def _alias(body: _ClientBody, fields: set[str]) -> tuple[Any, Any]:
    """rfc and email, from the top level or from `client: {rfc, email}`."""
    rfc: Any = body.rfc if "rfc" in fields else UNSET
    email: Any = body.email if "email" in fields else UNSET
    if "client" not in fields:
        return rfc, email
    ref: ClientRefBody | None = body.client
    if ref is None:
        raise ValidationFailed({"client": "Must be an object with rfc and/or email"})
    errors: dict[str, str] = {}
    if "rfc" in ref.model_fields_set:
        if rfc is not UNSET and not _same(rfc, ref.rfc, validation.normalize_rfc):
            errors["client.rfc"] = "Differs from rfc"
        rfc = ref.rfc
    if "email" in ref.model_fields_set:
        if email is not UNSET and not _same(email, ref.email, str.lower):
            errors["client.email"] = "Differs from email"
        email = ref.email
    if errors:
        raise ValidationFailed(errors)
    return rfc, email


def _same(a: str | None, b: str | None, norm: Any) -> bool:
    def key(x: str | None) -> str | None:
        try:
            text = validation.clean_text(x)
        except validation.FieldInvalid:
            return x
        return None if text is None else norm(text)

    return key(a) == key(b)


@router.post(
    "",
    status_code=201,
    response_model=ClientEnvelope,
    summary="Create a client",
    responses={**_errors(400, 409, 413, 415, 422), **_client_links(201)},
    dependencies=[Depends(require_json)],
)
async def create_client(
    body: ClientCreateBody,
    who: Auth,
    request: Request,
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            description="Up to 255 characters. A retry with the same key within 24 hours gets "
            "the first response again, byte for byte; with a different body, 422.",
            # Documented only: app/platform/idempotency.py checks the key (one rule).
            json_schema_extra=idempotency_key_schema,
        ),
    ] = None,
) -> Response:
    _no_query(request)
    data = _new_client(body)
    service = client_service(request)
    if idempotency_key is None:
        return _created(await service.create(principal=who, data=data))
    outcome = await service.create_idempotent(
        principal=who,
        data=data,
        key=idempotency_key,
        key_field=IDEMPOTENCY_HEADER,
        request_fingerprint=fingerprint(
            "POST /v2/clients",
            # Python mode: the JSON mode's serialiser refuses deep nesting (metadata values).
            body.model_dump(exclude_unset=True, exclude=set(READ_ONLY_FIELDS)),
        ),
        answer=_create_answer,
    )
    headers = dict(outcome.headers)
    if outcome.replayed:
        headers["Idempotent-Replayed"] = "true"
        metrics.idempotent_replay()
    return Response(
        outcome.body.encode(),
        status_code=outcome.status,
        media_type="application/json",
        headers=headers,
    )


def _new_client(body: ClientCreateBody) -> NewClient:
    rfc, email = _alias(body, body.model_fields_set)
    address = body.address
    return NewClient(
        name=body.name,
        rfc=None if rfc is UNSET else rfc,
        legal_name=body.legalName,
        email=None if email is UNSET else email,
        phone=body.phone,
        address=None
        if address is None
        else Address(
            **{attr: getattr(address, _API_NAMES.get(attr, attr)) for attr in ADDRESS_ATTRS}
        ),
        tax_system=body.taxSystem,
        cfdi_use=body.cfdiUse,
        metadata=body.metadata,
    )


@router.post(
    "/validate",
    response_model=ValidationEnvelope,
    summary="Validate a client without saving it: the errors and readiness a create would give",
    description="Answers exactly what `POST /v2/clients` would (the same 400 VALIDATION_ERROR "
    "or 409 DUPLICATE_RFC), except that nothing is written and a success is a 200 with the "
    "invoice readiness and cfdiName of the client the create would make.",
    responses=_errors(400, 409, 413, 415),
    dependencies=[Depends(require_json)],
)
async def validate_client(body: ClientCreateBody, who: Auth, request: Request) -> Response:
    _no_query(request)
    result = await client_service(request).validate(principal=who, data=_new_client(body))
    result.raise_refusal()
    return _json(
        {
            "data": {
                "valid": result.valid,
                "errors": result.errors,
                "cfdiName": result.cfdi_name,
                "invoiceReady": not result.issues,
                "invoiceIssues": issues_json(result.issues),
            },
            "message": "Client validated successfully",
        }
    )


def _created(client: Client) -> Response:
    return _json(
        {"data": client_json(client), "message": "Client created successfully"},
        201,
        {"ETag": entity_tag(client), "Location": f"/v2/clients/{client.id}"},
    )


def _create_answer(result: Client | DuplicateRfc) -> Outcome:
    """What an idempotent create answers, as stored and replayed byte for byte."""
    if isinstance(result, DuplicateRfc):
        return Outcome(result.status, render_error(result).decode(), {})
    created = _created(result)
    headers = {k: created.headers[k] for k in ("etag", "location")}
    return Outcome(created.status_code, bytes(created.body).decode(), headers)


# The list's query parameters. Bounds are documented here and checked by the service, so
# REST and GraphQL say the same.
LimitQuery = Annotated[
    int | None,
    Query(
        description=f"1..{MAX_LIMIT}, default {DEFAULT_LIMIT}",
        json_schema_extra={"minimum": 1, "maximum": MAX_LIMIT},
    ),
]
OffsetQuery = Annotated[
    int | None,
    Query(
        description=f"0..{MAX_OFFSET:,}", json_schema_extra={"minimum": 0, "maximum": MAX_OFFSET}
    ),
]
NameQuery = Annotated[
    str | None,
    Query(
        max_length=validation.SEARCH_MAX,
        description="Partial, case- and accent-insensitive, on name or legalName",
        examples=["mexico"],
        json_schema_extra={"pattern": patterns.TEXT},
    ),
]
RfcQuery = Annotated[
    str | None,
    Query(
        max_length=64,
        description="Exact RFC (normalised as on create)",
        json_schema_extra={"pattern": patterns.TEXT},
    ),
]
EmailQuery = Annotated[
    str | None,
    Query(
        max_length=validation.EMAIL_MAX,
        description="Exact, case-insensitive",
        json_schema_extra={"pattern": patterns.TEXT},
    ),
]
FromQuery = Annotated[
    str | None,
    Query(
        alias="from",
        max_length=64,
        description="ISO 8601 date or date-time (UTC when it has no offset), inclusive; "
        "not after `to`",
        examples=["2024-01-15"],
        json_schema_extra={"pattern": patterns.DATE_BOUND},
    ),
]
ToQuery = Annotated[
    str | None,
    Query(
        max_length=64,
        description="ISO 8601, inclusive; a date-only value covers the whole day",
        examples=["2024-01-31T23:59:59Z"],
        json_schema_extra={"pattern": patterns.DATE_BOUND},
    ),
]
NextQuery = Annotated[
    str | None,
    Query(
        alias="next",
        max_length=2048,
        description="The `next` token of a previous page, as it was given (it carries the "
        "whole query: only `limit` may come with it)",
        json_schema_extra={"pattern": r"^[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+$"},
    ),
]
TaxSystemQuery = Annotated[
    str | None,
    Query(
        alias="taxSystem",
        description="Exact c_RegimenFiscal code (one SAT has withdrawn too: a stored client "
        "may hold it); blank: no filter",
        json_schema_extra=tax_system_filter_schema,
    ),
]
InvoiceReadyQuery = Annotated[
    bool | None,
    Query(alias="invoiceReady", description="true: invoice-ready clients; false: the others"),
]


def list_filter(
    name: str | None,
    rfc: str | None,
    email: str | None,
    from_: str | None,
    to: str | None,
    tax_system: str | None,
    invoice_ready: bool | None,
) -> ClientFilter:
    """The list's filter query parameters (shared by the export route), as the service takes
    them: raw, it checks them."""
    return ClientFilter(
        name=name,
        rfc=rfc,
        email=email,
        created_from=from_,
        created_to=to,
        tax_system=tax_system,
        invoice_ready=invoice_ready,
    )


@router.get(
    "",
    response_model=ClientListEnvelope,
    summary="List clients",
    responses=_errors(400),
)
async def list_clients(
    request: Request,
    who: Auth,
    limit: LimitQuery = None,
    offset: OffsetQuery = None,
    name: NameQuery = None,
    rfc: RfcQuery = None,
    email: EmailQuery = None,
    from_: FromQuery = None,
    to: ToQuery = None,
    next_: NextQuery = None,
    tax_system: TaxSystemQuery = None,
    invoice_ready: InvoiceReadyQuery = None,
) -> Response:
    _check_query(request)
    if next_ is not None:
        _only_limit_with_next(request)
    service = client_service(request)
    page = await service.list(
        principal=who,
        filters=list_filter(name, rfc, email, from_, to, tax_system, invoice_ready),
        limit=limit,
        offset=offset,
        next_token=next_,
        with_total=True,
        as_records=True,
    )
    return _json(
        {
            "data": [client_record_json(r) for r in page.records],
            "message": "Clients retrieved successfully",
            "totalResults": page.total,
            "hasMore": page.has_more,
            "next": service.next_page_token(who, page),
        }
    )


def _only_limit_with_next(request: Request) -> None:
    others = {k for k in request.query_params if k not in ("next", "limit")}
    if others:
        raise ValidationFailed(
            {k: "Not allowed with next: the token carries the query" for k in sorted(others)}
        )


def _check_query(request: Request) -> None:
    seen: dict[str, int] = {}
    for key, _ in request.query_params.multi_items():
        seen[key] = seen.get(key, 0) + 1
    errors = {k: "Unknown query parameter" for k in seen if k not in LIST_PARAMS}
    errors.update(
        {k: "Repeated query parameter" for k, n in seen.items() if n > 1 and k in LIST_PARAMS}
    )
    if errors:
        raise ValidationFailed(errors)


def _no_query(request: Request) -> None:
    if request.query_params:
        raise ValidationFailed({k: "Unknown query parameter" for k in request.query_params})


@router.get(
    "/{clientId}",
    response_model=ClientEnvelope,
    summary="Get a client by id",
    responses={**_errors(400, 404), **_client_links(200)},
)
async def get_client(clientId: ClientId, who: Auth, request: Request) -> Response:
    _no_query(request)
    record = await client_service(request).get_record(principal=who, client_id=clientId)
    return _json(
        {"data": client_record_json(record), "message": "Client retrieved successfully"},
        headers={"ETag": record_entity_tag(record)},
    )


async def _update(
    request: Request, who: Principal, client_id: str, body: _ClientBody, if_match: str | None
) -> Response:
    _no_query(request)
    client = await client_service(request).update(
        principal=who,
        client_id=client_id,
        patch=_client_patch(body),
        if_match=if_match_tags(if_match),
    )
    return _json(
        {"data": client_json(client), "message": "Client updated successfully"},
        headers={"ETag": entity_tag(client)},
    )


def _client_patch(body: _ClientBody) -> ClientPatch:
    """The merge-patch a body asks for: absent fields are UNSET, null clears."""
    fields = body.model_fields_set
    rfc, email = _alias(body, fields)
    address: Any = UNSET
    if "address" in fields:
        given = body.address
        if given is None:
            address = None
        else:
            sent = given.model_fields_set
            address = AddressPatch(
                **{
                    attr: getattr(given, name) if name in sent else UNSET
                    for attr in ADDRESS_ATTRS
                    for name in (_API_NAMES.get(attr, attr),)
                }
            )
    return ClientPatch(
        name=body.name if "name" in fields else UNSET,
        rfc=rfc,
        legal_name=body.legalName if "legalName" in fields else UNSET,
        email=email,
        phone=body.phone if "phone" in fields else UNSET,
        address=address,
        tax_system=body.taxSystem if "taxSystem" in fields else UNSET,
        cfdi_use=body.cfdiUse if "cfdiUse" in fields else UNSET,
        metadata=body.metadata if "metadata" in fields else UNSET,
    )


IfMatch = Annotated[
    str | None,
    Header(alias="If-Match", description="An ETag from a previous answer; 412 when stale"),
]


@router.put(
    "/{clientId}",
    response_model=ClientEnvelope,
    summary="Update a client (partial, JSON merge-patch)",
    responses={**_errors(400, 404, 409, 412, 413, 415), **_client_links(200)},
    dependencies=[Depends(require_json)],
)
async def put_client(
    clientId: ClientId,
    body: ClientUpdateBody,
    who: Auth,
    request: Request,
    if_match: IfMatch = None,
) -> Response:
    return await _update(request, who, clientId, body, if_match)


@router.patch(
    "/{clientId}",
    response_model=ClientEnvelope,
    summary="Update a client (JSON merge-patch)",
    responses={**_errors(400, 404, 409, 412, 413, 415), **_client_links(200)},
    dependencies=[Depends(require_json)],
)
async def patch_client(
    clientId: ClientId,
    body: ClientUpdateBody,
    who: Auth,
    request: Request,
    if_match: IfMatch = None,
) -> Response:
    return await _update(request, who, clientId, body, if_match)


@router.delete(
    "/{clientId}",
    response_model=DeletedEnvelope,
    summary="Delete a client (refused while it has invoices or payments)",
    responses=_errors(400, 404, 409, 412),
)
async def delete_client(
    clientId: ClientId, who: Auth, request: Request, if_match: IfMatch = None
) -> Response:
    _no_query(request)
    deleted = await client_service(request).delete(
        principal=who, client_id=clientId, if_match=if_match_tags(if_match)
    )
    return _json(
        {"data": {"id": deleted, "deleted": True}, "message": "Client deleted successfully"}
    )
