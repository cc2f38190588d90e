"""The edge of every request: one structured access line per request (request id, team, route
or GraphQL operation, status, latency) that never holds a key, an Authorization header, a
body or a query string (RFCs, emails and phones are personal data); security headers on every
answer, errors and unknown routes included; and the GraphQL cost limit."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from app.db.database import Database
from tests.api.graphql.gql import StatementLog
from tests.hardening_support import (
    ABSENT_ID,
    GQL_CREATE,
    SECURITY_HEADERS,
    AppClient,
    app_client,
    auth,
    graphql,
    rest_create,
)
from tests.support import Key, create_key, new_rfc, unique_team

ACCESS = "clients.access"


# -- access logs ------------------------------------------------------------------------------


def access_lines(caplog: pytest.LogCaptureFixture) -> dict[str, dict[str, Any]]:
    """The access records captured, by request id."""
    lines: dict[str, dict[str, Any]] = {}
    for record in caplog.records:
        if record.name == ACCESS:
            line = json.loads(record.getMessage())
            assert line["request_id"] not in lines, "one line per request"
            lines[line["request_id"]] = line
    return lines


def everything_logged(caplog: pytest.LogCaptureFixture) -> str:
    """Every record of every logger of the app, with whatever it carries (arguments, extras,
    traces). httpx's own lines are the test client's, not the server's: left out."""
    parts = []
    for record in caplog.records:
        if record.name.startswith(("httpx", "httpcore")):
            continue
        parts.append(record.getMessage())
        parts.extend(repr(v) for v in record.__dict__.values())
    return "\n".join(parts)


async def test_one_line_per_request_and_no_personal_data(
    client: httpx.AsyncClient, key_a: Key, caplog: pytest.LogCaptureFixture
) -> None:
    rfc, email, phone = new_rfc(), "maria.lopez@example.com", "+52 55 9876 5432"
    gql_rfc, gql_email = new_rfc(), "gql.secreto@example.com"
    literal_rfc = new_rfc()
    requests: list[tuple[httpx.Response, dict[str, Any]]] = []

    with caplog.at_level(logging.INFO):
        r = await rest_create(
            client, key_a, {"name": "Privada", "rfc": rfc, "email": email, "phone": phone}
        )
        assert r.status_code == 201
        client_id = r.json()["data"]["id"]
        requests.append((r, {"route": "/v2/clients", "status": 201, "method": "POST"}))

        r = await client.get(
            "/v2/clients",
            params={"email": email, "rfc": rfc, "name": "Privada"},
            headers=auth(key_a),
        )
        assert r.status_code == 200 and r.json()["totalResults"] == 1
        requests.append((r, {"route": "/v2/clients", "status": 200, "method": "GET"}))

        r = await client.patch(
            f"/v2/clients/{client_id}", json={"phone": phone, "email": email}, headers=auth(key_a)
        )
        requests.append((r, {"route": "/v2/clients/{clientId}", "status": 200}))

        variables = {"input": {"name": "GQL", "rfc": gql_rfc, "email": gql_email}}
        r = await graphql(client, key_a, GQL_CREATE, variables, operation_name="Create")
        assert r.json()["data"]["createClient"]["__typename"] == "Client"
        requests.append((r, {"route": "/graphql", "status": 200, "operation": "Create"}))

        literal = f'{{ clients(filter: {{rfc: "{literal_rfc}"}}) {{ totalCount }} }}'
        r = await graphql(client, key_a, literal)
        requests.append((r, {"route": "/graphql", "status": 200}))

        # An operationName that is not a GraphQL name is not logged as sent.
        r = await graphql(client, key_a, "query Q { __typename }", operation_name=gql_email)
        requests.append((r, {"route": "/graphql", "operation": "<invalid>"}))

        r = await client.get(
            "/v2/clients", params={"email": email}, headers=auth("sk_live_" + "n" * 32)
        )
        requests.append((r, {"route": "/v2/clients", "status": 401, "team_id": None}))

        r = await client.get(f"/nowhere/{email}", params={"rfc": rfc}, headers=auth(key_a))
        requests.append((r, {"route": None, "status": 404, "team_id": None}))

    lines = access_lines(caplog)
    assert len(lines) == len(requests)
    for response, expected in requests:
        line = lines[response.headers["x-request-id"]]
        assert line["status"] == response.status_code
        assert isinstance(line["latency_ms"], int | float) and line["latency_ms"] >= 0
        assert line["method"] == response.request.method
        expected = {"team_id": key_a.team_id, **expected}
        assert {k: line.get(k) for k in expected} == expected, line

    logged = everything_logged(caplog)
    secrets = [key_a.key, key_a.key.split("_")[-1], "Bearer", "authorization", "Authorization"]
    # Whole values (and the phone's digits, as it may be stored): short fragments would match
    # timestamps, thread ids or request ids by chance.
    personal = [rfc, email, phone, "5598765432", gql_rfc, gql_email, literal_rfc, "maria.lopez"]
    for value in secrets + personal + ["email=", "rfc="]:
        assert value not in logged, value


async def test_the_request_id_is_echoed_and_logged(
    client: httpx.AsyncClient, key_a: Key, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger=ACCESS):
        sane = await client.get(
            "/v2/clients", headers=auth(key_a, **{"X-Request-Id": "trace-42.a:b"})
        )
        insane = await client.get(
            "/v2/clients", headers=auth(key_a, **{"X-Request-Id": "a b<script>"})
        )
    assert sane.headers["x-request-id"] == "trace-42.a:b"
    assert insane.headers["x-request-id"] != "a b<script>"
    assert set(access_lines(caplog)) == {"trace-42.a:b", insane.headers["x-request-id"]}


# -- security headers -------------------------------------------------------------------------


@pytest.fixture(scope="module")
async def strict(database_url: str, db: Database) -> AsyncIterator[AppClient]:
    """An app that limits each key to one request (for a 429) and a cost budget of 10."""
    async with app_client(
        database_url, rate_limit_per_second=0.01, rate_limit_burst=1, graphql_max_cost=10
    ) as app:
        yield app


async def every_kind_of_answer(
    client: httpx.AsyncClient, strict: AppClient, db: Database, key: Key
) -> list[tuple[int, httpx.Response]]:
    created = await rest_create(client, key, {"name": "Cabeceras", "rfc": new_rfc()})
    client_id = created.json()["data"]["id"]
    h = auth(key)
    once = await create_key(db, team=unique_team("once"))
    dup_body = {"name": "Dup", "rfc": created.json()["data"]["client"]["rfc"]}
    idem = {**h, "Idempotency-Key": "headers"}
    await client.post("/v2/clients", json={"name": "I", "rfc": new_rfc()}, headers=idem)
    return [
        (201, created),
        (200, await client.get(f"/v2/clients/{client_id}", headers=h)),
        (200, await client.get("/v2/clients", headers=h)),
        (200, await graphql(client, key, "{ __typename }")),
        (200, await client.get("/healthz")),
        (200, await client.get("/readyz")),
        (400, await client.get("/v2/clients?limit=1000", headers=h)),
        (
            400,
            await client.post(
                "/graphql", content=b"[]", headers={**h, "Content-Type": "application/json"}
            ),
        ),
        (401, await client.get("/v2/clients")),
        (401, await client.post("/graphql", json={"query": "{ __typename }"})),
        (404, await client.get(f"/v2/clients/{ABSENT_ID}", headers=h)),
        (404, await client.get("/no/such/route")),
        (405, await client.delete("/v2/clients", headers=h)),
        (409, await client.post("/v2/clients", json=dup_body, headers=h)),
        (
            412,
            await client.patch(
                f"/v2/clients/{client_id}", json={}, headers={**h, "If-Match": '"1"'}
            ),
        ),
        (413, await client.post("/v2/clients", content=b"x" * (256 * 1024 + 1), headers=h)),
        (
            415,
            await client.post(
                "/v2/clients", content=b"name=x", headers={**h, "Content-Type": "text/plain"}
            ),
        ),
        (422, await client.post("/v2/clients", json={"name": "J", "rfc": new_rfc()}, headers=idem)),
        (200, await strict.http.get("/v2/clients", headers=auth(once))),
        (429, await strict.http.get("/v2/clients", headers=auth(once))),
    ]


async def test_security_headers_on_every_answer(
    client: httpx.AsyncClient, strict: AppClient, db: Database, key_a: Key
) -> None:
    answers = await every_kind_of_answer(client, strict, db, key_a)
    assert [status for status, _ in answers] == [r.status_code for _, r in answers], [
        (status, r.status_code, r.text[:200]) for status, r in answers
    ]
    for status, r in answers:
        for name, value in SECURITY_HEADERS.items():
            assert r.headers.get(name) == value, (status, r.request.url, name)
        assert r.headers.get("cache-control") == "no-store", (status, r.request.url)
        assert r.headers.get("x-request-id"), (status, r.request.url)
        assert r.headers["content-type"].startswith("application/json"), (status, r.request.url)


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("DELETE", "/v2/clients", "GET, POST"),
        ("OPTIONS", "/v2/clients", "GET, POST"),
        ("POST", f"/v2/clients/{ABSENT_ID}", "GET, PUT, PATCH, DELETE"),
        ("OPTIONS", f"/v2/clients/{ABSENT_ID}", "GET, PUT, PATCH, DELETE"),
        ("PUT", "/graphql", "POST"),
        ("POST", "/healthz", "GET"),
    ],
)
async def test_405_allow_names_every_method_of_the_path(
    client: httpx.AsyncClient, key_a: Key, method: str, path: str, allow: str
) -> None:
    r = await client.request(method, path, headers=auth(key_a))
    assert r.status_code == 405, r.text
    assert r.headers["allow"] == allow
    assert r.json()["error" if not path.startswith("/graphql") else "errors"]


async def test_docs_are_cacheable_but_still_nosniff(client: httpx.AsyncClient) -> None:
    for path in ("/openapi.json", "/docs"):
        r = await client.get(path)
        assert r.status_code == 200
        for name, value in SECURITY_HEADERS.items():
            assert r.headers.get(name) == value, (path, name)
        assert r.headers.get("cache-control") != "no-store"


# -- GraphQL cost ----------------------------------------------------------------------------
# tests/api/graphql/test_http.py proves the refusal names the cost and the budget and that a
# refused document runs no SQL; here, costs hidden in fragments count as well.


@pytest.mark.parametrize(
    "document",
    [
        "query { ...Page } fragment Page on Query { clients(first: 5) { nodes { id name } } }",
        "query { ... on Query { clients(first: 5) { nodes { id name } } } }",
        "query { ...A } fragment A on Query { clients(first: 5) { ...B } }"
        " fragment B on ClientConnection { nodes { id name } }",
    ],
)
async def test_cost_hidden_in_fragments_is_counted_before_anything_runs(
    strict: AppClient, db: Database, document: str
) -> None:
    key = await create_key(db, team=unique_team("cost"))
    log = StatementLog(strict.app)
    with log.capture():
        r = await graphql(strict.http, key, document)
    assert r.status_code == 200
    body = r.json()
    assert "data" not in body
    error = body["errors"][0]
    assert error["extensions"]["code"] == "QUERY_TOO_COSTLY"
    assert error["extensions"]["budget"] == 10 and error["extensions"]["cost"] > 10
    assert log.touching_clients() == []
