"""The benchmark's yardstick: a plain FastAPI service over the same database, written the
ordinary way and sharing no code with the gateway (nothing from `app` or `schema`).

Its own SQLAlchemy Core engine and table definitions, the same SELECT of the same columns the
gateway's list reads, a Pydantic response model (FastAPI validates and serialises it), and an
API-key look-up by SHA-256 of the bearer token read straight from the `api_keys` table with
its own SQL. Endpoints:

- `GET /ref/plain/clients?limit=N`: no authentication (the team is found once, at start).
- `GET /ref/clients?limit=N`: with the key look-up (`totalResults` null: no count at all).
- `GET /ref/counted/clients?limit=N`: with the key look-up and an exact `COUNT(*)`.
- `GET /ref/clients/{id}`: get by id, with the key look-up.

Serve with: uvicorn bench.reference:app --port 8001 (DATABASE_URL as for the gateway; BENCH_TEAM
names the team of the unauthenticated endpoint, "bench" by default).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from pydantic import BaseModel
from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Integer,
    MetaData,
    String,
    Table,
    func,
    select,
)
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

DATABASE_URL = os.environ.get("DATABASE_URL", "sqlite+aiosqlite:///var/clients.db")
engine = create_async_engine(DATABASE_URL, pool_size=10, max_overflow=5)
metadata = MetaData()

clients = Table(
    "clients",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("public_id", String),
    Column("team_id", Integer),
    Column("livemode", Boolean),
    Column("name", String),
    Column("legal_name", String),
    Column("rfc", String),
    Column("rfc_check_digit_valid", Boolean),
    Column("email", String),
    Column("phone", String),
    Column("street", String),
    Column("city", String),
    Column("state", String),
    Column("zip_code", String),
    Column("country", String),
    Column("created_at", DateTime(timezone=True)),
    Column("updated_at", DateTime(timezone=True)),
)
api_keys = Table(
    "api_keys",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("team_id", Integer),
    Column("livemode", Boolean),
    Column("key_hash", String),
    Column("revoked_at", DateTime(timezone=True)),
)
teams = Table("teams", metadata, Column("id", Integer, primary_key=True), Column("name", String))
c = clients.c
COLUMNS = (
    c.id, c.public_id, c.name, c.legal_name, c.rfc, c.rfc_check_digit_valid, c.email, c.phone,
    c.street, c.city, c.state, c.zip_code, c.country, c.livemode, c.created_at, c.updated_at,
)  # fmt: skip


class ClientRef(BaseModel):
    rfc: str
    email: str | None


class AddressOut(BaseModel):
    street: str | None
    city: str | None
    state: str | None
    zipCode: str | None
    country: str | None


class ClientOut(BaseModel):
    id: str
    name: str
    legalName: str | None
    client: ClientRef
    phone: str | None
    address: AddressOut | None
    timestamp: datetime
    updatedAt: datetime
    livemode: bool
    rfcCheckDigitValid: bool


class ClientList(BaseModel):
    data: list[ClientOut]
    message: str
    totalResults: int | None
    hasMore: bool


class ClientOne(BaseModel):
    data: ClientOut
    message: str


def to_out(r: Any) -> dict[str, Any]:
    address = (r.street, r.city, r.state, r.zip_code, r.country)
    return {
        "id": r.public_id,
        "name": r.name,
        "legalName": r.legal_name,
        "client": {"rfc": r.rfc, "email": r.email},
        "phone": r.phone,
        "address": None
        if not any(address)
        else dict(zip(("street", "city", "state", "zipCode", "country"), address, strict=True)),
        "timestamp": r.created_at,
        "updatedAt": r.updated_at,
        "livemode": r.livemode,
        "rfcCheckDigitValid": r.rfc_check_digit_valid,
    }


async def caller(conn: AsyncConnection, request: Request) -> tuple[int, bool]:
    """(team id, livemode) of the bearer key, by the SHA-256 of the key; 401 otherwise."""
    token = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
    digest = hashlib.sha256(token.encode()).hexdigest()
    stmt = select(api_keys.c.team_id, api_keys.c.livemode, api_keys.c.revoked_at).where(
        api_keys.c.key_hash == digest
    )
    key = (await conn.execute(stmt)).first()
    if key is None or key.revoked_at is not None:
        raise HTTPException(401, "unauthorized")
    return key.team_id, key.livemode


async def page(conn: AsyncConnection, team: int, live: bool, limit: int) -> list[Any]:
    stmt = (
        select(*COLUMNS)
        .where(c.team_id == team, c.livemode == live)
        .order_by(c.created_at.desc(), c.id.desc())
        .limit(limit + 1)
    )
    return list((await conn.execute(stmt)).all())


def listing(rows: list[Any], limit: int, total: int | None) -> dict[str, Any]:
    return {
        "data": [to_out(r) for r in rows[:limit]],
        "message": "Clients retrieved successfully",
        "totalResults": total,
        "hasMore": len(rows) > limit,
    }


PLAIN_TEAM: dict[str, int] = {}


@asynccontextmanager
async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
    async with engine.connect() as conn:
        name = os.environ.get("BENCH_TEAM", "bench")
        found = (await conn.execute(select(teams.c.id).where(teams.c.name == name))).scalar()
        PLAIN_TEAM["id"] = int(found or 0)
    yield
    await engine.dispose()


app = FastAPI(lifespan=lifespan)


@app.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@app.get("/ref/plain/clients", response_model=ClientList)
async def plain_list(limit: int = 20) -> dict[str, Any]:
    async with engine.connect() as conn:
        rows = await page(conn, PLAIN_TEAM["id"], True, limit)
    return listing(rows, limit, None)


@app.get("/ref/clients", response_model=ClientList)
async def keyed_list(request: Request, limit: int = 20) -> dict[str, Any]:
    async with engine.connect() as conn:
        team, live = await caller(conn, request)
        rows = await page(conn, team, live, limit)
    return listing(rows, limit, None)


@app.get("/ref/counted/clients", response_model=ClientList)
async def counted_list(request: Request, limit: int = 20) -> dict[str, Any]:
    async with engine.connect() as conn:
        team, live = await caller(conn, request)
        rows = await page(conn, team, live, limit)
        total = (
            await conn.execute(select(func.count()).where(c.team_id == team, c.livemode == live))
        ).scalar()
    return listing(rows, limit, total)


@app.get("/ref/clients/{client_id}", response_model=ClientOne)
async def get_one(request: Request, client_id: str) -> dict[str, Any]:
    async with engine.connect() as conn:
        team, live = await caller(conn, request)
        stmt = select(*COLUMNS).where(
            c.team_id == team, c.livemode == live, c.public_id == client_id
        )
        row = (await conn.execute(stmt)).first()
    if row is None:
        raise HTTPException(404, "not found")
    return {"data": to_out(row), "message": "Client retrieved successfully"}
