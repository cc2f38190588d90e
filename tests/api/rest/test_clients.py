"""`/v2/clients` create, get, update and delete through real HTTP: envelopes and error codes of
contract §3."""

from __future__ import annotations

import re
from typing import Any

import httpx
import orjson
import pytest

from app.db.database import Database
from tests.support import Key, add_invoice, add_payment, client_body, new_rfc

CLIENT_KEYS = {
    "id",
    "name",
    "legalName",
    "client",
    "phone",
    "address",
    "timestamp",
    "updatedAt",
    "livemode",
    "rfcCheckDigitValid",
}
TIMESTAMP_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
ID_RE = re.compile(r"^client_[0-9A-HJKMNP-TV-Z]{26}$")
MISSING_ID = "client_01JD0Q5Z8X3V2N7K4M6P9R1T2W"

VALIDATION = {"code": "VALIDATION_ERROR", "message": "Invalid request parameters"}
# Every address key of a response, unset.
NO_ADDRESS = dict.fromkeys(
    ["street", "exterior", "interior", "neighborhood", "city", "municipality"]
)
NO_ADDRESS.update(dict.fromkeys(["state", "zipCode", "country"]))


async def create(client: httpx.AsyncClient, key: Key, **body: Any) -> dict[str, Any]:
    r = await client.post("/v2/clients", json=client_body(**body), headers=key.headers)
    assert r.status_code == 201, r.text
    data: dict[str, Any] = r.json()["data"]
    return data


def assert_validation_error(r: httpx.Response, fields: set[str]) -> dict[str, str]:
    assert r.status_code == 400, r.text
    assert r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert body["message"] == "Request validation failed"
    assert {k: body["error"][k] for k in ("code", "message")} == VALIDATION
    details: dict[str, str] = body["error"]["details"]
    assert set(details) == fields, details
    assert all(isinstance(m, str) and m for m in details.values())
    return details


def assert_not_found(r: httpx.Response) -> None:
    assert r.status_code == 404, r.text
    body = r.json()
    assert body["message"] == "The requested client does not exist"
    assert body["error"]["code"] == "NOT_FOUND"
    assert body["error"]["message"] == "Client not found"


# -- create ---------------------------------------------------------------------------------


async def test_create_returns_the_documented_shape(client: httpx.AsyncClient, key_a: Key) -> None:
    body = {
        "name": "Cliente Example",
        "legalName": "Cliente Example S.A. de C.V.",
        "rfc": "gode-561231-gr8",
        "email": "cliente@example.com",
        "phone": "+52 55 1234 5678",
        "address": {
            "street": "Av. Insurgentes Sur 123",
            "city": "Ciudad de México",
            "state": "CDMX",
            "zipCode": "03100",
            "country": "México",
        },
    }
    r = await client.post("/v2/clients", json=body, headers=key_a.headers)
    assert r.status_code == 201, r.text
    payload = r.json()
    assert set(payload) == {"data", "message"}
    assert payload["message"] == "Client created successfully"
    data = payload["data"]
    assert set(data) >= CLIENT_KEYS
    assert ID_RE.match(data["id"])
    assert data["name"] == "Cliente Example"
    assert data["legalName"] == "Cliente Example S.A. de C.V."
    assert data["client"] == {"rfc": "GODE561231GR8", "email": "cliente@example.com"}
    assert data["phone"] == "+52 55 1234 5678"
    assert data["address"] == {**NO_ADDRESS, **body["address"]}
    assert TIMESTAMP_RE.match(data["timestamp"])
    assert data["updatedAt"] == data["timestamp"]
    assert data["livemode"] is True
    assert data["rfcCheckDigitValid"] is True
    assert r.headers["location"] == f"/v2/clients/{data['id']}"
    assert r.headers["etag"]


async def test_unset_optionals_are_null_not_omitted(client: httpx.AsyncClient, key_a: Key) -> None:
    r = await client.post(
        "/v2/clients", json={"name": "Solo", "rfc": "VACE460910SX6"}, headers=key_a.headers
    )
    assert r.status_code == 201, r.text
    data = r.json()["data"]
    assert set(data) >= CLIENT_KEYS
    assert data["legalName"] is None
    assert data["phone"] is None
    assert data["address"] is None
    assert data["client"] == {"rfc": "VACE460910SX6", "email": None}
    assert data["rfcCheckDigitValid"] is False


async def test_partial_address_has_every_key(client: httpx.AsyncClient, key_a: Key) -> None:
    data = await create(client, key_a, address={"city": "Monterrey"})
    assert data["address"] == {**NO_ADDRESS, "city": "Monterrey"}


async def test_test_mode_key_creates_test_mode_clients(
    client: httpx.AsyncClient, key_a_test: Key
) -> None:
    data = await create(client, key_a_test)
    assert data["livemode"] is False


async def test_unicode_is_stored_as_given(client: httpx.AsyncClient, key_a: Key) -> None:
    name = "Panadería “La Espiga” 🥖 北京"
    data = await create(client, key_a, name=f"  {name}  ", legalName="Jose\u0301")
    assert data["name"] == name
    assert data["legalName"] == "José"
    got = await client.get(f"/v2/clients/{data['id']}", headers=key_a.headers)
    assert got.json()["data"]["name"] == name


async def test_every_bad_field_is_reported(client: httpx.AsyncClient, key_a: Key) -> None:
    r = await client.post(
        "/v2/clients",
        json={
            "name": "",
            "rfc": "XYZ",
            "email": "nope",
            "phone": "12",
            "address": {"zipCode": "1234", "country": "mexico"},
        },
        headers=key_a.headers,
    )
    details = assert_validation_error(r, {"name", "rfc", "email", "phone", "address.zipCode"})
    assert details["name"] == "Name is required"
    assert details["email"] == "Invalid email format"
    assert details["rfc"].startswith("Invalid RFC format")


async def test_missing_required_fields(client: httpx.AsyncClient, key_a: Key) -> None:
    r = await client.post("/v2/clients", json={}, headers=key_a.headers)
    details = assert_validation_error(r, {"name", "rfc"})
    assert details == {"name": "Name is required", "rfc": "RFC is required"}


@pytest.mark.parametrize(
    ("rfc", "fragment"),
    [("PUTO561231AB1", "SAT"), ("GODE561331GR8", "date"), ("GODE5612319GR8", "12")],
)
async def test_rfc_rules_over_http(
    client: httpx.AsyncClient, key_a: Key, rfc: str, fragment: str
) -> None:
    r = await client.post("/v2/clients", json=client_body(rfc=rfc), headers=key_a.headers)
    details = assert_validation_error(r, {"rfc"})
    assert fragment in details["rfc"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": 5}, "name"),
        ({"name": True}, "name"),
        ({"name": ["a"]}, "name"),
        ({"rfc": 123456789012}, "rfc"),
        ({"email": {"a": 1}}, "email"),
        ({"address": "Calle 1"}, "address"),
        ({"address": {"zipCode": 3100}}, "address.zipCode"),
        ({"client": "GODE561231GR8"}, "client"),
        ({"client": {"rfc": 1}}, "client.rfc"),
    ],
)
async def test_wrong_types_are_400_with_the_field(
    client: httpx.AsyncClient, key_a: Key, body: dict[str, Any], field: str
) -> None:
    r = await client.post("/v2/clients", json=client_body(**body), headers=key_a.headers)
    details = assert_validation_error(r, {field})
    assert details[field]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"nombre": "x"}, "nombre"),
        ({"address": {"zip": "03100"}}, "address.zip"),
        ({"client": {"rfc": "GODE561231GR8", "phone": "1"}}, "client.phone"),
    ],
)
async def test_unknown_fields_are_named(
    client: httpx.AsyncClient, key_a: Key, body: dict[str, Any], field: str
) -> None:
    r = await client.post("/v2/clients", json=client_body(**body), headers=key_a.headers)
    details = assert_validation_error(r, {field})
    assert details[field] == "Unknown field"


@pytest.mark.parametrize(
    "raw",
    [b"{", b'{"name": "x",}', b"nul", b"\xff\xfe", b"", b'{"name": "x"} trailing'],
)
async def test_malformed_json_is_a_body_error(
    client: httpx.AsyncClient, key_a: Key, raw: bytes
) -> None:
    r = await client.post(
        "/v2/clients",
        content=raw,
        headers={**key_a.headers, "Content-Type": "application/json"},
    )
    details = assert_validation_error(r, {"body"})
    assert details["body"]


@pytest.mark.parametrize("raw", [b"[]", b'["name"]', b'"name"', b"42", b"null", b"true"])
async def test_body_that_is_not_an_object(
    client: httpx.AsyncClient, key_a: Key, raw: bytes
) -> None:
    for method, url in (("POST", "/v2/clients"), ("PUT", f"/v2/clients/{MISSING_ID}")):
        r = await client.request(
            method,
            url,
            content=raw,
            headers={**key_a.headers, "Content-Type": "application/json"},
        )
        details = assert_validation_error(r, {"body"})
        assert "object" in details["body"]


async def test_nothing_is_written_on_a_400(client: httpx.AsyncClient, key_a: Key) -> None:
    rfc = new_rfc()
    for body in (
        {"name": 5, "rfc": rfc},
        {"name": "x", "rfc": rfc, "extra": 1},
        {"name": "x", "rfc": rfc, "email": "bad"},
    ):
        r = await client.post("/v2/clients", json=body, headers=key_a.headers)
        assert r.status_code == 400
    listed = await client.get("/v2/clients", headers=key_a.headers)
    assert listed.json()["totalResults"] == 0
    assert (
        await client.post("/v2/clients", json=client_body(rfc=rfc), headers=key_a.headers)
    ).status_code == 201


@pytest.mark.parametrize(
    "content_type",
    [None, "text/plain", "application/x-www-form-urlencoded", "multipart/form-data", "json"],
)
async def test_non_json_content_type_is_415(
    client: httpx.AsyncClient, key_a: Key, content_type: str | None
) -> None:
    headers = dict(key_a.headers)
    if content_type:
        headers["Content-Type"] = content_type
    r = await client.post("/v2/clients", content=orjson.dumps(client_body()), headers=headers)
    assert r.status_code == 415, r.text
    assert r.json()["error"]["code"] == "UNSUPPORTED_MEDIA_TYPE"
    assert r.json()["message"]


@pytest.mark.parametrize(
    "content_type",
    [
        "application/json",
        "application/json; charset=utf-8",
        "Application/JSON",
        "application/merge-patch+json",
    ],
)
async def test_json_content_types_are_accepted(
    client: httpx.AsyncClient, key_a: Key, content_type: str
) -> None:
    r = await client.post(
        "/v2/clients",
        content=orjson.dumps(client_body()),
        headers={**key_a.headers, "Content-Type": content_type},
    )
    assert r.status_code == 201, r.text


# -- aliases and read-only fields -----------------------------------------------------------


async def test_client_alias_is_accepted(client: httpx.AsyncClient, key_a: Key) -> None:
    rfc = new_rfc()
    r = await client.post(
        "/v2/clients",
        json={"name": "Alias", "client": {"rfc": rfc.lower(), "email": "a@example.com"}},
        headers=key_a.headers,
    )
    assert r.status_code == 201, r.text
    assert r.json()["data"]["client"] == {"rfc": rfc, "email": "a@example.com"}


async def test_alias_agreeing_with_top_level_is_fine(client: httpx.AsyncClient, key_a: Key) -> None:
    rfc = new_rfc()
    r = await client.post(
        "/v2/clients",
        json={
            "name": "Alias",
            "rfc": rfc,
            "email": "A@Example.com",
            "client": {"rfc": f" {rfc[:4]}-{rfc[4:].lower()}", "email": "a@example.com"},
        },
        headers=key_a.headers,
    )
    assert r.status_code == 201, r.text
    assert r.json()["data"]["client"]["rfc"] == rfc


async def test_alias_in_conflict_is_400(client: httpx.AsyncClient, key_a: Key) -> None:
    r = await client.post(
        "/v2/clients",
        json={
            "name": "Alias",
            "rfc": new_rfc(),
            "email": "a@example.com",
            "client": {"rfc": new_rfc(), "email": "b@example.com"},
        },
        headers=key_a.headers,
    )
    assert_validation_error(r, {"client.rfc", "client.email"})


async def test_client_null_is_400(client: httpx.AsyncClient, key_a: Key) -> None:
    r = await client.post(
        "/v2/clients", json={"name": "x", "rfc": new_rfc(), "client": None}, headers=key_a.headers
    )
    assert_validation_error(r, {"client"})
    created = await create(client, key_a)
    r = await client.put(
        f"/v2/clients/{created['id']}", json={"client": None}, headers=key_a.headers
    )
    assert_validation_error(r, {"client"})


async def test_a_client_read_with_get_can_be_sent_back(
    client: httpx.AsyncClient, key_a: Key, key_a_test: Key
) -> None:
    created = await create(
        client, key_a, email="a@example.com", address={"city": "León", "zipCode": "37000"}
    )
    got = (await client.get(f"/v2/clients/{created['id']}", headers=key_a.headers)).json()["data"]
    # Sent back to PUT unchanged: the read-only fields are accepted and ignored.
    r = await client.put(f"/v2/clients/{created['id']}", json=got, headers=key_a.headers)
    assert r.status_code == 200, r.text
    assert r.json()["data"] == got
    # Edited, with read-only fields that lie: still ignored.
    edited = {
        **got,
        "name": "Editado",
        "id": "client_00000000000000000000000000",
        "livemode": False,
        "timestamp": "2000-01-01T00:00:00.000Z",
        "rfcCheckDigitValid": "yes",
    }
    r = await client.put(f"/v2/clients/{created['id']}", json=edited, headers=key_a.headers)
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    assert data["name"] == "Editado"
    assert data["id"] == created["id"]
    assert data["livemode"] is True
    assert data["timestamp"] == created["timestamp"]
    # And a GET body can create a copy in another world (test mode), ids ignored.
    r = await client.post("/v2/clients", json=got, headers=key_a_test.headers)
    assert r.status_code == 201, r.text
    copy = r.json()["data"]
    assert copy["id"] != got["id"]
    assert copy["client"] == got["client"]
    assert copy["livemode"] is False


# -- duplicates -----------------------------------------------------------------------------


async def test_duplicate_rfc_is_409(client: httpx.AsyncClient, key_a: Key) -> None:
    first = await create(client, key_a)
    rfc = first["client"]["rfc"]
    r = await client.post(
        "/v2/clients", json=client_body(rfc=f"{rfc.lower()} "), headers=key_a.headers
    )
    assert r.status_code == 409, r.text
    assert r.json() == {
        "error": {
            "code": "DUPLICATE_RFC",
            "message": "A client with this RFC already exists",
            "details": {"existingClientId": first["id"], "rfc": rfc},
        },
        "message": "RFC must be unique",
    }


async def test_duplicate_rfc_on_update_is_409(client: httpx.AsyncClient, key_a: Key) -> None:
    one = await create(client, key_a)
    two = await create(client, key_a)
    r = await client.patch(
        f"/v2/clients/{two['id']}",
        json={"client": {"rfc": one["client"]["rfc"]}},
        headers=key_a.headers,
    )
    assert r.status_code == 409, r.text
    assert r.json()["error"]["code"] == "DUPLICATE_RFC"
    assert r.json()["error"]["details"]["existingClientId"] == one["id"]


async def test_generic_rfcs_repeat(client: httpx.AsyncClient, key_a: Key) -> None:
    for rfc in ("XAXX010101000", "XAXX010101000", "xexx010101000", "XEXX010101000"):
        await create(client, key_a, rfc=rfc)


# -- get ------------------------------------------------------------------------------------


async def test_get_returns_the_client(client: httpx.AsyncClient, key_a: Key) -> None:
    created = await create(client, key_a)
    r = await client.get(f"/v2/clients/{created['id']}", headers=key_a.headers)
    assert r.status_code == 200
    assert r.json() == {"data": created, "message": "Client retrieved successfully"}


@pytest.mark.parametrize(
    "client_id",
    [
        MISSING_ID,
        "client_" + "0" * 26,
        "nope",
        "client_123",
        "CLIENT_01JD0Q5Z8X3V2N7K4M6P9R1T2W",
        "client_01JD0Q5Z8X3V2N7K4M6P9R1T2WXYZ",
        "x" * 150,
        "%F0%9F%8C%AE",
        "1%20OR%201=1",
    ],
)
async def test_missing_or_impossible_ids_are_404(
    client: httpx.AsyncClient, key_a: Key, client_id: str
) -> None:
    for method in ("GET", "PUT", "PATCH", "DELETE"):
        kwargs: dict[str, Any] = {"json": {"name": "x"}} if method in ("PUT", "PATCH") else {}
        r = await client.request(
            method, f"/v2/clients/{client_id}", headers=key_a.headers, **kwargs
        )
        assert_not_found(r)


async def test_very_long_id_is_404_not_400(client: httpx.AsyncClient, key_a: Key) -> None:
    r = await client.get(f"/v2/clients/client_{'A' * 300}", headers=key_a.headers)
    assert_not_found(r)


async def test_query_parameters_on_a_single_client_are_400(
    client: httpx.AsyncClient, key_a: Key
) -> None:
    created = await create(client, key_a)
    r = await client.get(f"/v2/clients/{created['id']}?expand=all", headers=key_a.headers)
    assert_validation_error(r, {"expand"})


# -- update ---------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["PUT", "PATCH"])
async def test_update_is_a_merge_patch(client: httpx.AsyncClient, key_a: Key, method: str) -> None:
    created = await create(
        client,
        key_a,
        legalName="Legal S.A.",
        email="a@example.com",
        phone="55 1234 5678",
        address={"street": "Calle 1", "city": "CDMX", "zipCode": "03100"},
    )
    r = await client.request(
        method,
        f"/v2/clients/{created['id']}",
        json={"legalName": None, "phone": "  ", "address": {"city": "Puebla", "street": None}},
        headers={**key_a.headers, "Content-Type": "application/merge-patch+json"},
    )
    assert r.status_code == 200, r.text
    assert r.json()["message"] == "Client updated successfully"
    data = r.json()["data"]
    assert data["legalName"] is None
    assert data["phone"] is None
    assert data["name"] == created["name"]
    assert data["client"] == created["client"]
    assert data["address"] == {**NO_ADDRESS, "city": "Puebla", "zipCode": "03100"}
    assert data["timestamp"] == created["timestamp"]
    assert data["updatedAt"] > created["updatedAt"]


async def test_update_clearing_required_fields_is_400(
    client: httpx.AsyncClient, key_a: Key
) -> None:
    created = await create(client, key_a)
    r = await client.put(
        f"/v2/clients/{created['id']}",
        json={"name": None, "rfc": " ", "email": "bad"},
        headers=key_a.headers,
    )
    assert_validation_error(r, {"name", "rfc", "email"})
    got = await client.get(f"/v2/clients/{created['id']}", headers=key_a.headers)
    assert got.json()["data"] == created


async def test_update_via_alias_email(client: httpx.AsyncClient, key_a: Key) -> None:
    created = await create(client, key_a, email="a@example.com")
    r = await client.put(
        f"/v2/clients/{created['id']}",
        json={"client": {"email": None}},
        headers=key_a.headers,
    )
    assert r.status_code == 200, r.text
    assert r.json()["data"]["client"] == {"rfc": created["client"]["rfc"], "email": None}


async def test_update_with_unknown_field_is_400(client: httpx.AsyncClient, key_a: Key) -> None:
    created = await create(client, key_a)
    r = await client.patch(
        f"/v2/clients/{created['id']}", json={"colour": "red"}, headers=key_a.headers
    )
    assert_validation_error(r, {"colour"})


async def test_update_needs_json(client: httpx.AsyncClient, key_a: Key) -> None:
    created = await create(client, key_a)
    r = await client.put(
        f"/v2/clients/{created['id']}",
        content=b"name=x",
        headers={**key_a.headers, "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert r.status_code == 415


async def test_empty_update_changes_nothing(client: httpx.AsyncClient, key_a: Key) -> None:
    created = await create(client, key_a)
    r = await client.patch(f"/v2/clients/{created['id']}", json={}, headers=key_a.headers)
    assert r.status_code == 200
    assert r.json()["data"] == created


# -- ETag / If-Match ------------------------------------------------------------------------


async def test_if_match(client: httpx.AsyncClient, key_a: Key) -> None:
    r = await client.post("/v2/clients", json=client_body(), headers=key_a.headers)
    created, tag = r.json()["data"], r.headers["etag"]
    url = f"/v2/clients/{created['id']}"
    got = await client.get(url, headers=key_a.headers)
    assert got.headers["etag"] == tag

    ok = await client.patch(url, json={"name": "1"}, headers={**key_a.headers, "If-Match": tag})
    assert ok.status_code == 200, ok.text
    new_tag = ok.headers["etag"]
    assert new_tag != tag

    stale = await client.patch(url, json={"name": "2"}, headers={**key_a.headers, "If-Match": tag})
    assert stale.status_code == 412, stale.text
    assert stale.json()["error"]["code"] == "PRECONDITION_FAILED"
    assert stale.json()["message"]
    stale_delete = await client.delete(url, headers={**key_a.headers, "If-Match": tag})
    assert stale_delete.status_code == 412

    garbage = await client.patch(
        url, json={"name": "2"}, headers={**key_a.headers, "If-Match": '"not-a-tag"'}
    )
    assert garbage.status_code == 412
    assert (await client.get(url, headers=key_a.headers)).json()["data"]["name"] == "1"

    star = await client.patch(url, json={"name": "3"}, headers={**key_a.headers, "If-Match": "*"})
    assert star.status_code == 200
    # If-Match compares strongly (RFC 9110): a weak tag never matches, even the current one.
    weak = await client.delete(
        url, headers={**key_a.headers, "If-Match": f"W/{star.headers['etag']}"}
    )
    assert weak.status_code == 412, weak.text
    strong = await client.delete(url, headers={**key_a.headers, "If-Match": star.headers["etag"]})
    assert strong.status_code == 200, strong.text


async def test_if_match_on_a_missing_client_is_404(client: httpx.AsyncClient, key_a: Key) -> None:
    r = await client.patch(
        f"/v2/clients/{MISSING_ID}",
        json={"name": "x"},
        headers={**key_a.headers, "If-Match": '"garbage"'},
    )
    assert_not_found(r)


# -- delete ---------------------------------------------------------------------------------


async def test_delete(client: httpx.AsyncClient, key_a: Key) -> None:
    created = await create(client, key_a)
    url = f"/v2/clients/{created['id']}"
    r = await client.delete(url, headers=key_a.headers)
    assert r.status_code == 200, r.text
    assert r.json() == {
        "data": {"id": created["id"], "deleted": True},
        "message": "Client deleted successfully",
    }
    assert_not_found(await client.get(url, headers=key_a.headers))
    assert_not_found(await client.delete(url, headers=key_a.headers))
    # The RFC is free again.
    again = await create(client, key_a, rfc=created["client"]["rfc"])
    assert again["id"] != created["id"]


@pytest.mark.parametrize("kind", ["invoice", "payment"])
async def test_delete_in_use_is_409(
    client: httpx.AsyncClient, db: Database, key_a: Key, kind: str
) -> None:
    created = await create(client, key_a)
    await (add_invoice if kind == "invoice" else add_payment)(db, created["id"])
    r = await client.delete(f"/v2/clients/{created['id']}", headers=key_a.headers)
    assert r.status_code == 409, r.text
    body = r.json()
    assert body["message"] == "Client cannot be deleted"
    assert body["error"]["code"] == "CLIENT_IN_USE"
    assert body["error"]["message"] == "Client has associated invoices or payments"
    expected = {"invoiceCount": 1, "paymentCount": 0}
    if kind == "payment":
        expected = {"invoiceCount": 0, "paymentCount": 1}
    assert body["error"]["details"] == expected
    assert (
        await client.get(f"/v2/clients/{created['id']}", headers=key_a.headers)
    ).status_code == 200


async def test_delete_with_a_body_is_ignored_but_bounded(
    client: httpx.AsyncClient, key_a: Key
) -> None:
    created = await create(client, key_a)
    r = await client.request(
        "DELETE",
        f"/v2/clients/{created['id']}",
        content=b"x" * (256 * 1024 + 1),
        headers=key_a.headers,
    )
    assert r.status_code == 413


# -- body size ------------------------------------------------------------------------------

LIMIT = 256 * 1024


def _padded_body(size: int) -> bytes:
    """A JSON object of exactly `size` bytes."""
    base = orjson.dumps({"name": "x", "rfc": new_rfc()})
    return base[:-1] + b" " * (size - len(base)) + b"}"  # insignificant JSON whitespace


def assert_too_large(r: httpx.Response) -> None:
    assert r.status_code == 413, r.text
    body = r.json()
    assert body["error"]["code"] == "PAYLOAD_TOO_LARGE"
    assert body["message"]
    assert r.headers["x-request-id"]


async def test_body_at_the_limit_is_accepted(client: httpx.AsyncClient, key_a: Key) -> None:
    body = _padded_body(LIMIT)
    assert len(body) == LIMIT
    r = await client.post(
        "/v2/clients", content=body, headers={**key_a.headers, "Content-Type": "application/json"}
    )
    assert r.status_code == 201, r.text


async def test_body_over_the_limit_with_content_length(
    client: httpx.AsyncClient, key_a: Key
) -> None:
    body = _padded_body(LIMIT + 1)
    r = await client.post(
        "/v2/clients", content=body, headers={**key_a.headers, "Content-Type": "application/json"}
    )
    assert_too_large(r)


async def test_body_over_the_limit_chunked(client: httpx.AsyncClient, key_a: Key) -> None:
    body = _padded_body(LIMIT + 1)

    async def chunks() -> Any:
        for i in range(0, len(body), 16 * 1024):
            yield body[i : i + 16 * 1024]

    r = await client.post(
        "/v2/clients",
        content=chunks(),
        headers={**key_a.headers, "Content-Type": "application/json"},
    )
    assert_too_large(r)
    assert (await client.get("/v2/clients", headers=key_a.headers)).json()["totalResults"] == 0


async def test_body_limit_is_checked_before_auth_and_media_type(client: httpx.AsyncClient) -> None:
    r = await client.put(
        f"/v2/clients/{MISSING_ID}",
        content=b"x" * (LIMIT + 10),
        headers={"Content-Type": "text/plain"},
    )
    assert_too_large(r)
    r = await client.post("/nowhere", content=b"x" * (LIMIT + 10))
    assert_too_large(r)


async def test_query_parameters_on_create_are_400(client: httpx.AsyncClient, key_a: Key) -> None:
    rfc = new_rfc()
    r = await client.post(
        "/v2/clients?dryRun=true", json=client_body(rfc=rfc), headers=key_a.headers
    )
    assert_validation_error(r, {"dryRun"})
    assert (await client.get("/v2/clients", headers=key_a.headers)).json()["totalResults"] == 0


async def test_declared_oversize_body_is_413_on_any_method(
    client: httpx.AsyncClient, key_a: Key
) -> None:
    for method in ("GET", "DELETE", "OPTIONS"):
        r = await client.request(
            method, "/v2/clients", content=b"x" * (LIMIT + 1), headers=key_a.headers
        )
        assert_too_large(r)
    r = await client.request("GET", "/v2/clients", content=b"x" * LIMIT, headers=key_a.headers)
    assert r.status_code == 200
