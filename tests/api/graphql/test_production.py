"""GraphQL in production (APP_ENV=production): no IDE, no introspection, no suggestions,
unexpected faults masked, the caller's own errors shown as they are."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from app.core.config import Settings
from app.db.database import Database
from tests.api.graphql.gql import CREATE, GET, LIST, assert_argument_error, create, data, gql
from tests.conftest import make_settings
from tests.support import Key, new_rfc

# The fault this module's database is rigged with: a trigger refusing one name, with a
# message that must never reach the caller.
BOOM = "Boom trigger"
SECRET = "internal detail 7f3a"


@pytest.fixture(scope="module")
def settings(database_url: str) -> Settings:
    return make_settings(database_url, app_env="production")


@pytest.fixture(scope="module")
async def rigged(db: Database) -> AsyncIterator[None]:
    """A real, deterministic fault: the database itself refuses inserts of one name."""
    if db.dialect == "sqlite":
        statements = [
            f"""CREATE TRIGGER boom BEFORE INSERT ON clients WHEN NEW.name = '{BOOM}'
                BEGIN SELECT RAISE(ABORT, '{SECRET}'); END"""
        ]
    else:
        statements = [
            f"""CREATE FUNCTION boom() RETURNS trigger LANGUAGE plpgsql AS $$
                BEGIN
                  IF NEW.name = '{BOOM}' THEN RAISE EXCEPTION '{SECRET}'; END IF;
                  RETURN NEW;
                END $$""",
            "CREATE TRIGGER boom BEFORE INSERT ON clients FOR EACH ROW EXECUTE FUNCTION boom()",
        ]
    async with db.write() as session:
        for statement in statements:
            await session.execute(text(statement))
    yield


async def test_introspection_is_refused(client: httpx.AsyncClient, key_a: Key) -> None:
    for query in (
        "{ __schema { queryType { name } } }",
        '{ __type(name: "Client") { name fields { name } } }',
        'query { client(id: "x") { __typename } __schema { types { name } } }',
    ):
        body = await gql(client, key_a, query)
        assert "data" not in body, body
        assert "introspection" in body["errors"][0]["message"].lower()
    assert await data(client, key_a, "{ __typename }") == {"__typename": "Query"}


@pytest.mark.parametrize(
    ("query", "variables"),
    [
        ("{ clientz }", None),
        ('{ client(id: "x") { ... on Client { nam } } }', None),
        ("{ clients(frist: 1) { totalCount } }", None),
        ("query($f: ClientFiltr) { clients(filter: $f) { totalCount } }", None),
        ('mutation { updateClient(id: "x", input: {nme: "y"}) { __typename } }', None),
        (
            'mutation { createClient(input: {name: "y", rfc: "z", emial: "w"}) { __typename } }',
            None,
        ),
        ("query($f: ClientFilter) { clients(filter: $f) { totalCount } }", {"f": {"nme": "x"}}),
        (
            'mutation($i: UpdateClientInput!) { updateClient(id: "x", input: $i) { __typename } }',
            {"i": {"address": {"zipCod": "06600"}}},
        ),
    ],
)
async def test_errors_do_not_suggest_names(
    client: httpx.AsyncClient, key_a: Key, query: str, variables: dict[str, Any] | None
) -> None:
    response = await client.post(
        "/graphql", json={"query": query, "variables": variables}, headers=key_a.headers
    )
    assert response.status_code == 200
    body = response.json()
    assert body["errors"], body
    assert "did you mean" not in response.text.lower()


async def test_no_ide_in_production(client: httpx.AsyncClient) -> None:
    for accept in ("text/html", "text/html,application/xhtml+xml,*/*;q=0.8"):
        response = await client.get("/graphql", headers={"Accept": accept})
        assert response.status_code in (404, 405)
        assert response.headers["content-type"].startswith("application/json")
        assert "<html" not in response.text.lower()


async def test_unexpected_fault_is_masked(
    client: httpx.AsyncClient, key_a: Key, rigged: None
) -> None:
    response = await client.post(
        "/graphql",
        json={"query": CREATE, "variables": {"input": {"name": BOOM, "rfc": new_rfc()}}},
        headers=key_a.headers,
    )
    assert response.status_code == 200
    body = response.json()
    assert body["data"] is None
    [error] = body["errors"]
    assert error["message"] == "Internal server error"
    assert error["extensions"] == {
        "code": "INTERNAL_ERROR",
        "requestId": response.headers["x-request-id"],
    }
    assert error["path"] == ["createClient"]
    for leak in (SECRET, "trigger", "sqlite", "asyncpg", "Traceback", "INSERT", "clients"):
        assert leak.lower() not in response.text.lower(), leak

    # Nothing was written, and the app keeps answering.
    total = (await data(client, key_a, LIST, {"filter": {"name": BOOM}}))["clients"]
    assert total["totalCount"] == 0
    await create(client, key_a, name="Después del fallo", rfc=new_rfc())


async def test_unexpected_fault_beside_good_fields_masks_only_the_faulty_one(
    client: httpx.AsyncClient, key_a: Key, rigged: None
) -> None:
    query = f"""mutation {{
      ok: createClient(input: {{name: "Bien", rfc: "{new_rfc()}"}}) {{ __typename }}
      bad: createClient(input: {{name: "{BOOM}", rfc: "{new_rfc()}"}}) {{ __typename }}
    }}"""
    body = await gql(client, key_a, query)
    assert body["data"] is None  # `bad` is non-null, so the whole data is null
    assert [e["extensions"]["code"] for e in body["errors"]] == ["INTERNAL_ERROR"]
    assert SECRET not in str(body)


async def test_business_errors_are_not_masked(client: httpx.AsyncClient, key_a: Key) -> None:
    bad = (await data(client, key_a, CREATE, {"input": {"name": "", "rfc": "bad"}}))["createClient"]
    assert bad["__typename"] == "ValidationError"
    assert bad["message"] == "Invalid request parameters"
    assert {f["field"] for f in bad["fields"]} == {"name", "rfc"}

    missing = (await data(client, key_a, GET, {"id": "nope"}))["client"]
    assert missing["__typename"] == "NotFoundError" and missing["message"] == "Client not found"

    rfc = new_rfc()
    first = await create(client, key_a, name="Uno", rfc=rfc)
    again = {"input": {"name": "Dos", "rfc": rfc}}
    dup = (await data(client, key_a, CREATE, again))["createClient"]
    assert dup["__typename"] == "DuplicateRfcError" and dup["existingClientId"] == first["id"]


async def test_argument_errors_are_not_masked(client: httpx.AsyncClient, key_a: Key) -> None:
    fields = assert_argument_error(
        await gql(client, key_a, LIST, {"first": 0, "after": "garbage"}), "first", "after"
    )
    assert fields["first"] == "Must be between 1 and 100"
    query = "query($d: DateTime) { clients(filter: {createdFrom: $d}) { totalCount } }"
    assert_argument_error(await gql(client, key_a, query, {"d": "notadate"}), "$d")


async def test_documents_errors_are_shown(client: httpx.AsyncClient, key_a: Key) -> None:
    body = await gql(client, key_a, "{ clientz }")
    assert body["errors"][0]["message"] == "Cannot query field 'clientz' on type 'Query'."
    assert body["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
