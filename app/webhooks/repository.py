"""Persistence of webhook endpoints, pending deliveries and the attempts log: SQL only.

Claiming: a due delivery (pending, next attempt reached, no live lease) is claimed by setting
a lease (owner and expiry). On PostgreSQL the candidate rows are selected FOR UPDATE SKIP
LOCKED, so workers and hosts claim disjoint rows without waiting on each other; on SQLite the
claim runs in a write transaction (BEGIN IMMEDIATE), which only one process holds at a time.
A lease that expires (its worker died) makes the row claimable again; a worker finishes only
the rows it still leases, so an attempt is recorded once.

Order: a delivery is due only when no earlier delivery of the same endpoint and the same
client is still pending, so one client's events reach an endpoint in commit order while a
failing client (or endpoint) holds back nothing else.
"""

from __future__ import annotations

from datetime import datetime
from types import SimpleNamespace
from typing import Any, cast

import orjson
from sqlalchemy import Table, delete, exists, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from app.db.tables import Event as EventRow
from app.db.tables import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from app.events.repository import row_to_event
from app.webhooks.types import Attempt, DueDelivery, Webhook

endpoints = cast(Table, WebhookEndpoint.__table__)
deliveries = cast(Table, WebhookDelivery.__table__)
attempts = cast(Table, WebhookAttempt.__table__)
events = cast(Table, EventRow.__table__)
w = endpoints.c
d = deliveries.c

PENDING, SUCCEEDED, FAILED = "pending", "succeeded", "failed"


def row_to_webhook(row: Any) -> Webhook:
    return Webhook(
        id=row.public_id,
        url=row.url,
        events=list(orjson.loads(row.events)),
        description=row.description,
        livemode=row.livemode,
        created_at=row.created_at,
    )


_ENDPOINT_COLUMNS = (w.id, w.public_id, w.url, w.events, w.description, w.livemode, w.created_at)


class WebhookRepository:
    def __init__(self, dialect: str) -> None:
        self.dialect = dialect

    # -- endpoints --------------------------------------------------------------------------

    async def insert(self, session: AsyncSession, values: dict[str, Any]) -> None:
        await session.execute(endpoints.insert().values(**values))

    async def for_team(self, session: AsyncSession, team_id: int, livemode: bool) -> list[Webhook]:
        stmt = (
            select(*_ENDPOINT_COLUMNS)
            .where(w.team_id == team_id, w.livemode == livemode)
            .order_by(w.id.desc())
        )
        return [row_to_webhook(r) for r in (await session.execute(stmt)).all()]

    async def row_id(
        self, session: AsyncSession, team_id: int, livemode: bool, public_id: str
    ) -> int | None:
        stmt = select(w.id).where(
            w.team_id == team_id, w.livemode == livemode, w.public_id == public_id
        )
        value = (await session.execute(stmt)).scalar_one_or_none()
        return None if value is None else int(value)

    async def get(
        self, session: AsyncSession, team_id: int, livemode: bool, public_id: str
    ) -> Webhook | None:
        stmt = select(*_ENDPOINT_COLUMNS).where(
            w.team_id == team_id, w.livemode == livemode, w.public_id == public_id
        )
        row = (await session.execute(stmt)).first()
        return None if row is None else row_to_webhook(row)

    async def delete(self, session: AsyncSession, row_id: int) -> None:
        """The endpoint, its pending deliveries and its attempts log (ON DELETE CASCADE)."""
        await session.execute(delete(endpoints).where(w.id == row_id))

    async def count(self, session: AsyncSession, team_id: int, livemode: bool) -> int:
        stmt = select(w.id).where(w.team_id == team_id, w.livemode == livemode)
        return len((await session.execute(stmt)).all())

    # -- deliveries ------------------------------------------------------------------------

    async def release(self, session: AsyncSession, *, ids: list[int], owner: str) -> None:
        """Give back claimed deliveries that will not be attempted now."""
        await session.execute(
            update(deliveries)
            .where(d.id.in_(ids), d.lease_owner == owner)
            .values(lease_owner=None, lease_until=None)
        )

    async def claim(
        self,
        session: AsyncSession,
        *,
        owner: str,
        now: datetime,
        lease_until: datetime,
        limit: int,
        skip_endpoints: set[int],
    ) -> list[DueDelivery]:
        """Lease up to `limit` due deliveries to `owner` (see the module docstring)."""
        earlier = aliased(deliveries)
        blocked = exists().where(
            earlier.c.endpoint_id == d.endpoint_id,
            earlier.c.subject_id == d.subject_id,
            earlier.c.status == PENDING,
            earlier.c.id < d.id,
        )
        conds = [
            d.status == PENDING,
            d.next_attempt_at <= now,
            or_(d.lease_until.is_(None), d.lease_until < now),
            ~blocked,
        ]
        if skip_endpoints:
            conds.append(d.endpoint_id.not_in(skip_endpoints))
        stmt = select(d.id).where(*conds).order_by(d.id).limit(limit)
        if self.dialect == "postgresql":
            stmt = stmt.with_for_update(skip_locked=True, of=deliveries)
        ids = [int(i) for i in (await session.execute(stmt)).scalars().all()]
        if not ids:
            return []
        await session.execute(
            update(deliveries)
            .where(d.id.in_(ids))
            .values(lease_owner=owner, lease_until=lease_until)
        )
        rows = await session.execute(
            select(
                d.id,
                d.endpoint_id,
                d.attempts,
                w.url,
                w.secret,
                events.c.public_id,
                events.c.type,
                events.c.created_at,
                events.c.livemode,
                events.c.data,
                events.c.previous_attributes,
            )
            .join(endpoints, w.id == d.endpoint_id)
            .join(events, events.c.id == d.event_id)
            .where(d.id.in_(ids))
            .order_by(d.id)
        )
        return [_due(r) for r in rows.all()]

    async def finish(
        self,
        session: AsyncSession,
        *,
        delivery: DueDelivery,
        owner: str,
        outcome: Attempt,
        next_attempt_at: datetime | None,
        succeeded: bool,
    ) -> bool:
        """Record an attempt of a delivery this owner still leases; False when the lease was
        lost (the row was deleted with its endpoint, or claimed again after expiry)."""
        if succeeded:
            status = SUCCEEDED
        elif next_attempt_at is None:
            status = FAILED
        else:
            status = PENDING
        values: dict[str, Any] = {
            "status": status,
            "attempts": outcome.attempt,
            "lease_owner": None,
            "lease_until": None,
            "updated_at": outcome.created_at,
        }
        if next_attempt_at is not None:
            values["next_attempt_at"] = next_attempt_at
        result = await session.execute(
            update(deliveries).where(d.id == delivery.id, d.lease_owner == owner).values(**values)
        )
        if not getattr(result, "rowcount", 0):
            return False
        await session.execute(
            attempts.insert().values(
                endpoint_id=delivery.endpoint_id,
                event_public_id=outcome.event_id,
                attempt=outcome.attempt,
                status_code=outcome.status_code,
                error=outcome.error,
                duration_ms=outcome.duration_ms,
                created_at=outcome.created_at,
            )
        )
        return True

    async def recent_attempts(
        self, session: AsyncSession, endpoint_row_id: int, limit: int
    ) -> list[Attempt]:
        a = attempts.c
        stmt = (
            select(
                a.event_public_id, a.attempt, a.status_code, a.error, a.duration_ms, a.created_at
            )
            .where(a.endpoint_id == endpoint_row_id)
            .order_by(a.id.desc())
            .limit(limit)
        )
        return [
            Attempt(
                event_id=r.event_public_id,
                attempt=r.attempt,
                status_code=r.status_code,
                error=r.error,
                duration_ms=r.duration_ms,
                created_at=r.created_at,
            )
            for r in (await session.execute(stmt)).all()
        ]

    async def prune_attempts(self, session: AsyncSession, before: datetime, *, batch: int) -> int:
        a = attempts.c
        doomed = select(a.id).where(a.created_at < before).order_by(a.id).limit(batch)
        result = await session.execute(delete(attempts).where(a.id.in_(doomed)))
        return int(getattr(result, "rowcount", 0) or 0)


def _due(row: Any) -> DueDelivery:
    event = row_to_event(
        SimpleNamespace(
            id=0,
            public_id=row.public_id,
            type=row.type,
            created_at=row.created_at,
            livemode=row.livemode,
            data=row.data,
            previous_attributes=row.previous_attributes,
        )
    )
    return DueDelivery(
        id=row.id,
        endpoint_id=row.endpoint_id,
        attempts=row.attempts,
        url=row.url,
        secret=row.secret,
        event_id=row.public_id,
        event_body=orjson.dumps(event.to_json()).decode(),
    )
