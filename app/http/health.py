"""Health routes: `/healthz` (the process answers) and `/readyz` (the database answers and
is migrated to head; 503 otherwise, so a load balancer sends no traffic to it)."""

from __future__ import annotations

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy import text

from app.core.errors import ServiceUnavailable
from app.db.migrate import is_at_head
from app.http.deps import services
from app.http.errors import error_response
from app.rest.errors import render_error

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="The process is up")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="The database is reachable and migrated",
    responses={503: {"description": "SERVICE_UNAVAILABLE"}},
)
async def readyz(request: Request) -> Response:
    engine = services(request).db.engine
    try:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        migrated = await is_at_head(engine)
    except Exception:
        return error_response(render_error, ServiceUnavailable())
    if not migrated:
        return error_response(
            render_error, ServiceUnavailable("The database is not migrated to head")
        )
    return Response(orjson.dumps({"status": "ready"}), media_type="application/json")
