"""The transactional outbox and the events API (REST and GraphQL), on SQLite or PostgreSQL.

Every change makes exactly one event, in the changing transaction: a refused change (bad
input, duplicate RFC, client in use), an update that changes nothing and a transaction that
fails after the change make none, and concurrent writes make one each.
"""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from app.clients.types import NewClient
from app.db.tables import Event as EventRow
from app.events.outbox import Outbox
from tests.support import Key, add_invoice, new_rfc

pytestmark = pytest.mark.asyncio


async def create(client: httpx.AsyncClient, key: Key, **fields: Any) -> dict[str, Any]:
    body = {"name": "Cliente Uno", "rfc": new_rfc(), **fields}
    r = await client.post("/v2/clients", json=body, headers=key.headers)
    assert r.status_code == 201, r.text
    return r.json()["data"]


async def events_of(client: httpx.AsyncClient, key: Key, **params: Any) -> dict[str, Any]:
    r = await client.get("/v2/events", params=params, headers=key.headers)
    assert r.status_code == 200, r.text
    return r.json()


async def count_events(db: Any, key: Key) -> int:
    async with db.read() as session:
        stmt = select(func.count()).where(EventRow.team_id == key.team_id)
        return int((await session.execute(stmt)).scalar_one())


async def test_create_update_delete_each_make_one_event(client, key_a):
    created = await create(client, key_a, email="a@example.com")
    r = await client.patch(
        f"/v2/clients/{created['id']}",
        json={"name": "Cliente Dos", "address": {"city": "Puebla"}},
        headers=key_a.headers,
    )
    updated = r.json()["data"]
    r = await client.delete(f"/v2/clients/{created['id']}", headers=key_a.headers)
    assert r.status_code == 200
    page = await events_of(client, key_a)
    assert [e["type"] for e in page["data"]] == [
        "client.deleted",
        "client.updated",
        "client.created",
    ]
    assert page["message"] == "Events retrieved successfully"
    assert page["totalResults"] == 3 and page["hasMore"] is False and page["next"] is None
    deleted_evt, updated_evt, created_evt = page["data"]
    # data.object is the client exactly as REST answered.
    assert created_evt["data"] == {"object": created}
    assert created_evt["previousAttributes"] is None
    assert created_evt["livemode"] is True
    assert created_evt["created"] == created["timestamp"]
    assert updated_evt["data"] == {"object": updated}
    assert updated_evt["previousAttributes"] == {
        "name": "Cliente Uno",
        "address": None,
        "updatedAt": created["updatedAt"],
    }
    assert deleted_evt["data"] == {"object": {"id": created["id"], "deleted": True}}
    for e in page["data"]:
        assert e["id"].startswith("evt_") and len(e["id"]) == 30
        assert e["created"].endswith("Z")
    # Ids are time-ordered: newest first sorts descending.
    ids = [e["id"] for e in page["data"]]
    assert ids == sorted(ids, reverse=True)


async def test_previous_attributes_of_nested_fields_name_only_what_changed(client, key_a):
    created = await create(client, key_a, address={"city": "Puebla", "zipCode": "72000"})
    await client.patch(
        f"/v2/clients/{created['id']}",
        json={"email": "nuevo@example.com", "address": {"city": "Cholula"}},
        headers=key_a.headers,
    )
    evt = (await events_of(client, key_a, type="client.updated"))["data"][0]
    previous = evt["previousAttributes"]
    assert previous["client"] == {"email": None}
    assert previous["address"] == {"city": "Puebla"}
    assert "name" not in previous


async def test_refused_and_empty_changes_make_no_event(client, db, key_a):
    created = await create(client, key_a)
    before = await count_events(db, key_a)
    # Validation error, duplicate RFC on create and on update, unchanged update, not found.
    r = await client.post("/v2/clients", json={"name": "", "rfc": "bad"}, headers=key_a.headers)
    assert r.status_code == 400
    r = await client.post(
        "/v2/clients", json={"name": "X", "rfc": created["client"]["rfc"]}, headers=key_a.headers
    )
    assert r.status_code == 409
    other = await create(client, key_a)
    before += 1
    r = await client.patch(
        f"/v2/clients/{other['id']}", json={"rfc": created["client"]["rfc"]}, headers=key_a.headers
    )
    assert r.status_code == 409
    r = await client.patch(
        f"/v2/clients/{created['id']}", json={"name": created["name"]}, headers=key_a.headers
    )
    assert r.status_code == 200
    # A client with invoices cannot be deleted: no event either.
    await add_invoice(db, created["id"])
    r = await client.delete(f"/v2/clients/{created['id']}", headers=key_a.headers)
    assert r.status_code == 409
    assert await count_events(db, key_a) == before


async def test_a_failing_outbox_rolls_the_change_back(app, client, key_a):
    """No change without its event: when writing the event fails, the client is not there."""
    service = app.app.state.services.clients
    original: Outbox = service.outbox

    class Broken(Outbox):
        async def write(self, *args: Any, **kwargs: Any) -> str:  # every event's insert
            await super().write(*args, **kwargs)
            raise RuntimeError("the disk is gone")

    service.outbox = Broken(original.events.dialect, original.render_client)
    try:
        rfc = new_rfc()
        with pytest.raises(RuntimeError):
            await service.create(
                principal=key_a.principal,
                data=NewClient(name="Nadie", rfc=rfc),
            )
    finally:
        service.outbox = original
    r = await client.get("/v2/clients", params={"rfc": rfc}, headers=key_a.headers)
    assert r.json()["totalResults"] == 0
    assert (await events_of(client, key_a))["totalResults"] == 0


async def test_concurrent_writes_make_one_event_each(client, db, key_a):
    clients = await asyncio.gather(*(create(client, key_a) for _ in range(12)))
    target = clients[0]["id"]

    async def rename(i: int) -> int:
        r = await client.patch(
            f"/v2/clients/{target}", json={"name": f"Nombre {i}"}, headers=key_a.headers
        )
        return r.status_code

    statuses = await asyncio.gather(*(rename(i) for i in range(10)))
    assert statuses == [200] * 10
    page = await events_of(client, key_a, limit=100)
    types = [e["type"] for e in page["data"]]
    assert types.count("client.created") == 12
    assert types.count("client.updated") == 10
    assert await count_events(db, key_a) == 22
    # One created event per client, naming it.
    created_ids = sorted(
        e["data"]["object"]["id"] for e in page["data"] if e["type"] == "client.created"
    )
    assert created_ids == sorted(c["id"] for c in clients)
    # The updates' objects follow each other: each one's previous name is the one before.
    updates = [e for e in reversed(page["data"]) if e["type"] == "client.updated"]
    for before, after in itertools.pairwise(updates):
        assert after["previousAttributes"]["name"] == before["data"]["object"]["name"]


async def test_list_pages_with_next_and_type(client, key_a):
    for _ in range(5):
        await create(client, key_a)
    first = await events_of(client, key_a, limit=2)
    assert len(first["data"]) == 2 and first["hasMore"] is True
    second = await events_of(client, key_a, next=first["next"])
    third = await events_of(client, key_a, next=second["next"])
    ids = [e["id"] for page in (first, second, third) for e in page["data"]]
    assert len(ids) == 5 and len(set(ids)) == 5
    assert third["hasMore"] is False and third["next"] is None
    # limit may accompany next; nothing else may.
    r = await client.get(
        "/v2/events",
        params={"next": first["next"], "type": "client.created"},
        headers=key_a.headers,
    )
    assert r.status_code == 400 and "type" in r.json()["error"]["details"]
    only = await events_of(client, key_a, type="client.deleted")
    assert only["data"] == [] and only["totalResults"] == 0


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": "0"}, "limit"),
        ({"limit": "101"}, "limit"),
        ({"limit": "x"}, "limit"),
        ({"type": "client.exploded"}, "type"),
        ({"next": "garbage"}, "next"),
        ({"sort": "asc"}, "sort"),
    ],
)
async def test_bad_list_parameters_are_400(client, key_a, params, field):
    r = await client.get("/v2/events", params=params, headers=key_a.headers)
    assert r.status_code == 400
    body = r.json()
    assert body["error"]["code"] == "VALIDATION_ERROR" and field in body["error"]["details"]


async def test_tokens_are_bound_to_team_and_mode(client, key_a, key_a_test, key_b):
    for _ in range(3):
        await create(client, key_a)
    token = (await events_of(client, key_a, limit=1))["next"]
    for other in (key_b, key_a_test):
        r = await client.get("/v2/events", params={"next": token}, headers=other.headers)
        assert r.status_code == 400
        assert "next" in r.json()["error"]["details"]


async def test_get_one_and_tenancy(client, key_a, key_a_test, key_b):
    await create(client, key_a)
    evt = (await events_of(client, key_a))["data"][0]
    r = await client.get(f"/v2/events/{evt['id']}", headers=key_a.headers)
    assert r.status_code == 200
    assert r.json() == {"data": evt, "message": "Event retrieved successfully"}
    for other in (key_b, key_a_test):
        r = await client.get(f"/v2/events/{evt['id']}", headers=other.headers)
        assert r.status_code == 404
        assert r.json()["error"]["message"] == "Event not found"
        assert (await events_of(client, other))["totalResults"] == 0
    for bad in ("evt_00000000000000000000000000", "evt_x", "client_01", "x" * 300):
        r = await client.get(f"/v2/events/{bad}", headers=key_a.headers)
        assert r.status_code == 404, bad
        assert r.json()["error"]["code"] == "NOT_FOUND"
    r = await client.get("/v2/events")
    assert r.status_code == 401


async def test_test_mode_changes_are_test_mode_events(client, key_a_test):
    await create(client, key_a_test)
    evt = (await events_of(client, key_a_test))["data"][0]
    assert evt["livemode"] is False and evt["data"]["object"]["livemode"] is False


EVENTS_QUERY = """
query($first: Int!, $after: String, $type: String) {
  events(first: $first, after: $after, type: $type) {
    nodes { id type created livemode data previousAttributes }
    edges { cursor node { id } }
    pageInfo { hasNextPage hasPreviousPage endCursor }
    totalCount
  }
}
"""


async def gql(client: httpx.AsyncClient, key: Key, query: str, **variables: Any) -> Any:
    r = await client.post(
        "/graphql", json={"query": query, "variables": variables}, headers=key.headers
    )
    assert r.status_code == 200, r.text
    return r.json()


async def test_graphql_events_and_event(client, key_a, key_b):
    made = [await create(client, key_a) for _ in range(3)]
    rest = (await events_of(client, key_a))["data"]
    first = await gql(client, key_a, EVENTS_QUERY, first=2)
    conn = first["data"]["events"]
    assert [n["id"] for n in conn["nodes"]] == [e["id"] for e in rest[:2]]
    assert conn["nodes"][0]["data"] == rest[0]["data"]
    assert conn["totalCount"] == 3 and conn["pageInfo"]["hasNextPage"] is True
    rest_page = await gql(client, key_a, EVENTS_QUERY, first=2, after=conn["pageInfo"]["endCursor"])
    assert [n["id"] for n in rest_page["data"]["events"]["nodes"]] == [rest[2]["id"]]
    assert rest[2]["data"]["object"]["id"] == made[0]["id"]
    one = await gql(
        client,
        key_a,
        "query($id: ID!) { event(id: $id) { __typename ... on Event { id type } "
        "... on NotFoundError { code message id } } }",
        id=rest[0]["id"],
    )
    assert one["data"]["event"] == {
        "__typename": "Event",
        "id": rest[0]["id"],
        "type": "client.created",
    }
    missing = await gql(
        client,
        key_b,
        "query($id: ID!) { event(id: $id) { __typename "
        "... on NotFoundError { code message id } } }",
        id=rest[0]["id"],
    )
    assert missing["data"]["event"] == {
        "__typename": "NotFoundError",
        "code": "NOT_FOUND",
        "message": "Event not found",
        "id": rest[0]["id"],
    }


async def test_graphql_bad_event_arguments_are_validation_errors(client, key_a):
    for variables, field in (
        ({"first": 0}, "first"),
        ({"first": 5, "type": "client.nope"}, "type"),
        ({"first": 5, "after": "nope"}, "after"),
    ):
        body = await gql(client, key_a, EVENTS_QUERY, **variables)
        error = body["errors"][0]
        assert error["extensions"]["code"] == "VALIDATION_ERROR"
        assert field in [f["field"] for f in error["extensions"]["fields"]]


async def test_graphql_mutations_make_events_too(client, key_a):
    r = await gql(
        client,
        key_a,
        "mutation($input: CreateClientInput!) "
        "{ createClient(input: $input) { ... on Client { id } } }",
        input={"name": "Desde GraphQL", "rfc": new_rfc()},
    )
    client_id = r["data"]["createClient"]["id"]
    evt = (await events_of(client, key_a))["data"][0]
    assert evt["type"] == "client.created" and evt["data"]["object"]["id"] == client_id
    rest = await client.get(f"/v2/clients/{client_id}", headers=key_a.headers)
    assert evt["data"]["object"] == rest.json()["data"]
