"""GraphQL queries and mutations of one client (contract §5): every union member, the same
codes and messages as REST for the same case, merge-patch updates, and tenancy."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from app.db.database import Database
from tests.api.graphql.gql import (
    CREATE,
    DELETE,
    GET,
    ISO_MS_Z,
    LIST,
    UPDATE,
    create,
    data,
    gql,
)
from tests.support import Key, add_invoice, add_payment, new_rfc

FULL = {
    "name": "Comercializadora México",
    "legalName": "Comercializadora México SA de CV",
    "email": "Facturas@Example.mx",
    "phone": "+52 55 1234 5678",
    "address": {
        "street": "Av. Reforma 222",
        "city": "Ciudad de México",
        "state": "CDMX",
        "zipCode": "06600",
        "country": "MX",
    },
}
MISSING_ID = "client_01J00000000000000000000000"
# Every address key of a response, unset.
NO_ADDRESS = dict.fromkeys(
    ["street", "exterior", "interior", "neighborhood", "city", "municipality"]
)
NO_ADDRESS.update(dict.fromkeys(["state", "zipCode", "country"]))


def as_rest(c: dict[str, Any]) -> dict[str, Any]:
    """A GraphQL Client in the documented REST shape."""
    return {
        "id": c["id"],
        "name": c["name"],
        "legalName": c["legalName"],
        "client": {"rfc": c["rfc"], "email": c["email"]},
        "phone": c["phone"],
        "address": c["address"],
        "timestamp": c["createdAt"],
        "updatedAt": c["updatedAt"],
        "livemode": c["livemode"],
        "rfcCheckDigitValid": c["rfcCheckDigitValid"],
        "taxSystem": c["taxSystem"],
        "cfdiUse": c["cfdiUse"],
        "metadata": c["metadata"],
        "cfdiName": c["cfdiName"],
        "invoiceReady": c["invoiceReadiness"]["ready"],
        "invoiceIssues": c["invoiceReadiness"]["issues"],
    }


async def rest_get(client: httpx.AsyncClient, key: Key, client_id: str) -> httpx.Response:
    return await client.get(f"/v2/clients/{client_id}", headers=key.headers)


async def get(client: httpx.AsyncClient, key: Key, client_id: str) -> dict[str, Any]:
    result: dict[str, Any] = (await data(client, key, GET, {"id": client_id}))["client"]
    return result


async def update(
    client: httpx.AsyncClient, key: Key, client_id: str, expected: str | None = None, **input: Any
) -> dict[str, Any]:
    variables = {"id": client_id, "input": input, "expected": expected}
    result: dict[str, Any] = (await data(client, key, UPDATE, variables))["updateClient"]
    return result


async def delete(
    client: httpx.AsyncClient, key: Key, client_id: str, expected: str | None = None
) -> dict[str, Any]:
    variables = {"id": client_id, "expected": expected}
    result: dict[str, Any] = (await data(client, key, DELETE, variables))["deleteClient"]
    return result


def assert_matches_rest(member: dict[str, Any], rest: httpx.Response) -> None:
    """A union error member carries the code and message of the REST error for the case."""
    error = rest.json()["error"]
    assert member["code"] == error["code"]
    assert member["message"] == error["message"]


# -- createClient -----------------------------------------------------------------------------


async def test_create_returns_the_client(client: httpx.AsyncClient, key_a: Key, rfc: str) -> None:
    messy_rfc = f" {rfc[:4].lower()}-{rfc[4:]} "
    created = await create(client, key_a, rfc=messy_rfc, **FULL)

    assert created["id"].startswith("client_") and len(created["id"]) == 33
    assert created["rfc"] == rfc
    assert created["rfcCheckDigitValid"] is True
    assert created["livemode"] is True
    for field in ("name", "legalName", "email", "phone"):
        assert created[field] == FULL[field], field
    assert created["address"] == {**NO_ADDRESS, **FULL["address"]}
    assert ISO_MS_Z.match(created["createdAt"]) and created["updatedAt"] == created["createdAt"]


async def test_create_with_only_required_fields_has_nulls(
    client: httpx.AsyncClient, key_a: Key, rfc: str
) -> None:
    created = await create(client, key_a, name="Solo", rfc=rfc, address={})
    assert [created[f] for f in ("legalName", "email", "phone", "address")] == [None] * 4


async def test_create_in_test_mode_is_not_livemode(
    client: httpx.AsyncClient, key_a_test: Key, rfc: str
) -> None:
    assert (await create(client, key_a_test, name="Prueba", rfc=rfc))["livemode"] is False


async def test_create_validation_error_lists_every_field_like_rest(
    client: httpx.AsyncClient, key_a: Key
) -> None:
    bad = {
        "name": " ",
        "rfc": "NOT-AN-RFC",
        "email": "not-an-email",
        "phone": "12",
        "address": {"zipCode": "123", "city": "x" * 201},
    }
    result = (await data(client, key_a, CREATE, {"input": bad}))["createClient"]

    assert result["__typename"] == "ValidationError"
    fields = {f["field"]: f["message"] for f in result["fields"]}
    assert set(fields) == {"name", "rfc", "email", "phone", "address.zipCode", "address.city"}
    rest = await client.post("/v2/clients", json=bad, headers=key_a.headers)
    assert rest.status_code == 400
    assert_matches_rest(result, rest)
    assert rest.json()["error"]["details"] == fields
    assert (await data(client, key_a, LIST))["clients"]["totalCount"] == 0


async def test_create_duplicate_rfc_names_the_existing_client(
    client: httpx.AsyncClient, key_a: Key, rfc: str
) -> None:
    first = await create(client, key_a, name="Primero", rfc=rfc)
    again = {"name": "Segundo", "rfc": rfc.lower()}
    result = (await data(client, key_a, CREATE, {"input": again}))["createClient"]

    assert result == {
        "__typename": "DuplicateRfcError",
        "code": "DUPLICATE_RFC",
        "message": "A client with this RFC already exists",
        "rfc": rfc,
        "existingClientId": first["id"],
    }
    rest = await client.post("/v2/clients", json=again, headers=key_a.headers)
    assert rest.status_code == 409
    assert_matches_rest(result, rest)
    assert rest.json()["error"]["details"]["existingClientId"] == first["id"]


async def test_generic_rfc_may_repeat(client: httpx.AsyncClient, key_a: Key) -> None:
    for n in range(2):
        await create(client, key_a, name=f"Público {n}", rfc="XAXX010101000")


async def test_rfc_uniqueness_is_per_team_and_mode(
    client: httpx.AsyncClient, key_a: Key, key_a_test: Key, key_b: Key, rfc: str
) -> None:
    ids = {
        (await create(client, k, name="Mismo RFC", rfc=rfc))["id"]
        for k in (key_a, key_a_test, key_b)
    }
    assert len(ids) == 3


# -- client(id) -------------------------------------------------------------------------------


async def test_client_by_id_is_the_created_client(
    client: httpx.AsyncClient, key_a: Key, rfc: str
) -> None:
    created = await create(client, key_a, rfc=rfc, **FULL)
    assert await get(client, key_a, created["id"]) == created


@pytest.mark.parametrize(
    "client_id",
    [
        MISSING_ID,
        "nope",
        "client_",
        "client_" + "Z" * 200,
        "invoice_01J00000000000000000000000",
        "client_01j00000000000000000000000",
        "",
        "' OR 1=1 --",
    ],
)
async def test_client_not_found_is_a_union_member(
    client: httpx.AsyncClient, key_a: Key, client_id: str
) -> None:
    body = await gql(client, key_a, GET, {"id": client_id})
    assert "errors" not in body
    assert body["data"]["client"] == {
        "__typename": "NotFoundError",
        "code": "NOT_FOUND",
        "message": "Client not found",
        "id": client_id,
    }


async def test_client_not_found_matches_rest(client: httpx.AsyncClient, key_a: Key) -> None:
    for client_id in (MISSING_ID, "nope"):
        result = await get(client, key_a, client_id)
        rest = await rest_get(client, key_a, client_id)
        assert rest.status_code == 404
        assert_matches_rest(result, rest)


# -- the same client through REST and GraphQL --------------------------------------------------


async def test_graphql_client_reads_the_same_through_rest(
    client: httpx.AsyncClient, key_a: Key, rfc: str
) -> None:
    created = await create(client, key_a, rfc=rfc, **FULL)
    updated = await update(client, key_a, created["id"], phone="+52 33 1234 5678")
    assert updated["updatedAt"] > updated["createdAt"]

    rest = await rest_get(client, key_a, created["id"])
    assert rest.status_code == 200
    assert rest.json()["data"] == as_rest(updated)


async def test_rest_client_reads_the_same_through_graphql(
    client: httpx.AsyncClient, key_a: Key, rfc: str
) -> None:
    response = await client.post("/v2/clients", json={"rfc": rfc, **FULL}, headers=key_a.headers)
    assert response.status_code == 201
    rest_client = response.json()["data"]

    fetched = await get(client, key_a, rest_client["id"])
    assert fetched["__typename"] == "Client"
    assert as_rest(fetched) == rest_client
    assert ISO_MS_Z.match(fetched["createdAt"]) and ISO_MS_Z.match(fetched["updatedAt"])


async def test_list_matches_rest_list(client: httpx.AsyncClient, key_a: Key) -> None:
    for n in range(3):
        await create(client, key_a, name=f"Lista {n}", rfc=new_rfc())
    nodes = (await data(client, key_a, LIST))["clients"]["nodes"]
    rest = (await client.get("/v2/clients", headers=key_a.headers)).json()
    assert [as_rest(n) for n in nodes] == rest["data"]


# -- updateClient -----------------------------------------------------------------------------


async def test_update_changes_fields_and_moves_updated_at(
    client: httpx.AsyncClient, key_a: Key, rfc: str
) -> None:
    created = await create(client, key_a, rfc=rfc, **FULL)
    new_rfc_value = new_rfc()
    updated = await update(client, key_a, created["id"], name="Nuevo nombre", rfc=new_rfc_value)

    assert updated["__typename"] == "Client"
    assert (updated["name"], updated["rfc"]) == ("Nuevo nombre", new_rfc_value)
    assert updated["createdAt"] == created["createdAt"]
    assert ISO_MS_Z.match(updated["updatedAt"]) and updated["updatedAt"] > created["updatedAt"]
    assert await get(client, key_a, created["id"]) == updated


async def test_update_validation_error_like_rest(
    client: httpx.AsyncClient, key_a: Key, rfc: str
) -> None:
    created = await create(client, key_a, rfc=rfc, **FULL)
    bad = {"email": "nope", "rfc": "XYZ", "address": {"zipCode": "ABCDE"}}
    result = await update(client, key_a, created["id"], **bad)

    assert result["__typename"] == "ValidationError"
    fields = {f["field"]: f["message"] for f in result["fields"]}
    assert set(fields) == {"email", "rfc", "address.zipCode"}
    rest = await client.patch(f"/v2/clients/{created['id']}", json=bad, headers=key_a.headers)
    assert rest.status_code == 400
    assert_matches_rest(result, rest)
    assert rest.json()["error"]["details"] == fields
    assert await get(client, key_a, created["id"]) == created


async def test_update_to_a_taken_rfc_is_a_duplicate(
    client: httpx.AsyncClient, key_a: Key, rfc: str
) -> None:
    taken = await create(client, key_a, name="Dueño", rfc=rfc)
    other = await create(client, key_a, name="Otro", rfc=new_rfc())
    result = await update(client, key_a, other["id"], rfc=rfc.lower())

    assert result == {
        "__typename": "DuplicateRfcError",
        "code": "DUPLICATE_RFC",
        "message": "A client with this RFC already exists",
        "rfc": rfc,
        "existingClientId": taken["id"],
    }
    rest = await client.patch(
        f"/v2/clients/{other['id']}", json={"rfc": rfc}, headers=key_a.headers
    )
    assert rest.status_code == 409
    assert_matches_rest(result, rest)
    assert await get(client, key_a, other["id"]) == other


@pytest.mark.parametrize("client_id", [MISSING_ID, "nope"])
async def test_update_missing_client_is_not_found(
    client: httpx.AsyncClient, key_a: Key, client_id: str
) -> None:
    result = await update(client, key_a, client_id, name="x")
    assert result == {
        "__typename": "NotFoundError",
        "code": "NOT_FOUND",
        "message": "Client not found",
        "id": client_id,
    }
    rest = await client.patch(f"/v2/clients/{client_id}", json={"name": "x"}, headers=key_a.headers)
    assert rest.status_code == 404
    assert_matches_rest(result, rest)


async def test_update_with_stale_expected_updated_at_is_a_conflict(
    client: httpx.AsyncClient, key_a: Key, rfc: str
) -> None:
    created = await create(client, key_a, name="Versión 1", rfc=rfc)
    v2 = await update(client, key_a, created["id"], created["updatedAt"], name="Versión 2")
    assert v2["__typename"] == "Client"

    stale = await update(client, key_a, created["id"], created["updatedAt"], name="Versión 3")
    assert stale["__typename"] == "ConflictError"
    assert stale["id"] == created["id"]
    assert stale["currentUpdatedAt"] == v2["updatedAt"]
    assert ISO_MS_Z.match(stale["currentUpdatedAt"])
    assert await get(client, key_a, created["id"]) == v2

    rest = await client.patch(
        f"/v2/clients/{created['id']}",
        json={"name": "Versión 3"},
        headers={**key_a.headers, "If-Match": '"1"'},
    )
    assert rest.status_code == 412
    assert_matches_rest(stale, rest)


# -- explicit null versus omitted ---------------------------------------------------------------


async def test_omitted_fields_are_kept_and_null_clears(
    client: httpx.AsyncClient, key_a: Key, rfc: str
) -> None:
    created = await create(client, key_a, rfc=rfc, **FULL)

    updated = await update(client, key_a, created["id"], legalName=None, email=None)
    assert updated["legalName"] is None and updated["email"] is None
    keep = ("name", "rfc", "phone", "address", "createdAt")
    assert {f: updated[f] for f in keep} == {f: created[f] for f in keep}

    unchanged = await update(client, key_a, created["id"])
    assert unchanged == updated


async def test_null_clears_with_literal_arguments_too(
    client: httpx.AsyncClient, key_a: Key, rfc: str
) -> None:
    created = await create(client, key_a, rfc=rfc, **FULL)
    query = f"""mutation {{ updateClient(id: "{created["id"]}", input: {{phone: null}}) {{
      ... on Client {{ phone email }} }} }}"""
    result = (await data(client, key_a, query))["updateClient"]
    assert result == {"phone": None, "email": FULL["email"]}


@pytest.mark.parametrize("fields", [["name"], ["rfc"], ["name", "rfc"]])
async def test_null_name_or_rfc_is_a_validation_error(
    client: httpx.AsyncClient, key_a: Key, rfc: str, fields: list[str]
) -> None:
    created = await create(client, key_a, rfc=rfc, **FULL)
    result = await update(client, key_a, created["id"], **dict.fromkeys(fields))

    assert result["__typename"] == "ValidationError"
    assert result["code"] == "VALIDATION_ERROR"
    assert {f["field"] for f in result["fields"]} == set(fields)
    rest = await client.patch(
        f"/v2/clients/{created['id']}", json=dict.fromkeys(fields), headers=key_a.headers
    )
    assert rest.status_code == 400
    assert rest.json()["error"]["details"] == {f["field"]: f["message"] for f in result["fields"]}
    assert await get(client, key_a, created["id"]) == created


async def test_null_name_as_a_literal_is_a_validation_error(
    client: httpx.AsyncClient, key_a: Key, rfc: str
) -> None:
    created = await create(client, key_a, rfc=rfc, **FULL)
    query = f"""mutation {{ updateClient(id: "{created["id"]}", input: {{name: null}}) {{
      __typename ... on ValidationError {{ fields {{ field }} }} }} }}"""
    result = (await data(client, key_a, query))["updateClient"]
    assert result == {"__typename": "ValidationError", "fields": [{"field": "name"}]}


async def test_address_merges_field_by_field(
    client: httpx.AsyncClient, key_a: Key, rfc: str
) -> None:
    created = await create(client, key_a, rfc=rfc, **FULL)

    updated = await update(client, key_a, created["id"], address={"city": None, "state": "Jal."})
    assert updated["address"] == {**NO_ADDRESS, **FULL["address"], "city": None, "state": "Jal."}

    updated = await update(client, key_a, created["id"], address={})
    assert updated["address"] == {**NO_ADDRESS, **FULL["address"], "city": None, "state": "Jal."}


async def test_address_null_clears_all_of_it(
    client: httpx.AsyncClient, key_a: Key, rfc: str
) -> None:
    created = await create(client, key_a, rfc=rfc, **FULL)
    updated = await update(client, key_a, created["id"], address=None)
    assert updated["address"] is None
    assert updated["name"] == created["name"]

    added = await update(client, key_a, created["id"], address={"zipCode": "44100"})
    assert added["address"] == {**NO_ADDRESS, "zipCode": "44100"}


# -- deleteClient -----------------------------------------------------------------------------


async def test_delete_then_the_client_is_gone(
    client: httpx.AsyncClient, key_a: Key, rfc: str
) -> None:
    created = await create(client, key_a, name="Borrar", rfc=rfc)
    assert await delete(client, key_a, created["id"]) == {
        "__typename": "DeletedClient",
        "id": created["id"],
        "deleted": True,
    }
    assert (await get(client, key_a, created["id"]))["__typename"] == "NotFoundError"
    again = await delete(client, key_a, created["id"])
    assert again["__typename"] == "NotFoundError" and again["id"] == created["id"]
    rest = await client.delete(f"/v2/clients/{created['id']}", headers=key_a.headers)
    assert rest.status_code == 404
    assert_matches_rest(again, rest)
    # A deleted client frees its RFC.
    await create(client, key_a, name="De nuevo", rfc=rfc)


async def test_delete_missing_or_malformed_id_is_not_found(
    client: httpx.AsyncClient, key_a: Key
) -> None:
    for client_id in (MISSING_ID, "nope", "client_" + "9" * 100):
        result = await delete(client, key_a, client_id)
        assert result == {
            "__typename": "NotFoundError",
            "code": "NOT_FOUND",
            "message": "Client not found",
            "id": client_id,
        }


async def test_delete_client_in_use_is_refused_with_counts(
    client: httpx.AsyncClient, db: Database, key_a: Key, rfc: str
) -> None:
    created = await create(client, key_a, name="Con facturas", rfc=rfc)
    await add_invoice(db, created["id"])
    await add_invoice(db, created["id"])
    await add_payment(db, created["id"])

    result = await delete(client, key_a, created["id"])
    assert result == {
        "__typename": "ClientInUseError",
        "code": "CLIENT_IN_USE",
        "message": "Client has associated invoices or payments",
        "invoiceCount": 2,
        "paymentCount": 1,
    }
    rest = await client.delete(f"/v2/clients/{created['id']}", headers=key_a.headers)
    assert rest.status_code == 409
    assert_matches_rest(result, rest)
    assert await get(client, key_a, created["id"]) == created


async def test_delete_with_only_a_payment_is_refused(
    client: httpx.AsyncClient, db: Database, key_a: Key, rfc: str
) -> None:
    created = await create(client, key_a, name="Con pago", rfc=rfc)
    await add_payment(db, created["id"])
    result = await delete(client, key_a, created["id"])
    assert (result["invoiceCount"], result["paymentCount"]) == (0, 1)


async def test_delete_with_stale_expected_updated_at_is_a_conflict(
    client: httpx.AsyncClient, key_a: Key, rfc: str
) -> None:
    created = await create(client, key_a, name="Antes", rfc=rfc)
    updated = await update(client, key_a, created["id"], name="Después")

    result = await delete(client, key_a, created["id"], created["updatedAt"])
    assert result["__typename"] == "ConflictError"
    assert result["code"] == "PRECONDITION_FAILED"
    assert result["currentUpdatedAt"] == updated["updatedAt"]
    assert await get(client, key_a, created["id"]) == updated

    deleted = await delete(client, key_a, created["id"], updated["updatedAt"])
    assert deleted["__typename"] == "DeletedClient"


# -- tenancy ----------------------------------------------------------------------------------


@pytest.fixture(params=["other_team", "test_mode"])
def outsider(request: pytest.FixtureRequest, key_b: Key, key_a_test: Key) -> Key:
    """Someone who must see nothing of team A's live clients: team B, or A in test mode."""
    return key_b if request.param == "other_team" else key_a_test


async def test_outsiders_see_nothing_of_team_a(
    client: httpx.AsyncClient, key_a: Key, outsider: Key, rfc: str
) -> None:
    mine = await create(client, key_a, rfc=rfc, **FULL)

    found = await get(client, outsider, mine["id"])
    assert found == {
        "__typename": "NotFoundError",
        "code": "NOT_FOUND",
        "message": "Client not found",
        "id": mine["id"],
    }
    listed = (await data(client, outsider, LIST, {"filter": {"rfc": rfc}}))["clients"]
    assert listed["nodes"] == [] and listed["totalCount"] == 0
    everything = (await data(client, outsider, LIST))["clients"]
    assert mine["id"] not in {n["id"] for n in everything["nodes"]}


async def test_outsiders_cannot_change_team_a_clients(
    client: httpx.AsyncClient, db: Database, key_a: Key, outsider: Key, rfc: str
) -> None:
    mine = await create(client, key_a, rfc=rfc, **FULL)

    for result in (
        await update(client, outsider, mine["id"], name="Robado", email=None),
        await update(client, outsider, mine["id"], mine["updatedAt"], name="Robado"),
        await delete(client, outsider, mine["id"]),
        await delete(client, outsider, mine["id"], mine["updatedAt"]),
    ):
        assert result["__typename"] == "NotFoundError", result
        assert result["id"] == mine["id"]
    await add_invoice(db, mine["id"])
    assert (await delete(client, outsider, mine["id"]))["__typename"] == "NotFoundError"

    assert await get(client, key_a, mine["id"]) == mine


# -- several fields in one document -------------------------------------------------------------


async def test_root_fields_resolved_together_each_get_their_answer(
    client: httpx.AsyncClient, key_a: Key
) -> None:
    ids = [(await create(client, key_a, name=f"Junto {n}", rfc=new_rfc()))["id"] for n in range(4)]
    fields = " ".join(
        f'c{n}: client(id: "{client_id}") {{ ... on Client {{ id }} }}'
        for n, client_id in enumerate([*ids, MISSING_ID])
    )
    query = f"{{ {fields} list: clients {{ totalCount nodes {{ id }} }} }}"
    result = await data(client, key_a, query)
    assert [result[f"c{n}"].get("id") for n in range(5)] == [*ids, None]
    assert result["list"]["totalCount"] == 4


async def test_mutations_in_one_document_run_in_order(
    client: httpx.AsyncClient, key_a: Key, rfc: str
) -> None:
    query = f"""mutation {{
      first: createClient(input: {{name: "Primero", rfc: "{rfc}"}}) {{
        __typename ... on Client {{ id }} }}
      second: createClient(input: {{name: "Segundo", rfc: "{rfc}"}}) {{
        __typename ... on DuplicateRfcError {{ existingClientId }} }}
      gone: deleteClient(id: "{MISSING_ID}") {{ __typename }}
    }}"""
    result = await data(client, key_a, query)
    assert result["first"]["__typename"] == "Client"
    assert result["second"] == {
        "__typename": "DuplicateRfcError",
        "existingClientId": result["first"]["id"],
    }
    assert result["gone"] == {"__typename": "NotFoundError"}
