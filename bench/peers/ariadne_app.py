"""A naive Ariadne server for `{ clients(first: N) { nodes { … } } }`: schema-first SDL, one
resolver that looks up the API key and reads a page with the plain reference's SQL, the
default resolvers for every field. Nothing from the gateway.

Serve with: uvicorn bench.peers.ariadne_app:app --port 8003
"""

from __future__ import annotations

from typing import Any

from ariadne import ObjectType, make_executable_schema
from ariadne.asgi import GraphQL
from fastapi import FastAPI, Request

from bench.reference import caller, engine, lifespan, page

SDL = """
type Client {
  id: ID!
  name: String!
  legalName: String
  rfc: String!
  email: String
  phone: String
  createdAt: String!
  updatedAt: String!
}
type ClientConnection { nodes: [Client!]! hasMore: Boolean! }
type Query { clients(first: Int = 20): ClientConnection! }
"""

query = ObjectType("Query")


def _client(r: Any) -> dict[str, Any]:
    return {
        "id": r.public_id,
        "name": r.name,
        "legalName": r.legal_name,
        "rfc": r.rfc,
        "email": r.email,
        "phone": r.phone,
        "createdAt": r.created_at.isoformat(),
        "updatedAt": r.updated_at.isoformat(),
    }


@query.field("clients")
async def resolve_clients(_obj: Any, info: Any, first: int = 20) -> dict[str, Any]:
    request: Request = info.context["request"]
    async with engine.connect() as conn:
        team, live = await caller(conn, request)
        rows = await page(conn, team, live, first)
    return {"nodes": [_client(r) for r in rows[:first]], "hasMore": len(rows) > first}


schema = make_executable_schema(SDL, query)
app = FastAPI(lifespan=lifespan)
# An ASGI app as a route (Starlette serves it as one): `/graphql` exactly, no redirect.
app.add_route("/graphql", GraphQL(schema), methods=["GET", "POST"])  # type: ignore[arg-type]


@app.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}
