"""`/v2/catalogs` through real HTTP: envelopes, entries, paging, `code`, and errors (§6)."""

from __future__ import annotations

import httpx
import pytest

from tests.support import Key


async def test_list_catalogs(client: httpx.AsyncClient, key_a: Key) -> None:
    r = await client.get("/v2/catalogs", headers=key_a.headers)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["message"] == "Catalogs retrieved successfully"
    by_id = {c["id"]: c for c in body["data"]}
    assert {"c_RegimenFiscal", "c_UsoCFDI", "c_CodigoPostal"} <= set(by_id)
    assert by_id["c_CodigoPostal"]["count"] == 95_749
    for item in body["data"]:
        assert set(item) == {"id", "name", "source", "version", "count"}
        assert "satcfdi" in item["source"] and item["version"]


async def test_regimen_fiscal_entries(client: httpx.AsyncClient, key_a: Key) -> None:
    r = await client.get("/v2/catalogs/c_RegimenFiscal", headers=key_a.headers)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["message"] == "Catalog retrieved successfully"
    data = body["data"]
    assert data["id"] == "c_RegimenFiscal" and data["count"] == len(data["entries"]) == 19
    entry = next(e for e in data["entries"] if e["code"] == "601")
    assert entry == {
        "code": "601",
        "description": "General de Ley Personas Morales",
        "fisica": False,
        "moral": True,
    }
    assert "609" not in {e["code"] for e in data["entries"]}


async def test_uso_cfdi_entry_and_code_filter(client: httpx.AsyncClient, key_a: Key) -> None:
    r = await client.get("/v2/catalogs/c_UsoCFDI?code=CN01", headers=key_a.headers)
    assert r.status_code == 200, r.text
    assert r.json()["data"]["entries"] == [
        {"code": "CN01", "description": "Nómina", "fisica": True, "moral": False,
         "taxSystems": ["605"]}
    ]  # fmt: skip
    assert r.json()["totalResults"] == 1
    r = await client.get("/v2/catalogs/c_UsoCFDI?code=P01", headers=key_a.headers)
    assert r.json()["data"]["entries"] == [] and r.json()["totalResults"] == 0


async def test_postal_code_by_code(client: httpx.AsyncClient, key_a: Key) -> None:
    r = await client.get("/v2/catalogs/c_CodigoPostal?code=06700", headers=key_a.headers)
    assert r.status_code == 200, r.text
    assert r.json()["data"]["entries"] == [
        {
            "code": "06700",
            "state": "CMX",
            "stateName": "Ciudad de México",
            "municipality": "015",
            "municipalityName": "Cuauhtémoc",
            "locality": "06",
            "localityName": "Ciudad de México",
            "neighborhoods": ["Roma Norte"],
        }
    ]


async def test_postal_codes_are_paged(client: httpx.AsyncClient, key_a: Key) -> None:
    r = await client.get("/v2/catalogs/c_CodigoPostal", headers=key_a.headers)
    body = r.json()
    assert len(body["data"]["entries"]) == 100 and body["hasMore"] is True
    assert body["totalResults"] == body["data"]["count"] == 95_749
    first = body["data"]["entries"]
    r = await client.get("/v2/catalogs/c_CodigoPostal?limit=1000&offset=99", headers=key_a.headers)
    page = r.json()["data"]["entries"]
    assert len(page) == 1000 and page[0] == first[99]
    r = await client.get("/v2/catalogs/c_CodigoPostal?limit=10&offset=95745", headers=key_a.headers)
    assert len(r.json()["data"]["entries"]) == 4 and r.json()["hasMore"] is False


@pytest.mark.parametrize(
    ("catalog", "keys"),
    [
        ("c_Estado", {"code", "name", "country"}),
        ("c_Municipio", {"code", "state", "name"}),
        ("c_Localidad", {"code", "state", "name"}),
        ("c_Colonia", {"code", "zipCode", "name"}),
    ],
)
async def test_place_catalogs(
    client: httpx.AsyncClient, key_a: Key, catalog: str, keys: set[str]
) -> None:
    r = await client.get(f"/v2/catalogs/{catalog}?limit=3", headers=key_a.headers)
    assert r.status_code == 200, r.text
    entries = r.json()["data"]["entries"]
    assert len(entries) == 3 and all(set(e) == keys for e in entries)


async def test_code_filter_on_repeating_codes(client: httpx.AsyncClient, key_a: Key) -> None:
    r = await client.get("/v2/catalogs/c_Municipio?code=015&limit=1000", headers=key_a.headers)
    entries = r.json()["data"]["entries"]
    assert len(entries) > 1 and {e["code"] for e in entries} == {"015"}
    assert {"code": "015", "state": "CMX", "name": "Cuauhtémoc"} in entries


async def test_unknown_catalog_is_404(client: httpx.AsyncClient, key_a: Key) -> None:
    r = await client.get("/v2/catalogs/c_Nope", headers=key_a.headers)
    assert r.status_code == 404
    assert r.json()["error"] == {"code": "NOT_FOUND", "message": "Catalog not found"}
    assert r.json()["message"] == "The requested catalog does not exist"


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("limit=0", "limit"),
        ("limit=1001", "limit"),
        ("limit=abc", "limit"),
        ("offset=-1", "offset"),
        ("offset=1e3", "offset"),
        ("colour=red", "colour"),
        ("code=1&code=2", "code"),
        ("code=" + "9" * 65, "code"),
    ],
)
async def test_bad_parameters_are_400(
    client: httpx.AsyncClient, key_a: Key, query: str, field: str
) -> None:
    r = await client.get(f"/v2/catalogs/c_CodigoPostal?{query}", headers=key_a.headers)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["code"] == "VALIDATION_ERROR"
    assert field in r.json()["error"]["details"]


async def test_list_refuses_parameters(client: httpx.AsyncClient, key_a: Key) -> None:
    r = await client.get("/v2/catalogs?limit=5", headers=key_a.headers)
    assert r.status_code == 400 and "limit" in r.json()["error"]["details"]


@pytest.mark.parametrize("path", ["/v2/catalogs", "/v2/catalogs/c_UsoCFDI", "/v2/catalogs/c_Nope"])
async def test_catalogs_need_a_key(client: httpx.AsyncClient, path: str) -> None:
    r = await client.get(path)
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "UNAUTHORIZED"
    assert r.headers["www-authenticate"].startswith("Bearer")


async def test_catalog_routes_are_documented(client: httpx.AsyncClient) -> None:
    doc = (await client.get("/openapi.json")).json()
    item = doc["paths"]["/v2/catalogs/{catalogId}"]["get"]
    assert {p["name"] for p in item["parameters"]} == {"catalogId", "code", "limit", "offset"}
    assert {"200", "400", "401", "404"} <= set(item["responses"])
    assert "/v2/catalogs" in doc["paths"]


async def test_colonia_code_filter(client: httpx.AsyncClient, key_a: Key) -> None:
    r = await client.get("/v2/catalogs/c_Colonia?code=0947&limit=1000", headers=key_a.headers)
    entries = r.json()["data"]["entries"]
    assert {"code": "0947", "zipCode": "06700", "name": "Roma Norte"} in entries
    assert {e["code"] for e in entries} == {"0947"}
    assert r.json()["totalResults"] == len(entries)
    for bad in ("947", "abcd", "09470"):
        r = await client.get(f"/v2/catalogs/c_Colonia?code={bad}", headers=key_a.headers)
        assert r.json()["data"]["entries"] == []
