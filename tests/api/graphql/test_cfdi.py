"""CFDI 4.0 receptor data over GraphQL (contract §6): fields, rules as ValidationError data,
invoiceReadiness, the taxSystem/invoiceReady filters and `validateClient`; and that REST
and GraphQL say the same."""

from __future__ import annotations

from typing import Any

import httpx

from tests.api.graphql.gql import (
    CLIENT_FIELDS,
    CREATE,
    LIST,
    UPDATE,
    assert_argument_error,
    create,
    data,
    gql,
)
from tests.support import Key, new_rfc

READY = {
    "name": "Cliente Example",
    "legalName": "Cliente Example, SA de CV",
    "taxSystem": "601",
    "cfdiUse": "g03",
    "metadata": {"erpId": "C-1042"},
    "address": {"exterior": "123", "neighborhood": "Roma Norte", "zipCode": "06700"},
}

VALIDATE = """
query Validate($input: CreateClientInput!) {
  validateClient(input: $input) {
    valid fields { field message } cfdiName invoiceReadiness { ready issues { field message } }
  }
}
"""


async def test_create_with_cfdi_fields(client: httpx.AsyncClient, key_a: Key) -> None:
    c = await create(client, key_a, rfc=new_rfc(moral=True), **READY)
    assert (c["taxSystem"], c["cfdiUse"], c["cfdiName"]) == ("601", "G03", "CLIENTE EXAMPLE")
    assert c["metadata"] == {"erpId": "C-1042"}
    assert c["address"]["exterior"] == "123" and c["address"]["neighborhood"] == "Roma Norte"
    assert c["invoiceReadiness"] == {"ready": True, "issues": []}
    rest = (await client.get(f"/v2/clients/{c['id']}", headers=key_a.headers)).json()["data"]
    assert rest["invoiceReady"] is True and rest["cfdiName"] == c["cfdiName"]


async def test_readiness_issues(client: httpx.AsyncClient, key_a: Key) -> None:
    c = await create(client, key_a, name="Solo", rfc=new_rfc())
    assert c["metadata"] == {}
    assert c["invoiceReadiness"] == {
        "ready": False,
        "issues": [
            {"field": "legalName", "message": "A legal name is required to invoice"},
            {"field": "taxSystem", "message": "A tax system is required to invoice"},
            {"field": "address.zipCode", "message": "A zip code is required to invoice"},
        ],
    }


async def test_rules_are_validation_errors_like_rest(client: httpx.AsyncClient, key_a: Key) -> None:
    bad = {
        "name": "C",
        "rfc": new_rfc(moral=True),
        "taxSystem": "605",
        "cfdiUse": "P01",
        "metadata": {"a": 1, "b": "ok"},
        "address": {"zipCode": "00001"},
    }
    result = (await data(client, key_a, CREATE, {"input": bad}))["createClient"]
    assert result["__typename"] == "ValidationError"
    fields = {f["field"]: f["message"] for f in result["fields"]}
    rest = await client.post("/v2/clients", json=bad, headers=key_a.headers)
    assert rest.status_code == 400
    assert fields == rest.json()["error"]["details"]
    assert set(fields) == {"taxSystem", "cfdiUse", "metadata.a", "address.zipCode"}


async def test_metadata_not_an_object(client: httpx.AsyncClient, key_a: Key) -> None:
    bad = {"name": "C", "rfc": new_rfc(), "metadata": ["x"]}
    result = (await data(client, key_a, CREATE, {"input": bad}))["createClient"]
    assert result["fields"] == [
        {"field": "metadata", "message": "Must be an object of string values"}
    ]


async def test_update_metadata_and_regimen(client: httpx.AsyncClient, key_a: Key) -> None:
    c = await create(client, key_a, rfc=new_rfc(moral=True), **READY)
    variables = {"id": c["id"], "input": {"metadata": {"erpId": None, "tier": "gold"}}}
    updated = (await data(client, key_a, UPDATE, variables))["updateClient"]
    assert updated["metadata"] == {"tier": "gold"}
    variables = {"id": c["id"], "input": {"rfc": new_rfc()}}
    refused = (await data(client, key_a, UPDATE, variables))["updateClient"]
    assert refused["__typename"] == "ValidationError"
    assert refused["fields"] == [
        {"field": "taxSystem", "message": "Tax system 601 does not apply to personas físicas"}
    ]
    variables = {"id": c["id"], "input": {"taxSystem": None, "metadata": None}}
    cleared = (await data(client, key_a, UPDATE, variables))["updateClient"]
    assert (cleared["taxSystem"], cleared["metadata"]) == (None, {})
    assert cleared["invoiceReadiness"]["ready"] is False


async def test_filters(client: httpx.AsyncClient, key_a: Key) -> None:
    ready = await create(client, key_a, rfc=new_rfc(moral=True), **READY)
    other = await create(client, key_a, name="F", rfc=new_rfc(), taxSystem="612")

    async def ids(flt: dict[str, Any]) -> list[str]:
        result = (await data(client, key_a, LIST, {"filter": flt}))["clients"]
        assert result["totalCount"] == len(result["nodes"])
        return [n["id"] for n in result["nodes"]]

    assert await ids({"taxSystem": "601"}) == [ready["id"]]
    assert await ids({"invoiceReady": True}) == [ready["id"]]
    assert await ids({"invoiceReady": False, "taxSystem": "612"}) == [other["id"]]
    assert await ids({"invoiceReady": False, "taxSystem": "601"}) == []


async def test_bad_tax_system_filter_is_an_argument_error(
    client: httpx.AsyncClient, key_a: Key
) -> None:
    body = await gql(client, key_a, LIST, {"filter": {"taxSystem": "999"}})
    assert assert_argument_error(body, "filter.taxSystem") == {
        "filter.taxSystem": "Unknown tax system: not a c_RegimenFiscal code"
    }


async def test_validate_client(client: httpx.AsyncClient, key_a: Key) -> None:
    rfc = new_rfc(moral=True)
    ok = (await data(client, key_a, VALIDATE, {"input": {"rfc": rfc, **READY}}))["validateClient"]
    assert ok == {
        "valid": True,
        "fields": [],
        "cfdiName": "CLIENTE EXAMPLE",
        "invoiceReadiness": {"ready": True, "issues": []},
    }
    bad = {"name": "C", "rfc": rfc, "taxSystem": "605", "legalName": "X S.C."}
    result = (await data(client, key_a, VALIDATE, {"input": bad}))["validateClient"]
    assert result["valid"] is False and result["cfdiName"] == "X"
    message = "Tax system 605 does not apply to personas morales"
    assert result["fields"] == [{"field": "taxSystem", "message": message}]
    issues = {i["field"]: i["message"] for i in result["invoiceReadiness"]["issues"]}
    assert issues == {"taxSystem": message, "address.zipCode": "A zip code is required to invoice"}
    # Nothing was written; a taken RFC is an rfc field, as create's DuplicateRfcError says.
    assert (await data(client, key_a, LIST))["clients"]["totalCount"] == 0
    await create(client, key_a, rfc=rfc, **READY)
    taken = await data(client, key_a, VALIDATE, {"input": {"name": "C", "rfc": rfc}})
    assert taken["validateClient"]["fields"] == [
        {"field": "rfc", "message": "A client with this RFC already exists"}
    ]


async def test_validate_needs_a_key(client: httpx.AsyncClient) -> None:
    r = await client.post(
        "/graphql", json={"query": VALIDATE, "variables": {"input": {"name": "a", "rfc": "b"}}}
    )
    assert r.status_code == 401


def test_client_fields_select_every_cfdi_field() -> None:
    for name in ("taxSystem", "cfdiUse", "metadata", "cfdiName", "invoiceReadiness", "exterior"):
        assert name in CLIENT_FIELDS
