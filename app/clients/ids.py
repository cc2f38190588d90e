"""Public client ids: `client_` + a ULID (26 Crockford base32 characters: 48 bits of
millisecond time, then 80 random bits), so ids sort by creation time and cannot be guessed.

A ULID is a dozen lines; a dependency for it would not pay for itself.
"""

from __future__ import annotations

import re
import secrets
import time

PREFIX = "client_"
_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_ID_RE = re.compile(r"^client_[0-7][0-9A-HJKMNP-TV-Z]{25}$")


def new_client_id(now_ms: int | None = None) -> str:
    ms = int(time.time() * 1000) if now_ms is None else now_ms
    value = (ms << 80) | secrets.randbits(80)
    chars = []
    for _ in range(26):
        chars.append(_ALPHABET[value & 31])
        value >>= 5
    return PREFIX + "".join(reversed(chars))


def is_client_id(value: str) -> bool:
    """True when `value` can be a client id; anything else is a 404 without a query."""
    return len(value) == 33 and _ID_RE.match(value) is not None
