"""Rate limits per API key: a token bucket (RATE_LIMIT_BURST tokens, RATE_LIMIT_PER_SECOND
back), on the database when it is PostgreSQL and in process on SQLite, so this module runs the
one the engine of the run uses.

The bucket here holds 3 tokens and refills at 0.01/s (one token every 100 s), so a test sees
it drain and never sees it refill: no assertion depends on timing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from app.db.database import Database
from tests.hardening_support import (
    ABSENT_ID,
    GQL_CREATE,
    AppClient,
    app_client,
    auth,
    graphql,
    rest_ids,
)
from tests.support import Key, create_key, new_rfc, unique_team

BURST = 3
RATE = 0.01  # tokens per second: one every 100 s
LIMIT_HEADERS = ("ratelimit-limit", "ratelimit-remaining", "ratelimit-reset")


@pytest.fixture(scope="module")
async def limited(database_url: str, db: Database) -> AsyncIterator[AppClient]:
    """The app with a tiny bucket, on this module's database (`db` migrated it)."""
    async with app_client(database_url, rate_limit_per_second=RATE, rate_limit_burst=BURST) as app:
        yield app


def limits(r: httpx.Response) -> tuple[int, int, int]:
    return (
        int(r.headers["ratelimit-limit"]),
        int(r.headers["ratelimit-remaining"]),
        int(r.headers["ratelimit-reset"]),
    )


async def exhaust(http: httpx.AsyncClient, key: Key) -> None:
    for _ in range(BURST):
        r = await http.get("/v2/clients", headers=auth(key))
        assert r.status_code == 200, r.text


def assert_rest_429(r: httpx.Response) -> int:
    assert r.status_code == 429, r.text
    body = r.json()
    assert body["error"]["code"] == "RATE_LIMITED"
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    assert isinstance(body["message"], str) and body["message"]
    retry_after = int(r.headers["retry-after"])
    # The next token is at most 1/RATE seconds away.
    assert 1 <= retry_after <= 1 / RATE
    assert limits(r)[:2] == (BURST, 0)
    return retry_after


async def test_the_bucket_drains_then_429_with_headers(limited: AppClient, key_a: Key) -> None:
    seen = []
    for _ in range(BURST):
        r = await limited.http.get("/v2/clients", headers=auth(key_a))
        assert r.status_code == 200, r.text
        assert "retry-after" not in r.headers
        seen.append(limits(r))
    assert [(limit, remaining) for limit, remaining, _ in seen] == [(3, 2), (3, 1), (3, 0)]
    resets = [reset for _, _, reset in seen]
    # Seconds until the bucket is full again: one more token missing after each request.
    assert resets == sorted(resets) and 0 < resets[0] <= 1 / RATE
    assert resets[-1] <= BURST / RATE

    refused = await limited.http.get("/v2/clients", headers=auth(key_a))
    assert_rest_429(refused)
    # Still refused: a refusal does not spend what the bucket does not have, nor refill it.
    assert_rest_429(await limited.http.get(f"/v2/clients/{ABSENT_ID}", headers=auth(key_a)))


async def test_graphql_answers_429_in_its_own_error_shape(limited: AppClient, key_a: Key) -> None:
    for _ in range(BURST):
        r = await graphql(limited.http, key_a, "{ __typename }")
        assert r.status_code == 200 and r.json() == {"data": {"__typename": "Query"}}
        assert limits(r)[0] == BURST

    r = await graphql(limited.http, key_a, "{ __typename }")
    assert r.status_code == 429, r.text
    assert r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert "data" not in body
    assert len(body["errors"]) == 1
    assert body["errors"][0]["extensions"]["code"] == "RATE_LIMITED"
    assert body["errors"][0]["message"]
    assert 1 <= int(r.headers["retry-after"]) <= 1 / RATE
    assert limits(r)[:2] == (BURST, 0)


async def test_both_transports_draw_from_one_bucket(limited: AppClient, key_a: Key) -> None:
    assert (await limited.http.get("/v2/clients", headers=auth(key_a))).status_code == 200
    assert (await graphql(limited.http, key_a, "{ __typename }")).status_code == 200
    assert (await limited.http.get("/v2/clients", headers=auth(key_a))).status_code == 200
    assert (await graphql(limited.http, key_a, "{ __typename }")).status_code == 429
    assert_rest_429(await limited.http.get("/v2/clients", headers=auth(key_a)))


async def test_a_refused_request_does_nothing(
    limited: AppClient, client: httpx.AsyncClient, key_a: Key
) -> None:
    await exhaust(limited.http, key_a)
    r = await limited.http.post(
        "/v2/clients", json={"name": "Tarde", "rfc": new_rfc()}, headers=auth(key_a)
    )
    assert_rest_429(r)
    g = await graphql(limited.http, key_a, GQL_CREATE, {"input": {"name": "T", "rfc": new_rfc()}})
    assert g.status_code == 429
    # Seen through the unlimited app of the module: nothing was written.
    assert await rest_ids(client, key_a) == []


async def test_one_team_exhausted_changes_nothing_for_another(
    limited: AppClient, db: Database, key_a: Key, key_b: Key
) -> None:
    await exhaust(limited.http, key_a)
    assert_rest_429(await limited.http.get("/v2/clients", headers=auth(key_a)))

    r = await limited.http.get("/v2/clients", headers=auth(key_b))
    assert r.status_code == 200
    assert limits(r)[:2] == (BURST, BURST - 1)
    # The bucket is the key's: another key of team A, and team A's test-mode key, are full.
    for other in (
        await create_key(db, team=key_a.team, livemode=True),
        await create_key(db, team=key_a.team, livemode=False),
    ):
        r = await limited.http.get("/v2/clients", headers=auth(other))
        assert r.status_code == 200 and limits(r)[:2] == (BURST, BURST - 1)
    assert_rest_429(await limited.http.get("/v2/clients", headers=auth(key_a)))


async def test_every_authenticated_answer_carries_the_headers(
    limited: AppClient, db: Database
) -> None:
    key = await create_key(db, team=unique_team("headers"))
    answers: list[tuple[str, httpx.Response]] = [
        (
            "201",
            await limited.http.post(
                "/v2/clients", json={"name": "H", "rfc": new_rfc()}, headers=auth(key)
            ),
        ),
        ("404", await limited.http.get(f"/v2/clients/{ABSENT_ID}", headers=auth(key))),
        ("400", await limited.http.get("/v2/clients?limit=0", headers=auth(key))),
        ("429", await limited.http.get("/v2/clients", headers=auth(key))),
    ]
    for label, r in answers:
        assert all(h in r.headers for h in LIMIT_HEADERS), (label, r.status_code, r.headers)
    assert [r.status_code for _, r in answers] == [201, 404, 400, 429]


async def test_unauthenticated_requests_neither_count_nor_carry_limits(
    limited: AppClient, key_a: Key
) -> None:
    for _ in range(BURST + 2):
        r = await limited.http.get("/v2/clients", headers=auth("sk_live_" + "x" * 32))
        assert r.status_code == 401
        assert not any(h in r.headers for h in LIMIT_HEADERS)
    r = await limited.http.get("/v2/clients", headers=auth(key_a))
    assert r.status_code == 200 and limits(r)[:2] == (BURST, BURST - 1)


async def test_zero_per_second_turns_limiting_off(database_url: str, db: Database) -> None:
    key = await create_key(db, team=unique_team("unlimited"))
    async with app_client(database_url, rate_limit_per_second=0, rate_limit_burst=1) as off:
        answers: list[Any] = [
            await off.http.get("/v2/clients", headers=auth(key)) for _ in range(10)
        ] + [await graphql(off.http, key, "{ __typename }") for _ in range(5)]
    assert [r.status_code for r in answers] == [200] * 15
    for r in answers:
        assert not any(h in r.headers for h in (*LIMIT_HEADERS, "retry-after"))
