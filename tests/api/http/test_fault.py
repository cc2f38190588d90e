"""An unexpected fault (here a column dropped behind the app's back, on both engines): a JSON
500 with the request id and the security headers, logged in full for the operator, and still
no personal data in any log line: the failing SQL statement's parameters (the RFC and email of
the request) stay out of the trace. This module breaks its own database, so it lives apart."""

from __future__ import annotations

import logging

import httpx
import pytest
from sqlalchemy import text

from app.db.database import Database
from tests.hardening_support import SECURITY_HEADERS, graphql, rest_create
from tests.support import Key, new_rfc


async def test_a_fault_is_a_json_500_that_logs_no_personal_data(
    client: httpx.AsyncClient, db: Database, key_a: Key, caplog: pytest.LogCaptureFixture
) -> None:
    async with db.write() as session:
        await session.execute(text("ALTER TABLE clients DROP COLUMN phone"))
    rfc, email = new_rfc(), "fallo.privado@example.com"

    with caplog.at_level(logging.INFO):
        rest = await rest_create(client, key_a, {"name": "Falla", "rfc": rfc, "email": email})
        gql = await graphql(
            client,
            key_a,
            "mutation($i: CreateClientInput!) { createClient(input: $i) { __typename } }",
            {"i": {"name": "Falla", "rfc": rfc, "email": email}},
        )

    assert rest.status_code == 500, rest.text
    error = rest.json()["error"]
    assert error["code"] == "INTERNAL_ERROR"
    assert error["requestId"] == rest.headers["x-request-id"]
    assert "phone" not in rest.text
    assert gql.status_code == 200
    assert [e["extensions"]["code"] for e in gql.json()["errors"]] == ["INTERNAL_ERROR"]
    for r in (rest, gql):
        for name, value in SECURITY_HEADERS.items():
            assert r.headers[name] == value
        assert r.headers["cache-control"] == "no-store"

    app_records = [r for r in caplog.records if not r.name.startswith(("httpx", "httpcore"))]
    traces = [r for r in app_records if r.exc_info or r.exc_text]
    assert traces, "the fault is logged, with its trace"
    logged = "\n".join(
        [r.getMessage() for r in app_records]
        + [logging.Formatter().format(r) for r in traces]  # the trace, as a handler writes it
    )
    assert rest.headers["x-request-id"] in logged
    for value in (rfc, email, key_a.key):
        assert value not in logged, value
