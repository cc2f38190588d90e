"""Events, webhooks and subscriptions against real server processes (`python -m app serve`),
on the run's engine: GraphQL subscriptions over graphql-transport-ws (authentication in
connection_init, tenancy, commit order, resume with `after`, the per-key limit, shutdown) and
subscribers on one server seeing writes made through another;
test_events_delivery.py has the delivery ones (a database without this module's server)."""

from __future__ import annotations

import asyncio
import json
import signal
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import Server, ServerFactory
from tests.e2e.ws_support import (
    authenticated,
    closed_with,
    next_events,
    open_socket,
    receive,
    subscribe,
)
from tests.events_support import Receiver
from tests.support import new_rfc, unique_team

pytestmark = [pytest.mark.e2e]

FAST = {"EVENTS_POLL_INTERVAL": "0.2", "WEBHOOK_RETRY_SCHEDULE": "0.5,0.5,0.5"}


@pytest.fixture(scope="module")
def live(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    from tests.e2e.conftest import start_server

    srv = start_server(
        tmp_path_factory.mktemp("events-server"),
        database_url=database_url,
        env={**FAST, "SUBSCRIPTIONS_PER_KEY": "3"},
    )
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver().start()
    yield r
    r.stop()


def rest(server: Server, key: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
    return httpx.request(
        method,
        server.base_url + path,
        headers={"Authorization": f"Bearer {key}"},
        timeout=30,
        **kwargs,
    )


def create(server: Server, key: str) -> dict[str, Any]:
    r = rest(server, key, "POST", "/v2/clients", json={"name": "Cliente", "rfc": new_rfc()})
    assert r.status_code == 201, r.text
    data: dict[str, Any] = r.json()["data"]
    return data


def committed(server: Server, key: str) -> list[dict[str, Any]]:
    """The team's events, oldest first."""
    r = rest(server, key, "GET", "/v2/events?limit=100")
    return list(reversed(r.json()["data"]))


async def test_subscribers_get_their_team_events_in_commit_order(live):
    key_a = live.create_key(unique_team("sub-a"))
    key_b = live.create_key(unique_team("sub-b"))
    ws_a = await authenticated(live.base_url, key_a)
    ws_b = await authenticated(live.base_url, key_b)
    ws_deletes = await authenticated(live.base_url, key_a)
    try:
        await subscribe(ws_a, "1")
        await subscribe(ws_b, "1")
        await subscribe(ws_deletes, "d", types=["client.deleted"])
        await asyncio.sleep(0.5)  # let the subscriptions start (they see what comes after)
        first = await asyncio.to_thread(create, live, key_a)
        second = await asyncio.to_thread(create, live, key_a)
        await asyncio.to_thread(
            rest, live, key_a, "PATCH", f"/v2/clients/{first['id']}", json={"name": "Otro"}
        )
        await asyncio.to_thread(rest, live, key_a, "DELETE", f"/v2/clients/{second['id']}")
        got = await next_events(ws_a, 4)
        expected = await asyncio.to_thread(committed, live, key_a)
        assert [e["id"] for e in got] == [e["id"] for e in expected]
        assert [e["type"] for e in got] == [
            "client.created",
            "client.created",
            "client.updated",
            "client.deleted",
        ]
        assert got[0]["data"] == {"object": first}
        assert got[2]["previousAttributes"]["name"] == "Cliente"
        deletes = await next_events(ws_deletes, 1)
        assert deletes[0]["type"] == "client.deleted" and deletes[0]["id"] == got[3]["id"]
        # Team B saw nothing of A: its first event is its own.
        own = await asyncio.to_thread(create, live, key_b)
        (b_first,) = await next_events(ws_b, 1)
        assert b_first["data"]["object"]["id"] == own["id"]
    finally:
        for ws in (ws_a, ws_b, ws_deletes):
            await ws.close()


async def test_disconnect_and_resume_with_after_misses_nothing(live):
    key = live.create_key(unique_team("resume"))
    ws = await authenticated(live.base_url, key)
    await subscribe(ws, "1")
    await asyncio.sleep(0.5)
    await asyncio.to_thread(create, live, key)
    (seen,) = await next_events(ws, 1)
    await ws.close()
    for _ in range(3):  # while nobody listens
        await asyncio.to_thread(create, live, key)
    ws = await authenticated(live.base_url, key)
    try:
        await subscribe(ws, "2", after=seen["id"])
        replayed = await next_events(ws, 3)
        await asyncio.to_thread(create, live, key)
        (live_one,) = await next_events(ws, 1)
        expected = await asyncio.to_thread(committed, live, key)
        assert [e["id"] for e in [seen, *replayed, live_one]] == [e["id"] for e in expected]
    finally:
        await ws.close()


async def test_bad_subscriptions_are_errors_not_hangs(live):
    key = live.create_key(unique_team("bad-sub"))
    other = live.create_key(unique_team("bad-sub-other"))
    ws = await authenticated(live.base_url, key)
    try:
        cases = [
            ("t", {"types": ["client.exploded"]}, "VALIDATION_ERROR"),
            ("u", {"after": "evt_00000000000000000000000000"}, "VALIDATION_ERROR"),
            ("v", {"after": "nonsense"}, "VALIDATION_ERROR"),
        ]
        await asyncio.to_thread(create, live, other)
        foreign = (await asyncio.to_thread(committed, live, other))[0]["id"]
        cases.append(("w", {"after": foreign}, "VALIDATION_ERROR"))  # another team's event
        for op_id, variables, code in cases:
            await subscribe(ws, op_id, **variables)
            message = await receive(ws)
            assert message["type"] == "error" and message["id"] == op_id, message
            assert message["payload"][0]["extensions"]["code"] == code
        # A query over the socket is refused (queries and mutations go through POST).
        await subscribe(ws, "q", query="{ webhooks { id } }")
        message = await receive(ws)
        assert message["id"] == "q" and message["type"] == "error", message
        # The socket still works.
        await subscribe(ws, "ok")
        await asyncio.sleep(0.5)
        made = await asyncio.to_thread(create, live, key)
        (event,) = await next_events(ws, 1)
        assert event["data"]["object"]["id"] == made["id"]
    finally:
        await ws.close()


async def test_a_key_holds_a_limited_number_of_subscriptions(live):
    key = live.create_key(unique_team("limit"))
    ws = await authenticated(live.base_url, key)
    other = await authenticated(live.base_url, key)
    try:
        for op_id in ("1", "2"):
            await subscribe(ws, op_id)
        await subscribe(other, "3")
        await subscribe(other, "4")  # the fourth of this key (SUBSCRIPTIONS_PER_KEY=3)
        message = await receive(other)
        assert message["type"] == "error" and message["id"] == "4", message
        assert message["payload"][0]["extensions"]["code"] == "TOO_MANY_SUBSCRIPTIONS"
        # Ending one frees its place.
        await ws.send(json.dumps({"id": "1", "type": "complete"}))
        await asyncio.sleep(0.5)
        await subscribe(other, "5")
        await asyncio.sleep(0.5)
        await asyncio.to_thread(create, live, key)
        events = await next_events(other, 2)  # "3" and "5"
        assert len({e["id"] for e in events}) == 1
    finally:
        await ws.close()
        await other.close()


async def test_connections_without_a_valid_key_are_closed(live):
    key = live.create_key(unique_team("auth"))
    for payload_key, extra in (
        (None, {}),
        ("sk_live_" + "x" * 32, {}),
        (None, {"Authorization": 5}),
    ):
        ws = await open_socket(live.base_url, payload_key, **extra)
        code, _reason = await closed_with(ws)
        assert code == 4403
    # A subscribe before connection_init is refused with 4401.
    from websockets.asyncio.client import connect

    from tests.e2e.ws_support import ws_url

    ws = await connect(ws_url(live.base_url), subprotocols=["graphql-transport-ws"])
    await subscribe(ws, "1")
    assert (await closed_with(ws))[0] == 4401
    # A revoked key cannot connect either.
    done = live.cli("revoke-api-key", key)
    assert done.returncode == 0, done.stderr
    ws = await open_socket(live.base_url, key)
    assert (await closed_with(ws))[0] == 4403


async def test_subscribers_see_writes_made_through_another_server(
    server_factory: ServerFactory, database_url: str
):
    """Two servers, one database: PostgreSQL NOTIFY (or, on SQLite, the poll of the events
    table) carries events to the other process."""
    one = server_factory(database_url=database_url, env=FAST)
    two = server_factory(database_url=database_url, env=FAST)
    key = one.create_key(unique_team("cross"))
    ws = await authenticated(one.base_url, key)
    try:
        await subscribe(ws, "1")
        await asyncio.sleep(0.5)
        made = [await asyncio.to_thread(create, two, key) for _ in range(3)]
        got = await next_events(ws, 3)
        assert [e["data"]["object"]["id"] for e in got] == [m["id"] for m in made]
    finally:
        await ws.close()


async def test_shutdown_closes_open_sockets(server_factory: ServerFactory, database_url: str):
    srv = server_factory(database_url=database_url, env=FAST)
    key = srv.create_key(unique_team("shutdown"))
    ws = await authenticated(srv.base_url, key)
    await subscribe(ws, "1")
    await asyncio.sleep(0.5)
    srv.process.send_signal(signal.SIGTERM)
    code, _ = await closed_with(ws)
    assert code is not None and code in (1000, 1001, 1012)
    # uvicorn re-raises the SIGTERM it handled once shutdown completed.
    assert await asyncio.to_thread(srv.process.wait, 30) in (0, -signal.SIGTERM)
    assert "Traceback" not in srv.log()
