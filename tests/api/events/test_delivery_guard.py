"""The SSRF guard at delivery time: in production, the endpoint's host is resolved and every
address checked again before each attempt (no delivery loop runs in this module but the one
the test drives)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from app.webhooks.delivery import Deliverer
from tests.api.events.test_delivery import attempts_of, create, hook
from tests.events_support import Receiver, wait_for
from tests.support import Key

pytestmark = pytest.mark.asyncio


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver().start()
    yield r
    r.stop()


async def test_production_refuses_private_addresses_at_delivery(app, client, key_a, receiver):
    """An endpoint that resolved to a public address when created may point inward later:
    the address is checked again before each attempt."""
    endpoint = await hook(client, key_a, receiver.url.replace("http://", "https://"))
    await create(client, key_a)
    services = app.app.state.services
    production = services.settings.model_copy(
        update={"app_env": "production", "events_poll_interval": 0.1}
    )
    deliverer = Deliverer(services.db, production, services.signals)
    try:
        await wait_for(lambda: _turn_until_logged(deliverer, client, key_a, endpoint["id"]))
    finally:
        await deliverer.close()
    attempts = await attempts_of(client, key_a, endpoint["id"])
    assert attempts[0]["statusCode"] is None
    assert "private" in attempts[0]["error"]
    assert receiver.snapshot() == []


async def _turn_until_logged(deliverer: Deliverer, client: Any, key: Key, hook_id: str) -> bool:
    await deliverer.turn()
    return bool(await attempts_of(client, key, hook_id))


async def test_allow_private_lets_production_deliver_inward(app, client, key_a, receiver):
    endpoint = await hook(client, key_a, receiver.url)
    await create(client, key_a)
    services = app.app.state.services
    lifted = services.settings.model_copy(update={"webhook_allow_private": True})
    deliverer = Deliverer(services.db, lifted, services.signals)
    try:
        await wait_for(lambda: _turn_until_logged(deliverer, client, key_a, endpoint["id"]))
    finally:
        await deliverer.close()
    assert (await attempts_of(client, key_a, endpoint["id"]))[0]["statusCode"] == 200
    assert len(receiver.snapshot()) == 1
