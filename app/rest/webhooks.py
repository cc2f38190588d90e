"""`/v2/webhooks`: the team's (and mode's) webhook endpoints and their delivery attempts.

Handlers only translate; URL and event-type rules, the SSRF guard and tenancy are the
service's (app/webhooks/service.py). The signing secret is in the create answer only.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.security import HTTPBearer
from pydantic import BaseModel, ConfigDict, Field

from app.auth.principal import Principal
from app.core.clock import format_timestamp
from app.events.types import EVENT_TYPES
from app.http.deps import principal, services
from app.rest import patterns
from app.rest.clients import require_json
from app.rest.events import check_query, error_responses, json_response
from app.webhooks.service import DESCRIPTION_MAX, WebhookService
from app.webhooks.types import Attempt, NewWebhook, Webhook
from app.webhooks.urls import MAX_URL_LENGTH

_DESCRIPTIONS = {
    400: "VALIDATION_ERROR: bad url, events, description or parameters",
    401: "UNAUTHORIZED: missing, malformed, unknown or revoked API key",
    404: "NOT_FOUND: no such webhook in this team and mode",
    413: "PAYLOAD_TOO_LARGE: body over 256 KiB",
    415: "UNSUPPORTED_MEDIA_TYPE: the body must be JSON",
    429: "RATE_LIMITED",
    500: "INTERNAL_ERROR",
    503: "SERVICE_UNAVAILABLE: the database is unreachable",
}


class WebhookCreateBody(BaseModel):
    # Types are checked by the service (all field errors at once, never a pydantic message).
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "required": ["url", "events"],
            "examples": [
                {
                    "url": "https://example.com/hooks/clients",
                    "events": ["client.created", "client.updated"],
                    "description": "CRM sync",
                }
            ],
        },
    )

    # The schemas below document what the service accepts (checked there, all at once).
    url: Any = Field(
        None,
        description="https:// (http:// in development only), with a host, no credentials, "
        "no fragment; in production the host must resolve to public addresses",
        json_schema_extra={
            "type": "string",
            "maxLength": MAX_URL_LENGTH,
            # host names only (no credentials), a port, then a path without a fragment
            "pattern": r"^https?://[A-Za-z0-9](?:[A-Za-z0-9.-]{0,252})(?::[1-9][0-9]{0,3})?"
            r'(?:[/?][!-"$-~]*)?$',
        },
    )
    events: Any = Field(
        None,
        description=f'Event types ({", ".join(EVENT_TYPES)}) or ["*"]',
        json_schema_extra={
            # "*" anywhere means every type; repeats are ignored.
            "type": "array",
            "minItems": 1,
            "items": {"enum": [*EVENT_TYPES, "*"]},
        },
    )
    description: Any = Field(
        None,
        description=f"Up to {DESCRIPTION_MAX} characters",
        json_schema_extra={
            "anyOf": [
                {"type": "string", "pattern": patterns.bounded_text(DESCRIPTION_MAX)},
                {"type": "null"},
            ]
        },
    )


class WebhookOut(BaseModel):
    id: str = Field(examples=["wh_01JD0Q5Z8X3V2N7K4M6P9R1T2W"])
    url: str
    events: list[str]
    description: str | None
    livemode: bool
    timestamp: str
    secret: str | None = Field(
        None, description="whsec_… (base64): in the create answer only; keep it to verify"
    )


class WebhookEnvelope(BaseModel):
    data: WebhookOut
    message: str


class WebhookListEnvelope(BaseModel):
    data: list[WebhookOut]
    message: str


class DeletedWebhookOut(BaseModel):
    id: str
    deleted: bool


class DeletedWebhookEnvelope(BaseModel):
    data: DeletedWebhookOut
    message: str


class AttemptOut(BaseModel):
    eventId: str
    attempt: int
    statusCode: int | None = Field(description="The receiver's HTTP status, or null")
    error: str | None = Field(description="What went wrong when there was no answer")
    durationMs: int
    timestamp: str


class AttemptListEnvelope(BaseModel):
    data: list[AttemptOut]
    message: str


router = APIRouter(
    prefix="/v2/webhooks",
    tags=["webhooks"],
    dependencies=[Depends(HTTPBearer(auto_error=False, description="sk_live_… or sk_test_…"))],
)
Auth = Annotated[Principal, Depends(principal)]
WebhookId = Annotated[str, Path(description="wh_… id")]


def webhook_json(webhook: Webhook) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": webhook.id,
        "url": webhook.url,
        "events": webhook.events,
        "description": webhook.description,
        "livemode": webhook.livemode,
        "timestamp": format_timestamp(webhook.created_at),
    }
    if webhook.secret is not None:
        out["secret"] = webhook.secret
    return out


def attempt_json(attempt: Attempt) -> dict[str, Any]:
    return {
        "eventId": attempt.event_id,
        "attempt": attempt.attempt,
        "statusCode": attempt.status_code,
        "error": attempt.error,
        "durationMs": attempt.duration_ms,
        "timestamp": format_timestamp(attempt.created_at),
    }


def webhook_service(request: Request) -> WebhookService:
    return services(request).webhooks


@router.post(
    "",
    status_code=201,
    response_model=WebhookEnvelope,
    summary="Create a webhook endpoint",
    responses=error_responses(_DESCRIPTIONS, 400, 413, 415),
    dependencies=[Depends(require_json)],
)
async def create_webhook(body: WebhookCreateBody, who: Auth, request: Request) -> Response:
    check_query(request, frozenset())
    data = NewWebhook(url=body.url, events=body.events, description=body.description)
    created = await webhook_service(request).create(principal=who, data=data)
    return json_response(
        {"data": webhook_json(created), "message": "Webhook created successfully"}, 201
    )


@router.get(
    "",
    response_model=WebhookListEnvelope,
    summary="List webhook endpoints",
    responses=error_responses(_DESCRIPTIONS, 400),
)
async def list_webhooks(who: Auth, request: Request) -> Response:
    check_query(request, frozenset())
    found = await webhook_service(request).list_webhooks(principal=who)
    return json_response(
        {"data": [webhook_json(w) for w in found], "message": "Webhooks retrieved successfully"}
    )


@router.get(
    "/{webhookId}",
    response_model=WebhookEnvelope,
    summary="Get a webhook endpoint",
    responses=error_responses(_DESCRIPTIONS, 400, 404),
)
async def get_webhook(webhookId: WebhookId, who: Auth, request: Request) -> Response:
    check_query(request, frozenset())
    found = await webhook_service(request).get(principal=who, webhook_id=webhookId)
    return json_response({"data": webhook_json(found), "message": "Webhook retrieved successfully"})


@router.delete(
    "/{webhookId}",
    response_model=DeletedWebhookEnvelope,
    summary="Delete a webhook endpoint (its pending deliveries are dropped)",
    responses=error_responses(_DESCRIPTIONS, 400, 404),
)
async def delete_webhook(webhookId: WebhookId, who: Auth, request: Request) -> Response:
    check_query(request, frozenset())
    deleted = await webhook_service(request).delete(principal=who, webhook_id=webhookId)
    return json_response(
        {"data": {"id": deleted, "deleted": True}, "message": "Webhook deleted successfully"}
    )


@router.get(
    "/{webhookId}/deliveries",
    response_model=AttemptListEnvelope,
    summary="Recent delivery attempts of a webhook endpoint, newest first",
    responses=error_responses(_DESCRIPTIONS, 400, 404),
)
async def list_deliveries(
    webhookId: WebhookId,
    who: Auth,
    request: Request,
    limit: Annotated[
        int | None,
        Query(description="1..100, default 20", json_schema_extra={"minimum": 1, "maximum": 100}),
    ] = None,
) -> Response:
    check_query(request, frozenset({"limit"}))
    found = await webhook_service(request).attempts(
        principal=who, webhook_id=webhookId, limit=20 if limit is None else limit
    )
    return json_response(
        {"data": [attempt_json(a) for a in found], "message": "Deliveries retrieved successfully"}
    )
