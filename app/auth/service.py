"""API keys: `sk_live_…` / `sk_test_…` followed by 192 random bits (32 base62 characters).

Only a SHA-256 of the key is stored: keys carry far more entropy than a password, so a fast
hash is the right tool (as GitHub and Stripe do), and the lookup is an indexed equality.
Revocation is read from the database on every request, so it takes effect at once on every
worker; open GraphQL subscriptions of a revoked key end too (app/events/hub.py: at once on
PostgreSQL, which notifies every process, within EVENTS_POLL_INTERVAL on SQLite).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import string
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from app.auth.principal import Principal
from app.auth.repository import ApiKeyRepository, StoredApiKey
from app.core import clock
from app.core.errors import Unauthorized
from app.db.database import Database

_ALPHABET = string.ascii_letters + string.digits
_RANDOM_CHARS = 32  # 32 * log2(62) ≈ 190 bits
KEY_RE = re.compile(r"^sk_(live|test)_[A-Za-z0-9]{32}$")
LAST_USED_EVERY = timedelta(minutes=1)
# Session.info key: this transaction revoked a key (read by the after-commit hook, which wakes
# this process's subscription hub).
REVOKED_KEYS = "revoked_keys"


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def generate_key(livemode: bool) -> str:
    body = "".join(secrets.choice(_ALPHABET) for _ in range(_RANDOM_CHARS))
    return f"sk_{'live' if livemode else 'test'}_{body}"


# Built once: every request runs it, and building a statement (and its cache key) costs more
# CPU than executing this one.


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
        self.repository = ApiKeyRepository(db.dialect)

    async def find_team_id(self, name: str) -> int | None:
        """The id of an existing team, or None."""
        async with self.db.read() as session:
            return await self.repository.find_team(session, name)

    async def team_id(self, name: str) -> int:
        """The id of a team, created if new."""
        async with self.db.write() as session:
            return await self.repository.ensure_team(session, name, clock.now())

    async def create(self, *, team: str, livemode: bool) -> tuple[ApiKeyInfo, str]:
        name = team.strip()
        if not name or len(name) > 200:
            raise ValueError("team name must be 1..200 characters")
        team_id = await self.team_id(name)
        key = generate_key(livemode)
        now = clock.now()
        async with self.db.write() as session:
            key_id = await self.repository.insert_key(
                session,
                team_id=team_id,
                livemode=livemode,
                prefix=key[:12],
                key_hash=hash_key(key),
                now=now,
            )
        return ApiKeyInfo(key_id, name, _mode(livemode), key[:12], now, None, None), key

    async def list(self, *, team: str | None = None) -> list[ApiKeyInfo]:
        async with self.db.read() as session:
            stored = await self.repository.list(session, team=team)
        return [_info(key) for key in stored]

    async def revoke(self, key_or_id: str) -> ApiKeyInfo | None:
        """Revoke by full key or by id; None when no such key exists."""
        async with self.db.write() as session:
            if KEY_RE.match(key_or_id):
                found = await self.repository.find_by_hash(session, hash_key(key_or_id))
            elif key_or_id.isdigit() and len(key_or_id) < 19:
                found = await self.repository.find_by_id(session, int(key_or_id))
            else:
                return None
            if found is None:
                return None
            already_revoked = found.revoked_at is not None
            if not already_revoked:
                now = clock.now()
                await self.repository.revoke(session, found.id, now)
                session.info[REVOKED_KEYS] = True
                found = replace(found, revoked_at=now)
            return replace(_info(found), already_revoked=already_revoked)

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
        # One statement: no transaction around it (see Database.statement).
        async with self.db.statement() as conn:
            credential = await self.repository.credential(conn, digest)
        # The index found the row by hash; compare in constant time all the same.
        if credential is None or not hmac.compare_digest(credential.key_hash, digest):
            raise Unauthorized("Unknown or revoked API key")
        if credential.revoked_at is not None:
            raise Unauthorized("Unknown or revoked API key")
        now = clock.now()
        last_used = credential.last_used_at
        if last_used is None or now - last_used >= LAST_USED_EVERY:
            async with self.db.write() as session:
                await self.repository.touch(
                    session, credential.id, now, not_since=now - LAST_USED_EVERY
                )
        return Principal(
            team_id=credential.team_id, livemode=credential.livemode, key_id=credential.id
        )


def _info(key: StoredApiKey) -> ApiKeyInfo:
    return ApiKeyInfo(
        key.id,
        key.team,
        _mode(key.livemode),
        key.prefix,
        key.created_at,
        key.last_used_at,
        key.revoked_at,
    )


def _mode(livemode: bool) -> str:
    return "live" if livemode else "test"
