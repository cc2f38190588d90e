"""Time, once: the millisecond clock every stored timestamp comes from, the epoch-millisecond
conversions (ETags, cursors, ids) and the one wire format (UTC, ISO 8601, milliseconds, `Z`).

Invariant: every time the application stores or sends has whole milliseconds, so what a
client reads back (an ETag, an `updatedAt`) compares equal to what is stored."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def now() -> datetime:
    """The current UTC time, truncated to whole milliseconds."""
    current = datetime.now(UTC)
    return current.replace(microsecond=current.microsecond // 1000 * 1000)


def to_ms(value: datetime) -> int:
    return (value - EPOCH) // timedelta(milliseconds=1)


def from_ms(ms: int) -> datetime:
    return EPOCH + timedelta(milliseconds=ms)


def format_timestamp(value: datetime) -> str:
    value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"
