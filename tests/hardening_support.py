"""Helpers of the hardening tests (tests/api/{http,platform}/*.py, tests/e2e/test_crash.py,
tests/e2e/test_hardening_*.py): apps with their own settings, REST and GraphQL calls that
the tests repeat, and rows written directly into the idempotency table."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import insert

from app.db.database import Database
from app.db.tables import IdempotencyRecord
from app.main import create_app
from app.platform.idempotency import fingerprint
from tests.conftest import make_settings
from tests.support import Key

# A well-formed client id nobody has (Crockford base32, 26 characters).
ABSENT_ID = "client_01J00000000000000000000000"

SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
}

GQL_CLIENT = "id name legalName rfc email phone livemode createdAt updatedAt"

GQL_CREATE = f"""
mutation Create($input: CreateClientInput!, $key: String) {{
  createClient(input: $input, idempotencyKey: $key) {{
    __typename
    ... on Client {{ {GQL_CLIENT} }}
    ... on ValidationError {{ code message fields {{ field message }} }}
    ... on DuplicateRfcError {{ code message rfc existingClientId }}
  }}
}}
"""


@dataclass
class AppClient:
    """An app with its own settings (on a test module's database) and a client into it."""

    app: Any
    http: httpx.AsyncClient

    @property
    def db(self) -> Database:
        database: Database = self.app.app.state.services.db
        return database


@asynccontextmanager
async def app_client(database_url: str, **overrides: Any) -> AsyncIterator[AppClient]:
    """`create_app` with `make_settings(database_url, **overrides)`, served over ASGI."""
    app = create_app(make_settings(database_url, **overrides))
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            yield AppClient(app, http)
    finally:
        await app.app.state.services.db.dispose()


def auth(key: Key | str, **extra: str) -> dict[str, str]:
    token = key if isinstance(key, str) else key.key
    return {"Authorization": f"Bearer {token}", **extra}


async def rest_create(
    http: httpx.AsyncClient, key: Key, body: dict[str, Any], **headers: str
) -> httpx.Response:
    return await http.post("/v2/clients", json=body, headers=auth(key, **headers))


async def rest_ids(http: httpx.AsyncClient, key: Key) -> list[str]:
    """Every client id of the key's team and mode (up to 100), newest first."""
    r = await http.get("/v2/clients", params={"limit": 100}, headers=auth(key))
    assert r.status_code == 200, r.text
    return [c["id"] for c in r.json()["data"]]


async def graphql(
    http: httpx.AsyncClient,
    key: Key,
    query: str,
    variables: dict[str, Any] | None = None,
    operation_name: str | None = None,
) -> httpx.Response:
    body: dict[str, Any] = {"query": query, "variables": variables or {}}
    if operation_name is not None:
        body["operationName"] = operation_name
    return await http.post("/graphql", json=body, headers=auth(key))


async def insert_idempotency_row(
    db: Database,
    key: Key,
    idempotency_key: str,
    *,
    request_fingerprint: str,
    age: timedelta = timedelta(0),
    status: int | None = None,
    response: str | None = None,
) -> None:
    """A row of the idempotency table, written directly: status NULL is a request that is
    still running (or died, when old enough)."""
    async with db.write() as session:
        await session.execute(
            insert(IdempotencyRecord).values(
                team_id=key.team_id,
                livemode=key.livemode,
                key=idempotency_key,
                fingerprint=request_fingerprint,
                status=status,
                response=response,
                created_at=datetime.now(UTC) - age,
            )
        )


def rest_fingerprint(body: dict[str, Any]) -> str:
    """The fingerprint POST /v2/clients takes of `body` (fields as sent, none defaulted)."""
    return fingerprint("POST /v2/clients", body)


def graphql_fingerprint(**fields: Any) -> str:
    """The fingerprint createClient takes of an input (as the resolver builds it)."""
    from dataclasses import asdict

    from app.clients.types import NewClient

    return fingerprint("graphql createClient", asdict(NewClient(**fields)))
