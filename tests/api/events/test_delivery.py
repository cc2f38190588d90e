"""Webhook delivery to a real receiver (an HTTP server on 127.0.0.1), by the delivery loop
running in this process as it does in every `serve` worker; short retry delays
(WEBHOOK_RETRY_SCHEDULE) so retries are seen within a test."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from app.core.config import Settings
from app.db.tables import WebhookAttempt
from app.events.runtime import EventsRuntime
from tests.conftest import make_settings
from tests.events_support import Receiver, wait_for
from tests.support import Key, new_rfc

pytestmark = pytest.mark.asyncio

SCHEDULE = "0.2,0.2,0.2"


@pytest.fixture(scope="module")
def settings(database_url: str) -> Settings:
    return make_settings(
        database_url,
        webhook_retry_schedule=SCHEDULE,
        events_poll_interval=0.1,
        webhook_timeout=2,
        webhook_concurrency_per_endpoint=2,
    )


@pytest.fixture(scope="module")
async def runtime(app: Any) -> AsyncIterator[EventsRuntime]:
    running = EventsRuntime(app.app.state.services, deliver=True)
    running.start()
    yield running
    await running.stop()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver().start()
    yield r
    r.stop()


async def hook(
    client: httpx.AsyncClient, key: Key, url: str, events: list[str] | None = None
) -> dict[str, Any]:
    r = await client.post(
        "/v2/webhooks", json={"url": url, "events": events or ["*"]}, headers=key.headers
    )
    assert r.status_code == 201, r.text
    data: dict[str, Any] = r.json()["data"]
    return data


async def create(client: httpx.AsyncClient, key: Key) -> dict[str, Any]:
    r = await client.post(
        "/v2/clients", json={"name": "Cliente", "rfc": new_rfc()}, headers=key.headers
    )
    assert r.status_code == 201
    data: dict[str, Any] = r.json()["data"]
    return data


async def attempts_of(client: httpx.AsyncClient, key: Key, hook_id: str) -> list[dict[str, Any]]:
    r = await client.get(f"/v2/webhooks/{hook_id}/deliveries?limit=100", headers=key.headers)
    assert r.status_code == 200
    data: list[dict[str, Any]] = r.json()["data"]
    return data


async def test_signed_delivery_verifies_with_standardwebhooks(runtime, client, key_a, receiver):
    endpoint = await hook(client, key_a, receiver.url)
    made = await create(client, key_a)
    got = await wait_for(lambda: receiver.snapshot())
    received = got[0]
    event = received.verify(endpoint["secret"])  # raises unless the signature is right
    assert received.event_id == event["id"] and event["id"].startswith("evt_")
    assert event["type"] == "client.created" and event["data"] == {"object": made}
    rest = await client.get(f"/v2/events/{event['id']}", headers=key_a.headers)
    assert rest.json()["data"] == event
    assert received.headers["content-type"] == "application/json"
    assert int(received.headers["webhook-timestamp"]) > 1_700_000_000
    assert received.headers["webhook-signature"].startswith("v1,")
    # Tampering is detected by the same check.
    from standardwebhooks import Webhook
    from standardwebhooks.webhooks import WebhookVerificationError

    with pytest.raises(WebhookVerificationError):
        Webhook(endpoint["secret"]).verify(received.body + b" ", received.headers)
    attempts = await wait_for(lambda: attempts_of(client, key_a, endpoint["id"]))
    assert attempts[0]["eventId"] == event["id"] and attempts[0]["statusCode"] == 200
    assert attempts[0]["attempt"] == 1 and attempts[0]["error"] is None


async def test_retries_after_500_until_200(runtime, client, key_a):
    receiver = Receiver(answer=lambda _r, seen: 500 if seen < 2 else 200).start()
    try:
        endpoint = await hook(client, key_a, receiver.url)
        await create(client, key_a)
        await wait_for(lambda: any(r.status == 200 for r in receiver.snapshot()))
        statuses = [r.status for r in receiver.snapshot()]
        assert statuses == [500, 500, 200]
        assert len({r.event_id for r in receiver.snapshot()}) == 1
        for r in receiver.snapshot():
            r.verify(endpoint["secret"])
        attempts = await wait_for(lambda: _with_len(attempts_of(client, key_a, endpoint["id"]), 3))
        assert [(a["attempt"], a["statusCode"]) for a in attempts] == [(3, 200), (2, 500), (1, 500)]
    finally:
        receiver.stop()


async def _with_len(coro: Any, n: int) -> Any:
    value = await coro
    return value if len(value) >= n else None


async def test_gives_up_after_the_schedule(runtime, client, key_a):
    receiver = Receiver(answer=lambda _r, _n: 503).start()
    try:
        endpoint = await hook(client, key_a, receiver.url)
        await create(client, key_a)
        attempts = await wait_for(lambda: _with_len(attempts_of(client, key_a, endpoint["id"]), 4))
        assert [a["attempt"] for a in attempts] == [4, 3, 2, 1]
        # Failed: no fifth attempt however long one waits (the loop polls every 0.1 s).
        await asyncio.sleep(1.0)
        assert len(await attempts_of(client, key_a, endpoint["id"])) == 4
        assert len(receiver.snapshot()) == 4
    finally:
        receiver.stop()


async def test_redirects_are_not_followed_and_errors_are_logged(runtime, client, key_a):
    receiver = Receiver(answer=lambda _r, _n: 302).start()
    try:
        endpoint = await hook(client, key_a, receiver.url)
        closed = await hook(client, key_a, "http://127.0.0.1:1/nothing-listens")
        await create(client, key_a)
        first = await wait_for(lambda: attempts_of(client, key_a, endpoint["id"]))
        assert first[-1]["statusCode"] == 302  # a failure: retried, never followed
        refused = await wait_for(lambda: attempts_of(client, key_a, closed["id"]))
        assert refused[-1]["statusCode"] is None and refused[-1]["error"]
    finally:
        receiver.stop()


async def test_order_per_client_and_at_least_once(runtime, client, key_a):
    """Every event arrives, and one client's events arrive in commit order, even when the
    receiver fails some attempts."""
    flaky: dict[str, int] = {}

    def answer(r: Any, seen: int) -> int:
        # Every third event fails its first attempt.
        n = flaky.setdefault(r.headers["webhook-id"], len(flaky))
        return 500 if n % 3 == 0 and seen == 0 else 200

    receiver = Receiver(answer=answer).start()
    try:
        endpoint = await hook(client, key_a, receiver.url)
        made = [await create(client, key_a) for _ in range(3)]
        for round_ in range(3):
            for c in made:
                r = await client.patch(
                    f"/v2/clients/{c['id']}", json={"name": f"N{round_}"}, headers=key_a.headers
                )
                assert r.status_code == 200
        r = await client.get("/v2/events?limit=100", headers=key_a.headers)
        committed = list(reversed(r.json()["data"]))
        assert len(committed) == 12
        await wait_for(lambda: len(receiver.accepted_ids()) >= 12)
        assert set(receiver.accepted_ids()) == {e["id"] for e in committed}
        by_id = {e["id"]: e for e in committed}
        for c in made:
            expected = [e["id"] for e in committed if e["data"]["object"]["id"] == c["id"]]
            arrived = [
                i for i in receiver.accepted_ids() if by_id[i]["data"]["object"]["id"] == c["id"]
            ]
            assert arrived == expected
        for r in receiver.snapshot():
            r.verify(endpoint["secret"])
    finally:
        receiver.stop()


async def test_a_failing_endpoint_does_not_delay_a_healthy_one(runtime, client, key_a):
    slow = Receiver(delay=1.5, answer=lambda _r, _n: 500).start()
    healthy = Receiver().start()
    try:
        await hook(client, key_a, slow.url)
        await hook(client, key_a, healthy.url)
        for _ in range(6):
            await create(client, key_a)
        # Six events are owed to each; the slow one holds at most 2 slots (per endpoint).
        await wait_for(lambda: len(healthy.accepted_ids()) == 6)
        assert len(slow.snapshot()) < 6
    finally:
        slow.stop()
        healthy.stop()


async def test_only_the_types_asked_for_and_only_the_team(runtime, client, key_a, key_b, receiver):
    await hook(client, key_a, receiver.url, events=["client.deleted"])
    made = await create(client, key_a)
    await create(client, key_b)  # another team: never sent here
    await client.delete(f"/v2/clients/{made['id']}", headers=key_a.headers)
    got = await wait_for(lambda: receiver.snapshot())
    await asyncio.sleep(0.5)
    types = [json.loads(r.body)["type"] for r in receiver.snapshot()]
    assert types == ["client.deleted"]
    assert len(got) == 1


async def test_deleting_an_endpoint_drops_its_pending_deliveries(runtime, app, client, key_a):
    receiver = Receiver(answer=lambda _r, _n: 500).start()
    try:
        endpoint = await hook(client, key_a, receiver.url)
        await create(client, key_a)
        await wait_for(lambda: receiver.snapshot())
        r = await client.delete(f"/v2/webhooks/{endpoint['id']}", headers=key_a.headers)
        assert r.status_code == 200
        seen = len(receiver.snapshot())
        await asyncio.sleep(1.0)
        assert len(receiver.snapshot()) <= seen + 1  # at most the attempt in flight
        db = app.app.state.services.db
        async with db.read() as session:
            rows = (await session.execute(select(WebhookAttempt.id))).all()
        assert rows is not None
    finally:
        receiver.stop()
