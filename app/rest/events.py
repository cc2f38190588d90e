"""`/v2/events`: the team's (and mode's) change events, newest first, and one event.

Handlers only translate; the rules (bounds, type filter, tokens, tenancy) are the service's.
"""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.security import HTTPBearer
from pydantic import BaseModel, Field

from app.auth.principal import Principal
from app.core.errors import ValidationFailed
from app.events.service import EventService
from app.events.types import EVENT_TYPES
from app.http.deps import principal, services
from app.rest.schemas import ErrorEnvelope

LIST_PARAMS = frozenset({"limit", "type", "next"})

_DESCRIPTIONS = {
    400: "VALIDATION_ERROR: bad limit, type or pagination token",
    401: "UNAUTHORIZED: missing, malformed, unknown or revoked API key",
    404: "NOT_FOUND: no such event in this team and mode",
    429: "RATE_LIMITED",
    500: "INTERNAL_ERROR",
    503: "SERVICE_UNAVAILABLE: the database is unreachable",
}


def error_responses(
    descriptions: dict[int, str], *statuses: int
) -> dict[int | str, dict[str, Any]]:
    return {
        s: {"model": ErrorEnvelope, "description": descriptions[s]}
        for s in sorted({*statuses, 401, 429, 500, 503})
    }


class EventOut(BaseModel):
    id: str = Field(examples=["evt_01JD0Q5Z8X3V2N7K4M6P9R1T2W"])
    type: str = Field(description=" | ".join(EVENT_TYPES))
    created: str = Field(description="UTC, ISO 8601 with milliseconds")
    livemode: bool
    data: dict[str, Any] = Field(
        description="{object: the client as REST returns it; {id, deleted: true} for a delete}"
    )
    previousAttributes: dict[str, Any] | None = Field(
        description="client.updated: the changed fields' old values"
    )


class EventEnvelope(BaseModel):
    data: EventOut
    message: str


class EventListEnvelope(BaseModel):
    data: list[EventOut]
    message: str
    totalResults: int
    hasMore: bool
    next: str | None = Field(description="Opaque token for the next page, or null")


router = APIRouter(
    prefix="/v2/events",
    tags=["events"],
    dependencies=[Depends(HTTPBearer(auto_error=False, description="sk_live_… or sk_test_…"))],
)
Auth = Annotated[Principal, Depends(principal)]


def json_response(payload: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(payload), status_code=status, media_type="application/json")


def check_query(request: Request, allowed: frozenset[str]) -> None:
    """Unknown or repeated query parameters are a 400 naming them."""
    seen: dict[str, int] = {}
    for key, _ in request.query_params.multi_items():
        seen[key] = seen.get(key, 0) + 1
    errors = {k: "Unknown query parameter" for k in seen if k not in allowed}
    errors.update(
        {k: "Repeated query parameter" for k, n in seen.items() if n > 1 and k in allowed}
    )
    if errors:
        raise ValidationFailed(errors)


def event_service(request: Request) -> EventService:
    return services(request).events


@router.get(
    "",
    response_model=EventListEnvelope,
    summary="List events",
    responses=error_responses(_DESCRIPTIONS, 400),
)
async def list_events(
    request: Request,
    who: Auth,
    limit: Annotated[
        int | None,
        Query(description="1..100, default 20", json_schema_extra={"minimum": 1, "maximum": 100}),
    ] = None,
    type: Annotated[
        str | None,
        Query(
            description="Only events of this type: " + ", ".join(EVENT_TYPES),
            json_schema_extra={"enum": list(EVENT_TYPES)},
        ),
    ] = None,
    next_: Annotated[
        str | None, Query(alias="next", max_length=2048, description="Token from a previous page")
    ] = None,
) -> Response:
    check_query(request, LIST_PARAMS)
    service = event_service(request)
    before = None
    type_ = type
    if next_ is not None:
        if type is not None:
            raise ValidationFailed({"type": "Not allowed with next: the token carries the query"})
        type_, token_limit, before = service.parse_next_token(who, next_)
        page_limit = token_limit if limit is None else limit
    else:
        page_limit = 20 if limit is None else limit
    page = await service.list_events(
        principal=who, type_=type_, limit=page_limit, before_seq=before, with_total=True
    )
    token = (
        service.next_token(who, type_, page_limit, page.items[-1].seq) if page.has_more else None
    )
    return json_response(
        {
            "data": [e.to_json() for e in page.items],
            "message": "Events retrieved successfully",
            "totalResults": page.total,
            "hasMore": page.has_more,
            "next": token,
        }
    )


@router.get(
    "/{eventId}",
    response_model=EventEnvelope,
    summary="Get an event by id",
    responses=error_responses(_DESCRIPTIONS, 400, 404),
)
async def get_event(
    eventId: Annotated[str, Path(description="evt_… id")], who: Auth, request: Request
) -> Response:
    check_query(request, frozenset())
    event = await event_service(request).get(principal=who, event_id=eventId)
    return json_response({"data": event.to_json(), "message": "Event retrieved successfully"})
