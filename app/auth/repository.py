"""Persistence of teams and API keys: SQL only, no rules (those are in service.py).

Keys are found by the SHA-256 of the key (an indexed equality); the key itself is never stored.
Every statement runs in the caller's session (its transaction).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import ColumnElement, Row, bindparam, or_, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app.db import dialect as sql_dialect
from app.db.tables import ApiKey, Team

# PostgreSQL: a revocation notifies every process (delivered at commit), so each one ends the
# key's open subscriptions at once (app/events/hub.py); SQLite processes re-check instead.
REVOKED_CHANNEL = "api_key_revoked"

_CREDENTIAL_BY_HASH = select(
    ApiKey.id,
    ApiKey.team_id,
    ApiKey.livemode,
    ApiKey.key_hash,
    ApiKey.revoked_at,
    ApiKey.last_used_at,
).where(ApiKey.key_hash == bindparam("digest"))


@dataclass(frozen=True, slots=True)
class StoredApiKey:
    """An API key as stored, with its team's name."""

    id: int
    team_id: int
    team: str
    livemode: bool
    prefix: str
    key_hash: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


@dataclass(frozen=True, slots=True)
class Credential:
    id: int
    team_id: int
    livemode: bool
    key_hash: str
    revoked_at: datetime | None
    last_used_at: datetime | None


_KEY_COLUMNS = (
    ApiKey.id,
    ApiKey.team_id,
    Team.name,
    ApiKey.livemode,
    ApiKey.prefix,
    ApiKey.key_hash,
    ApiKey.created_at,
    ApiKey.last_used_at,
    ApiKey.revoked_at,
)


if TYPE_CHECKING:
    _KeyRow = Row[int, int, str, bool, str, str, datetime, datetime | None, datetime | None]


class ApiKeyRepository:
    def __init__(self, dialect: str) -> None:
        self.dialect = dialect

    async def ensure_team(self, session: AsyncSession, name: str, now: datetime) -> int:
        """The id of the team called `name`, created if new (concurrent creators agree)."""
        await session.execute(
            sql_dialect.insert(self.dialect, Team.__table__)  # type: ignore[arg-type]
            .values(name=name, created_at=now)
            .on_conflict_do_nothing(index_elements=["name"])
        )
        return (await session.execute(select(Team.id).where(Team.name == name))).scalar_one()

    async def find_team(self, session: AsyncSession, name: str) -> int | None:
        """The id of the team called `name`, or None."""
        found = await session.execute(select(Team.id).where(Team.name == name))
        return found.scalar_one_or_none()

    async def insert_key(
        self,
        session: AsyncSession,
        *,
        team_id: int,
        livemode: bool,
        prefix: str,
        key_hash: str,
        now: datetime,
    ) -> int:
        row = ApiKey(
            team_id=team_id, livemode=livemode, prefix=prefix, key_hash=key_hash, created_at=now
        )
        session.add(row)
        await session.flush()
        return int(row.id)

    async def list(self, session: AsyncSession, *, team: str | None = None) -> list[StoredApiKey]:
        stmt = select(*_KEY_COLUMNS).join(Team, Team.id == ApiKey.team_id).order_by(ApiKey.id)
        if team is not None:
            stmt = stmt.where(Team.name == team)
        rows = (await session.execute(stmt)).all()
        return [_stored(row) for row in rows]

    async def find_by_hash(self, session: AsyncSession, key_hash: str) -> StoredApiKey | None:
        return await self._find(session, ApiKey.key_hash == key_hash)

    async def credential(
        self, conn: AsyncSession | AsyncConnection, key_hash: str
    ) -> Credential | None:
        """What authentication reads on every request (one indexed row, no join); a statement
        built once, since building it costs more CPU than running it."""
        row = (await conn.execute(_CREDENTIAL_BY_HASH, {"digest": key_hash})).first()
        return None if row is None else Credential(*row)

    async def find_by_id(self, session: AsyncSession, key_id: int) -> StoredApiKey | None:
        return await self._find(session, ApiKey.id == key_id)

    async def revoke(self, session: AsyncSession, key_id: int, now: datetime) -> None:
        """Mark a key revoked, once: a revoked key keeps its first revocation time. On
        PostgreSQL every process hears of it when the transaction commits (REVOKED_CHANNEL,
        payload: the key id)."""
        await session.execute(
            update(ApiKey)
            .where(ApiKey.id == key_id, ApiKey.revoked_at.is_(None))
            .values(revoked_at=now)
        )
        if self.dialect == "postgresql":
            await session.execute(
                text("SELECT pg_notify(:channel, :key_id)"),
                {"channel": REVOKED_CHANNEL, "key_id": str(key_id)},
            )

    async def active_among(
        self, conn: AsyncSession | AsyncConnection, key_ids: Collection[int]
    ) -> set[int]:
        """Those of `key_ids` that exist and are not revoked (one indexed statement)."""
        stmt = select(ApiKey.id).where(ApiKey.id.in_(list(key_ids)), ApiKey.revoked_at.is_(None))
        return {int(key_id) for key_id in (await conn.execute(stmt)).scalars()}

    async def touch(
        self, session: AsyncSession, key_id: int, now: datetime, *, not_since: datetime
    ) -> None:
        """Set last_used_at, unless another worker set it after `not_since` (conditional, so
        many workers seeing a stale value write it once)."""
        await session.execute(
            update(ApiKey)
            .where(
                ApiKey.id == key_id,
                or_(ApiKey.last_used_at.is_(None), ApiKey.last_used_at <= not_since),
            )
            .values(last_used_at=now)
        )

    async def _find(
        self, session: AsyncSession, condition: ColumnElement[bool]
    ) -> StoredApiKey | None:
        stmt = select(*_KEY_COLUMNS).join(Team, Team.id == ApiKey.team_id).where(condition)
        row = (await session.execute(stmt)).first()
        return None if row is None else _stored(row)


def _stored(row: _KeyRow) -> StoredApiKey:
    return StoredApiKey(
        id=row.id,
        team_id=row.team_id,
        team=row.name,
        livemode=row.livemode,
        prefix=row.prefix,
        key_hash=row.key_hash,
        created_at=row.created_at,
        last_used_at=row.last_used_at,
        revoked_at=row.revoked_at,
    )
