"""Optimistic concurrency: ETag on every answer that carries a client, If-Match on PUT, PATCH
and DELETE (412 PRECONDITION_FAILED when stale, and then nothing changed), and GraphQL's
expectedUpdatedAt on updateClient and deleteClient (a ConflictError member). One clock for
both: a change through one transport makes the other's tag stale."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from tests.hardening_support import auth, graphql, rest_create
from tests.support import Key, new_rfc

UPDATE = """
mutation Update($id: ID!, $input: UpdateClientInput!, $expected: DateTime) {
  updateClient(id: $id, input: $input, expectedUpdatedAt: $expected) {
    __typename
    ... on Client { id name updatedAt }
    ... on ConflictError { code message id currentUpdatedAt }
  }
}
"""
DELETE = """
mutation Delete($id: ID!, $expected: DateTime) {
  deleteClient(id: $id, expectedUpdatedAt: $expected) {
    __typename
    ... on DeletedClient { id deleted }
    ... on ConflictError { code message id currentUpdatedAt }
  }
}
"""
GET = "query Get($id: ID!) { client(id: $id) { __typename ... on Client { id name updatedAt } } }"


async def new_client(client: httpx.AsyncClient, key: Key) -> tuple[str, str]:
    r = await rest_create(
        client, key, {"name": "Original", "rfc": new_rfc(), "phone": "5512345678"}
    )
    assert r.status_code == 201, r.text
    return r.json()["data"]["id"], r.headers["etag"]


async def read(client: httpx.AsyncClient, key: Key, client_id: str) -> httpx.Response:
    r = await client.get(f"/v2/clients/{client_id}", headers=auth(key))
    assert r.status_code == 200, r.text
    return r


def etag_of(data: dict[str, Any]) -> str:
    """The ETag the README documents: the updatedAt milliseconds, quoted."""
    from datetime import datetime

    updated = datetime.fromisoformat(data["updatedAt"].replace("Z", "+00:00"))
    return f'"{int(updated.timestamp() * 1000)}"'


def assert_412(r: httpx.Response, current_updated_at: str) -> None:
    assert r.status_code == 412, r.text
    body = r.json()
    assert body["error"]["code"] == "PRECONDITION_FAILED"
    assert body["error"]["message"] and body["message"]
    assert body["error"]["details"]["currentUpdatedAt"] == current_updated_at


async def test_every_answer_with_a_client_has_its_etag(
    client: httpx.AsyncClient, key_a: Key
) -> None:
    client_id, created_tag = await new_client(client, key_a)
    got = await read(client, key_a, client_id)
    assert got.headers["etag"] == created_tag == etag_of(got.json()["data"])

    tags = [created_tag]
    for method in ("PUT", "PATCH"):
        r = await client.request(
            method, f"/v2/clients/{client_id}", json={"name": method}, headers=auth(key_a)
        )
        assert r.status_code == 200, r.text
        assert r.headers["etag"] == etag_of(r.json()["data"])
        assert (await read(client, key_a, client_id)).headers["etag"] == r.headers["etag"]
        tags.append(r.headers["etag"])
    assert len(set(tags)) == 3, "every change moves the tag"


@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE"])
async def test_a_stale_if_match_is_412_and_changes_nothing(
    client: httpx.AsyncClient, key_a: Key, method: str
) -> None:
    client_id, stale = await new_client(client, key_a)
    moved = await client.patch(
        f"/v2/clients/{client_id}", json={"name": "Cambiado"}, headers=auth(key_a)
    )
    assert moved.status_code == 200
    before = await read(client, key_a, client_id)

    body = None if method == "DELETE" else {"name": "Perdido", "phone": None}
    r = await client.request(
        method, f"/v2/clients/{client_id}", json=body, headers=auth(key_a, **{"If-Match": stale})
    )
    assert_412(r, before.json()["data"]["updatedAt"])
    after = await read(client, key_a, client_id)
    assert after.content == before.content
    assert after.headers["etag"] == before.headers["etag"]


@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE"])
async def test_a_current_if_match_goes_through(
    client: httpx.AsyncClient, key_a: Key, method: str
) -> None:
    client_id, tag = await new_client(client, key_a)
    body = None if method == "DELETE" else {"name": "Al día"}
    r = await client.request(
        method, f"/v2/clients/{client_id}", json=body, headers=auth(key_a, **{"If-Match": tag})
    )
    assert r.status_code == 200, r.text
    if method != "DELETE":
        assert r.json()["data"]["name"] == "Al día"
        assert r.headers["etag"] != tag


async def test_an_unparseable_if_match_never_matches(client: httpx.AsyncClient, key_a: Key) -> None:
    client_id, _ = await new_client(client, key_a)
    before = await read(client, key_a, client_id)
    for tag in ('"not-a-tag"', "garbage", '"1"'):
        r = await client.patch(
            f"/v2/clients/{client_id}", json={"name": "X"}, headers=auth(key_a, **{"If-Match": tag})
        )
        assert_412(r, before.json()["data"]["updatedAt"])
    assert (await read(client, key_a, client_id)).content == before.content


async def test_the_lost_update_is_refused(client: httpx.AsyncClient, key_a: Key) -> None:
    """Two editors read the same version; the second to write is told, not silently lost."""
    client_id, _ = await new_client(client, key_a)
    tag = (await read(client, key_a, client_id)).headers["etag"]
    first = await client.patch(
        f"/v2/clients/{client_id}",
        json={"name": "Primero"},
        headers=auth(key_a, **{"If-Match": tag}),
    )
    assert first.status_code == 200
    second = await client.put(
        f"/v2/clients/{client_id}",
        json={"legalName": "Segundo S.A."},
        headers=auth(key_a, **{"If-Match": tag}),
    )
    assert_412(second, first.json()["data"]["updatedAt"])
    final = (await read(client, key_a, client_id)).json()["data"]
    assert final["name"] == "Primero" and final["legalName"] is None


async def test_concurrent_writers_with_one_tag_exactly_one_wins(
    client: httpx.AsyncClient, key_a: Key
) -> None:
    client_id, tag = await new_client(client, key_a)
    answers = await asyncio.gather(
        *(
            client.patch(
                f"/v2/clients/{client_id}",
                json={"name": f"Escritor {n}"},
                headers=auth(key_a, **{"If-Match": tag}),
            )
            for n in range(10)
        )
    )
    statuses = sorted(r.status_code for r in answers)
    assert statuses == [200] + [412] * 9, [r.text for r in answers]
    winner = next(r for r in answers if r.status_code == 200).json()["data"]
    current = (await read(client, key_a, client_id)).json()["data"]
    assert current == winner


async def test_graphql_stale_expected_updated_at_is_a_conflict(
    client: httpx.AsyncClient, key_a: Key
) -> None:
    client_id, _ = await new_client(client, key_a)
    original = (await read(client, key_a, client_id)).json()["data"]["updatedAt"]
    moved = await client.patch(f"/v2/clients/{client_id}", json={"name": "B"}, headers=auth(key_a))
    assert moved.status_code == 200
    before = await read(client, key_a, client_id)
    current = before.json()["data"]["updatedAt"]

    for query, variables, field in (
        (
            UPDATE,
            {"id": client_id, "input": {"name": "Perdido"}, "expected": original},
            "updateClient",
        ),
        (DELETE, {"id": client_id, "expected": original}, "deleteClient"),
    ):
        r = await graphql(client, key_a, query, variables)
        assert r.status_code == 200 and "errors" not in r.json(), r.text
        conflict = r.json()["data"][field]
        assert conflict == {
            "__typename": "ConflictError",
            "code": "PRECONDITION_FAILED",
            "message": "The client was changed since it was read",
            "id": client_id,
            "currentUpdatedAt": current,
        }
    after = await read(client, key_a, client_id)
    assert after.content == before.content


async def test_graphql_current_expected_updated_at_goes_through(
    client: httpx.AsyncClient, key_a: Key
) -> None:
    client_id, _ = await new_client(client, key_a)
    current = (await graphql(client, key_a, GET, {"id": client_id})).json()["data"]["client"]
    variables = {"id": client_id, "input": {"name": "Nuevo"}, "expected": current["updatedAt"]}
    updated = (await graphql(client, key_a, UPDATE, variables)).json()["data"]["updateClient"]
    assert updated["__typename"] == "Client" and updated["name"] == "Nuevo"
    assert updated["updatedAt"] != current["updatedAt"]

    deleted = (
        await graphql(client, key_a, DELETE, {"id": client_id, "expected": updated["updatedAt"]})
    ).json()["data"]["deleteClient"]
    assert deleted == {"__typename": "DeletedClient", "id": client_id, "deleted": True}


async def test_one_clock_for_both_transports(client: httpx.AsyncClient, key_a: Key) -> None:
    client_id, tag = await new_client(client, key_a)
    variables = {"id": client_id, "input": {"name": "Desde GraphQL"}}
    updated = (await graphql(client, key_a, UPDATE, variables)).json()["data"]["updateClient"]
    stale_rest = await client.patch(
        f"/v2/clients/{client_id}", json={"name": "REST"}, headers=auth(key_a, **{"If-Match": tag})
    )
    assert_412(stale_rest, updated["updatedAt"])

    fresh = await read(client, key_a, client_id)
    assert fresh.headers["etag"] == etag_of({"updatedAt": updated["updatedAt"]})
    r = await client.patch(
        f"/v2/clients/{client_id}",
        json={"name": "REST"},
        headers=auth(key_a, **{"If-Match": fresh.headers["etag"]}),
    )
    assert r.status_code == 200
    stale_gql = await graphql(
        client, key_a, UPDATE, {**variables, "expected": updated["updatedAt"]}
    )
    conflict = stale_gql.json()["data"]["updateClient"]
    assert conflict["__typename"] == "ConflictError"
    assert conflict["currentUpdatedAt"] == r.json()["data"]["updatedAt"]
