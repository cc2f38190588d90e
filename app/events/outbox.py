"""The transactional outbox: the service writes a client's change and its event in one
transaction, through `Outbox.record` (no change without its event, no event without its
change: they commit or roll back together, a crash included).

The event's `data.object` is the client exactly as REST renders it (the one renderer is
injected, so fields added to clients appear in events by themselves). Inserting the event
queues one delivery per subscribed webhook endpoint (a trigger: app/db/migrations/fan_out.py);
the session is marked so that, once it has committed, this process's listeners are woken
(app/events/signals.py).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.principal import Principal
from app.clients.types import Client
from app.core.ids import new_id
from app.events.repository import EventRepository
from app.events.types import CLIENT_CREATED, CLIENT_DELETED, CLIENT_UPDATED, EVENT_PREFIX

# Session.info key: this transaction wrote events (read by the after-commit hook).
WROTE_EVENTS = "wrote_events"

ClientRenderer = Callable[[Client], dict[str, Any]]


def changed_values(before: Any, after: Any) -> Any:
    """The old values of what differs between two renderings: objects recursively (only
    their changed keys), anything else whole."""
    if isinstance(before, dict) and isinstance(after, dict):
        out = {}
        for key in before.keys() | after.keys():
            old, new = before.get(key), after.get(key)
            if old != new:
                out[key] = changed_values(old, new)
        return out
    return before


class Outbox:
    def __init__(self, dialect: str, render_client: ClientRenderer) -> None:
        self.events = EventRepository(dialect)
        self.render_client = render_client

    def created_event(self, principal: Principal, client: Client) -> dict[str, Any]:
        """The row of a client.created event, ready for `write`: rendered and serialized
        before the transaction, so the write lock is not held for that."""
        obj = self.render_client(client)
        return self.event_row(principal, CLIENT_CREATED, client.id, obj, None, client.updated_at)

    async def client_created(
        self, session: AsyncSession, principal: Principal, client: Client
    ) -> str:
        return await self.write(session, self.created_event(principal, client))

    async def clients_created(
        self, session: AsyncSession, principal: Principal, created: list[Client]
    ) -> None:
        """`client_created` for each of many clients (a bulk import), in one statement."""
        rows = [self.created_event(principal, c) for c in created]
        await self.events.insert_many(session, rows)  # it draws their ids, under its lock
        session.info[WROTE_EVENTS] = True

    async def client_updated(
        self, session: AsyncSession, principal: Principal, before: Client, after: Client
    ) -> str:
        obj = self.render_client(after)
        previous = changed_values(self.render_client(before), obj)
        return await self.record(
            session, principal, CLIENT_UPDATED, after.id, obj, previous, after.updated_at
        )

    async def client_deleted(
        self, session: AsyncSession, principal: Principal, client_id: str, now: datetime
    ) -> str:
        obj = {"id": client_id, "deleted": True}
        return await self.record(session, principal, CLIENT_DELETED, client_id, obj, None, now)

    async def record(
        self,
        session: AsyncSession,
        principal: Principal,
        type_: str,
        subject_id: str,
        obj: dict[str, Any],
        previous: dict[str, Any] | None,
        now: datetime,
    ) -> str:
        """Write one event (its deliveries are queued with it), in the caller's transaction;
        its id.
        Call it as the last write of the transaction (see app/events/repository.py)."""
        row = self.event_row(principal, type_, subject_id, obj, previous, now)
        return await self.write(session, row)

    def event_row(
        self,
        principal: Principal,
        type_: str,
        subject_id: str,
        obj: dict[str, Any],
        previous: dict[str, Any] | None,
        now: datetime,
    ) -> dict[str, Any]:
        """An event's row, its JSON serialized once (its id is given by `write`)."""
        return {
            "team_id": principal.team_id,
            "livemode": principal.livemode,
            "type": type_,
            "subject_id": subject_id,
            "data": orjson.dumps({"object": obj}).decode(),
            "previous_attributes": None if previous is None else orjson.dumps(previous).decode(),
            "created_at": now,
        }

    async def write(self, session: AsyncSession, row: dict[str, Any]) -> str:
        """Insert an event row (one statement; its deliveries are queued with it, by the
        database) in the caller's transaction, as its last write (app/events/repository.py);
        the event's id. The id is drawn here, as late as can be: ids are time-ordered, and
        one drawn before the transaction waited for its locks could sort before the id of
        an event committed ahead of it."""
        public_id = new_id(EVENT_PREFIX)
        await self.events.insert(session, {**row, "public_id": public_id})
        session.info[WROTE_EVENTS] = True
        return public_id
