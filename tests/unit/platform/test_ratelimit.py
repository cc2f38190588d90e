"""Token buckets: the in-process one (SQLite) and the shared one (PostgreSQL, through its
repository on the real server; skipped on SQLite, which does not use it)."""

from __future__ import annotations

import math

import pytest

from app.db.database import Database
from app.platform.ratelimit import (
    MemoryRateLimiter,
    PostgresRateLimiter,
    build_rate_limiter,
)
from app.platform.ratelimit_repository import BucketRepository
from tests.conftest import make_settings
from tests.support import create_key, unique_team


async def test_the_memory_bucket_allows_a_burst_then_refuses() -> None:
    limiter = MemoryRateLimiter(rate=0.001, burst=3)
    decisions = [await limiter.hit(1) for _ in range(4)]
    assert [d.allowed for d in decisions] == [True, True, True, False]
    assert [d.remaining for d in decisions] == [2, 1, 0, 0]
    refused = decisions[-1]
    assert refused.retry_after == math.ceil(1 / 0.001)
    assert (b"retry-after", str(refused.retry_after).encode()) in refused.headers()
    assert (await limiter.hit(2)).allowed  # another key has its own bucket


async def test_the_engine_chooses_the_bucket(db: Database, engine_name: str) -> None:
    on = make_settings(db.settings.database_url, rate_limit_per_second=5, rate_limit_burst=2)
    limiter = build_rate_limiter(on, db)
    expected = PostgresRateLimiter if engine_name == "postgres" else MemoryRateLimiter
    assert isinstance(limiter, expected)
    off = make_settings(db.settings.database_url, rate_limit_per_second=0)
    assert build_rate_limiter(off, db) is None


async def test_the_shared_bucket_takes_one_token_per_request(
    db: Database, engine_name: str
) -> None:
    if engine_name != "postgres":
        pytest.skip("the shared bucket is PostgreSQL's")
    key = await create_key(db, team=unique_team("bucket"))
    buckets = BucketRepository()
    states = []
    for _ in range(3):
        async with db.write() as session:
            states.append(await buckets.take_token(session, key_id=key.key_id, rate=0.001, burst=2))
    assert [s.allowed for s in states] == [True, True, False]
    assert states[0].tokens == pytest.approx(1, abs=0.01)
    assert 0 <= states[2].tokens < 1
    limiter = PostgresRateLimiter(db, rate=0.001, burst=2)
    decision = await limiter.hit(key.key_id)
    assert not decision.allowed and decision.retry_after >= 1
