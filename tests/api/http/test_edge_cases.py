"""Edge cases found in review: each was a wrong answer once."""

from __future__ import annotations

import httpx

from tests.api.graphql.gql import assert_argument_error, create, gql, only_error
from tests.support import Key, new_rfc

URL = "/v2/clients"


async def test_empty_selection_set_is_a_document_error_not_a_crash(
    client: httpx.AsyncClient, key_a: Key
) -> None:
    error = only_error(await gql(client, key_a, "{ clients { } }"))
    assert error["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    assert "empty" in error["message"]


async def test_null_variable_for_a_non_null_argument_is_a_validation_error(
    client: httpx.AsyncClient, key_a: Key
) -> None:
    query = "query($n: Int) { clients(first: $n) { nodes { id } } }"
    body = await gql(client, key_a, query, {"n": None})
    assert_argument_error(body, "first")


async def test_trailing_slash_is_an_unknown_route_not_a_redirect(
    client: httpx.AsyncClient, key_a: Key
) -> None:
    r = await client.get(f"{URL}/", headers=key_a.headers)
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "ROUTE_NOT_FOUND"


async def test_if_match_with_a_list_of_etags(client: httpx.AsyncClient, key_a: Key) -> None:
    created = await client.post(
        URL, json={"name": "Lista", "rfc": new_rfc()}, headers=key_a.headers
    )
    etag = created.headers["etag"]
    url = f"{URL}/{created.json()['data']['id']}"
    stale = '"1", "2"'
    r = await client.patch(url, json={"name": "X"}, headers={**key_a.headers, "If-Match": stale})
    assert r.status_code == 412
    assert r.json()["error"]["code"] == "PRECONDITION_FAILED"
    fresh = f'"1", {etag}'
    r = await client.patch(url, json={"name": "Y"}, headers={**key_a.headers, "If-Match": fresh})
    assert r.status_code == 200, r.text
    assert r.json()["data"]["name"] == "Y"


async def test_limit_zero_is_refused_with_the_graphql_message(
    client: httpx.AsyncClient, key_a: Key
) -> None:
    r = await client.get(URL, params={"limit": 0}, headers=key_a.headers)
    assert r.status_code == 400
    rest = r.json()["error"]["details"]["limit"]
    body = await gql(client, key_a, "{ clients(first: 0) { nodes { id } } }")
    assert assert_argument_error(body, "first")["first"] == rest
    await create(client, key_a, name="sigue", rfc=new_rfc())
