"""Revoking an API key ends its open GraphQL subscriptions on every worker: a real server
(`serve --workers 2`), real graphql-transport-ws clients, and the key revoked by the CLI in
another process. Every socket of the key closes with 4403, as a revoked key gets at connect
(an idle one too, as soon as it subscribes); another key's subscription goes on.

On PostgreSQL the workers learn of it by NOTIFY: the periodic re-check is pushed out of reach
(EVENTS_POLL_INTERVAL=600), so only the notification can close the sockets within the wait.
On SQLite the workers share one file and re-check every EVENTS_POLL_INTERVAL."""

from __future__ import annotations

import asyncio

import pytest

from tests.e2e.conftest import ServerFactory
from tests.e2e.pg_support import ENGINE
from tests.e2e.test_events_server import create
from tests.e2e.ws_support import authenticated, closed_with, next_events, open_socket, subscribe
from tests.support import unique_team

pytestmark = [pytest.mark.e2e]

POLL = "600" if ENGINE == "postgres" else "0.5"
SOCKETS = 4  # of the revoked key: over two workers, most likely on both


async def test_revoking_a_key_closes_its_subscriptions_on_every_worker(
    server_factory: ServerFactory, database_url: str
):
    server = server_factory(
        database_url=database_url,
        workers=2,
        env={"EVENTS_POLL_INTERVAL": POLL, "WEBHOOK_DELIVERY": "external"},
    )
    team = unique_team("revoke")
    doomed = server.create_key(team)
    kept = server.create_key(team)  # same team and mode, another key
    sockets = [await authenticated(server.base_url, doomed) for _ in range(SOCKETS)]
    idle = await authenticated(server.base_url, doomed)  # holds no subscription
    survivor = await authenticated(server.base_url, kept)
    try:
        for i, ws in enumerate(sockets):
            await subscribe(ws, f"{i}a")
            await subscribe(ws, f"{i}b", types=["client.created"])
        await subscribe(survivor, "s")
        await asyncio.sleep(1.0)  # let the subscriptions start (they see what comes after)
        # They work: each socket gets the create on both of its subscriptions.
        await asyncio.to_thread(create, server, kept)
        for ws in (*sockets, survivor):
            await next_events(ws, 2 if ws is not survivor else 1)

        done = await asyncio.to_thread(server.cli, "revoke-api-key", doomed)
        assert done.returncode == 0, done.stderr

        closes = await asyncio.gather(*(closed_with(ws) for ws in sockets))
        assert closes == [(4403, "Forbidden")] * SOCKETS
        # The idle socket is closed the moment it asks for anything.
        await subscribe(idle, "late")
        assert await closed_with(idle) == (4403, "Forbidden")
        # Reconnecting meets the same answer.
        again = await open_socket(server.base_url, doomed)
        assert await closed_with(again) == (4403, "Forbidden")
        # The other key's subscription goes on.
        made = await asyncio.to_thread(create, server, kept)
        (event,) = await next_events(survivor, 1)
        assert event["data"]["object"]["id"] == made["id"]
    finally:
        for ws in (*sockets, idle, survivor):
            await ws.close()
    assert "Traceback" not in server.log()
