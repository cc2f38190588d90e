"""Every rule of webhook endpoints: URL and event-type validation (with the SSRF guard in
production), per-team-and-mode ownership, the secret shown once, the attempts log."""

from __future__ import annotations

import base64
import secrets
from typing import Any

import orjson

from app.auth.principal import Principal
from app.clients import validation as v
from app.core import clock
from app.core.config import Settings
from app.core.errors import ValidationFailed, WebhookNotFound
from app.core.ids import new_id
from app.db.database import Database
from app.events.types import EVENT_TYPES
from app.webhooks.repository import WebhookRepository
from app.webhooks.types import (
    ALL_EVENTS,
    WEBHOOK_PREFIX,
    Attempt,
    NewWebhook,
    Webhook,
    is_webhook_id,
)
from app.webhooks.urls import UrlRefused, parse_url, resolve_public

DESCRIPTION_MAX = 500
MAX_ENDPOINTS = 20  # per team and mode
MAX_ATTEMPTS_LIMIT = 100


def new_secret() -> str:
    """`whsec_` + base64 of 24 random bytes (192 bits), as Standard Webhooks expects."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode("ascii")


def check_event_types(raw: object) -> list[str]:
    if not isinstance(raw, list) or not raw:
        raise v.FieldInvalid('Must be a non-empty list of event types, or ["*"]')
    types: list[str] = []
    for item in raw:
        if not isinstance(item, str) or (item not in EVENT_TYPES and item != ALL_EVENTS):
            allowed = ", ".join((*EVENT_TYPES, ALL_EVENTS))
            raise v.FieldInvalid(f"Unknown event type {str(item)[:60]!r}; one of {allowed}")
        if item not in types:
            types.append(item)
    return [ALL_EVENTS] if ALL_EVENTS in types else types


class WebhookService:
    def __init__(self, db: Database, settings: Settings) -> None:
        self.db = db
        self.settings = settings
        self.repo = WebhookRepository(db.dialect)

    @property
    def checks_addresses(self) -> bool:
        """Whether hosts must resolve to public addresses (production, unless lifted)."""
        return self.settings.is_production and not self.settings.webhook_allow_private

    async def _validate(self, data: NewWebhook) -> dict[str, Any]:
        errors: dict[str, str] = {}
        url = None
        try:
            target = parse_url(data.url, allow_http=not self.settings.is_production)
            if self.checks_addresses:
                await resolve_public(target)
            url = target.url
        except UrlRefused as exc:
            errors["url"] = exc.message
        types: list[str] = []
        try:
            types = check_event_types(data.events)
        except v.FieldInvalid as exc:
            errors["events"] = exc.message
        description = None
        try:
            if data.description is not None and not isinstance(data.description, str):
                raise v.FieldInvalid("Must be a string")
            description = v.clean_text(data.description, max_length=DESCRIPTION_MAX)
        except v.FieldInvalid as exc:
            errors["description"] = exc.message
        if errors:
            raise ValidationFailed(errors)
        return {"url": url, "events": types, "description": description}

    async def create(self, *, principal: Principal, data: NewWebhook) -> Webhook:
        values = await self._validate(data)
        now = clock.now()
        webhook = Webhook(
            id=new_id(WEBHOOK_PREFIX),
            url=values["url"],
            events=values["events"],
            description=values["description"],
            livemode=principal.livemode,
            created_at=now,
            secret=new_secret(),
        )
        async with self.db.write() as session:
            existing = await self.repo.count(session, principal.team_id, principal.livemode)
            if existing >= MAX_ENDPOINTS:
                raise ValidationFailed(
                    {"url": f"At most {MAX_ENDPOINTS} webhooks per team and mode"}
                )
            await self.repo.insert(
                session,
                {
                    "public_id": webhook.id,
                    "team_id": principal.team_id,
                    "livemode": principal.livemode,
                    "url": webhook.url,
                    "events": orjson.dumps(webhook.events).decode(),
                    "description": webhook.description,
                    "secret": webhook.secret,
                    "created_at": now,
                },
            )
        return webhook

    async def list_webhooks(self, *, principal: Principal) -> list[Webhook]:
        async with self.db.read() as session:
            return await self.repo.for_team(session, principal.team_id, principal.livemode)

    async def get(self, *, principal: Principal, webhook_id: str) -> Webhook:
        if not is_webhook_id(webhook_id):
            raise WebhookNotFound(webhook_id)
        async with self.db.read() as session:
            found = await self.repo.get(session, principal.team_id, principal.livemode, webhook_id)
        if found is None:
            raise WebhookNotFound(webhook_id)
        return found

    async def delete(self, *, principal: Principal, webhook_id: str) -> str:
        """Delete an endpoint; its pending deliveries are dropped with it."""
        if not is_webhook_id(webhook_id):
            raise WebhookNotFound(webhook_id)
        async with self.db.write() as session:
            row_id = await self.repo.row_id(
                session, principal.team_id, principal.livemode, webhook_id
            )
            if row_id is None:
                raise WebhookNotFound(webhook_id)
            await self.repo.delete(session, row_id)
        return webhook_id

    async def attempts(
        self, *, principal: Principal, webhook_id: str, limit: int = 20
    ) -> list[Attempt]:
        """The endpoint's most recent delivery attempts, newest first."""
        if not 1 <= limit <= MAX_ATTEMPTS_LIMIT:
            raise ValidationFailed({"limit": f"Must be between 1 and {MAX_ATTEMPTS_LIMIT}"})
        if not is_webhook_id(webhook_id):
            raise WebhookNotFound(webhook_id)
        async with self.db.read() as session:
            row_id = await self.repo.row_id(
                session, principal.team_id, principal.livemode, webhook_id
            )
            if row_id is None:
                raise WebhookNotFound(webhook_id)
            return await self.repo.recent_attempts(session, row_id, limit)
