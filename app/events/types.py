"""Events as plain values, and their one wire shape (REST, webhooks, GraphQL `data`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from app.core.clock import format_timestamp
from app.core.ids import id_matcher

CLIENT_CREATED = "client.created"
CLIENT_UPDATED = "client.updated"
CLIENT_DELETED = "client.deleted"
EVENT_TYPES = (CLIENT_CREATED, CLIENT_UPDATED, CLIENT_DELETED)

EVENT_PREFIX = "evt_"
_EVENT_ID = id_matcher(EVENT_PREFIX)


def is_event_id(value: str) -> bool:
    return len(value) == 30 and _EVENT_ID.match(value) is not None


@dataclass(frozen=True, slots=True)
class Event:
    # The row id: a team's events in commit order (app/db/tables.py Event).
    seq: int
    id: str
    type: str
    created_at: datetime
    livemode: bool
    data: dict[str, Any]
    previous_attributes: dict[str, Any] | None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": self.type,
            "created": format_timestamp(self.created_at),
            "livemode": self.livemode,
            "data": self.data,
            "previousAttributes": self.previous_attributes,
        }


@dataclass(frozen=True, slots=True)
class EventPage:
    items: list[Event]
    has_more: bool
    total: int | None = None
