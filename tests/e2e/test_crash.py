"""Crash safety of the embedded database: a real server on a SQLite file, under a stream of
concurrent creates, is killed with SIGKILL ten times and started again on the same files.
Every client whose create was answered 201 is there afterwards, and the file passes
`PRAGMA integrity_check` (README, "Durability": WAL with synchronous=NORMAL survives a kill).

Bounded by counts, not by time: each cycle kills the server once CREATES_PER_CYCLE creates have
been answered, with more in flight."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import httpx
import pytest

from tests.conftest import ENGINE
from tests.e2e.conftest import Server, ServerFactory
from tests.support import new_rfc, unique_team

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        ENGINE != "sqlite",
        reason="SQLite-file crash test: runs in the TEST_DATABASE=sqlite half (PostgreSQL "
        "keeps its own durability guarantees)",
    ),
]

CYCLES = 10
CREATES_PER_CYCLE = 20
WRITERS = 4  # concurrent requests, so the kill lands while several are in flight


async def stream_until_killed(server: Server, key: str, cycle: int) -> list[str]:
    """Concurrent creates until CREATES_PER_CYCLE are answered, then SIGKILL; the ids that
    were answered 201 (requests cut by the kill are not counted either way)."""
    created: list[str] = []
    killed = asyncio.Event()
    headers = {"Authorization": f"Bearer {key}"}

    async def writer(http: httpx.AsyncClient, n: int) -> None:
        sent = 0
        while not killed.is_set() and sent < 10 * CREATES_PER_CYCLE:  # a bound, never reached
            sent += 1
            body = {"name": f"Ciclo {cycle} escritor {n}", "rfc": new_rfc()}
            try:
                r = await http.post("/v2/clients", json=body, headers=headers)
            except httpx.TransportError:
                return  # the server is gone
            assert r.status_code == 201, r.text
            created.append(r.json()["data"]["id"])
            if len(created) >= CREATES_PER_CYCLE and not killed.is_set():
                killed.set()
                server.kill()

    async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as http:
        await asyncio.gather(*(writer(http, n) for n in range(WRITERS)))
    assert killed.is_set() and not server.alive()
    return created


async def test_kill_nine_loses_no_answered_create(server_factory: ServerFactory) -> None:
    server = server_factory()
    workdir: Path = server.cwd
    key = server.create_key(unique_team("crash"))
    answered: list[str] = []

    for cycle in range(CYCLES):
        if cycle:
            server = server_factory(workdir=workdir)
            # Everything answered before the previous kills is served again at once.
            r = httpx.get(
                f"{server.base_url}/v2/clients",
                params={"limit": 1},
                headers={"Authorization": f"Bearer {key}"},
                timeout=30,
            )
            assert r.status_code == 200 and r.json()["totalResults"] >= len(answered)
        answered += await stream_until_killed(server, key, cycle)

    assert len(answered) == len(set(answered)) >= CYCLES * CREATES_PER_CYCLE
    database = workdir / "clients.db"
    with sqlite3.connect(database) as conn:
        # Opening the file replays the WAL the last kill left behind, as the server would.
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
        stored = {row[0] for row in conn.execute("SELECT public_id FROM clients")}
    missing = set(answered) - stored
    assert not missing, f"{len(missing)} clients answered 201 are gone: {sorted(missing)[:5]}"
