"""The `/graphql` transport: authentication, GraphiQL, malformed bodies, malformed documents,
document limits (refused before any resolver runs) and the committed SDL."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from app.auth.service import ApiKeyService
from app.db.database import Database
from app.main import create_app
from tests.api.graphql.gql import CREATE, LIST, StatementLog, gql, post
from tests.conftest import make_settings
from tests.support import Key, create_key, new_rfc, unique_team

ROOT = Path(__file__).resolve().parents[3]
UNAUTHORIZED = {
    "errors": [{"message": "Authentication required", "extensions": {"code": "UNAUTHORIZED"}}]
}


def assert_json_error(response: httpx.Response, status: int, code: str | None = None) -> Any:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert "data" not in body, body
    assert body["errors"] and all(isinstance(e["message"], str) for e in body["errors"])
    if code is not None:
        assert body["errors"][0]["extensions"]["code"] == code, body
    return body


# -- authentication ---------------------------------------------------------------------------


@pytest.fixture
async def revoked_key(db: Database) -> str:
    key = await create_key(db, team=unique_team("revoked"))
    assert await ApiKeyService(db).revoke(key.key) is not None
    return key.key


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "",
        "Bearer",
        "Bearer ",
        "Basic dXNlcjpwYXNz",
        "Bearer sk_live_tooshort",
        "Bearer sk_prod_" + "a" * 32,
        "Bearer sk_live_" + "a" * 32,  # well-formed, unknown
        "Token sk_live_" + "a" * 32,
        "REVOKED",
    ],
)
async def test_missing_or_bad_key_is_401_with_the_contract_body(
    client: httpx.AsyncClient, revoked_key: str, authorization: str | None
) -> None:
    headers = {}
    if authorization == "REVOKED":
        authorization = f"Bearer {revoked_key}"
    if authorization is not None:
        headers["Authorization"] = authorization
    response = await client.post("/graphql", json={"query": "{ __typename }"}, headers=headers)

    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert response.headers["content-type"].startswith("application/json")
    assert response.json() == UNAUTHORIZED


async def test_unauthenticated_mutation_writes_nothing(
    client: httpx.AsyncClient, key_a: Key
) -> None:
    rfc = new_rfc()
    bad_key = Key("sk_live_" + "b" * 32, 0, "", 0, True)
    response = await post(client, bad_key, CREATE, {"input": {"name": "x", "rfc": rfc}})
    assert response.status_code == 401
    result = await gql(client, key_a, LIST, {"filter": {"rfc": rfc}})
    assert result["data"]["clients"]["totalCount"] == 0


async def test_unauthenticated_malformed_body_is_still_401(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/graphql", content=b"{not json", headers={"Content-Type": "text/plain"}
    )
    assert response.status_code == 401
    assert response.json() == UNAUTHORIZED


# -- GraphiQL ---------------------------------------------------------------------------------


async def test_graphiql_page_in_development_without_a_key(client: httpx.AsyncClient) -> None:
    response = await client.get("/graphql", headers={"Accept": "text/html,*/*;q=0.8"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "graphiql" in response.text.lower()
    # The header every request needs (tests/api/http/test_ui.py checks its value).
    assert "Authorization" in response.text and "Bearer " in response.text


@pytest.mark.parametrize(
    "params",
    [
        {"query": "{ __typename }"},
        {"query": 'mutation { createClient(input: {name: "x", rfc: "y"}) { __typename } }'},
    ],
)
async def test_get_with_a_query_is_not_executed(
    client: httpx.AsyncClient, key_a: Key, params: dict[str, str]
) -> None:
    for headers in ({"Accept": "text/html"}, {"Accept": "application/json", **key_a.headers}):
        response = await client.get("/graphql", params=params, headers=headers)
        assert_json_error(response, 405, "METHOD_NOT_ALLOWED")
        assert "POST" in response.headers["allow"]


async def test_get_asking_for_json_is_not_the_ide(client: httpx.AsyncClient) -> None:
    response = await client.get("/graphql", headers={"Accept": "application/json"})
    assert_json_error(response, 405, "METHOD_NOT_ALLOWED")


# -- malformed bodies -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"{not json",
        b'{"query": "{ __typename }"',
        b"\xff\xfe{}",
        b"[]",
        b'[{"query": "{ __typename }"}]',
        b'"{ __typename }"',
        b"42",
        b"null",
        b"{}",
        b'{"query": null}',
        b'{"query": 5}',
        b'{"query": ["{ __typename }"]}',
        b'{"query": "   "}',
        b'{"query": "{ __typename }", "variables": []}',
        b'{"query": "{ __typename }", "variables": "{}"}',
        b'{"query": "{ __typename }", "variables": 1}',
        b'{"query": "{ __typename }", "operationName": 5}',
        b'{"query": "{ __typename }", "operationName": {}}',
    ],
)
async def test_malformed_body_is_a_json_400(
    client: httpx.AsyncClient, key_a: Key, content: bytes
) -> None:
    response = await client.post(
        "/graphql", content=content, headers={**key_a.headers, "Content-Type": "application/json"}
    )
    body = assert_json_error(response, 400, "VALIDATION_ERROR")
    error = body["errors"][0]
    assert error["message"] == "Invalid request parameters"
    assert [f["field"] for f in error["extensions"]["fields"]] == ["body"]


async def test_null_variables_and_operation_name_are_allowed(
    client: httpx.AsyncClient, key_a: Key
) -> None:
    body = {"query": "{ __typename }", "variables": None, "operationName": None}
    response = await client.post("/graphql", json=body, headers=key_a.headers)
    assert response.status_code == 200
    assert response.json() == {"data": {"__typename": "Query"}}


@pytest.mark.parametrize(
    "content_type",
    [
        None,
        "text/plain",
        "application/graphql",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
    ],
)
async def test_wrong_content_type_is_415(
    client: httpx.AsyncClient, key_a: Key, content_type: str | None
) -> None:
    headers = dict(key_a.headers)
    if content_type is not None:
        headers["Content-Type"] = content_type
    response = await client.post(
        "/graphql", content=orjson.dumps({"query": "{ __typename }"}), headers=headers
    )
    assert_json_error(response, 415)


async def test_json_with_charset_is_accepted(client: httpx.AsyncClient, key_a: Key) -> None:
    response = await client.post(
        "/graphql",
        content=orjson.dumps({"query": "{ __typename }"}),
        headers={**key_a.headers, "Content-Type": "application/json; charset=utf-8"},
    )
    assert response.status_code == 200
    assert response.json() == {"data": {"__typename": "Query"}}


async def test_body_over_256_kib_is_413(client: httpx.AsyncClient, key_a: Key) -> None:
    padding = " " * (256 * 1024)
    content = orjson.dumps({"query": "{ __typename }" + padding})
    response = await client.post(
        "/graphql", content=content, headers={**key_a.headers, "Content-Type": "application/json"}
    )
    assert_json_error(response, 413, "PAYLOAD_TOO_LARGE")

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted as it streams
        for i in range(0, len(content), 64 * 1024):
            yield content[i : i + 64 * 1024]

    response = await client.post(
        "/graphql", content=chunks(), headers={**key_a.headers, "Content-Type": "application/json"}
    )
    assert_json_error(response, 413, "PAYLOAD_TOO_LARGE")


async def test_every_answer_carries_a_request_id(client: httpx.AsyncClient, key_a: Key) -> None:
    sent = {"X-Request-Id": "trace-graphql-42"}
    json_type = {"Content-Type": "application/json"}
    for response in (
        await client.post("/graphql", json={"query": "{ __typename }"}, headers=key_a.headers),
        await client.post("/graphql", content=b"[]", headers={**key_a.headers, **json_type}),
        await client.post("/graphql", json={"query": "{ __typename }"}),
        await client.get("/graphql", headers={"Accept": "text/html"}),
    ):
        assert response.headers["x-request-id"]
    response = await client.post(
        "/graphql", json={"query": "{ __typename }"}, headers={**key_a.headers, **sent}
    )
    assert response.headers["x-request-id"] == sent["X-Request-Id"]


# -- malformed documents ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"query": "{"}, "Syntax Error"),
        ({"query": "{ clientz }"}, "clientz"),
        ({"query": "{ ...Missing }"}, "Missing"),
        ({"query": '{ client(id: "x") { ...Missing } }'}, "Missing"),
        ({"query": "fragment F on Query { __typename }"}, "operation"),
        ({"query": "query A { __typename }", "operationName": "B"}, "B"),
        ({"query": "subscription { clients { totalCount } }"}, "ubscription"),
        ({"query": "query A { __typename } query A { __typename }"}, "A"),
    ],
)
async def test_malformed_documents_are_graphql_errors_not_faults(
    client: httpx.AsyncClient, key_a: Key, body: dict[str, Any], fragment: str
) -> None:
    response = await client.post("/graphql", json=body, headers=key_a.headers)
    assert response.status_code in (200, 400), response.text
    result = response.json()
    assert "data" not in result, result
    codes = {e["extensions"]["code"] for e in result["errors"]}
    assert "INTERNAL_ERROR" not in codes, result
    assert any(fragment in e["message"] for e in result["errors"]), result


async def test_named_operation_is_chosen_by_operation_name(
    client: httpx.AsyncClient, key_a: Key
) -> None:
    query = "query A { a: __typename } query B { b: __typename }"
    result = await gql(client, key_a, query, operation_name="B")
    assert result == {"data": {"b": "Query"}}


async def test_execution_errors_keep_data_null(client: httpx.AsyncClient, key_a: Key) -> None:
    result = await gql(client, key_a, "{ clients(first: 0) { totalCount } }")
    assert result["data"] is None
    assert result["errors"][0]["path"] == ["clients"]


# -- limits -----------------------------------------------------------------------------------

LIMITS = {
    "max_depth": 3,
    "max_aliases": 3,
    "max_tokens": 120,
    "max_cost": 100,
    "count_cost": 10,
}


@pytest.fixture(scope="module")
async def limited(database_url: str, db: Database) -> AsyncIterator[tuple[Any, httpx.AsyncClient]]:
    """The app with tight document limits, on this module's database."""
    settings = make_settings(database_url, **{f"graphql_{k}": v for k, v in LIMITS.items()})
    app = create_app(settings)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        yield app, c
    await app.app.state.services.db.dispose()


DEEP = "{ clients { edges { node { address { street } } } } }"
SHALLOW = "{ clients { nodes { address { street } } } }"
MANY_ALIASES = (
    "mutation {"
    + "".join(
        f' c{n}: createClient(input: {{name: "Alias {n}", rfc: "{new_rfc()}"}}) {{ __typename }}'
        for n in range(4)
    )
    + " }"
)
FEW_ALIASES = "{ a: __typename b: __typename c: __typename }"
MANY_TOKENS = "{ clients(first: 1) { nodes { " + "id " * 120 + "} } }"
COSTLY = "{ clients(first: 50) { nodes { id name } } }"
CHEAP = "{ clients(first: 10) { nodes { id name } } }"


@pytest.mark.parametrize(
    ("refused", "accepted", "fragment"),
    [
        (DEEP, SHALLOW, "depth"),
        (MANY_ALIASES, FEW_ALIASES, "aliases"),
        (MANY_TOKENS, CHEAP, "tokens"),
        (COSTLY, CHEAP, "cost"),
    ],
)
async def test_limits_refuse_documents_before_anything_runs(
    limited: tuple[Any, httpx.AsyncClient],
    key_a: Key,
    refused: str,
    accepted: str,
    fragment: str,
) -> None:
    app, c = limited
    log = StatementLog(app)
    await gql(c, key_a, "{ __typename }")

    with log.capture():
        body = await gql(c, key_a, refused)
    assert "data" not in body, body
    assert any(fragment in e["message"] for e in body["errors"]), body
    assert log.touching_clients() == []
    assert all(e["extensions"]["code"] != "INTERNAL_ERROR" for e in body["errors"])

    with log.capture():
        body = await gql(c, key_a, accepted)
    assert "errors" not in body, body
    if accepted != FEW_ALIASES:
        assert log.touching_clients(), "the accepted document ran"


async def test_refused_mutation_document_creates_nothing(
    limited: tuple[Any, httpx.AsyncClient], key_a: Key
) -> None:
    _app, c = limited
    body = await gql(c, key_a, MANY_ALIASES)
    assert "data" not in body
    assert (await gql(c, key_a, "{ clients { totalCount } }"))["data"]["clients"]["totalCount"] == 0


async def test_cost_refusal_names_cost_and_budget(
    limited: tuple[Any, httpx.AsyncClient], key_a: Key
) -> None:
    _app, c = limited
    error = (await gql(c, key_a, COSTLY))["errors"][0]
    # 1 for `clients`, then 50 nodes of (1 for `nodes` + id + name)... as the rule counts it.
    cost, budget = error["extensions"]["cost"], error["extensions"]["budget"]
    assert budget == LIMITS["max_cost"] and cost > budget
    assert f"cost {cost}" in error["message"] and f"budget of {budget}" in error["message"]
    assert error["extensions"]["code"] == "QUERY_TOO_COSTLY"


async def test_page_size_from_a_variable_costs_the_maximum(
    limited: tuple[Any, httpx.AsyncClient], key_a: Key
) -> None:
    _app, c = limited
    query = "query($n: Int!) { clients(first: $n) { nodes { id } } }"
    body = await gql(c, key_a, query, {"n": 1})
    assert body["errors"][0]["extensions"]["code"] == "QUERY_TOO_COSTLY"


async def test_default_limits_refuse_alias_floods(client: httpx.AsyncClient, key_a: Key) -> None:
    flood = "{ " + " ".join(f"a{n}: __typename" for n in range(200)) + " }"
    body = await gql(client, key_a, flood)
    assert "data" not in body and "aliases" in body["errors"][0]["message"]
    pages = " ".join(
        f"p{n}: clients(first: 100) {{ nodes {{ id name rfc email phone }} }}" for n in range(20)
    )
    body = await gql(client, key_a, "{ " + pages + " }")
    assert "data" not in body and body["errors"][0]["extensions"]["code"] == "QUERY_TOO_COSTLY"


# -- SDL --------------------------------------------------------------------------------------


def test_exported_schema_equals_the_committed_sdl() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "app", "export-schema"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == (ROOT / "schema" / "schema.graphql").read_text()


def test_committed_sdl_has_the_contract_names() -> None:
    sdl = (ROOT / "schema" / "schema.graphql").read_text()
    for declaration in (
        "interface Error",
        "union ClientResult = Client | NotFoundError",
        "union CreateClientResult = Client | ValidationError | DuplicateRfcError",
        "clients(filter: ClientFilter = null, first: Int! = 20",
        "input: CreateClientInput!",
        "): CreateClientResult!",
        "scalar DateTime",
    ):
        assert declaration in sdl, declaration
