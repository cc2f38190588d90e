"""IdempotencyService and its repository on a real database (both engines): claims, stored
answers, refusals, releases, stale claims."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta

import pytest

from app.auth.principal import Principal
from app.core import clock
from app.core.errors import IdempotencyKeyInUse, IdempotencyKeyReused, ValidationFailed
from app.db.database import Database
from app.platform.idempotency import (
    ABANDONED_AFTER,
    RETENTION,
    DoNotStore,
    IdempotencyService,
    Outcome,
    Recorder,
    fingerprint,
)
from tests.support import create_key, unique_team


async def principal(db: Database) -> Principal:
    key = await create_key(db, team=unique_team("idem"))
    return Principal(team_id=key.team_id, livemode=True, key_id=key.key_id)


def answer(status: int, body: str) -> Outcome:
    return Outcome(status, body, {"etag": '"1"'})


async def test_the_first_answer_is_stored_and_replayed(db: Database) -> None:
    service = IdempotencyService(db)
    who = await principal(db)
    runs = 0

    async def work(_recorder: Recorder) -> Outcome:
        nonlocal runs
        runs += 1
        return answer(201, f'{{"run":{runs}}}')

    first = await service.run(principal=who, key="k1", fingerprint="f", work=work)
    again = await service.run(principal=who, key="k1", fingerprint="f", work=work)
    assert (first.replayed, again.replayed) == (False, True)
    assert (again.status, again.body, again.headers) == (201, '{"run":1}', {"etag": '"1"'})
    assert runs == 1


async def test_work_may_record_its_answer_in_its_own_transaction(db: Database) -> None:
    service = IdempotencyService(db)
    who = await principal(db)

    async def work(recorder: Recorder) -> Outcome:
        outcome = answer(201, "{}")
        async with db.write() as session:
            await recorder.record(session, outcome)
        return outcome

    await service.run(principal=who, key="k", fingerprint="f", work=work)
    replay = await service.run(principal=who, key="k", fingerprint="f", work=work)
    assert replay.replayed and replay.status == 201


async def test_keys_belong_to_a_team_and_mode(db: Database) -> None:
    service = IdempotencyService(db)
    who, other = await principal(db), await principal(db)
    test_mode = Principal(team_id=who.team_id, livemode=False, key_id=who.key_id)
    for caller in (who, other, test_mode):
        outcome = await service.run(
            principal=caller, key="same", fingerprint="f", work=_answers(201, str(caller))
        )
        assert not outcome.replayed


def _answers(status: int, body: str) -> Callable[[Recorder], Awaitable[Outcome]]:
    async def work(_recorder: Recorder) -> Outcome:
        return answer(status, body)

    return work


async def test_another_request_with_the_key_is_refused(db: Database) -> None:
    service = IdempotencyService(db)
    who = await principal(db)
    await service.run(principal=who, key="k", fingerprint="a", work=_answers(201, "{}"))
    with pytest.raises(IdempotencyKeyReused):
        await service.run(principal=who, key="k", fingerprint="b", work=_answers(201, "{}"))


async def test_a_retry_while_the_first_runs_is_refused(db: Database) -> None:
    service = IdempotencyService(db)
    who = await principal(db)
    started, finish = asyncio.Event(), asyncio.Event()

    async def slow(_recorder: Recorder) -> Outcome:
        started.set()
        await finish.wait()
        return answer(201, "{}")

    first = asyncio.create_task(service.run(principal=who, key="k", fingerprint="f", work=slow))
    await started.wait()
    with pytest.raises(IdempotencyKeyInUse):
        await service.run(principal=who, key="k", fingerprint="f", work=_answers(201, "{}"))
    finish.set()
    assert (await first).status == 201


async def test_refusals_not_to_store_and_failures_release_the_key(db: Database) -> None:
    service = IdempotencyService(db)
    who = await principal(db)

    async def refused(_recorder: Recorder) -> Outcome:
        raise DoNotStore(ValidationFailed({"name": "Is required"}))

    async def broken(_recorder: Recorder) -> Outcome:
        raise RuntimeError("bug")

    with pytest.raises(ValidationFailed):
        await service.run(principal=who, key="k", fingerprint="f", work=refused)
    with pytest.raises(RuntimeError):
        await service.run(principal=who, key="k", fingerprint="f", work=broken)
    # Released both times: a corrected request with the same key runs.
    outcome = await service.run(principal=who, key="k", fingerprint="g", work=_answers(201, "ok"))
    assert (outcome.replayed, outcome.body) == (False, "ok")


@pytest.mark.parametrize("key", ["", "x" * 256, "bad\x00key", "bad\nkey"])
async def test_a_bad_key_is_refused_under_the_callers_field(db: Database, key: str) -> None:
    service = IdempotencyService(db)
    who = await principal(db)
    with pytest.raises(ValidationFailed) as refused:
        await service.run(
            principal=who,
            key=key,
            fingerprint="f",
            work=_answers(201, "{}"),
            key_field="idempotencyKey",
        )
    assert set(refused.value.fields) == {"idempotencyKey"}


@pytest.mark.parametrize(
    ("age", "answered"), [(RETENTION + timedelta(minutes=1), True), (ABANDONED_AFTER * 2, False)]
)
async def test_stale_claims_are_taken_over(db: Database, age: timedelta, answered: bool) -> None:
    """An expired key, or a claim whose request died unanswered, is claimed afresh."""
    service = IdempotencyService(db)
    repository = service.repository
    who = await principal(db)
    async with db.write() as session:
        old = await repository.insert_claim(
            session,
            team_id=who.team_id,
            livemode=True,
            key="old",
            fingerprint="other",
            now=clock.now() - age,
        )
        assert old is not None
        if answered:
            await repository.store_response(
                session, old, status=201, response='{"body":"","headers":{}}', now=clock.now()
            )
    outcome = await service.run(
        principal=who, key="old", fingerprint="f", work=_answers(201, "new")
    )
    assert (outcome.replayed, outcome.body) == (False, "new")


async def test_the_repository_claims_a_key_once(db: Database) -> None:
    repository = IdempotencyService(db).repository
    who = await principal(db)
    scope = {"team_id": who.team_id, "livemode": True, "key": "once"}
    async with db.write() as session:
        first = await repository.insert_claim(session, **scope, fingerprint="f", now=clock.now())
        second = await repository.insert_claim(session, **scope, fingerprint="f", now=clock.now())
        stored = await repository.find(session, **scope)
    assert first is not None and second is None
    assert stored is not None and (stored.id, stored.status, stored.response) == (first, None, None)


def test_fingerprints_ignore_key_order_and_tell_values_apart() -> None:
    assert fingerprint("create", {"a": 1, "b": [1, 2]}) == fingerprint(
        "create", {"b": [1, 2], "a": 1}
    )
    distinct = {fingerprint("create", value) for value in (1, 1.0, "1", True, None, [1], {"1": 1})}
    assert len(distinct) == 7
    assert fingerprint("create", {}) != fingerprint("update", {})
    assert fingerprint("create", 2**5000) != fingerprint("create", 2**5000 + 1)
