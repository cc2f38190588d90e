"""Persistence of shared token buckets (PostgreSQL): SQL only, the refill rule is the
statement's arithmetic, done on the database's clock so every worker agrees.

One atomic upsert per request: a new key starts with a full bucket less the token it takes;
a known key is refilled for the time since its last request (capped at the burst) and takes a
token when it has one.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

_TAKE_TOKEN = text(
    """
    INSERT INTO rate_limit_buckets AS b (key_id, tokens, updated_at, allowed)
    VALUES (:key_id, :burst - 1, extract(epoch from clock_timestamp()), true)
    ON CONFLICT (key_id) DO UPDATE SET
      tokens = CASE
        WHEN least(:burst, b.tokens + (extract(epoch from clock_timestamp()) - b.updated_at) * :rate) >= 1
        THEN least(:burst, b.tokens + (extract(epoch from clock_timestamp()) - b.updated_at) * :rate) - 1
        ELSE least(:burst, b.tokens + (extract(epoch from clock_timestamp()) - b.updated_at) * :rate)
      END,
      allowed = least(:burst, b.tokens + (extract(epoch from clock_timestamp()) - b.updated_at) * :rate) >= 1,
      updated_at = extract(epoch from clock_timestamp())
    RETURNING tokens, allowed
    """  # noqa: E501
)


@dataclass(frozen=True, slots=True)
class BucketState:
    tokens: float  # left after this request
    allowed: bool  # this request took a token


class BucketRepository:
    async def take_token(
        self, session: AsyncSession, *, key_id: int, rate: float, burst: int
    ) -> BucketState:
        params = {"key_id": key_id, "burst": float(burst), "rate": rate}
        row = (await session.execute(_TAKE_TOKEN, params)).one()
        return BucketState(tokens=float(row.tokens), allowed=bool(row.allowed))
