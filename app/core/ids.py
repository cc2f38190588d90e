"""Public ids: a prefix and a ULID (26 Crockford base32 characters: 48 bits of millisecond
time, then 80 random bits), so ids sort by creation time and cannot be guessed.

A ULID is a dozen lines; a dependency for it would not pay for itself.
"""

from __future__ import annotations

import re
import secrets
import time

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_ULID = "[0-7][0-9A-HJKMNP-TV-Z]{25}"


def new_id(prefix: str, now_ms: int | None = None) -> str:
    ms = int(time.time() * 1000) if now_ms is None else now_ms
    value = (ms << 80) | secrets.randbits(80)
    chars = []
    for _ in range(26):
        chars.append(_ALPHABET[value & 31])
        value >>= 5
    return prefix + "".join(reversed(chars))


def id_matcher(prefix: str) -> re.Pattern[str]:
    """The pattern of ids with this prefix; anything else is a 404 without a query."""
    return re.compile(f"^{re.escape(prefix)}{_ULID}$")
