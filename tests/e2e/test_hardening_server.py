"""Hardening through a real server with two worker processes, on this run's engine: retries of
one create with one idempotency key, sent all at once, make one client; and the server's log
holds one JSON access line per request and nothing personal, uvicorn's access log being off."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import Server, start_server
from tests.hardening_support import GQL_CREATE
from tests.support import new_rfc, unique_team

pytestmark = pytest.mark.e2e

CONCURRENT = 20


@pytest.fixture(scope="module")
def server2(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """`serve --workers 2` on this module's database, logging at INFO."""
    srv = start_server(
        tmp_path_factory.mktemp("hardening"),
        database_url=database_url,
        workers=2,
        env={"LOG_LEVEL": "INFO", "DB_POOL_SIZE": "3", "DB_MAX_OVERFLOW": "5"},
    )
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture(scope="module")
async def http(server2: Server) -> AsyncIterator[httpx.AsyncClient]:
    limits = httpx.Limits(max_connections=CONCURRENT, max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=server2.base_url, timeout=60, limits=limits) as c:
        yield c


def auth(key: str, **extra: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}", **extra}


async def listed(http: httpx.AsyncClient, key: str) -> list[str]:
    r = await http.get("/v2/clients", params={"limit": 100}, headers=auth(key))
    assert r.status_code == 200, r.text
    return [c["id"] for c in r.json()["data"]]


async def test_concurrent_retries_with_one_key_create_one_client(
    server2: Server, http: httpx.AsyncClient
) -> None:
    key = server2.create_key(unique_team("idem-e2e"))
    body = {"name": "Reintentos", "rfc": new_rfc(), "email": "reintento@example.com"}
    headers = auth(key, **{"Idempotency-Key": "one-create"})
    answers = await asyncio.gather(
        *(http.post("/v2/clients", json=body, headers=headers) for _ in range(CONCURRENT))
    )
    assert all(r.status_code < 500 for r in answers), [r.text for r in answers]
    created = [r for r in answers if r.status_code == 201]
    assert created and len({r.content for r in created}) == 1
    others = [r for r in answers if r.status_code != 201]
    assert all(
        r.status_code == 409 and r.json()["error"]["code"] == "IDEMPOTENCY_KEY_IN_USE"
        for r in others
    ), [r.text for r in others]
    assert await listed(http, key) == [created[0].json()["data"]["id"]]
    # Once the first has answered, every retry is its replay.
    late = await http.post("/v2/clients", json=body, headers=headers)
    assert late.status_code == 201 and late.content == created[0].content
    assert late.headers["idempotent-replayed"] == "true"


async def test_concurrent_graphql_retries_create_one_client(
    server2: Server, http: httpx.AsyncClient
) -> None:
    key = server2.create_key(unique_team("idem-gql-e2e"))
    payload = {
        "query": GQL_CREATE,
        "variables": {"input": {"name": "Reintentos GQL", "rfc": new_rfc()}, "key": "gql-one"},
    }
    answers = await asyncio.gather(
        *(http.post("/graphql", json=payload, headers=auth(key)) for _ in range(CONCURRENT))
    )
    assert all(r.status_code == 200 for r in answers), [r.text for r in answers]
    bodies: list[dict[str, Any]] = [r.json() for r in answers]
    clients = [b["data"]["createClient"] for b in bodies if b.get("data")]
    assert clients and len({json.dumps(c, sort_keys=True) for c in clients}) == 1
    assert clients[0]["__typename"] == "Client"
    for b in bodies:
        if not b.get("data"):
            assert [e["extensions"]["code"] for e in b["errors"]] == ["IDEMPOTENCY_KEY_IN_USE"]
    assert await listed(http, key) == [clients[0]["id"]]


async def test_the_log_has_one_json_line_per_request_and_nothing_personal(
    server2: Server, http: httpx.AsyncClient
) -> None:
    key = server2.create_key(unique_team("logs-e2e"))
    rfc, email, phone = new_rfc(), "registro.privado@example.com", "+52 33 1111 2222"
    sent: list[httpx.Response] = [
        await http.post(
            "/v2/clients",
            json={"name": "Log", "rfc": rfc, "email": email, "phone": phone},
            headers=auth(key),
        ),
        await http.get("/v2/clients", params={"email": email, "rfc": rfc}, headers=auth(key)),
        await http.post(
            "/graphql",
            json={"query": f'{{ clients(filter: {{email: "{email}"}}) {{ totalCount }} }}'},
            headers=auth(key),
        ),
        await http.get("/v2/clients", params={"email": email}, headers=auth("sk_live_" + "z" * 32)),
    ]
    assert [r.status_code for r in sent] == [201, 200, 200, 401]
    ids = {r.headers["x-request-id"] for r in sent}

    log = server2.log()
    # Two processes write the file: wait (boundedly) until both have flushed these lines.
    for _ in range(50):
        if all(request_id in log for request_id in ids):
            break
        await asyncio.sleep(0.1)
        log = server2.log()
    access = [
        json.loads(line.split(" clients.access ", 1)[1])
        for line in log.splitlines()
        if " clients.access " in line
    ]
    mine = [line for line in access if line["request_id"] in ids]
    assert sorted(line["request_id"] for line in mine) == sorted(ids), "one line per request"
    assert {line["status"] for line in mine} == {201, 200, 401}
    assert all({"route", "team_id", "latency_ms", "method"} <= set(line) for line in mine)

    for value in (key, key.split("_")[-1], "Bearer", rfc, email, phone, "email=", "rfc="):
        assert value not in log, value
    # uvicorn's own access log (`"GET /path?query HTTP/1.1" 200`) is off.
    assert "HTTP/1.1" not in log and "uvicorn.access" not in log
