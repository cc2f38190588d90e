"""Rate limits and idempotency shared by every process on PostgreSQL: two servers of two workers
each (four processes, two ports, so requests provably reach more than one process) on one
database, a bucket of BURST tokens refilling at one token per 100 s.

Sent all at once and spread over both servers, a key's requests get exactly BURST answers
between them, not BURST per process; an idempotent create retried on every process makes one
client."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack

import httpx
import pytest

from app.db.database import Database
from tests.conftest import make_settings
from tests.e2e.conftest import Server, start_server
from tests.e2e.pg_support import only_on_postgres
from tests.support import create_key, new_rfc, unique_team

pytestmark = [only_on_postgres, pytest.mark.e2e]

BURST = 25
RATE = "0.01"  # tokens per second: none come back during a test
SENT = 80


@pytest.fixture(scope="module")
def servers(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Server]]:
    env = {
        "RATE_LIMIT_PER_SECOND": RATE,
        "RATE_LIMIT_BURST": str(BURST),
        "DB_POOL_SIZE": "3",
        "DB_MAX_OVERFLOW": "5",
    }
    workdirs = [tmp_path_factory.mktemp("pg-hardening") for _ in range(2)]
    with ExitStack() as stack, ThreadPoolExecutor(2) as pool:
        # Started side by side: each start waits for its own /healthz.
        futures = [
            pool.submit(start_server, w, database_url=database_url, workers=2, env=env)
            for w in workdirs
        ]
        started, failures = [], []
        for future in futures:  # every server that did start is stopped, whatever failed
            try:
                srv = future.result()
            except Exception as exc:
                failures.append(exc)
                continue
            stack.callback(srv.stop)
            started.append(srv)
        if failures:
            raise failures[0]
        yield started


@pytest.fixture(scope="module")
async def db(database_url: str) -> AsyncIterator[Database]:
    """Keys are written straight into the database (quicker than the CLI, same rows)."""
    database = Database(make_settings(database_url))
    yield database
    await database.dispose()


async def new_key(db: Database, label: str) -> str:
    return (await create_key(db, team=unique_team(label))).key


@pytest.fixture(scope="module")
async def clients(servers: list[Server]) -> AsyncIterator[list[httpx.AsyncClient]]:
    """One client per server, no keep-alive: each request a new connection, which the kernel
    hands to either worker of that server."""
    limits = httpx.Limits(max_connections=SENT, max_keepalive_connections=0)
    async with (
        httpx.AsyncClient(base_url=servers[0].base_url, timeout=60, limits=limits) as a,
        httpx.AsyncClient(base_url=servers[1].base_url, timeout=60, limits=limits) as b,
    ):
        yield [a, b]


def auth(key: str, **extra: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}", **extra}


async def test_the_bucket_is_shared_by_every_process(
    db: Database, clients: list[httpx.AsyncClient]
) -> None:
    key = await new_key(db, "shared-bucket")
    answers = await asyncio.gather(
        *(clients[i % 2].get("/v2/clients", headers=auth(key)) for i in range(SENT))
    )
    assert Counter(r.status_code for r in answers) == {200: BURST, 429: SENT - BURST}
    for r in answers:
        assert r.headers["ratelimit-limit"] == str(BURST)
        if r.status_code == 429:
            assert r.json()["error"]["code"] == "RATE_LIMITED"
            assert 1 <= int(r.headers["retry-after"]) <= 100
            assert r.headers["ratelimit-remaining"] == "0"
    remaining = sorted(
        int(r.headers["ratelimit-remaining"]) for r in answers if r.status_code == 200
    )
    assert remaining == list(range(BURST)), "each token spent once, whichever process spent it"
    for http in clients:
        assert (await http.get("/v2/clients", headers=auth(key))).status_code == 429


async def test_another_team_keeps_its_own_bucket_on_every_process(
    db: Database, clients: list[httpx.AsyncClient]
) -> None:
    drained, fresh = await new_key(db, "drained"), await new_key(db, "fresh")
    await asyncio.gather(
        *(clients[i % 2].get("/v2/clients", headers=auth(drained)) for i in range(BURST + 5))
    )
    seen = []
    for i in range(4):
        r = await clients[i % 2].get("/v2/clients", headers=auth(fresh))
        assert r.status_code == 200, r.text
        seen.append(int(r.headers["ratelimit-remaining"]))
    assert seen == [BURST - 1, BURST - 2, BURST - 3, BURST - 4]
    assert (await clients[1].get("/v2/clients", headers=auth(drained))).status_code == 429


async def test_an_idempotent_create_retried_on_every_process_makes_one_client(
    db: Database, clients: list[httpx.AsyncClient]
) -> None:
    key = await new_key(db, "idem-pg")
    body = {"name": "Reintentos en todos", "rfc": new_rfc()}
    headers = auth(key, **{"Idempotency-Key": "everywhere"})
    answers = await asyncio.gather(
        *(clients[i % 2].post("/v2/clients", json=body, headers=headers) for i in range(20))
    )
    assert all(r.status_code < 500 for r in answers), [r.text for r in answers]
    created = [r for r in answers if r.status_code == 201]
    assert created and len({r.content for r in created}) == 1
    for r in answers:
        if r.status_code != 201:
            assert r.status_code == 409, r.text
            assert r.json()["error"]["code"] == "IDEMPOTENCY_KEY_IN_USE"
    listed = await clients[0].get("/v2/clients", headers=auth(key))
    assert [c["id"] for c in listed.json()["data"]] == [created[0].json()["data"]["id"]]
