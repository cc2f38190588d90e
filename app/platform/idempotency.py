"""Idempotency keys, with Stripe's semantics, for both transports.

Per team and mode, a key is claimed atomically (a unique constraint and INSERT … ON CONFLICT
DO NOTHING, safe under concurrent retries on both engines); the first response is stored and
replayed byte for byte (status included) to every retry within 24 hours. A retry with a
different request is refused (IDEMPOTENCY_KEY_REUSED), one that arrives while the first is
still running too (IDEMPOTENCY_KEY_IN_USE). Requests refused by validation are not stored,
so a corrected retry with the same key goes through; nor are unexpected failures.
"""

from __future__ import annotations

import hashlib
import random
import unicodedata
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import orjson
from sqlalchemy import Table, delete, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.principal import Principal
from app.core import clock
from app.core.errors import (
    IdempotencyKeyInUse,
    IdempotencyKeyReused,
    ValidationFailed,
)
from app.db.database import Database
from app.db.tables import IdempotencyRecord

KEY_MAX = 255
RETENTION = timedelta(hours=24)
# A claim older than this with no response belongs to a request that died (a crash): it may
# be taken over.
ABANDONED_AFTER = timedelta(minutes=5)
HEADER = "Idempotency-Key"

records: Table = IdempotencyRecord.__table__  # type: ignore[assignment]
r = records.c


class DoNotStore(Exception):
    """Raised by the work of an idempotent request whose answer must not be kept (the
    exception it wraps is re-raised to the caller)."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(str(error))
        self.error = error


@dataclass(frozen=True, slots=True)
class Outcome:
    status: int
    body: str
    headers: dict[str, str]
    replayed: bool = False


def fingerprint(operation: str, payload: Any) -> str:
    """What was asked, canonically: key order and whitespace do not matter.

    Any JSON value hashes, whatever a body holds: integers past 64 bits (and past Python's
    4,300-digit str() limit: they are hashed in hex), lone surrogates, NaN. A JSON encoder
    refuses some of those, and the fingerprint is taken before the body is validated.
    """
    digest = hashlib.sha256()
    _feed(digest, [operation, payload])
    return digest.hexdigest()


def _feed(digest: Any, value: Any) -> None:
    """A type-tagged, length-prefixed encoding of `value` into `digest`."""
    if value is None or isinstance(value, bool):
        digest.update(b"n" if value is None else b"t" if value else b"f")
    elif isinstance(value, int):
        digest.update(b"i" + hex(value).encode() + b";")
    elif isinstance(value, float):
        digest.update(b"d" + value.hex().encode() + b";")
    elif isinstance(value, str):
        raw = value.encode("utf-8", "surrogatepass")
        digest.update(b"s%d:" % len(raw) + raw)
    elif isinstance(value, dict):
        digest.update(b"{%d:" % len(value))
        for key in sorted(value, key=str):
            _feed(digest, str(key))
            _feed(digest, value[key])
    elif isinstance(value, list | tuple):
        digest.update(b"[%d:" % len(value))
        for item in value:
            _feed(digest, item)
    else:
        _feed(digest, repr(value))


def check_key(key: str, field: str = HEADER) -> str:
    if not key or len(key) > KEY_MAX:
        raise ValidationFailed({field: f"Must be 1 to {KEY_MAX} characters"})
    if any(unicodedata.category(ch) in ("Cc", "Cs") for ch in key):
        raise ValidationFailed({field: "Must not contain control characters"})
    return key


class Recorder:
    """Stores the outcome of one claimed key, in the caller's transaction."""

    def __init__(self, record_id: int) -> None:
        self.record_id = record_id
        self.recorded = False

    async def record(self, session: AsyncSession, outcome: Outcome) -> None:
        response = orjson.dumps({"body": outcome.body, "headers": outcome.headers}).decode()
        await session.execute(
            update(records)
            .where(r.id == self.record_id)
            .values(status=outcome.status, response=response, completed_at=clock.now())
        )
        self.recorded = True


class IdempotencyService:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._insert = pg_insert if db.dialect == "postgresql" else sqlite_insert

    async def run(
        self,
        *,
        principal: Principal,
        key: str,
        fingerprint: str,
        work: Callable[[Recorder], Awaitable[Outcome]],
        key_field: str = HEADER,
    ) -> Outcome:
        """The stored outcome for `key`, or `work`'s, stored for the retries to come.

        `work` may store its outcome itself with `Recorder.record(session, outcome)` inside
        the transaction that makes its change, so a crash can never leave a change made and
        its outcome unrecorded (which a retry would then make a second time). A bad key is
        refused as `key_field` (the header, or the GraphQL argument)."""
        claim = await self._claim(principal, check_key(key, key_field), fingerprint)
        if isinstance(claim, Outcome):
            return claim
        recorder = Recorder(claim)
        try:
            outcome = await work(recorder)
        except DoNotStore as exc:
            await self._release(claim)
            raise exc.error from None
        except BaseException:
            if not recorder.recorded:
                await self._release(claim)
            raise
        if not recorder.recorded:
            async with self.db.write() as session:
                await recorder.record(session, outcome)
        return outcome

    async def _claim(self, who: Principal, key: str, fp: str) -> int | Outcome:
        for _attempt in range(3):
            now = clock.now()
            async with self.db.write() as session:
                claimed = (
                    await session.execute(
                        self._insert(records)
                        .values(
                            team_id=who.team_id,
                            livemode=who.livemode,
                            key=key,
                            fingerprint=fp,
                            created_at=now,
                        )
                        .on_conflict_do_nothing(index_elements=["team_id", "livemode", "key"])
                        .returning(r.id)
                    )
                ).scalar_one_or_none()
                if claimed is not None:
                    if random.random() < 0.01:
                        await session.execute(delete(records).where(r.created_at < now - RETENTION))
                    return int(claimed)
                row = (
                    await session.execute(
                        select(r.id, r.fingerprint, r.status, r.response, r.created_at).where(
                            r.team_id == who.team_id, r.livemode == who.livemode, r.key == key
                        )
                    )
                ).first()
                if row is None:
                    continue  # released meanwhile: claim again
                expired = row.created_at < now - RETENTION
                abandoned = row.status is None and row.created_at < now - ABANDONED_AFTER
                if expired or abandoned:
                    await session.execute(delete(records).where(r.id == row.id))
                    continue
                if row.fingerprint != fp:
                    raise IdempotencyKeyReused()
                if row.status is None:
                    raise IdempotencyKeyInUse()
                stored = orjson.loads(row.response)
                return Outcome(row.status, stored["body"], stored["headers"], replayed=True)
        raise IdempotencyKeyInUse()

    async def _release(self, record_id: int) -> None:
        async with self.db.write() as session:
            await session.execute(delete(records).where(r.id == record_id))
