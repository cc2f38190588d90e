"""GraphQL catalog queries: `taxSystems`, `cfdiUses(taxSystem:)`, `postalCode(code:)` (§6)."""

from __future__ import annotations

import httpx

from tests.api.graphql.gql import data, gql
from tests.support import Key


async def test_tax_systems(client: httpx.AsyncClient, key_a: Key) -> None:
    result = await data(client, key_a, "{ taxSystems { code description fisica moral } }")
    by_code = {t["code"]: t for t in result["taxSystems"]}
    assert len(by_code) == 19 and "609" not in by_code
    assert by_code["626"] == {
        "code": "626",
        "description": "Régimen Simplificado de Confianza",
        "fisica": True,
        "moral": True,
    }


async def test_cfdi_uses_filtered_by_tax_system(client: httpx.AsyncClient, key_a: Key) -> None:
    query = "query($t: String) { cfdiUses(taxSystem: $t) { code fisica moral taxSystems } }"
    every = (await data(client, key_a, query))["cfdiUses"]
    assert len(every) == 24 and "P01" not in {u["code"] for u in every}
    for_605 = (await data(client, key_a, query, {"t": "605"}))["cfdiUses"]
    codes = {u["code"] for u in for_605}
    assert {"CN01", "S01", "CP01", "D01"} <= codes and "G03" not in codes
    assert all("605" in u["taxSystems"] for u in for_605)
    assert (await data(client, key_a, query, {"t": "609"}))["cfdiUses"] == []


async def test_postal_code(client: httpx.AsyncClient, key_a: Key) -> None:
    query = """query($c: String!) { postalCode(code: $c) {
      code state stateName municipality municipalityName locality localityName neighborhoods } }"""
    found = (await data(client, key_a, query, {"c": "06700"}))["postalCode"]
    assert found == {
        "code": "06700",
        "state": "CMX",
        "stateName": "Ciudad de México",
        "municipality": "015",
        "municipalityName": "Cuauhtémoc",
        "locality": "06",
        "localityName": "Ciudad de México",
        "neighborhoods": ["Roma Norte"],
    }
    for missing in ("00001", "abc", ""):
        assert (await data(client, key_a, query, {"c": missing}))["postalCode"] is None


async def test_catalog_queries_need_a_key(client: httpx.AsyncClient) -> None:
    r = await client.post("/graphql", json={"query": "{ taxSystems { code } }"})
    assert r.status_code == 401
    assert r.json() == {
        "errors": [{"message": "Authentication required", "extensions": {"code": "UNAUTHORIZED"}}]
    }


async def test_catalog_and_client_fields_in_one_document(
    client: httpx.AsyncClient, key_a: Key
) -> None:
    body = await gql(
        client, key_a, '{ clients(first: 1) { totalCount } postalCode(code: "01000") { state } }'
    )
    assert body["data"] == {"clients": {"totalCount": 0}, "postalCode": {"state": "CMX"}}
