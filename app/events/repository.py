"""Persistence of events: SQL only.

Commit order: a team's events must be read back in the order they were committed, so a
reader that remembers the last id it saw never skips one that commits later with a smaller
id. SQLite has one writer at a time, so ids follow commits. On PostgreSQL ids come from a
sequence at insert time; the writer therefore takes a transaction-scoped advisory lock per
(team, mode) in the statement that inserts the event (the last statement of the change),
before the row draws its id, held until its commit: the next writer of that team draws its id
only after this one committed.

Inserting an event also queues its webhook deliveries and (PostgreSQL) sends the NOTIFY that
wakes every process, delivered at commit in commit order: both by the trigger of
app/db/migrations/fan_out.py, in the same statement.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

import orjson
from sqlalchemy import Integer, Table, bindparam, delete, func, literal, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.ids import new_id
from app.db.tables import Event as EventRow
from app.events.types import EVENT_PREFIX, Event

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


_INSERTED = (
    "public_id",
    "team_id",
    "livemode",
    "type",
    "subject_id",
    "data",
    "previous_attributes",
    "created_at",
)
_INSERT = events.insert()
# PostgreSQL: the lock (a CTE with a volatile function is evaluated once, never inlined) is
# taken when the INSERT reads the CTE's row, before the projection that draws the id from the
# sequence; held to the end of the transaction, as `SELECT pg_advisory_xact_lock` was.
_LOCKED = select(
    func.pg_advisory_xact_lock(
        literal(_LOCK_NAMESPACE, Integer), bindparam("lock_key", type_=Integer)
    ).label("locked")
).cte("locked")
_INSERT_LOCKED = events.insert().from_select(
    list(_INSERTED),
    select(*(bindparam(name, type_=e[name].type) for name in _INSERTED)).select_from(_LOCKED),
)


class EventRepository:
    def __init__(self, dialect: str) -> None:
        self.dialect = dialect

    async def insert(self, session: AsyncSession, values: dict[str, Any]) -> None:
        """Insert an event (the last write of its transaction), queueing its deliveries.

        One statement built once (the values are parameters, so SQLAlchemy compiles it once
        and computes no cache key of values); on PostgreSQL the advisory lock is taken by
        the same statement, before the row draws its id."""
        if self.dialect == "postgresql":
            lock_key = values["team_id"] * 2 + int(values["livemode"])
            await session.execute(_INSERT_LOCKED, {**values, "lock_key": lock_key})
        else:
            await session.execute(_INSERT, values)

    async def insert_many(self, session: AsyncSession, rows: list[dict[str, Any]]) -> None:
        """Insert events of one team and mode (rows with the same keys, no ids yet) in one
        executemany, queueing their deliveries, under the same lock as `insert`; their ids
        are drawn once the lock is held (time-ordered ids in commit order, as `insert`)."""
        if not rows:
            return
        if self.dialect == "postgresql":
            await session.execute(
                select(
                    func.pg_advisory_xact_lock(
                        literal(_LOCK_NAMESPACE, Integer), bindparam("lock_key", type_=Integer)
                    )
                ),
                {"lock_key": rows[0]["team_id"] * 2 + int(rows[0]["livemode"])},
            )
        await session.execute(
            events.insert(), [{**row, "public_id": new_id(EVENT_PREFIX)} for row in rows]
        )

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
