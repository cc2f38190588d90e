"""Public client ids: `client_` + a ULID (app/core/ids.py), so ids sort by creation time and
cannot be guessed."""

from __future__ import annotations

from app.core.ids import id_matcher, new_id

PREFIX = "client_"
_ID_RE = id_matcher(PREFIX)


def new_client_id(now_ms: int | None = None) -> str:
    return new_id(PREFIX, now_ms)


def is_client_id(value: str) -> bool:
    """True when `value` can be a client id; anything else is a 404 without a query."""
    return len(value) == 33 and _ID_RE.match(value) is not None
