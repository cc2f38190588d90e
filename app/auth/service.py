"""API keys: `sk_live_…` / `sk_test_…` followed by 192 random bits (32 base62 characters).

Only a SHA-256 of the key is stored: keys carry far more entropy than a password, so a fast
hash is the right tool (as GitHub and Stripe do), and the lookup is an indexed equality.
Revocation is read from the database on every request, so it takes effect at once on every
worker.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import string
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from app.auth.principal import Principal
from app.core import clock
from app.core.errors import Unauthorized
from app.db.database import Database
from app.db.tables import ApiKey, Team

_ALPHABET = string.ascii_letters + string.digits
_RANDOM_CHARS = 32  # 32 * log2(62) ≈ 190 bits
KEY_RE = re.compile(r"^sk_(live|test)_[A-Za-z0-9]{32}$")
LAST_USED_EVERY = timedelta(minutes=1)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def generate_key(livemode: bool) -> str:
    body = "".join(secrets.choice(_ALPHABET) for _ in range(_RANDOM_CHARS))
    return f"sk_{'live' if livemode else 'test'}_{body}"


@dataclass(frozen=True, slots=True)
class ApiKeyInfo:
    id: int
    team: str
    mode: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None
    # Set by `revoke` when the key had been revoked before (nothing changed).
    already_revoked: bool = False


class ApiKeyService:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def find_team_id(self, name: str) -> int | None:
        """The id of an existing team, or None."""
        async with self.db.read() as session:
            found = await session.execute(select(Team.id).where(Team.name == name))
            return found.scalar_one_or_none()

    async def team_id(self, name: str) -> int:
        """The id of a team, created if new."""
        insert = pg_insert if self.db.dialect == "postgresql" else sqlite_insert
        async with self.db.write() as session:
            await session.execute(
                insert(Team)
                .values(name=name, created_at=clock.now())
                .on_conflict_do_nothing(index_elements=["name"])
            )
            return (await session.execute(select(Team.id).where(Team.name == name))).scalar_one()

    async def create(self, *, team: str, livemode: bool) -> tuple[ApiKeyInfo, str]:
        name = team.strip()
        if not name or len(name) > 200:
            raise ValueError("team name must be 1..200 characters")
        team_id = await self.team_id(name)
        key = generate_key(livemode)
        now = clock.now()
        async with self.db.write() as session:
            row = ApiKey(
                team_id=team_id,
                livemode=livemode,
                prefix=key[:12],
                key_hash=hash_key(key),
                created_at=now,
            )
            session.add(row)
            await session.flush()
            info = ApiKeyInfo(row.id, name, _mode(livemode), row.prefix, now, None, None)
        return info, key

    async def list(self, *, team: str | None = None) -> list[ApiKeyInfo]:
        stmt = select(ApiKey, Team.name).join(Team, Team.id == ApiKey.team_id).order_by(ApiKey.id)
        if team is not None:
            stmt = stmt.where(Team.name == team)
        async with self.db.read() as session:
            rows = (await session.execute(stmt)).all()
        return [
            ApiKeyInfo(
                k.id, name, _mode(k.livemode), k.prefix, k.created_at, k.last_used_at, k.revoked_at
            )
            for k, name in rows
        ]

    async def revoke(self, key_or_id: str) -> ApiKeyInfo | None:
        """Revoke by full key or by id; None when no such key exists."""
        if KEY_RE.match(key_or_id):
            cond = ApiKey.key_hash == hash_key(key_or_id)
        elif key_or_id.isdigit() and len(key_or_id) < 19:
            cond = ApiKey.id == int(key_or_id)
        else:
            return None
        async with self.db.write() as session:
            key = (await session.execute(select(ApiKey).where(cond))).scalar_one_or_none()
            if key is None:
                return None
            already_revoked = key.revoked_at is not None
            if not already_revoked:
                key.revoked_at = clock.now()
            team = (
                await session.execute(select(Team.name).where(Team.id == key.team_id))
            ).scalar_one()
            return ApiKeyInfo(
                key.id,
                team,
                _mode(key.livemode),
                key.prefix,
                key.created_at,
                key.last_used_at,
                key.revoked_at,
                already_revoked,
            )

    async def authenticate(self, authorization: str | None) -> Principal:
        """The principal of an `Authorization: Bearer <key>` header, or Unauthorized."""
        if not authorization:
            raise Unauthorized("Missing API key: send Authorization: Bearer <key>")
        scheme, _, token = authorization.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not KEY_RE.match(token):
            raise Unauthorized(
                "Malformed API key: send Authorization: Bearer sk_live_… or sk_test_…"
            )
        digest = hash_key(token)
        async with self.db.read() as session:
            row = (
                await session.execute(
                    select(
                        ApiKey.id,
                        ApiKey.team_id,
                        ApiKey.livemode,
                        ApiKey.key_hash,
                        ApiKey.revoked_at,
                        ApiKey.last_used_at,
                    ).where(ApiKey.key_hash == digest)
                )
            ).first()
        # The index found the row by hash; compare in constant time all the same.
        if row is None or not hmac.compare_digest(row.key_hash, digest):
            raise Unauthorized("Unknown or revoked API key")
        if row.revoked_at is not None:
            raise Unauthorized("Unknown or revoked API key")
        now = clock.now()
        if row.last_used_at is None or now - row.last_used_at >= LAST_USED_EVERY:
            await self._touch(row.id, now)
        return Principal(team_id=row.team_id, livemode=row.livemode, key_id=row.id)

    async def _touch(self, key_id: int, now: datetime) -> None:
        # Conditional, so many workers seeing a stale value write it once a minute at most.
        async with self.db.write() as session:
            await session.execute(
                update(ApiKey)
                .where(
                    ApiKey.id == key_id,
                    or_(
                        ApiKey.last_used_at.is_(None), ApiKey.last_used_at <= now - LAST_USED_EVERY
                    ),
                )
                .values(last_used_at=now)
            )


def _mode(livemode: bool) -> str:
    return "live" if livemode else "test"
