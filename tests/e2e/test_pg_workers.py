"""Several server processes, one PostgreSQL database: `python -m app serve --workers 2`, twice
(two servers on two ports, so requests provably reach more than one process), against a
fresh copy of the migrated template database.

Uniqueness holds under concurrency because PostgreSQL enforces it, pagination tokens work on
any process (one shared SECRET_KEY), a write on one process is read on another at once, and a
revoked key is refused by every process as soon as the CLI returns.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from tests.e2e.pg_support import (
    Server,
    base_env,
    create_api_key,
    only_on_postgres,
    run_app,
)
from tests.support import new_rfc

pytestmark = [only_on_postgres, pytest.mark.e2e]

SECRET = "workers-test-secret-key-0123456789abcdef"
# Small pools: four workers must not crowd the machine's shared server.
POOL = {"DB_POOL_SIZE": "3", "DB_MAX_OVERFLOW": "5"}

GRAPHQL_CREATE = """
mutation($input: CreateClientInput!) {
  createClient(input: $input) {
    __typename
    ... on Client { id }
    ... on DuplicateRfcError { code existingClientId }
  }
}
"""


@dataclass
class Cluster:
    servers: list[Server]
    env: dict[str, str]
    cwd: Path
    dsn: str

    def new_key(self, team: str) -> tuple[str, int]:
        return create_api_key(self.env, self.cwd, team)


@pytest.fixture(scope="module")
def cluster(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    cwd = tmp_path_factory.mktemp("workers")
    env = base_env(
        DATABASE_URL=database_url,
        APP_ENV="production",
        SECRET_KEY=SECRET,
        RATE_LIMIT_PER_SECOND="0",
        **POOL,
    )
    with ExitStack() as stack:
        servers = [Server(env, cwd, workers=2), Server(env, cwd, workers=2)]
        for server in servers:
            stack.callback(server.stop)
        for server in servers:
            server.wait_ready("/readyz")
        yield Cluster(servers, env, cwd, database_url.replace("postgresql+asyncpg", "postgresql"))


@pytest.fixture
async def clients(cluster: Cluster) -> AsyncIterator[list[httpx.AsyncClient]]:
    """One HTTP client per server. No keep-alive: every request is a new connection, so the
    kernel spreads them over each server's workers too."""
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=0)
    async with (
        httpx.AsyncClient(base_url=cluster.servers[0].base_url, timeout=60, limits=limits) as a,
        httpx.AsyncClient(base_url=cluster.servers[1].base_url, timeout=60, limits=limits) as b,
    ):
        yield [a, b]


def headers(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def fan_out(clients: list[httpx.AsyncClient], n: int, call: Any) -> list[httpx.Response]:
    """`n` requests at once, alternating between the servers: call(client, i)."""
    return list(await asyncio.gather(*(call(clients[i % 2], i) for i in range(n))))


def no_server_errors(responses: list[httpx.Response]) -> None:
    bad = [(r.status_code, r.text) for r in responses if r.status_code >= 500]
    assert not bad, bad


async def fetch(dsn: str, sql: str, *args: Any) -> Any:
    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        return await conn.fetchval(sql, *args)
    finally:
        await conn.close()


async def test_fifty_simultaneous_creates_of_one_rfc_leave_exactly_one_row(
    cluster: Cluster, clients: list[httpx.AsyncClient]
) -> None:
    key, _ = cluster.new_key("workers-dup")
    rfc = new_rfc()

    async def create(client: httpx.AsyncClient, i: int) -> httpx.Response:
        body = {"name": f"Cliente {i}", "rfc": rfc}
        return await client.post("/v2/clients", json=body, headers=headers(key))

    responses = await fan_out(clients, 50, create)
    no_server_errors(responses)
    assert Counter(r.status_code for r in responses) == {201: 1, 409: 49}
    [winner] = [r.json()["data"]["id"] for r in responses if r.status_code == 201]
    for r in responses:
        if r.status_code == 409:
            error = r.json()["error"]
            assert error["code"] == "DUPLICATE_RFC"
            assert error["details"]["existingClientId"] == winner
    rows = await fetch(cluster.dsn, "SELECT count(*) FROM clients WHERE rfc = $1", rfc)
    assert rows == 1
    listed = await clients[1].get("/v2/clients", params={"rfc": rfc}, headers=headers(key))
    assert listed.json()["totalResults"] == 1


async def test_simultaneous_graphql_creates_of_one_rfc_make_one_client(
    cluster: Cluster, clients: list[httpx.AsyncClient]
) -> None:
    key, _ = cluster.new_key("workers-gql-dup")
    rfc = new_rfc()

    async def create(client: httpx.AsyncClient, i: int) -> httpx.Response:
        payload = {"query": GRAPHQL_CREATE, "variables": {"input": {"name": f"G{i}", "rfc": rfc}}}
        return await client.post("/graphql", json=payload, headers=headers(key))

    responses = await fan_out(clients, 20, create)
    no_server_errors(responses)
    assert {r.status_code for r in responses} == {200}
    results = [r.json()["data"]["createClient"] for r in responses]
    assert Counter(x["__typename"] for x in results) == {"Client": 1, "DuplicateRfcError": 19}
    [winner] = [x["id"] for x in results if x["__typename"] == "Client"]
    assert {x["existingClientId"] for x in results if "existingClientId" in x} == {winner}


async def test_two_hundred_distinct_creates_all_land_and_page_across_processes(
    cluster: Cluster, clients: list[httpx.AsyncClient]
) -> None:
    key, _ = cluster.new_key("workers-bulk")

    async def create(client: httpx.AsyncClient, i: int) -> httpx.Response:
        body = {"name": f"Cliente {i}", "rfc": new_rfc()}
        return await client.post("/v2/clients", json=body, headers=headers(key))

    responses = await fan_out(clients, 200, create)
    no_server_errors(responses)
    assert Counter(r.status_code for r in responses) == {201: 200}
    created = {r.json()["data"]["id"] for r in responses}
    assert len(created) == 200

    # The exact total (a counter row updated in the same transactions) and every page, each
    # `next` token followed on the other server than the one that signed it.
    first = await clients[0].get("/v2/clients", params={"limit": 60}, headers=headers(key))
    assert first.status_code == 200, first.text
    assert first.json()["totalResults"] == 200
    seen = [c["id"] for c in first.json()["data"]]
    token = first.json()["next"]
    for page in range(1, 10):  # 200 / 60: four pages in all
        if token is None:
            break
        r = await clients[page % 2].get("/v2/clients", params={"next": token}, headers=headers(key))
        assert r.status_code == 200, r.text
        seen += [c["id"] for c in r.json()["data"]]
        token = r.json()["next"]
    assert token is None
    assert len(seen) == 200 and set(seen) == created

    stored = await fetch(
        cluster.dsn,
        "SELECT count(*) FROM clients c JOIN teams t ON t.id = c.team_id WHERE t.name = $1",
        "workers-bulk",
    )
    assert stored == 200


async def test_a_write_on_one_process_is_read_on_another_at_once(
    cluster: Cluster, clients: list[httpx.AsyncClient]
) -> None:
    key, _ = cluster.new_key("workers-rw")
    for i in range(10):
        writer, reader = clients[i % 2], clients[(i + 1) % 2]
        r = await writer.post(
            "/v2/clients", json={"name": f"RW {i}", "rfc": new_rfc()}, headers=headers(key)
        )
        assert r.status_code == 201, r.text
        client_id = r.json()["data"]["id"]
        got = await reader.get(f"/v2/clients/{client_id}", headers=headers(key))
        assert got.status_code == 200, got.text
        patched = await reader.patch(
            f"/v2/clients/{client_id}", json={"name": f"RW {i} bis"}, headers=headers(key)
        )
        assert patched.status_code == 200, patched.text
        again = await writer.get(f"/v2/clients/{client_id}", headers=headers(key))
        assert again.json()["data"]["name"] == f"RW {i} bis"


async def test_simultaneous_updates_to_one_rfc_let_exactly_one_win(
    cluster: Cluster, clients: list[httpx.AsyncClient]
) -> None:
    key, _ = cluster.new_key("workers-upd")
    ids = []
    for i in range(20):
        r = await clients[i % 2].post(
            "/v2/clients", json={"name": f"U {i}", "rfc": new_rfc()}, headers=headers(key)
        )
        assert r.status_code == 201, r.text
        ids.append(r.json()["data"]["id"])
    target = new_rfc()

    async def update(client: httpx.AsyncClient, i: int) -> httpx.Response:
        return await client.patch(
            f"/v2/clients/{ids[i]}", json={"rfc": target}, headers=headers(key)
        )

    responses = await fan_out(clients, 20, update)
    no_server_errors(responses)
    assert Counter(r.status_code for r in responses) == {200: 1, 409: 19}
    [winner] = [r.json()["data"]["id"] for r in responses if r.status_code == 200]
    for r in responses:
        if r.status_code == 409:
            assert r.json()["error"]["details"]["existingClientId"] == winner
    assert await fetch(cluster.dsn, "SELECT count(*) FROM clients WHERE rfc = $1", target) == 1


async def test_simultaneous_deletes_of_one_client_delete_it_once(
    cluster: Cluster, clients: list[httpx.AsyncClient]
) -> None:
    key, _ = cluster.new_key("workers-del")
    r = await clients[0].post(
        "/v2/clients", json={"name": "Borrar", "rfc": new_rfc()}, headers=headers(key)
    )
    client_id = r.json()["data"]["id"]

    async def delete(client: httpx.AsyncClient, i: int) -> httpx.Response:
        return await client.delete(f"/v2/clients/{client_id}", headers=headers(key))

    responses = await fan_out(clients, 10, delete)
    no_server_errors(responses)
    assert Counter(r.status_code for r in responses) == {200: 1, 404: 9}
    listed = await clients[1].get("/v2/clients", headers=headers(key))
    assert listed.json()["totalResults"] == 0


async def test_a_revoked_key_is_refused_by_every_process_at_once(
    cluster: Cluster, clients: list[httpx.AsyncClient]
) -> None:
    key, key_id = cluster.new_key("workers-revoke")

    async def list_clients(client: httpx.AsyncClient, i: int) -> httpx.Response:
        return await client.get("/v2/clients", headers=headers(key))

    before = await fan_out(clients, 20, list_clients)
    assert {r.status_code for r in before} == {200}

    run_app(["revoke-api-key", str(key_id)], cluster.env, cluster.cwd)

    after = await fan_out(clients, 40, list_clients)
    assert {r.status_code for r in after} == {401}
    assert all(r.headers["www-authenticate"].startswith("Bearer") for r in after)
