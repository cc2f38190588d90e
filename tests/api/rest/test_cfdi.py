"""CFDI 4.0 receptor data over REST (contract §6): the new fields, their rules and errors,
readiness, the taxSystem/invoiceReady filters and `POST /v2/clients/validate`."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.support import Key, new_rfc

READY_MORAL = {
    "name": "Cliente Example",
    "legalName": "Cliente Example S.A. de C.V.",
    "taxSystem": "601",
    "cfdiUse": "g03",
    "metadata": {"erpId": "C-1042", "región": "Bajío"},
    "address": {
        "street": "Av. Insurgentes Sur",
        "exterior": "123",
        "interior": "4B",
        "neighborhood": "Roma Norte",
        "city": "Ciudad de México",
        "municipality": "Cuauhtémoc",
        "state": "CDMX",
        "zipCode": "06700",
        "country": "México",
    },
}


async def post(client: httpx.AsyncClient, key: Key, body: dict[str, Any]) -> httpx.Response:
    return await client.post("/v2/clients", json=body, headers=key.headers)


async def created(client: httpx.AsyncClient, key: Key, **body: Any) -> dict[str, Any]:
    r = await post(client, key, body)
    assert r.status_code == 201, r.text
    data: dict[str, Any] = r.json()["data"]
    return data


async def patch(
    client: httpx.AsyncClient, key: Key, client_id: str, body: dict[str, Any]
) -> httpx.Response:
    return await client.patch(f"/v2/clients/{client_id}", json=body, headers=key.headers)


async def count(client: httpx.AsyncClient, key: Key) -> int:
    r = await client.get("/v2/clients", headers=key.headers)
    total: int = r.json()["totalResults"]
    return total


def details(r: httpx.Response) -> dict[str, str]:
    assert r.status_code == 400, r.text
    assert r.json()["error"]["code"] == "VALIDATION_ERROR"
    found: dict[str, str] = r.json()["error"]["details"]
    return found


# -- create -----------------------------------------------------------------------------------


async def test_a_complete_client_is_invoice_ready(client: httpx.AsyncClient, key_a: Key) -> None:
    data = await created(client, key_a, rfc=new_rfc(moral=True), **READY_MORAL)
    assert data["taxSystem"] == "601"
    assert data["cfdiUse"] == "G03"  # upper-cased
    assert data["metadata"] == {"erpId": "C-1042", "región": "Bajío"}
    assert data["address"] == READY_MORAL["address"]
    assert data["cfdiName"] == "CLIENTE EXAMPLE"
    assert data["invoiceReady"] is True
    assert data["invoiceIssues"] == []
    again = (await client.get(f"/v2/clients/{data['id']}", headers=key_a.headers)).json()["data"]
    assert again == data


async def test_a_bare_client_says_what_is_missing(client: httpx.AsyncClient, key_a: Key) -> None:
    data = await created(client, key_a, name="Solo", rfc=new_rfc())
    assert (data["taxSystem"], data["cfdiUse"], data["cfdiName"]) == (None, None, None)
    assert data["metadata"] == {}
    assert data["invoiceReady"] is False
    assert data["invoiceIssues"] == [
        {"field": "legalName", "message": "A legal name is required to invoice"},
        {"field": "taxSystem", "message": "A tax system is required to invoice"},
        {"field": "address.zipCode", "message": "A zip code is required to invoice"},
    ]


async def test_generic_rfc_is_ready_alone(client: httpx.AsyncClient, key_a: Key) -> None:
    data = await created(client, key_a, name="Público", rfc="XAXX010101000")
    assert data["invoiceReady"] is True and data["invoiceIssues"] == []
    data = await created(
        client, key_a, name="Extranjero", rfc="XEXX010101000", taxSystem="616", cfdiUse="CP01"
    )
    assert data["invoiceReady"] is True


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            {"rfc": "XAXX010101000", "taxSystem": "601", "cfdiUse": "G03"},
            {
                "taxSystem": "With the generic RFC XAXX010101000 the tax system can only be 616",
                "cfdiUse": "With the generic RFC XAXX010101000 the CFDI use can only be S01",
            },
        ),
        (
            {"rfc": "XEXX010101000", "cfdiUse": "G01"},
            {"cfdiUse": "With the generic RFC XEXX010101000 the CFDI use can only be CP01 or S01"},
        ),
        (
            {"moral": True, "taxSystem": "605"},
            {"taxSystem": "Tax system 605 does not apply to personas morales"},
        ),
        ({"taxSystem": "601"}, {"taxSystem": "Tax system 601 does not apply to personas físicas"}),
        (
            {"moral": True, "taxSystem": "601", "cfdiUse": "D01"},
            {"cfdiUse": "CFDI use D01 is not allowed for tax system 601"},
        ),
        (
            {"moral": True, "cfdiUse": "CN01"},
            {"cfdiUse": "CFDI use CN01 does not apply to personas morales"},
        ),
        (
            {"cfdiUse": "P01"},
            {"cfdiUse": "CFDI use P01 (Por definir) is not valid for CFDI 4.0"},
        ),
        (
            {"taxSystem": "609"},
            {"taxSystem": "Tax system 609 (Consolidación) is not valid for CFDI 4.0"},
        ),
        ({"taxSystem": "999"}, {"taxSystem": "Unknown tax system: not a c_RegimenFiscal code"}),
        ({"cfdiUse": "ZZZ"}, {"cfdiUse": "Unknown CFDI use: not a c_UsoCFDI code"}),
        (
            {"address": {"zipCode": "00001"}},
            {"address.zipCode": "Unknown zip code: not in SAT's c_CodigoPostal"},
        ),
        (
            {"address": {"exterior": "x" * 201, "municipality": "y" * 201}},
            {
                "address.exterior": "Must be at most 200 characters",
                "address.municipality": "Must be at most 200 characters",
            },
        ),
        ({"metadata": {"n": 5}}, {"metadata.n": "Must be a string"}),
        ({"metadata": {"k": "v" * 501}}, {"metadata.k": "Must be at most 500 characters"}),
        (
            {"metadata": {"k" * 41: "v"}},
            {"metadata." + "k" * 41: "Keys must be 1 to 40 characters"},
        ),
        ({"metadata": {f"k{i}": "v" for i in range(51)}}, {"metadata": "At most 50 keys"}),
    ],
)
async def test_bad_receptor_data_is_400_and_writes_nothing(
    client: httpx.AsyncClient, key_a: Key, body: dict[str, Any], expected: dict[str, str]
) -> None:
    body = {"name": "Cliente", **body}
    body.setdefault("rfc", new_rfc(moral=body.pop("moral", False)))
    assert details(await post(client, key_a, body)) == expected
    assert await count(client, key_a) == 0


async def test_every_error_at_once(client: httpx.AsyncClient, key_a: Key) -> None:
    body = {
        "name": "",
        "rfc": new_rfc(moral=True),
        "taxSystem": "605",
        "cfdiUse": "P01",
        "metadata": {"a": 1},
        "address": {"zipCode": "00001"},
    }
    assert set(details(await post(client, key_a, body))) == {
        "name",
        "taxSystem",
        "cfdiUse",
        "metadata.a",
        "address.zipCode",
    }


@pytest.mark.parametrize("metadata", [[], "x", 5, True])
async def test_metadata_must_be_an_object(
    client: httpx.AsyncClient, key_a: Key, metadata: Any
) -> None:
    r = await post(client, key_a, {"name": "C", "rfc": new_rfc(), "metadata": metadata})
    assert "metadata" in details(r)


@pytest.mark.parametrize("field", ["taxSystem", "cfdiUse"])
async def test_codes_must_be_strings(client: httpx.AsyncClient, key_a: Key, field: str) -> None:
    r = await post(client, key_a, {"name": "C", "rfc": new_rfc(), field: 601})
    assert details(r) == {field: "Must be a string"}


async def test_foreign_zip_is_not_sats_business(client: httpx.AsyncClient, key_a: Key) -> None:
    address = {"zipCode": "94105-1234", "country": "US"}
    data = await created(client, key_a, name="C", rfc=new_rfc(), address=address)
    issues = {i["field"]: i["message"] for i in data["invoiceIssues"]}
    assert issues["address.zipCode"] == "The zip code is not in SAT's c_CodigoPostal"


async def test_a_client_read_can_be_sent_back(client: httpx.AsyncClient, key_a: Key) -> None:
    data = await created(client, key_a, rfc=new_rfc(moral=True), **READY_MORAL)
    r = await client.put(f"/v2/clients/{data['id']}", json=data, headers=key_a.headers)
    assert r.status_code == 200, r.text
    assert r.json()["data"]["updatedAt"] == data["updatedAt"]  # nothing changed


# -- update -----------------------------------------------------------------------------------


async def test_update_merges_metadata(client: httpx.AsyncClient, key_a: Key) -> None:
    data = await created(client, key_a, name="C", rfc=new_rfc(), metadata={"a": "1", "b": "2"})
    r = await patch(client, key_a, data["id"], {"metadata": {"b": None, "c": "3"}})
    assert r.status_code == 200, r.text
    assert r.json()["data"]["metadata"] == {"a": "1", "c": "3"}
    r = await patch(client, key_a, data["id"], {"metadata": None})
    assert r.json()["data"]["metadata"] == {}
    full = {f"k{i}": "v" for i in range(50)}
    assert (await patch(client, key_a, data["id"], {"metadata": full})).status_code == 200
    r = await patch(client, key_a, data["id"], {"metadata": {"one-more": "x"}})
    assert details(r) == {"metadata": "At most 50 keys"}


async def test_changing_rfc_rechecks_the_stored_regimen(
    client: httpx.AsyncClient, key_a: Key
) -> None:
    data = await created(client, key_a, rfc=new_rfc(moral=True), **READY_MORAL)
    r = await patch(client, key_a, data["id"], {"rfc": new_rfc()})  # física: 601 no longer applies
    assert details(r) == {"taxSystem": "Tax system 601 does not apply to personas físicas"}
    r = await patch(client, key_a, data["id"], {"rfc": new_rfc(), "taxSystem": "612"})
    assert r.status_code == 200, r.text
    assert r.json()["data"]["taxSystem"] == "612"


async def test_changing_regimen_rechecks_the_stored_use(
    client: httpx.AsyncClient, key_a: Key
) -> None:
    data = await created(client, key_a, name="C", rfc=new_rfc(), taxSystem="605", cfdiUse="CN01")
    r = await patch(client, key_a, data["id"], {"taxSystem": "612"})
    assert details(r) == {"cfdiUse": "CFDI use CN01 is not allowed for tax system 612"}
    r = await patch(client, key_a, data["id"], {"taxSystem": "612", "cfdiUse": "D01"})
    assert r.status_code == 200, r.text
    # Without a régimen the use is checked against the person type: D01 is for físicas.
    r = await patch(client, key_a, data["id"], {"taxSystem": None})
    assert r.status_code == 200 and r.json()["data"]["taxSystem"] is None


async def test_readiness_follows_updates(client: httpx.AsyncClient, key_a: Key) -> None:
    data = await created(client, key_a, rfc=new_rfc(moral=True), **READY_MORAL)
    r = await patch(client, key_a, data["id"], {"legalName": None, "address": {"zipCode": None}})
    body = r.json()["data"]
    assert body["invoiceReady"] is False
    assert [i["field"] for i in body["invoiceIssues"]] == ["legalName", "address.zipCode"]
    assert body["cfdiName"] is None
    r = await patch(client, key_a, data["id"], {"legalName": "Otra, S. de R.L. de C.V."})
    r = await patch(client, key_a, data["id"], {"address": {"zipCode": "01000"}})
    body = r.json()["data"]
    assert (body["invoiceReady"], body["cfdiName"]) == (True, "OTRA")


async def test_update_of_other_fields_leaves_cfdi_fields(
    client: httpx.AsyncClient, key_a: Key
) -> None:
    data = await created(client, key_a, rfc=new_rfc(moral=True), **READY_MORAL)
    r = await patch(client, key_a, data["id"], {"phone": "+52 33 1234 5678"})
    assert r.status_code == 200
    after = r.json()["data"]
    for field in ("taxSystem", "cfdiUse", "metadata", "address", "invoiceReady"):
        assert after[field] == data[field], field


# -- filters ----------------------------------------------------------------------------------


async def test_filters_tax_system_and_invoice_ready(client: httpx.AsyncClient, key_a: Key) -> None:
    ready = await created(client, key_a, rfc=new_rfc(moral=True), **READY_MORAL)
    fisica = await created(client, key_a, name="F", rfc=new_rfc(), taxSystem="612")
    bare = await created(client, key_a, name="B", rfc=new_rfc())

    async def ids(query: str) -> list[str]:
        r = await client.get(f"/v2/clients?{query}", headers=key_a.headers)
        assert r.status_code == 200, r.text
        return [c["id"] for c in r.json()["data"]]

    assert await ids("taxSystem=601") == [ready["id"]]
    assert await ids("taxSystem=612") == [fisica["id"]]
    assert await ids("invoiceReady=true") == [ready["id"]]
    assert await ids("invoiceReady=false") == [bare["id"], fisica["id"]]
    assert await ids("invoiceReady=false&taxSystem=612") == [fisica["id"]]
    # The readiness column follows updates.
    await patch(client, key_a, fisica["id"], {"legalName": "F", "address": {"zipCode": "06700"}})
    assert await ids("invoiceReady=true") == [fisica["id"], ready["id"]]


async def test_filters_travel_in_next_tokens(client: httpx.AsyncClient, key_a: Key) -> None:
    for _ in range(3):
        await created(client, key_a, name="F", rfc=new_rfc(), taxSystem="612")
    await created(client, key_a, name="G", rfc=new_rfc(), taxSystem="605")
    r = await client.get(
        "/v2/clients?taxSystem=612&invoiceReady=false&limit=2", headers=key_a.headers
    )
    first = r.json()
    assert first["totalResults"] == 3 and first["hasMore"] is True
    r = await client.get(f"/v2/clients?next={first['next']}", headers=key_a.headers)
    second = r.json()
    assert [c["taxSystem"] for c in second["data"]] == ["612"]
    assert second["totalResults"] == 3 and second["next"] is None


@pytest.mark.parametrize(
    ("query", "field"),
    [("taxSystem=999", "taxSystem"), ("invoiceReady=maybe", "invoiceReady")],
)
async def test_bad_filters_are_400(
    client: httpx.AsyncClient, key_a: Key, query: str, field: str
) -> None:
    r = await client.get(f"/v2/clients?{query}", headers=key_a.headers)
    assert field in details(r)


# -- validate ---------------------------------------------------------------------------------


async def test_validate_answers_like_create_and_writes_nothing(
    client: httpx.AsyncClient, key_a: Key
) -> None:
    rfc = new_rfc(moral=True)
    url = "/v2/clients/validate"
    r = await client.post(url, json={"rfc": rfc, **READY_MORAL}, headers=key_a.headers)
    assert r.status_code == 200, r.text
    assert r.json() == {
        "data": {
            "valid": True,
            "errors": {},
            "cfdiName": "CLIENTE EXAMPLE",
            "invoiceReady": True,
            "invoiceIssues": [],
        },
        "message": "Client validated successfully",
    }
    r = await client.post(url, json={"name": "C", "rfc": new_rfc()}, headers=key_a.headers)
    assert r.json()["data"]["invoiceReady"] is False
    assert len(r.json()["data"]["invoiceIssues"]) == 3
    assert await count(client, key_a) == 0

    bad = {"name": "", "rfc": rfc, "taxSystem": "605"}
    from_validate = await client.post(url, json=bad, headers=key_a.headers)
    from_create = await post(client, key_a, bad)
    assert (
        details(from_validate)
        == details(from_create)
        == {
            "name": "Name is required",
            "taxSystem": "Tax system 605 does not apply to personas morales",
        }
    )
    assert await count(client, key_a) == 0

    existing = await created(client, key_a, rfc=rfc, **READY_MORAL)
    r = await client.post(url, json={"name": "Otro", "rfc": rfc}, headers=key_a.headers)
    assert r.status_code == 409
    assert r.json()["error"]["details"]["existingClientId"] == existing["id"]
    assert await count(client, key_a) == 1


async def test_validate_refuses_what_create_refuses(client: httpx.AsyncClient, key_a: Key) -> None:
    url = "/v2/clients/validate"
    r = await client.post(url, json={"name": "C", "rfc": new_rfc(), "x": 1}, headers=key_a.headers)
    assert details(r) == {"x": "Unknown field"}
    r = await client.post(url, content="nope", headers=key_a.headers)
    assert r.status_code == 415
    r = await client.post(url, json={"name": "C", "rfc": new_rfc()})
    assert r.status_code == 401
