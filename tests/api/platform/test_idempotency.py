"""Idempotency-Key (REST) and idempotencyKey (GraphQL createClient), Stripe semantics: per team
and mode, the first answer replayed byte for byte (status included), a different request
refused (422 IDEMPOTENCY_KEY_REUSED), a retry while the first still runs refused (409
IDEMPOTENCY_KEY_IN_USE), keys up to 255 characters, validation refusals not kept, duplicate
refusals kept, concurrent retries create one client.

"Still running" is observed deterministically by writing an in-progress row (status NULL,
fresh created_at) into idempotency_keys, as a request in flight leaves it."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from typing import Any

import httpx
import pytest

from app.db.database import Database
from tests.hardening_support import (
    GQL_CREATE,
    auth,
    graphql,
    graphql_fingerprint,
    insert_idempotency_row,
    rest_create,
    rest_fingerprint,
    rest_ids,
)
from tests.support import Key, new_rfc


def body_of(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"name": "Cliente Idempotente", "rfc": new_rfc()}
    body.update(overrides)
    return body


def assert_error(r: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    payload: dict[str, Any] = r.json()
    assert payload["error"]["code"] == code, payload
    assert isinstance(payload["error"]["message"], str) and payload["error"]["message"]
    assert isinstance(payload["message"], str) and payload["message"]
    return payload


# -- REST -------------------------------------------------------------------------------------


async def test_retry_replays_the_first_answer_byte_for_byte(
    client: httpx.AsyncClient, key_a: Key
) -> None:
    body = body_of(email="idem@example.com", address={"zipCode": "03100"})
    first = await rest_create(client, key_a, body, **{"Idempotency-Key": "create-1"})
    assert first.status_code == 201, first.text
    assert "idempotent-replayed" not in first.headers

    # The same request, its keys in another order and spaced differently: the same request.
    reordered = json.dumps(dict(reversed(list(body.items()))), indent=2)
    for retry in (
        await rest_create(client, key_a, body, **{"Idempotency-Key": "create-1"}),
        await client.post(
            "/v2/clients",
            content=reordered,
            headers=auth(
                key_a, **{"Idempotency-Key": "create-1", "Content-Type": "application/json"}
            ),
        ),
    ):
        assert retry.status_code == 201
        assert retry.content == first.content
        assert retry.headers["etag"] == first.headers["etag"]
        assert retry.headers["location"] == first.headers["location"]
        assert retry.headers["idempotent-replayed"] == "true"
    assert await rest_ids(client, key_a) == [first.json()["data"]["id"]]


async def test_a_different_body_with_the_same_key_is_422(
    client: httpx.AsyncClient, key_a: Key
) -> None:
    body = body_of()
    first = await rest_create(client, key_a, body, **{"Idempotency-Key": "k"})
    assert first.status_code == 201

    other = await rest_create(client, key_a, body_of(), **{"Idempotency-Key": "k"})
    assert_error(other, 422, "IDEMPOTENCY_KEY_REUSED")
    same_rfc = await rest_create(
        client, key_a, {**body, "name": "Otro"}, **{"Idempotency-Key": "k"}
    )
    assert_error(same_rfc, 422, "IDEMPOTENCY_KEY_REUSED")
    assert await rest_ids(client, key_a) == [first.json()["data"]["id"]]


async def test_a_retry_while_the_first_runs_is_409_in_use(
    client: httpx.AsyncClient, db: Database, key_a: Key
) -> None:
    body = body_of()
    await insert_idempotency_row(db, key_a, "running", request_fingerprint=rest_fingerprint(body))

    r = await rest_create(client, key_a, body, **{"Idempotency-Key": "running"})
    assert_error(r, 409, "IDEMPOTENCY_KEY_IN_USE")
    # A different request with that key is refused as a reuse, running or not.
    other = await rest_create(client, key_a, body_of(), **{"Idempotency-Key": "running"})
    assert_error(other, 422, "IDEMPOTENCY_KEY_REUSED")
    assert await rest_ids(client, key_a) == []


async def test_a_claim_abandoned_by_a_dead_request_is_taken_over(
    client: httpx.AsyncClient, db: Database, key_a: Key
) -> None:
    """A request that died (a crash) between claiming the key and answering leaves a row with
    no answer; after a while a retry takes it over rather than being refused forever."""
    body = body_of()
    await insert_idempotency_row(
        db, key_a, "died", request_fingerprint=rest_fingerprint(body), age=timedelta(minutes=6)
    )
    r = await rest_create(client, key_a, body, **{"Idempotency-Key": "died"})
    assert r.status_code == 201, r.text
    assert await rest_ids(client, key_a) == [r.json()["data"]["id"]]


async def test_an_answer_older_than_a_day_is_not_replayed(
    client: httpx.AsyncClient, db: Database, key_a: Key
) -> None:
    body = body_of()
    stale = json.dumps({"body": '{"stale": true}', "headers": {}})
    await insert_idempotency_row(
        db,
        key_a,
        "old",
        request_fingerprint=rest_fingerprint(body),
        age=timedelta(hours=25),
        status=201,
        response=stale,
    )
    r = await rest_create(client, key_a, body, **{"Idempotency-Key": "old"})
    assert r.status_code == 201, r.text
    assert "idempotent-replayed" not in r.headers
    assert r.json()["data"]["id"] in await rest_ids(client, key_a)


async def test_keys_of_255_characters_are_accepted_and_256_refused(
    client: httpx.AsyncClient, key_a: Key
) -> None:
    longest = "k" * 255
    body = body_of()
    ok = await rest_create(client, key_a, body, **{"Idempotency-Key": longest})
    assert ok.status_code == 201, ok.text
    again = await rest_create(client, key_a, body, **{"Idempotency-Key": longest})
    assert again.content == ok.content and again.headers["idempotent-replayed"] == "true"

    too_long = await rest_create(client, key_a, body_of(), **{"Idempotency-Key": "k" * 256})
    details = assert_error(too_long, 400, "VALIDATION_ERROR")["error"]["details"]
    assert set(details) == {"Idempotency-Key"}
    empty = await rest_create(client, key_a, body_of(), **{"Idempotency-Key": ""})
    assert_error(empty, 400, "VALIDATION_ERROR")
    assert await rest_ids(client, key_a) == [ok.json()["data"]["id"]]


async def test_a_validation_refusal_is_not_kept(client: httpx.AsyncClient, key_a: Key) -> None:
    bad = await rest_create(client, key_a, body_of(rfc="NOT-AN-RFC"), **{"Idempotency-Key": "fix"})
    assert_error(bad, 400, "VALIDATION_ERROR")

    corrected = body_of()
    ok = await rest_create(client, key_a, corrected, **{"Idempotency-Key": "fix"})
    assert ok.status_code == 201, ok.text
    assert "idempotent-replayed" not in ok.headers
    replay = await rest_create(client, key_a, corrected, **{"Idempotency-Key": "fix"})
    assert replay.content == ok.content and replay.headers["idempotent-replayed"] == "true"
    assert await rest_ids(client, key_a) == [ok.json()["data"]["id"]]


async def test_a_duplicate_rfc_refusal_is_kept_and_replayed(
    client: httpx.AsyncClient, key_a: Key
) -> None:
    rfc = new_rfc()
    existing = await rest_create(client, key_a, body_of(rfc=rfc))
    assert existing.status_code == 201
    existing_id = existing.json()["data"]["id"]

    body = body_of(rfc=rfc, name="Segundo")
    refused = await rest_create(client, key_a, body, **{"Idempotency-Key": "dup"})
    details = assert_error(refused, 409, "DUPLICATE_RFC")["error"]["details"]
    assert details["existingClientId"] == existing_id

    # Even once the RFC is free again, the retry gets the first answer, not a new client.
    assert (
        await client.delete(f"/v2/clients/{existing_id}", headers=auth(key_a))
    ).status_code == 200
    replay = await rest_create(client, key_a, body, **{"Idempotency-Key": "dup"})
    assert replay.status_code == 409
    assert replay.content == refused.content
    assert replay.headers["idempotent-replayed"] == "true"
    assert await rest_ids(client, key_a) == []


async def test_another_team_uses_the_same_key_independently(
    client: httpx.AsyncClient, key_a: Key, key_b: Key
) -> None:
    body = body_of()
    a = await rest_create(client, key_a, body, **{"Idempotency-Key": "shared"})
    b = await rest_create(client, key_b, body, **{"Idempotency-Key": "shared"})
    assert a.status_code == b.status_code == 201, (a.text, b.text)
    assert "idempotent-replayed" not in b.headers
    assert a.json()["data"]["id"] != b.json()["data"]["id"]
    # A different body under team B's key is team B's business alone.
    b_other = await rest_create(client, key_b, body_of(), **{"Idempotency-Key": "b-only"})
    a_other = await rest_create(client, key_a, body_of(), **{"Idempotency-Key": "b-only"})
    assert b_other.status_code == a_other.status_code == 201
    assert len(await rest_ids(client, key_a)) == len(await rest_ids(client, key_b)) == 2


async def test_test_mode_and_live_mode_keys_are_separate(
    client: httpx.AsyncClient, key_a: Key, key_a_test: Key
) -> None:
    body = body_of()
    live = await rest_create(client, key_a, body, **{"Idempotency-Key": "mode"})
    test = await rest_create(client, key_a_test, body, **{"Idempotency-Key": "mode"})
    assert live.status_code == test.status_code == 201
    assert "idempotent-replayed" not in test.headers
    assert live.json()["data"]["livemode"] is True
    assert test.json()["data"]["livemode"] is False
    assert await rest_ids(client, key_a) == [live.json()["data"]["id"]]
    assert await rest_ids(client, key_a_test) == [test.json()["data"]["id"]]


async def test_concurrent_retries_create_one_client(client: httpx.AsyncClient, key_a: Key) -> None:
    body = body_of()
    answers = await asyncio.gather(
        *(rest_create(client, key_a, body, **{"Idempotency-Key": "race"}) for _ in range(20))
    )
    created = [r for r in answers if r.status_code == 201]
    assert created, [r.text for r in answers]
    assert len({r.content for r in created}) == 1
    for r in answers:
        if r.status_code != 201:
            assert_error(r, 409, "IDEMPOTENCY_KEY_IN_USE")
    assert await rest_ids(client, key_a) == [created[0].json()["data"]["id"]]


@pytest.mark.parametrize(
    "raw",
    [
        # Past 64 bits, past Python's 4,300-digit int-to-text limit, a lone surrogate, a NaN:
        # the fingerprint of any JSON body is taken before it is validated.
        b'"id": 1180591620717411303424',
        b'"timestamp": ' + b"9" * 5000,
        b'"legalName": "\\ud800"',
        b'"livemode": NaN',
    ],
)
async def test_any_json_body_gets_an_answer_not_a_500(
    client: httpx.AsyncClient, key_a: Key, raw: bytes
) -> None:
    content = b'{"name": "Cuerpo raro", "rfc": "' + new_rfc().encode() + b'", ' + raw + b"}"
    headers = auth(key_a, **{"Idempotency-Key": "odd", "Content-Type": "application/json"})
    r = await client.post("/v2/clients", content=content, headers=headers)
    assert r.status_code in (201, 400), r.text
    again = await client.post("/v2/clients", content=content, headers=headers)
    assert again.status_code == r.status_code
    if r.status_code == 201:
        assert again.content == r.content


# -- GraphQL ----------------------------------------------------------------------------------


async def gql_create(
    client: httpx.AsyncClient, key: Key, key_value: str | None, **fields: Any
) -> dict[str, Any]:
    r = await graphql(client, key, GQL_CREATE, {"input": fields, "key": key_value})
    assert r.status_code == 200, r.text
    payload: dict[str, Any] = r.json()
    return payload


def only_error_code(payload: dict[str, Any]) -> str:
    assert payload.get("data") is None, payload
    assert len(payload["errors"]) == 1, payload
    code: str = payload["errors"][0]["extensions"]["code"]
    return code


async def test_graphql_retry_returns_the_same_client(client: httpx.AsyncClient, key_a: Key) -> None:
    fields = {"name": "Idempotente GQL", "rfc": new_rfc(), "email": "gql@example.com"}
    first = (await gql_create(client, key_a, "g-1", **fields))["data"]["createClient"]
    again = (await gql_create(client, key_a, "g-1", **fields))["data"]["createClient"]
    assert first["__typename"] == "Client"
    assert again == first
    assert await rest_ids(client, key_a) == [first["id"]]

    reused = await gql_create(client, key_a, "g-1", **{**fields, "name": "Otro"})
    assert only_error_code(reused) == "IDEMPOTENCY_KEY_REUSED"
    assert await rest_ids(client, key_a) == [first["id"]]


async def test_graphql_retry_while_running_is_in_use(
    client: httpx.AsyncClient, db: Database, key_a: Key
) -> None:
    fields = {"name": "En curso", "rfc": new_rfc()}
    await insert_idempotency_row(
        db, key_a, "g-running", request_fingerprint=graphql_fingerprint(**fields)
    )
    payload = await gql_create(client, key_a, "g-running", **fields)
    assert only_error_code(payload) == "IDEMPOTENCY_KEY_IN_USE"
    assert await rest_ids(client, key_a) == []


async def test_graphql_key_length(client: httpx.AsyncClient, key_a: Key) -> None:
    ok = (await gql_create(client, key_a, "g" * 255, name="Largo", rfc=new_rfc()))["data"]
    assert ok["createClient"]["__typename"] == "Client"
    refused = (await gql_create(client, key_a, "g" * 256, name="Largo", rfc=new_rfc()))["data"]
    result = refused["createClient"]
    assert result["__typename"] == "ValidationError"
    assert [f["field"] for f in result["fields"]] == ["idempotencyKey"]
    assert await rest_ids(client, key_a) == [ok["createClient"]["id"]]


async def test_graphql_validation_error_is_not_kept_duplicate_is(
    client: httpx.AsyncClient, key_a: Key
) -> None:
    bad = (await gql_create(client, key_a, "g-fix", name="", rfc="NOPE"))["data"]["createClient"]
    assert bad["__typename"] == "ValidationError"
    fields = {"name": "Corregido", "rfc": new_rfc()}
    ok = (await gql_create(client, key_a, "g-fix", **fields))["data"]["createClient"]
    assert ok["__typename"] == "Client"

    dup = (await gql_create(client, key_a, "g-dup", name="Doble", rfc=fields["rfc"]))["data"]
    assert dup["createClient"]["__typename"] == "DuplicateRfcError"
    assert dup["createClient"]["existingClientId"] == ok["id"]
    gone = await client.delete(f"/v2/clients/{ok['id']}", headers=auth(key_a))
    assert gone.status_code == 200
    replay = (await gql_create(client, key_a, "g-dup", name="Doble", rfc=fields["rfc"]))["data"]
    assert replay == dup
    assert await rest_ids(client, key_a) == []


async def test_graphql_keys_are_per_team_and_mode(
    client: httpx.AsyncClient, key_a: Key, key_a_test: Key, key_b: Key
) -> None:
    fields = {"name": "Mismo", "rfc": new_rfc()}
    results = [
        (await gql_create(client, key, "g-shared", **fields))["data"]["createClient"]
        for key in (key_a, key_a_test, key_b)
    ]
    assert [r["__typename"] for r in results] == ["Client"] * 3
    assert len({r["id"] for r in results}) == 3
    assert [r["livemode"] for r in results] == [True, False, True]


async def test_graphql_concurrent_retries_create_one_client(
    client: httpx.AsyncClient, key_a: Key
) -> None:
    fields = {"name": "Carrera GQL", "rfc": new_rfc()}
    payloads = await asyncio.gather(
        *(gql_create(client, key_a, "g-race", **fields) for _ in range(20))
    )
    clients = [p["data"]["createClient"] for p in payloads if p.get("data")]
    assert clients and all(c["__typename"] == "Client" for c in clients)
    assert len({json.dumps(c, sort_keys=True) for c in clients}) == 1
    for p in payloads:
        if not p.get("data"):
            assert only_error_code(p) == "IDEMPOTENCY_KEY_IN_USE"
    assert await rest_ids(client, key_a) == [clients[0]["id"]]


async def test_graphql_odd_input_is_an_answer_not_an_internal_error(
    client: httpx.AsyncClient, key_a: Key
) -> None:
    # JSON bodies cannot carry a lone surrogate here (400), a GraphQL string literal may try.
    rfc = new_rfc()
    literal = (
        'mutation { createClient(idempotencyKey: "g-odd", '
        f'input: {{name: "\\ud800 x", rfc: "{rfc}"}}) {{ __typename }} }}'
    )
    r = await graphql(client, key_a, literal)
    assert r.status_code == 200, r.text
    payload = r.json()
    codes = [e.get("extensions", {}).get("code") for e in payload.get("errors", [])]
    assert "INTERNAL_ERROR" not in codes, payload
    if not codes:
        assert payload["data"]["createClient"]["__typename"] == "ValidationError", payload
