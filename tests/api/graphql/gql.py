"""Helpers for the GraphQL API tests: requests, shared selections, and an SQL statement log."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
from sqlalchemy import event

from tests.support import Key

CLIENT_FIELDS = """
  id name legalName rfc rfcCheckDigitValid email phone livemode createdAt updatedAt
  address { street exterior interior neighborhood city municipality state zipCode country }
  taxSystem cfdiUse metadata cfdiName invoiceReadiness { ready issues { field message } }
"""

MEMBERS = {
    "Client": f"... on Client {{ {CLIENT_FIELDS} }}",
    "DeletedClient": "... on DeletedClient { id deleted }",
    "ValidationError": "... on ValidationError { code message fields { field message } }",
    "DuplicateRfcError": "... on DuplicateRfcError { code message rfc existingClientId }",
    "NotFoundError": "... on NotFoundError { code message id }",
    "ClientInUseError": "... on ClientInUseError { code message invoiceCount paymentCount }",
    "ConflictError": "... on ConflictError { code message id currentUpdatedAt }",
}


def selection(*members: str) -> str:
    """`__typename` and every field of each member of a result union."""
    return " ".join(["__typename", *(MEMBERS[m] for m in members)])


CREATE = f"""
mutation Create($input: CreateClientInput!) {{
  createClient(input: $input) {{
    {selection("Client", "ValidationError", "DuplicateRfcError")}
  }}
}}
"""

GET = f"""
query Get($id: ID!) {{ client(id: $id) {{ {selection("Client", "NotFoundError")} }} }}
"""

UPDATE = f"""
mutation Update($id: ID!, $input: UpdateClientInput!, $expected: DateTime) {{
  updateClient(id: $id, input: $input, expectedUpdatedAt: $expected) {{
    {selection("Client", "ValidationError", "DuplicateRfcError", "NotFoundError", "ConflictError")}
  }}
}}
"""

DELETE = f"""
mutation Delete($id: ID!, $expected: DateTime) {{
  deleteClient(id: $id, expectedUpdatedAt: $expected) {{
    {selection("DeletedClient", "NotFoundError", "ClientInUseError", "ConflictError")}
  }}
}}
"""

LIST = f"""
query List($filter: ClientFilter, $first: Int! = 20, $after: String, $offset: Int) {{
  clients(filter: $filter, first: $first, after: $after, offset: $offset) {{
    nodes {{ {CLIENT_FIELDS} }}
    edges {{ cursor node {{ id }} }}
    pageInfo {{ hasNextPage hasPreviousPage startCursor endCursor }}
    totalCount
  }}
}}
"""

ISO_MS_Z = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")


async def post(
    client: httpx.AsyncClient,
    key: Key | None,
    query: str,
    variables: dict[str, Any] | None = None,
    operation_name: str | None = None,
) -> httpx.Response:
    body: dict[str, Any] = {"query": query}
    if variables is not None:
        body["variables"] = variables
    if operation_name is not None:
        body["operationName"] = operation_name
    return await client.post("/graphql", json=body, headers=key.headers if key else {})


async def gql(
    client: httpx.AsyncClient,
    key: Key | None,
    query: str,
    variables: dict[str, Any] | None = None,
    operation_name: str | None = None,
) -> dict[str, Any]:
    """The JSON body of a GraphQL request that is expected to answer 200."""
    response = await post(client, key, query, variables, operation_name)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    body: dict[str, Any] = response.json()
    return body


async def data(
    client: httpx.AsyncClient, key: Key, query: str, variables: dict[str, Any] | None = None
) -> dict[str, Any]:
    """`data` of a request that must not produce any top-level error."""
    body = await gql(client, key, query, variables)
    assert "errors" not in body, body
    result: dict[str, Any] = body["data"]
    return result


async def create(client: httpx.AsyncClient, key: Key, **fields: Any) -> dict[str, Any]:
    """Create a client through GraphQL; returns the Client (fails on any error member)."""
    result = (await data(client, key, CREATE, {"input": fields}))["createClient"]
    assert result["__typename"] == "Client", result
    return result


def only_error(body: dict[str, Any]) -> dict[str, Any]:
    """The single top-level error of a response (and no partial data)."""
    assert body.get("data") is None, body
    assert len(body["errors"]) == 1, body
    error: dict[str, Any] = body["errors"][0]
    return error


def assert_argument_error(body: dict[str, Any], *fields: str) -> dict[str, str]:
    """A top-level VALIDATION_ERROR naming exactly `fields`; returns field → message."""
    error = only_error(body)
    assert error["message"] == "Invalid request parameters", error
    assert error["extensions"]["code"] == "VALIDATION_ERROR", error
    found = {f["field"]: f["message"] for f in error["extensions"]["fields"]}
    assert set(found) == set(fields), found
    assert all(isinstance(m, str) and m for m in found.values()), found
    return found


class StatementLog:
    """Every SQL statement the app's engines run while `capture()` is open."""

    def __init__(self, app: Any) -> None:
        db = app.app.state.services.db
        self.engines = {id(e): e.sync_engine for e in (db.engine, db.write_engine)}.values()
        self.statements: list[str] = []

    def _on_execute(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        self.statements.append(statement)

    @contextmanager
    def capture(self) -> Iterator[list[str]]:
        self.statements = []
        for engine in self.engines:
            event.listen(engine, "before_cursor_execute", self._on_execute)
        try:
            yield self.statements
        finally:
            for engine in self.engines:
                event.remove(engine, "before_cursor_execute", self._on_execute)

    def touching_clients(self) -> list[str]:
        """Statements on client data (authentication reads api_keys; these are the rest)."""
        pattern = re.compile(r"\b(clients|client_counters|invoices|payments)\b", re.IGNORECASE)
        return [s for s in self.statements if pattern.search(s)]
