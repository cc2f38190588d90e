"""Property: bodies built from hostile Unicode, over REST and GraphQL (issue 10).

Text is drawn from format characters (Cf: zero-width, BOM, soft hyphen, bidi controls),
combining marks (Mn), every kind of space (Zs), compatibility ligatures and characters whose
case mapping or normalisation changes their length (ß, ı, İ, ſ, ŉ, ΐ, ﬃ, ǆ, U+FDFA), lone
surrogates and a little ASCII, mixed into otherwise valid clients. Whatever comes:

- the answer is never a 5xx (201, or 400 / a ValidationError with named fields);
- what was accepted is stored as accepted: the create answer, a REST read and a GraphQL read
  agree, every text is what the field rules make of the input (NFC, trimmed), and a name
  search for the stored name finds the client.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from app.clients import validation
from app.db.database import Database
from tests.api.graphql.gql import CLIENT_FIELDS
from tests.support import create_key, new_rfc, unique_team

SPECIAL_CASING = "ßıİſŉǰΐΰﬀﬁﬂﬃﬄﬅﬆǄǅǆǇǈǉǊǋǌ\ufdfa\ufdfbŊẞΣςﷲ"
BIDI = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c"
HOSTILE = st.one_of(
    st.characters(categories=["Cf"]),
    st.characters(categories=["Mn"]),
    st.characters(categories=["Zs"]),
    st.sampled_from(SPECIAL_CASING + BIDI + "\u3164\u115f\u2800\ufeff\u00ad"),
    st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF),  # lone surrogates
    st.characters(codec="ascii", categories=["L", "N", "P", "Zs"]),
)
TEXT = st.text(HOSTILE, max_size=40) | st.text(
    st.sampled_from(SPECIAL_CASING), min_size=250, max_size=300
)
COUNTRIES = st.sampled_from(
    [None, "México", "Estados Unidos Mexicanos", "E.U.M.", "mex", "Guatemala", "\u200bMéxico"]
)


@st.composite
def bodies(draw: st.DrawFn) -> dict[str, Any]:
    """A client body: each field valid, hostile, or valid with hostile characters around it."""

    def field(valid: str, *, hostile_share: int = 1) -> Any:
        # Mostly valid values wrapped in hostile text, so that many bodies are stored.
        choice = draw(st.integers(0, 5))
        if choice < hostile_share:
            return draw(TEXT)
        if choice < 4:
            return draw(st.builds(lambda a, b: a + valid + b, TEXT, TEXT))
        return valid

    rfc = new_rfc()
    body: dict[str, Any] = {"name": field("Comercial Ñandú"), "rfc": field(rfc, hostile_share=0)}
    if draw(st.integers(0, 2)) > 0:
        body["rfc"] = rfc
    if draw(st.booleans()):
        body["legalName"] = field("Comercial Ñandú S.A. de C.V.")
    if draw(st.booleans()):
        body["email"] = draw(st.sampled_from(["ventas@example.com", field("ventas@example.com")]))
    if draw(st.booleans()):
        body["phone"] = draw(st.sampled_from(["+52 55 1234 5678", field("+52 55 1234 5678")]))
    if draw(st.booleans()):
        body["address"] = {
            "city": field("Ciudad de México"),
            "zipCode": draw(st.sampled_from(["03100", field("03100")])),
            "country": draw(COUNTRIES),
        }
    return body


def expected_text(value: Any) -> Any:
    """What the field rules store for an accepted text value."""
    return validation.clean_text(value) if isinstance(value, str) else value


def assert_stored_as_accepted(body: dict[str, Any], client: dict[str, Any]) -> None:
    assert client["name"] == validation.check_name(body["name"])
    assert client["rfc"] == validation.check_rfc(body["rfc"])[0]
    for name in ("legalName", "email", "phone"):
        assert client[name] == expected_text(body.get(name)), name
    if body.get("address"):
        # An address of only blank values is stored as no address (null): then every
        # expected value is None too.
        address = client["address"] or {}
        for name in ("city", "zipCode", "country"):
            assert address.get(name) == expected_text(body["address"].get(name)), name


GQL_CREATE = (
    "mutation($input: CreateClientInput!) { createClient(input: $input) { __typename "
    f"... on Client {{ {CLIENT_FIELDS} }} ... on ValidationError {{ fields {{ field message }} }}"
    " ... on DuplicateRfcError { rfc } } }"
)
GQL_READ = f"query($id: ID!) {{ client(id: $id) {{ ... on Client {{ {CLIENT_FIELDS} }} }} }}"


COMPARED = ("id", "name", "legalName", "rfc", "email", "phone", "address")


def _raw(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload).encode()  # keeps lone surrogates as \\ud800 escapes


def _flat_rest(client: dict[str, Any]) -> dict[str, Any]:
    """A REST client in GraphQL's field names, for comparing the two reads."""
    return {
        "id": client["id"],
        "name": client["name"],
        "legalName": client["legalName"],
        "rfc": client["client"]["rfc"],
        "email": client["client"]["email"],
        "phone": client["phone"],
        "address": client["address"],
    }


async def _via_rest(http: httpx.AsyncClient, headers: dict[str, str], body: dict[str, Any]) -> Any:
    created = await http.post("/v2/clients", content=_raw(body), headers=headers)
    assert created.status_code in (201, 400), created.text
    if created.status_code == 400:
        assert created.json()["error"]["code"] == "VALIDATION_ERROR", created.text
        return None
    return _flat_rest(created.json()["data"])


async def _via_graphql(
    http: httpx.AsyncClient, headers: dict[str, str], body: dict[str, Any]
) -> Any:
    answer = await http.post(
        "/graphql",
        content=_raw({"query": GQL_CREATE, "variables": {"input": body}}),
        headers=headers,
    )
    assert answer.status_code == 200, answer.text
    result = answer.json()["data"]["createClient"]
    assert result["__typename"] in ("Client", "ValidationError"), result
    return result if result["__typename"] == "Client" else None


@given(body=bodies(), transport=st.sampled_from(["rest", "graphql"]))
@settings(
    max_examples=120,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
async def test_hostile_unicode_is_refused_or_stored_as_accepted(
    client: httpx.AsyncClient, db: Database, body: dict[str, Any], transport: str
) -> None:
    key = await create_key(db, team=unique_team("unicode"))
    headers = {**key.headers, "content-type": "application/json"}
    create = _via_rest if transport == "rest" else _via_graphql
    created = await create(client, headers, body)
    event(f"{transport}: {'refused' if created is None else 'stored'}")
    if created is None:
        return
    assert_stored_as_accepted(body, created)

    rest = await client.get(f"/v2/clients/{created['id']}", headers=headers)
    assert rest.status_code == 200
    assert _flat_rest(rest.json()["data"]) == {k: created[k] for k in COMPARED}
    read = await client.post(
        "/graphql",
        content=_raw({"query": GQL_READ, "variables": {"id": created["id"]}}),
        headers=headers,
    )
    via_graphql = read.json()["data"]["client"]
    assert {k: via_graphql[k] for k in COMPARED} == {k: created[k] for k in COMPARED}
    found = await client.get("/v2/clients", params={"name": created["name"]}, headers=headers)
    assert found.status_code == 200, found.text
    assert created["id"] in [c["id"] for c in found.json()["data"]]
