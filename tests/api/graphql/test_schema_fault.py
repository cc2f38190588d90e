"""A database whose schema is broken (a column dropped behind the app's back) is a fault of
ours, not an unreachable database: masked INTERNAL_ERROR, on both engines alike. This module
breaks its own database, so it lives apart from the others."""

from __future__ import annotations

import httpx
from sqlalchemy import text

from app.db.database import Database
from tests.api.graphql.gql import create, gql
from tests.support import Key, new_rfc


async def test_a_broken_schema_is_a_masked_fault_not_an_outage(
    client: httpx.AsyncClient, db: Database, key_a: Key
) -> None:
    await create(client, key_a, name="Antes de romper", rfc=new_rfc())
    async with db.write() as session:
        await session.execute(text("ALTER TABLE clients DROP COLUMN phone"))

    response = await client.post(
        "/graphql", json={"query": "{ clients { nodes { id } } }"}, headers=key_a.headers
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["data"] is None
    assert [e["extensions"]["code"] for e in body["errors"]] == ["INTERNAL_ERROR"]
    assert "phone" not in response.text

    rest = await client.get("/v2/clients", headers=key_a.headers)
    assert rest.status_code == 500
    assert (await gql(client, key_a, "{ __typename }")) == {"data": {"__typename": "Query"}}
