"""Tenancy as a property: random interleavings of REST and GraphQL calls (create, get, list,
update, delete) by two teams, one of them in both modes, aimed at ids collected from everyone,
never return or change another world's data.

A model holds each world's clients; after every step each answer is compared with the model,
and then every world's whole list with its model, so a write that leaked into another world
is caught at the step that made it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.db.database import Database
from tests.hardening_support import ABSENT_ID, auth, graphql
from tests.support import Key, create_key, new_rfc, unique_team

NOT_FOUND_BODY = {
    "error": {"code": "NOT_FOUND", "message": "Client not found"},
    "message": "The requested client does not exist",
}
FIELDS = "id name rfc livemode"
GQL = {
    "create": f"""mutation($input: CreateClientInput!) {{ createClient(input: $input) {{
        __typename ... on Client {{ {FIELDS} }}
        ... on DuplicateRfcError {{ code existingClientId }} }} }}""",
    "get": f"""query($id: ID!) {{ client(id: $id) {{
        __typename ... on Client {{ {FIELDS} }} ... on NotFoundError {{ code message id }} }} }}""",
    "list": f"query {{ clients(first: 100) {{ totalCount nodes {{ {FIELDS} }} }} }}",
    "update": f"""mutation($id: ID!, $input: UpdateClientInput!) {{
        updateClient(id: $id, input: $input) {{
        __typename ... on Client {{ {FIELDS} }} ... on NotFoundError {{ code message id }}
        ... on DuplicateRfcError {{ code existingClientId }} }} }}""",
    "delete": """mutation($id: ID!) { deleteClient(id: $id) { __typename
        ... on DeletedClient { id deleted } ... on NotFoundError { code message id } } }""",
}
NAMES = st.sampled_from(["Ana", "Bodega Ñandú", "Comercial México", "Dulces", "Éxito S.A."])


@dataclass
class World:
    """A team in one mode, and what it should see."""

    label: str
    key: Key
    clients: dict[str, dict[str, str]] = field(default_factory=dict)  # id → {name, rfc}


@dataclass
class Step:
    world: World
    op: str
    transport: str
    target: str | None = None
    name: str | None = None
    rfc_source: str | None = None


async def call(http: httpx.AsyncClient, step: Step, rfc: str | None) -> tuple[str, Any]:
    """Run one step; returns (outcome, payload) with outcome in ok / not_found / duplicate."""
    key, target = step.world.key, step.target
    if step.transport == "rest":
        if step.op == "create":
            r = await http.post(
                "/v2/clients", json={"name": step.name, "rfc": rfc}, headers=auth(key)
            )
        elif step.op == "get":
            r = await http.get(f"/v2/clients/{target}", headers=auth(key))
        elif step.op == "list":
            r = await http.get("/v2/clients", params={"limit": 100}, headers=auth(key))
        elif step.op == "update":
            body = {"name": step.name} if rfc is None else {"name": step.name, "rfc": rfc}
            r = await http.patch(f"/v2/clients/{target}", json=body, headers=auth(key))
        else:
            r = await http.delete(f"/v2/clients/{target}", headers=auth(key))
        payload = r.json()
        if r.status_code in (200, 201):
            data = payload["data"]
            if step.op == "list":
                return "ok", {c["id"]: {"name": c["name"], "rfc": c["client"]["rfc"]} for c in data}
            if step.op == "delete":
                return "ok", data
            return "ok", {"id": data["id"], "name": data["name"], "rfc": data["client"]["rfc"]}
        if r.status_code == 404:
            assert payload == NOT_FOUND_BODY, payload  # word for word what a missing id gets
            return "not_found", None
        assert r.status_code == 409 and payload["error"]["code"] == "DUPLICATE_RFC", r.text
        return "duplicate", payload["error"]["details"]["existingClientId"]

    variables: dict[str, Any] = {}
    if step.op == "create":
        variables = {"input": {"name": step.name, "rfc": rfc}}
    elif step.op in ("get", "delete"):
        variables = {"id": target}
    elif step.op == "update":
        change = {"name": step.name} if rfc is None else {"name": step.name, "rfc": rfc}
        variables = {"id": target, "input": change}
    r = await graphql(http, key, GQL[step.op], variables)
    assert r.status_code == 200 and "errors" not in r.json(), r.text
    result = next(iter(r.json()["data"].values()))
    if step.op == "list":
        assert result["totalCount"] == len(result["nodes"])
        assert all(c["livemode"] == key.livemode for c in result["nodes"])
        return "ok", {c["id"]: {"name": c["name"], "rfc": c["rfc"]} for c in result["nodes"]}
    kind = result["__typename"]
    if kind == "NotFoundError":
        assert result == {
            "__typename": "NotFoundError",
            "code": "NOT_FOUND",
            "message": "Client not found",
            "id": target,
        }
        return "not_found", None
    if kind == "DuplicateRfcError":
        return "duplicate", result["existingClientId"]
    if kind == "DeletedClient":
        return "ok", result
    assert kind == "Client", result
    assert result["livemode"] == key.livemode
    return "ok", {"id": result["id"], "name": result["name"], "rfc": result["rfc"]}


def pick_rfc(step: Step, worlds: list[World]) -> str | None:
    """A new RFC, one another world uses (theirs is no obstacle), or one of this world's."""
    if step.rfc_source is None:
        return None
    mine = [c["rfc"] for c in step.world.clients.values()]
    theirs = [c["rfc"] for w in worlds if w is not step.world for c in w.clients.values()]
    if step.rfc_source == "theirs" and theirs:
        return theirs[0]
    if step.rfc_source == "mine" and mine:
        return mine[0]
    return new_rfc()


def expect(step: Step, rfc: str | None) -> str:
    """What the model says the step's outcome is."""
    mine = step.world.clients
    if step.op == "list":
        return "ok"
    if step.op == "create":
        return "duplicate" if rfc in {c["rfc"] for c in mine.values()} else "ok"
    if step.target not in mine:
        return "not_found"
    others = {c["rfc"] for i, c in mine.items() if i != step.target}
    if step.op == "update" and rfc in others:
        return "duplicate"
    return "ok"


def apply(step: Step, rfc: str | None, payload: Any) -> None:
    mine = step.world.clients
    if step.op == "create":
        assert payload["id"] not in mine
        assert payload["name"] == step.name and payload["rfc"] == rfc
        mine[payload["id"]] = {"name": payload["name"], "rfc": payload["rfc"]}
    elif step.op == "get":
        assert {"name": payload["name"], "rfc": payload["rfc"]} == mine[payload["id"]]
    elif step.op == "list":
        assert payload == mine
    elif step.op == "update":
        expected = {"name": step.name, "rfc": rfc or mine[step.target]["rfc"]}
        assert payload == {"id": step.target, **expected}
        mine[step.target] = expected
    else:
        assert payload == {"id": step.target, "deleted": True} or payload == {
            "__typename": "DeletedClient",
            "id": step.target,
            "deleted": True,
        }
        del mine[step.target]


async def assert_every_world_matches(http: httpx.AsyncClient, worlds: list[World]) -> None:
    for world in worlds:
        outcome, seen = await call(http, Step(world, "list", "rest"), None)
        assert outcome == "ok" and seen == world.clients, world.label


@given(data=st.data())
@settings(
    max_examples=15,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
async def test_no_world_sees_or_changes_another(
    client: httpx.AsyncClient, db: Database, data: st.DataObject
) -> None:
    team_a, team_b = unique_team("prop-a"), unique_team("prop-b")
    worlds = [
        World("A live", await create_key(db, team=team_a, livemode=True)),
        World("A test", await create_key(db, team=team_a, livemode=False)),
        World("B live", await create_key(db, team=team_b, livemode=True)),
    ]
    ids: list[str] = [ABSENT_ID]  # every id anyone was given, deleted ones included

    for _ in range(data.draw(st.integers(min_value=1, max_value=18), label="steps")):
        world = data.draw(st.sampled_from(worlds), label="world")
        op = data.draw(st.sampled_from(["create", "create", "get", "list", "update", "delete"]))
        step = Step(world, op, data.draw(st.sampled_from(["rest", "graphql"]), label="via"))
        if op in ("get", "update", "delete"):
            step.target = data.draw(st.sampled_from(ids), label="target")
        if op in ("create", "update"):
            step.name = data.draw(NAMES, label="name")
            sources = ["new", "theirs", "mine"] if op == "create" else [None, "theirs", "mine"]
            step.rfc_source = data.draw(st.sampled_from(sources), label="rfc")
        rfc = pick_rfc(step, worlds)

        expected = expect(step, rfc)
        outcome, payload = await call(client, step, rfc)
        assert outcome == expected, (step, rfc, payload)
        if outcome == "ok":
            apply(step, rfc, payload)
            if op == "create":
                ids.append(payload["id"])
        elif outcome == "duplicate":
            # The existing client named is this world's own, never another's.
            assert payload in world.clients, (step, payload)
        await assert_every_world_matches(client, worlds)
