"""Webhook endpoints and delivery attempts as plain values."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from app.core.ids import id_matcher

WEBHOOK_PREFIX = "wh_"
_WEBHOOK_ID = id_matcher(WEBHOOK_PREFIX)
ALL_EVENTS = "*"


def is_webhook_id(value: str) -> bool:
    return len(value) == 29 and _WEBHOOK_ID.match(value) is not None


@dataclass(frozen=True, slots=True)
class Webhook:
    id: str
    url: str
    events: list[str]
    description: str | None
    livemode: bool
    created_at: datetime
    # Only in the answer to its creation; None afterwards.
    secret: str | None = None


@dataclass(frozen=True, slots=True)
class NewWebhook:
    url: object
    events: object
    description: object = None


@dataclass(frozen=True, slots=True)
class Attempt:
    event_id: str
    attempt: int
    status_code: int | None
    error: str | None
    duration_ms: int
    created_at: datetime


@dataclass(frozen=True, slots=True)
class DueDelivery:
    """A claimed delivery: what the deliverer needs to send it."""

    id: int
    endpoint_id: int
    attempts: int
    url: str
    secret: str
    event_id: str
    event_body: str
