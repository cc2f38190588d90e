"""`DateTime`: UTC ISO 8601 with milliseconds and `Z` out; any ISO 8601 in (no offset is UTC)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import strawberry

from app.core.clock import format_timestamp


def _parse(value: Any) -> datetime:
    if not isinstance(value, str) or len(value) > 64:
        raise ValueError("DateTime must be an ISO 8601 string, e.g. 2024-01-15T10:30:00Z")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError("DateTime must be an ISO 8601 string, e.g. 2024-01-15T10:30:00Z") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC)
    except OverflowError:  # 9999-12-31T23:00:00-01:00: a ValueError is the caller's mistake
        raise ValueError("DateTime out of range") from None


DateTime = strawberry.scalar(
    name="DateTime",
    description="UTC date-time, ISO 8601 with milliseconds and Z (2024-01-15T10:30:00.000Z). "
    "Inputs without an offset are taken as UTC.",
    serialize=format_timestamp,
    parse_value=_parse,
)

SCALAR_MAP: dict[object, Any] = {datetime: DateTime}
