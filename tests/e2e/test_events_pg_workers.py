"""Two `serve --workers 2` servers on one PostgreSQL database, every worker running the
delivery loop: each event reaches a healthy receiver once (claims with FOR UPDATE SKIP
LOCKED: no attempt is made twice), and a subscriber on one worker receives the events of
writes made through any other (LISTEN/NOTIFY)."""

from __future__ import annotations

import asyncio
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.e2e.conftest import ServerFactory
from tests.e2e.pg_support import only_on_postgres
from tests.e2e.test_events_server import create, rest
from tests.e2e.ws_support import authenticated, next_events, subscribe
from tests.events_support import Receiver, wait_for_sync
from tests.support import unique_team

pytestmark = [only_on_postgres, pytest.mark.e2e]

ENV = {"DB_POOL_SIZE": "3", "DB_MAX_OVERFLOW": "5", "EVENTS_POLL_INTERVAL": "0.5"}
CLIENTS = 40


async def test_each_attempt_once_and_events_on_every_worker(
    server_factory: ServerFactory, database_url: str
):
    servers = [server_factory(database_url=database_url, workers=2, env=ENV) for _ in range(2)]
    key = servers[0].create_key(unique_team("workers"))
    receiver = Receiver().start()
    ws = await authenticated(servers[0].base_url, key)
    try:
        r = rest(
            servers[0], key, "POST", "/v2/webhooks", json={"url": receiver.url, "events": ["*"]}
        )
        secret = r.json()["data"]["secret"]
        hook_id = r.json()["data"]["id"]
        await subscribe(ws, "1")
        await asyncio.sleep(1.0)

        def write(i: int) -> str:
            return str(create(servers[i % 2], key)["id"])

        with ThreadPoolExecutor(8) as pool:
            made = await asyncio.get_running_loop().run_in_executor(
                None, lambda: list(pool.map(write, range(CLIENTS)))
            )
        # The subscriber (one worker of server one) gets every write, from every worker.
        streamed = await next_events(ws, CLIENTS)
        assert sorted(e["data"]["object"]["id"] for e in streamed) == sorted(made)
        ids = [e["id"] for e in streamed]
        assert ids == sorted(ids)  # one team's events in commit order (time-ordered ids)
        # Each event reached the receiver once: four delivery loops, no attempt twice.
        wait_for_sync(lambda: len(receiver.accepted_ids()) >= CLIENTS)
        await asyncio.sleep(2.0)  # any duplicate attempt would have arrived by now
        counts = Counter(r.event_id for r in receiver.snapshot())
        assert len(counts) == CLIENTS and set(counts.values()) == {1}
        for received in receiver.snapshot():
            received.verify(secret)
        attempts = rest(
            servers[1], key, "GET", f"/v2/webhooks/{hook_id}/deliveries?limit=100"
        ).json()["data"]
        assert len(attempts) == CLIENTS
        assert {(a["eventId"], a["attempt"]) for a in attempts} == {(i, 1) for i in counts}
    finally:
        await ws.close()
        receiver.stop()
