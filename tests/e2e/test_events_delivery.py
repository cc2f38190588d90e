"""Webhook delivery by real server processes: it survives a SIGKILL between commit and
delivery and one in the middle of an attempt, and `python -m app deliver` runs it apart.
Its own module, so that no other server delivers from the same database meanwhile."""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import PYTHON, ServerFactory
from tests.e2e.test_events_server import FAST, create, rest
from tests.events_support import Receiver, wait_for_sync
from tests.support import unique_team

pytestmark = [pytest.mark.e2e]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver().start()
    yield r
    r.stop()


def test_delivery_survives_a_sigkill_between_commit_and_delivery(
    server_factory: ServerFactory, database_url: str, receiver: Receiver
):
    # First life: nothing is delivered (WEBHOOK_DELIVERY=external, no deliverer runs).
    first = server_factory(database_url=database_url, env={**FAST, "WEBHOOK_DELIVERY": "external"})
    key = first.create_key(unique_team("crash"))
    r = rest(first, key, "POST", "/v2/webhooks", json={"url": receiver.url, "events": ["*"]})
    secret = r.json()["data"]["secret"]
    made = [create(first, key) for _ in range(3)]
    first.kill()
    assert receiver.snapshot() == []
    # Second life: the pending deliveries are in the database.
    second = server_factory(workdir=first.cwd, database_url=database_url, env=FAST)
    wait_for_sync(lambda: len(receiver.accepted_ids()) >= 3)
    events = [r.verify(secret) for r in receiver.snapshot()]
    # Different clients' events may arrive in any order (one client's arrive in order).
    assert sorted(e["data"]["object"]["id"] for e in events) == sorted(m["id"] for m in made)
    second.stop()


def test_an_attempt_cut_by_sigkill_is_made_again(server_factory: ServerFactory, database_url: str):
    """The receiver holds the first attempt unanswered; the server dies mid-attempt; once
    that attempt's lease expires, the restarted server makes it again."""
    receiver = Receiver(delay=60).start()
    try:
        env = {**FAST, "WEBHOOK_TIMEOUT": "3"}
        first = server_factory(database_url=database_url, env=env)
        key = first.create_key(unique_team("midair"))
        r = rest(first, key, "POST", "/v2/webhooks", json={"url": receiver.url, "events": ["*"]})
        secret = r.json()["data"]["secret"]
        made = create(first, key)
        wait_for_sync(lambda: receiver.arrived >= 1)
        first.kill()
        receiver.delay = 0
        server_factory(workdir=first.cwd, database_url=database_url, env=env)
        wait_for_sync(lambda: receiver.accepted_ids())
        event = receiver.snapshot()[-1].verify(secret)
        assert event["data"]["object"]["id"] == made["id"]
    finally:
        receiver.stop()


def test_deliver_runs_apart(server_factory: ServerFactory, database_url: str, receiver: Receiver):
    srv = server_factory(database_url=database_url, env={**FAST, "WEBHOOK_DELIVERY": "external"})
    key = srv.create_key(unique_team("apart"))
    rest(srv, key, "POST", "/v2/webhooks", json={"url": receiver.url, "events": ["*"]})
    create(srv, key)
    log = Path(srv.cwd) / "deliver.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [PYTHON, "-m", "app", "deliver"],
            env=srv.env,
            cwd=srv.cwd,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_for_sync(lambda: receiver.accepted_ids())
        create(srv, key)
        wait_for_sync(lambda: len(receiver.accepted_ids()) >= 2)
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=30)
    assert code == 0, log.read_text()
    assert len(receiver.accepted_ids()) == 2
    for r in receiver.snapshot():
        assert r.headers["webhook-id"].startswith("evt_")
