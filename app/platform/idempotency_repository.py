"""Persistence of idempotency keys: SQL only, no rules (those are in idempotency.py).

A key is unique per (team, mode, key); `insert_claim` takes it with ON CONFLICT DO NOTHING, so
concurrent claims of one key leave exactly one winner on both engines and the losers' transaction
usable. Every statement runs in the caller's session (its transaction).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import cast

from sqlalchemy import Table, delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import dialect as sql_dialect
from app.db.tables import IdempotencyRecord

records = cast(Table, IdempotencyRecord.__table__)
columns = records.c


@dataclass(frozen=True, slots=True)
class StoredKey:
    """A claimed key: its response is None while the first request runs."""

    id: int
    fingerprint: str
    status: int | None
    response: str | None
    created_at: datetime


class IdempotencyRepository:
    def __init__(self, dialect: str) -> None:
        self.dialect = dialect

    async def insert_claim(
        self,
        session: AsyncSession,
        *,
        team_id: int,
        livemode: bool,
        key: str,
        fingerprint: str,
        now: datetime,
    ) -> int | None:
        """The id of a new claim on `key`; None when the key is already held."""
        stmt = (
            sql_dialect.insert(self.dialect, records)
            .values(
                team_id=team_id, livemode=livemode, key=key, fingerprint=fingerprint, created_at=now
            )
            .on_conflict_do_nothing(index_elements=["team_id", "livemode", "key"])
            .returning(columns.id)
        )
        claimed = (await session.execute(stmt)).scalar_one_or_none()
        return None if claimed is None else int(claimed)

    async def find(
        self, session: AsyncSession, *, team_id: int, livemode: bool, key: str
    ) -> StoredKey | None:
        stmt = select(
            columns.id, columns.fingerprint, columns.status, columns.response, columns.created_at
        ).where(columns.team_id == team_id, columns.livemode == livemode, columns.key == key)
        row = (await session.execute(stmt)).first()
        if row is None:
            return None
        return StoredKey(row.id, row.fingerprint, row.status, row.response, row.created_at)

    async def store_response(
        self, session: AsyncSession, record_id: int, *, status: int, response: str, now: datetime
    ) -> None:
        await session.execute(
            update(records)
            .where(columns.id == record_id)
            .values(status=status, response=response, completed_at=now)
        )

    async def remove(self, session: AsyncSession, record_id: int) -> None:
        await session.execute(delete(records).where(columns.id == record_id))

    async def purge_created_before(self, session: AsyncSession, cutoff: datetime) -> None:
        await session.execute(delete(records).where(columns.created_at < cutoff))
