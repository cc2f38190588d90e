"""The wire format of times: UTC, milliseconds (truncated), `Z`, whatever the offset given."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from app.core.clock import format_timestamp


def _spelled_out(value: datetime) -> str:
    """The format written field by field, as the contract describes it."""
    u = value.astimezone(UTC)
    return (
        f"{u.year:04d}-{u.month:02d}-{u.day:02d}T{u.hour:02d}:{u.minute:02d}:{u.second:02d}."
        f"{u.microsecond // 1000:03d}Z"
    )


@given(
    st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(9999, 12, 30)),
    st.integers(min_value=-14 * 60, max_value=14 * 60),
)
def test_format_matches_the_spelled_out_format(naive: datetime, offset_minutes: int) -> None:
    value = naive.replace(tzinfo=timezone(timedelta(minutes=offset_minutes)))
    assert format_timestamp(value) == _spelled_out(value)


def test_whole_seconds_still_carry_milliseconds() -> None:
    assert format_timestamp(datetime(2024, 1, 15, 10, 30, tzinfo=UTC)) == "2024-01-15T10:30:00.000Z"
    assert (
        format_timestamp(datetime(2024, 1, 15, 10, 30, 0, 999_999, tzinfo=UTC))
        == "2024-01-15T10:30:00.999Z"
    )
