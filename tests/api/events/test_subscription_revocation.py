"""A subscription lasts no longer than its API key: revoked in this process (the after-commit
hook wakes the hub at once; the periodic re-check is pushed out of reach here), its streams
end with KeyRevoked, another key's go on, and a revoked key cannot start one. The socket side
(4403 on every worker, the CLI revoking from another process) is in
tests/e2e/test_events_revocation.py."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from app.core.config import Settings
from app.events.hub import KeyRevoked
from app.events.runtime import EventsRuntime
from app.events.types import Event
from tests.conftest import make_settings
from tests.support import Key, create_key, new_rfc

pytestmark = pytest.mark.asyncio

WAIT = 30.0  # a bound on a hang, never an assertion of speed


@pytest.fixture(scope="module")
def settings(database_url: str) -> Settings:
    return make_settings(database_url, events_poll_interval=600)


@pytest.fixture(scope="module")
async def runtime(app: Any) -> AsyncIterator[EventsRuntime]:
    running = EventsRuntime(app.app.state.services, deliver=False)
    running.start()
    yield running
    await running.stop()


async def created_event(client: Any, key: Key) -> str:
    r = await client.post(
        "/v2/clients", json={"name": "Cliente", "rfc": new_rfc()}, headers=key.headers
    )
    assert r.status_code == 201, r.text
    events = await client.get("/v2/events?limit=1", headers=key.headers)
    newest: str = events.json()["data"][0]["id"]
    return newest


async def next_of(stream: AsyncIterator[Event]) -> Event:
    return await asyncio.wait_for(anext(stream), WAIT)


async def test_revoking_a_key_ends_its_streams_only(runtime, app, client, db, key_a):
    services = app.app.state.services
    kept = await create_key(db, team=key_a.team, livemode=True)  # same team, another key
    start = await created_event(client, key_a)
    doomed_stream = await services.events.subscribe(
        principal=key_a.principal, types=None, after=start
    )
    kept_stream = await services.events.subscribe(principal=kept.principal, types=None, after=start)
    try:
        second = await created_event(client, kept)
        assert (await next_of(doomed_stream)).id == second
        assert (await next_of(kept_stream)).id == second

        revoked = await services.keys.revoke(key_a.key)
        assert revoked is not None and not revoked.already_revoked
        with pytest.raises(KeyRevoked):
            await next_of(doomed_stream)

        third = await created_event(client, kept)
        assert (await next_of(kept_stream)).id == third
        # A revoked key starts nothing.
        late = await services.events.subscribe(principal=key_a.principal, types=None, after=None)
        with pytest.raises(KeyRevoked):
            await next_of(late)
    finally:
        await doomed_stream.aclose()  # type: ignore[attr-defined]
        await kept_stream.aclose()  # type: ignore[attr-defined]
