"""Per-API-key token buckets: RATE_LIMIT_PER_SECOND tokens a second, RATE_LIMIT_BURST at most.

With PostgreSQL the buckets live in the database (one atomic upsert per request, on the
database's clock), so every worker and machine shares them; a single SQLite server keeps
them in process. RATE_LIMIT_PER_SECOND=0 turns limiting off.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Protocol

from app.core.config import Settings
from app.db.database import Database
from app.db.dialect import POSTGRESQL
from app.platform.ratelimit_repository import BucketRepository


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    limit: int
    remaining: int
    reset: int  # seconds until the bucket is full again
    retry_after: int  # seconds until the next request is allowed (when refused)

    def headers(self) -> list[tuple[bytes, bytes]]:
        out = [
            (b"ratelimit-limit", str(self.limit).encode()),
            (b"ratelimit-remaining", str(self.remaining).encode()),
            (b"ratelimit-reset", str(self.reset).encode()),
        ]
        if not self.allowed:
            out.append((b"retry-after", str(self.retry_after).encode()))
        return out


class RateLimiter(Protocol):
    async def hit(self, key_id: int) -> Decision: ...


def _decision(tokens: float, allowed: bool, rate: float, burst: int) -> Decision:
    return Decision(
        allowed=allowed,
        limit=burst,
        remaining=max(0, math.floor(tokens)),
        reset=max(0, math.ceil((burst - tokens) / rate)),
        retry_after=0 if allowed else max(1, math.ceil((1 - tokens) / rate)),
    )


class MemoryRateLimiter:
    """One process's buckets (a single SQLite server)."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = burst
        self._buckets: dict[int, tuple[float, float]] = {}

    async def hit(self, key_id: int) -> Decision:
        now = time.monotonic()
        tokens, last = self._buckets.get(key_id, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - last) * self.rate)
        allowed = tokens >= 1
        if allowed:
            tokens -= 1
        self._buckets[key_id] = (tokens, now)
        if len(self._buckets) > 100_000:  # keys seen long ago are full buckets: forget them
            self._buckets = {k: v for k, v in self._buckets.items() if now - v[1] < 3600}
        return _decision(tokens, allowed, self.rate, self.burst)


class PostgresRateLimiter:
    """Buckets shared by every worker through the database."""

    def __init__(self, db: Database, rate: float, burst: int) -> None:
        self.db = db
        self.rate = rate
        self.burst = burst
        self.buckets = BucketRepository()

    async def hit(self, key_id: int) -> Decision:
        async with self.db.write() as session:
            state = await self.buckets.take_token(
                session, key_id=key_id, rate=self.rate, burst=self.burst
            )
        return _decision(state.tokens, state.allowed, self.rate, self.burst)


def build_rate_limiter(settings: Settings, db: Database) -> RateLimiter | None:
    if settings.rate_limit_per_second <= 0:
        return None
    if db.dialect == POSTGRESQL:
        return PostgresRateLimiter(db, settings.rate_limit_per_second, settings.rate_limit_burst)
    return MemoryRateLimiter(settings.rate_limit_per_second, settings.rate_limit_burst)
