"""Persistence of events: SQL only.

Commit order: a team's events must be read back in the order they were committed, so a
reader that remembers the last id it saw never skips one that commits later with a smaller
id. SQLite has one writer at a time, so ids follow commits. On PostgreSQL ids come from a
sequence at insert time; the writer therefore takes a transaction-scoped advisory lock per
(team, mode) just before inserting the event (the last statement of the change), held until
its commit: the next writer of that team draws its id only after this one committed.

Inserting an event also queues its webhook deliveries and (PostgreSQL) sends the NOTIFY that
wakes every process, delivered at commit in commit order: both by the trigger of
app/db/migrations/fan_out.py, in the same statement.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

import orjson
from sqlalchemy import Table, delete, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.tables import Event as EventRow
from app.events.types import Event

events = cast(Table, EventRow.__table__)
e = events.c

NOTIFY_CHANNEL = "client_events"  # as in app/db/migrations/fan_out.py
# First key of the two-key advisory lock: "EVNT", so it cannot collide with other users.
_LOCK_NAMESPACE = 0x45564E54


def row_to_event(row: Any) -> Event:
    return Event(
        seq=row.id,
        id=row.public_id,
        type=row.type,
        created_at=row.created_at,
        livemode=row.livemode,
        data=orjson.loads(row.data),
        previous_attributes=None
        if row.previous_attributes is None
        else orjson.loads(row.previous_attributes),
    )


_COLUMNS = (
    e.id,
    e.public_id,
    e.type,
    e.created_at,
    e.livemode,
    e.data,
    e.previous_attributes,
)


class EventRepository:
    def __init__(self, dialect: str) -> None:
        self.dialect = dialect

    async def insert(self, session: AsyncSession, values: dict[str, Any]) -> int:
        """Insert an event (the last write of its transaction), queueing its deliveries; its
        row id."""
        if self.dialect == "postgresql":
            await session.execute(
                text("SELECT pg_advisory_xact_lock(:ns, :key)"),
                {"ns": _LOCK_NAMESPACE, "key": values["team_id"] * 2 + int(values["livemode"])},
            )
        seq = (await session.execute(events.insert().values(**values).returning(e.id))).scalar_one()
        return int(seq)

    async def insert_many(self, session: AsyncSession, rows: list[dict[str, Any]]) -> None:
        """Insert events of one team and mode (rows with the same keys) in one executemany,
        queueing their deliveries, under the same lock as `insert`."""
        if not rows:
            return
        if self.dialect == "postgresql":
            await session.execute(
                text("SELECT pg_advisory_xact_lock(:ns, :key)"),
                {"ns": _LOCK_NAMESPACE, "key": rows[0]["team_id"] * 2 + int(rows[0]["livemode"])},
            )
        await session.execute(events.insert(), rows)

    async def get(
        self, session: AsyncSession, team_id: int, livemode: bool, public_id: str
    ) -> Event | None:
        stmt = select(*_COLUMNS).where(
            e.team_id == team_id, e.livemode == livemode, e.public_id == public_id
        )
        row = (await session.execute(stmt)).first()
        return None if row is None else row_to_event(row)

    async def newest_first(
        self,
        session: AsyncSession,
        team_id: int,
        livemode: bool,
        *,
        type_: str | None,
        before_seq: int | None,
        limit: int,
    ) -> list[Event]:
        conds = [e.team_id == team_id, e.livemode == livemode]
        if type_ is not None:
            conds.append(e.type == type_)
        if before_seq is not None:
            conds.append(e.id < before_seq)
        stmt = select(*_COLUMNS).where(*conds).order_by(e.id.desc()).limit(limit)
        return [row_to_event(r) for r in (await session.execute(stmt)).all()]

    async def count(
        self, session: AsyncSession, team_id: int, livemode: bool, *, type_: str | None
    ) -> int:
        conds = [e.team_id == team_id, e.livemode == livemode]
        if type_ is not None:
            conds.append(e.type == type_)
        stmt = select(func.count()).select_from(events).where(*conds)
        return int((await session.execute(stmt)).scalar_one())

    async def after(
        self,
        session: AsyncSession,
        team_id: int,
        livemode: bool,
        after_seq: int,
        *,
        limit: int,
        upto_seq: int | None = None,
    ) -> list[Event]:
        """Events committed after `after_seq`, oldest first (at most up to `upto_seq`)."""
        conds = [e.team_id == team_id, e.livemode == livemode, e.id > after_seq]
        if upto_seq is not None:
            conds.append(e.id <= upto_seq)
        stmt = select(*_COLUMNS).where(*conds).order_by(e.id).limit(limit)
        return [row_to_event(r) for r in (await session.execute(stmt)).all()]

    async def newest_seq(self, session: AsyncSession, team_id: int, livemode: bool) -> int:
        stmt = select(func.max(e.id)).where(e.team_id == team_id, e.livemode == livemode)
        return int((await session.execute(stmt)).scalar_one_or_none() or 0)

    async def seq_of(
        self, session: AsyncSession, team_id: int, livemode: bool, public_id: str
    ) -> int | None:
        stmt = select(e.id).where(
            e.team_id == team_id, e.livemode == livemode, e.public_id == public_id
        )
        value = (await session.execute(stmt)).scalar_one_or_none()
        return None if value is None else int(value)

    async def prune(self, session: AsyncSession, before: datetime, *, batch: int) -> int:
        """Delete up to `batch` events created before `before` (their deliveries go too)."""
        doomed = select(e.id).where(e.created_at < before).order_by(e.id).limit(batch)
        result = await session.execute(delete(events).where(e.id.in_(doomed)))
        return int(getattr(result, "rowcount", 0) or 0)
