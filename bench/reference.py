"""The benchmark's reference: a plain FastAPI endpoint that runs the same SQL as
`GET /v2/clients?limit=N` (key look-up, page, counter) and returns the same JSON, with none of
the gateway's layers. Ratios to it are the benchmark's figures that matter.

Serve with: uvicorn bench.reference:app --port 8001 (DATABASE_URL as for the gateway).
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson
from fastapi import FastAPI, Request, Response
from sqlalchemy import select

from app.auth.principal import Principal
from app.clients.pagination import TokenSigner, position_to_json
from app.clients.repository import SELECT_COLUMNS, c, counters, row_position, row_to_client
from app.core.config import get_settings
from app.db.database import Database
from app.db.tables import ApiKey
from app.rest.clients import client_json

settings = get_settings()
db = Database(settings)
app = FastAPI()
signer = TokenSigner(settings.resolved_secret_key())


@app.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@app.get("/ref/clients")
async def list_clients(request: Request, limit: int = 20) -> Response:
    token = request.headers.get("authorization", "").removeprefix("Bearer ")
    digest = hashlib.sha256(token.encode()).hexdigest()
    async with db.read() as session:
        key = (
            await session.execute(
                select(ApiKey.team_id, ApiKey.livemode, ApiKey.revoked_at).where(
                    ApiKey.key_hash == digest
                )
            )
        ).first()
    if key is None or key.revoked_at is not None:
        return Response(b'{"error":"unauthorized"}', status_code=401)
    async with db.read() as session:
        rows = (
            await session.execute(
                select(*SELECT_COLUMNS)
                .where(c.team_id == key.team_id, c.livemode == key.livemode)
                .order_by(c.created_at.desc(), c.id.desc())
                .limit(limit + 1)
            )
        ).all()
        total = (
            await session.execute(
                select(counters.c.count).where(
                    counters.c.team_id == key.team_id, counters.c.livemode == key.livemode
                )
            )
        ).scalar_one_or_none()
    has_more = len(rows) > limit
    rows = rows[:limit]
    next_token = None
    if has_more:
        who = Principal(team_id=key.team_id, livemode=key.livemode, key_id=0)
        position = position_to_json(row_position(rows[-1]))
        next_token = signer.dumps("next", who, {"f": {}, "l": limit, "p": position})
    payload: dict[str, Any] = {
        "data": [client_json(row_to_client(r)) for r in rows],
        "message": "Clients retrieved successfully",
        "totalResults": total or 0,
        "hasMore": has_more,
        "next": next_token,
    }
    return Response(orjson.dumps(payload), media_type="application/json")
