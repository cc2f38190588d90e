"""The database goes away, and comes back: a real server process against a private PostgreSQL
cluster that this module creates, stops, freezes and starts itself (never the machine's
shared server).

While the database cannot answer, REST says 503 SERVICE_UNAVAILABLE in the documented
envelope, GraphQL a top-level error with that code and HTTP 503, /readyz 503, /healthz still
200; never a 500, and never a wait past the configured timeouts (the HTTP client's own timeout
is the bound: a hang fails the test). When the database returns, the same server process
answers again without being restarted.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from tests.e2e.pg_support import (
    PrivateCluster,
    Server,
    base_env,
    create_api_key,
    only_on_postgres,
    private_cluster,
    run_app,
    running_server,
)
from tests.support import new_rfc

pytestmark = [only_on_postgres, pytest.mark.e2e]

# Small timeouts so that every 503 comes quickly; the client waits far longer than they add up
# to (statement 0.75 s + 1 s client margin, connect 1 s, pool 3 s).
SERVER_TIMEOUTS = {
    "DB_STATEMENT_TIMEOUT_MS": "750",
    "DB_CONNECT_TIMEOUT": "1",
    "DB_POOL_TIMEOUT": "3",
}
CLIENT_TIMEOUT = 60.0

GRAPHQL_LIST = "{ clients(first: 5) { totalCount nodes { id rfc } } }"
GRAPHQL_CREATE = """
mutation($input: CreateClientInput!) {
  createClient(input: $input) { __typename ... on Client { id } }
}
"""


@dataclass
class Stack:
    cluster: PrivateCluster
    server: Server
    key: str
    dsn: str  # for asyncpg, as the test's own second session

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    work: Path = tmp_path_factory.mktemp("outage")
    with private_cluster() as cluster:
        cluster.psql("CREATE DATABASE clients")
        env = base_env(
            DATABASE_URL=cluster.url("clients"),
            APP_ENV="production",
            SECRET_KEY="outage-test-secret-key-0123456789abcdef",
            # Rate limiting on (the default), as in production: on PostgreSQL its buckets are
            # in the database too, and must answer 503 like the rest.
            RATE_LIMIT_PER_SECOND="50",
            RATE_LIMIT_BURST="1000",
            **SERVER_TIMEOUTS,
        )
        run_app(["migrate"], env, work)
        key, _ = create_api_key(env, work, "outage")
        with running_server(env, work, workers=1) as server:
            yield Stack(
                cluster,
                server,
                key,
                f"postgresql://postgres@127.0.0.1:{cluster.port}/clients",
            )


@pytest.fixture
async def http(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=stack.server.base_url, timeout=CLIENT_TIMEOUT) as c:
        yield c


@pytest.fixture(autouse=True)
def database_running_after(stack: Stack) -> Iterator[None]:
    """Whatever a test did to the cluster, the next one finds it running."""
    yield
    if not stack.cluster.is_running():
        stack.cluster.start()


def assert_rest_503(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["error"]["code"] == "SERVICE_UNAVAILABLE"
    assert body["error"]["message"] == "The database is unavailable"
    assert body["message"] == "Service temporarily unavailable"


def assert_graphql_503(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    body = response.json()
    assert body.get("data") is None
    [error] = body["errors"]
    assert error["message"] == "The database is unavailable"
    assert error["extensions"]["code"] == "SERVICE_UNAVAILABLE"


async def all_unavailable(http: httpx.AsyncClient, stack: Stack, client_id: str) -> None:
    """Every kind of request answers 503 (and nothing 500) while the database cannot."""
    h = stack.headers
    assert_rest_503(await http.get("/v2/clients", headers=h))
    assert_rest_503(await http.get(f"/v2/clients/{client_id}", headers=h))
    assert_rest_503(
        await http.post("/v2/clients", json={"name": "Durante", "rfc": new_rfc()}, headers=h)
    )
    assert_rest_503(await http.patch(f"/v2/clients/{client_id}", json={"name": "X"}, headers=h))
    assert_rest_503(await http.delete(f"/v2/clients/{client_id}", headers=h))
    assert_graphql_503(await http.post("/graphql", json={"query": GRAPHQL_LIST}, headers=h))
    assert_graphql_503(
        await http.post(
            "/graphql",
            json={"query": GRAPHQL_CREATE, "variables": {"input": {"name": "G", "rfc": new_rfc()}}},
            headers=h,
        )
    )


async def assert_serving(http: httpx.AsyncClient, stack: Stack, client_id: str) -> None:
    """The server answers normally again, with the data written before the outage."""
    got = await http.get(f"/v2/clients/{client_id}", headers=stack.headers)
    assert got.status_code == 200, got.text
    created = await http.post(
        "/v2/clients", json={"name": "Después", "rfc": new_rfc()}, headers=stack.headers
    )
    assert created.status_code == 201, created.text
    gql = await http.post("/graphql", json={"query": GRAPHQL_LIST}, headers=stack.headers)
    assert gql.status_code == 200 and "errors" not in gql.json(), gql.text
    ready = await http.get("/readyz")
    assert ready.status_code == 200, ready.text


async def create_client(http: httpx.AsyncClient, stack: Stack) -> str:
    r = await http.post(
        "/v2/clients", json={"name": "Antes", "rfc": new_rfc()}, headers=stack.headers
    )
    assert r.status_code == 201, r.text
    client_id: str = r.json()["data"]["id"]
    return client_id


async def test_a_statement_past_the_timeout_is_503_in_rest_and_graphql(
    stack: Stack, http: httpx.AsyncClient
) -> None:
    """The database answers, but a statement cannot finish (another session holds a lock on
    clients): PostgreSQL's statement_timeout ends it, and the caller gets a 503, from a
    resolver in GraphQL too (authentication, on api_keys, still works)."""
    client_id = await create_client(http, stack)
    locker: Any = await asyncpg.connect(stack.dsn, timeout=10)
    try:
        tx = locker.transaction()
        await tx.start()
        await locker.execute("LOCK TABLE clients IN ACCESS EXCLUSIVE MODE")
        await all_unavailable(http, stack, client_id)
        # /readyz does not read clients: the database is there.
        assert (await http.get("/readyz")).status_code == 200
        await tx.rollback()
    finally:
        await locker.close()
    await assert_serving(http, stack, client_id)


async def test_a_stopped_database_is_503_and_the_server_recovers_by_itself(
    stack: Stack, http: httpx.AsyncClient
) -> None:
    client_id = await create_client(http, stack)
    stack.cluster.stop("fast")  # pooled connections are closed under the server's feet

    await all_unavailable(http, stack, client_id)
    ready = await http.get("/readyz")
    assert_rest_503(ready)
    assert (await http.get("/healthz")).status_code == 200
    # Without a key it is still a 401: no database is needed to refuse a missing key.
    assert (await http.get("/v2/clients")).status_code == 401
    # A bad key needs the database to be checked: 503, not a 401 that would be a lie.
    bad = {"Authorization": "Bearer sk_live_" + "x" * 32}
    assert_rest_503(await http.get("/v2/clients", headers=bad))

    stack.cluster.start()
    # The very first request after the restart succeeds: stale pooled connections are
    # checked before use and replaced.
    await assert_serving(http, stack, client_id)


async def test_a_database_that_stops_answering_is_503_not_a_hang(
    stack: Stack, http: httpx.AsyncClient
) -> None:
    """Every process of the cluster frozen (SIGSTOP): open connections stay open but nothing
    answers, and new ones get no reply, as behind a network partition. The pre-ping of a
    pooled connection and new connections time out, within the configured bounds."""
    client_id = await create_client(http, stack)
    with stack.cluster.frozen():
        assert_rest_503(await http.get(f"/v2/clients/{client_id}", headers=stack.headers))
        assert_graphql_503(
            await http.post("/graphql", json={"query": GRAPHQL_LIST}, headers=stack.headers)
        )
        assert_rest_503(await http.get("/readyz"))
    await assert_serving(http, stack, client_id)


def test_nothing_unexpected_was_logged(stack: Stack) -> None:
    """Every failure above was an expected 503: the server logged no unhandled error."""
    log = stack.server.log_tail(limit=None)
    assert "database unavailable" in log
    assert "unhandled error" not in log and "Traceback" not in log, log
