"""A naive Strawberry server for `{ clients(first: N) { nodes { … } } }`: a resolver that looks
up the API key and reads a page with the plain reference's SQL, Strawberry's own FastAPI
router and executor (every field completed by graphql-core). Nothing from the gateway.

Serve with: uvicorn bench.peers.strawberry_app:app --port 8002
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import strawberry
from fastapi import FastAPI, Request
from strawberry.fastapi import GraphQLRouter

from bench.reference import caller, engine, lifespan, page


@strawberry.type
class Client:
    id: strawberry.ID
    name: str
    legal_name: str | None
    rfc: str
    email: str | None
    phone: str | None
    created_at: datetime
    updated_at: datetime


@strawberry.type
class ClientConnection:
    nodes: list[Client]
    has_more: bool


def to_client(r: Any) -> Client:
    return Client(
        id=strawberry.ID(r.public_id),
        name=r.name,
        legal_name=r.legal_name,
        rfc=r.rfc,
        email=r.email,
        phone=r.phone,
        created_at=r.created_at,
        updated_at=r.updated_at,
    )


@strawberry.type
class Query:
    @strawberry.field
    async def clients(self, info: strawberry.Info, first: int = 20) -> ClientConnection:
        request: Request = info.context["request"]
        async with engine.connect() as conn:
            team, live = await caller(conn, request)
            rows = await page(conn, team, live, first)
        return ClientConnection(
            nodes=[to_client(r) for r in rows[:first]], has_more=len(rows) > first
        )


schema = strawberry.Schema(query=Query)
app = FastAPI(lifespan=lifespan)
app.include_router(GraphQLRouter(schema), prefix="/graphql")


@app.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}
