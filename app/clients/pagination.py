"""Signed, opaque pagination tokens.

A token is `base64url(json) "." base64url(hmac)`, signed with a key derived from SECRET_KEY
and bound to the team and mode that asked for it, so it survives restarts, works on every
worker, and a tampered or foreign token is refused.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

from app.auth.principal import Principal
from app.clients.types import Position

_MAX_TOKEN = 2048


class InvalidToken(ValueError):
    pass


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class TokenSigner:
    def __init__(self, secret: str) -> None:
        self._key = hmac.new(secret.encode(), b"clients-gateway/pagination/v1", "sha256").digest()

    def _mac(self, kind: str, principal: Principal, body: str) -> str:
        msg = f"{kind}|{principal.team_id}|{int(principal.livemode)}|{body}".encode()
        return _b64(hmac.new(self._key, msg, hashlib.sha256).digest()[:24])

    def dumps(self, kind: str, principal: Principal, payload: dict[str, Any]) -> str:
        body = _b64(json.dumps(payload, separators=(",", ":"), ensure_ascii=True).encode())
        return f"{body}.{self._mac(kind, principal, body)}"

    def loads(self, kind: str, principal: Principal, token: str) -> dict[str, Any]:
        if not isinstance(token, str) or len(token) > _MAX_TOKEN or token.count(".") != 1:
            raise InvalidToken
        body, mac = token.split(".")
        if not hmac.compare_digest(mac.encode(), self._mac(kind, principal, body).encode()):
            raise InvalidToken
        try:
            payload = json.loads(_unb64(body))
        except ValueError:
            raise InvalidToken from None
        if not isinstance(payload, dict):
            raise InvalidToken
        return payload


def position_to_json(position: Position) -> list[int]:
    return [position.created_ms, position.row_id]


def position_from_json(value: Any) -> Position:
    if (
        not isinstance(value, list)
        or len(value) != 2
        or not all(isinstance(v, int) and not isinstance(v, bool) for v in value)
    ):
        raise InvalidToken
    return Position(created_ms=value[0], row_id=value[1])
