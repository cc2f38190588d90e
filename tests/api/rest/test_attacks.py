"""What an attacker found in /v2/clients (issue 10), each class on this run's engine:

- 2: names that grow under search normalisation (U+FDFA, ß) are stored and read back;
- 3: If-Match with digits Python's isdigit() takes and int() refuses is never a 500, and only
  the exact tag text matches;
- 4: an idempotent create with a deeply nested read-only field is a 201 and replays;
- 8: bad input is refused before case mapping, invisible names are blank, bidi overrides are
  refused, every name of Mexico gets the zip rule — over REST and GraphQL alike.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import orjson
import pytest

from tests.api.graphql.gql import CREATE, gql
from tests.support import Key, new_rfc

# -- 2: derived columns wide enough -----------------------------------------------------------


@pytest.mark.parametrize(
    "fields",
    [
        {"name": "\ufdfa" * 39},
        {"name": "\ufdfa" * 300, "legalName": "\ufdfa" * 300},
        {"name": "ß" * 300, "legalName": "ß" * 300},
        {"name": "ﬃ" * 300, "legalName": "ǆ" * 300},
    ],
)
async def test_names_that_grow_when_normalised_are_stored(
    client: httpx.AsyncClient, key_a: Key, fields: dict[str, str]
) -> None:
    created = await client.post(
        "/v2/clients", json={**fields, "rfc": new_rfc()}, headers=key_a.headers
    )
    assert created.status_code == 201, created.text
    read = await client.get(f"/v2/clients/{created.json()['data']['id']}", headers=key_a.headers)
    assert read.json()["data"]["name"] == fields["name"]
    assert read.json()["data"]["legalName"] == fields.get("legalName")
    found = await client.get(
        "/v2/clients", params={"name": fields["name"][:3]}, headers=key_a.headers
    )
    assert found.status_code == 200
    assert created.json()["data"]["id"] in [c["id"] for c in found.json()["data"]]


# -- 3: If-Match ------------------------------------------------------------------------------


async def _client_and_tag(client: httpx.AsyncClient, key: Key) -> tuple[str, str]:
    created = await client.post(
        "/v2/clients", json={"name": "Etag", "rfc": new_rfc()}, headers=key.headers
    )
    return f"/v2/clients/{created.json()['data']['id']}", created.headers["etag"]


@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE"])
@pytest.mark.parametrize(
    "header",
    ['"²"', '"¹²³"', '"1", "²"', '"٣"', '"１２"', '"' + "9" * 400 + '"', "²", '"', '""', 'W/"²"'],
)
async def test_if_match_with_odd_digits_is_a_412_never_a_500(
    client: httpx.AsyncClient, key_a: Key, method: str, header: str
) -> None:
    url, _tag = await _client_and_tag(client, key_a)
    # As a client would send it: Latin-1 bytes when it can (what servers decode headers as).
    raw = header.encode("latin-1") if max(map(ord, header)) < 256 else header.encode()
    body = None if method == "DELETE" else orjson.dumps({"name": "Cambio"})
    headers = {**key_a.headers, "content-type": "application/json", "If-Match": raw}
    answer = await client.request(method, url, content=body, headers=headers)  # type: ignore[arg-type]
    assert answer.status_code == 412, answer.text
    assert answer.json()["error"]["code"] == "PRECONDITION_FAILED"


@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE"])
async def test_if_match_compares_the_exact_tag_text(
    client: httpx.AsyncClient, key_a: Key, method: str
) -> None:
    url, tag = await _client_and_tag(client, key_a)
    body = None if method == "DELETE" else orjson.dumps({"name": "Cambio"})
    headers = {**key_a.headers, "content-type": "application/json"}
    for near in ['"0' + tag[1:], '"00' + tag[1:], '"+' + tag[1:], f'"1", "0{tag[1:]}']:
        refused = await client.request(
            method, url, content=body, headers={**headers, "If-Match": near}
        )
        assert refused.status_code == 412, (near, refused.text)
    accepted = await client.request(
        method, url, content=body, headers={**headers, "If-Match": f'"1", {tag}'}
    )
    assert accepted.status_code == 200, accepted.text


# -- 4: the idempotency fingerprint -----------------------------------------------------------


@pytest.mark.parametrize("depth", [254, 255, 256, 600])
async def test_an_idempotent_create_with_a_deep_read_only_field(
    client: httpx.AsyncClient, key_a: Key, depth: int
) -> None:
    nested: Any = "x"
    for _ in range(depth):
        nested = {"id": nested}
    body = {"name": "Profundo", "rfc": new_rfc(), "id": nested}
    headers = {
        **key_a.headers,
        "content-type": "application/json",
        "Idempotency-Key": f"deep-{depth}-{new_rfc()}",
    }
    first = await client.post("/v2/clients", content=json.dumps(body), headers=headers)
    assert first.status_code == 201, first.text
    again = await client.post("/v2/clients", content=json.dumps(body), headers=headers)
    assert again.status_code == 201 and again.headers["idempotent-replayed"] == "true"
    assert again.json()["data"]["id"] == first.json()["data"]["id"]


# -- 8: bad input refused, over both transports -----------------------------------------------


REFUSED = [
    ({"rfc": "Mß9307148T4"}, "rfc", "Invalid RFC format"),
    ({"rfc": "MAB930714ıT4"}, "rfc", "Invalid RFC format"),
    ({"rfc": "MAB930714ſT4"}, "rfc", "Invalid RFC format"),  # long s upper-cases to S
    ({"rfc": "ﬀAB9307148T4"}, "rfc", "Invalid RFC format"),  # ligature upper-cases to FF
    ({"name": "\u200b"}, "name", "Name is required"),
    ({"name": "\ufeff\u200b\u2060"}, "name", "Name is required"),
    ({"name": "\u3164\u115f"}, "name", "Name is required"),
    ({"name": "Pago \u202eFDP.exe"}, "name", "bidirectional"),
    ({"name": "a\u2066b\u2069"}, "name", "bidirectional"),
    (
        {"address": {"zipCode": "ABC", "country": "Estados Unidos Mexicanos"}},
        "address.zipCode",
        "five digits",
    ),
    ({"address": {"zipCode": "1234", "country": "E.U.M."}}, "address.zipCode", "five digits"),
    (
        {"address": {"zipCode": "x", "country": "República Mexicana"}},
        "address.zipCode",
        "five digits",
    ),
]


@pytest.mark.parametrize(("fields", "field", "message"), REFUSED)
async def test_bad_input_is_refused_by_rest(
    client: httpx.AsyncClient, key_a: Key, fields: dict[str, Any], field: str, message: str
) -> None:
    body = {"name": "Válido", "rfc": new_rfc(), **fields}
    answer = await client.post("/v2/clients", json=body, headers=key_a.headers)
    assert answer.status_code == 400, answer.text
    assert message in answer.json()["error"]["details"][field]
    listed = await client.get("/v2/clients", headers=key_a.headers)
    assert listed.json()["data"] == []


@pytest.mark.parametrize(("fields", "field", "message"), REFUSED)
async def test_bad_input_is_refused_by_graphql(
    client: httpx.AsyncClient, key_a: Key, fields: dict[str, Any], field: str, message: str
) -> None:
    body = await gql(
        client, key_a, CREATE, {"input": {"name": "Válido", "rfc": new_rfc(), **fields}}
    )
    result = body["data"]["createClient"]
    assert result["__typename"] == "ValidationError", result
    assert any(f["field"] == field and message in f["message"] for f in result["fields"]), result


async def test_an_invisible_update_is_refused_and_changes_nothing(
    client: httpx.AsyncClient, key_a: Key
) -> None:
    url, _ = await _client_and_tag(client, key_a)
    answer = await client.patch(url, json={"name": "\u200b\ufeff"}, headers=key_a.headers)
    assert answer.status_code == 400 and answer.json()["error"]["details"] == {
        "name": "Name is required"
    }
    assert (await client.get(url, headers=key_a.headers)).json()["data"]["name"] == "Etag"
