"""What an attacker found in /graphql (issue 10): each class, on the fast path and off it.

- 1: documents whose fragments spread each other exponentially are refused, and the limits
  measure each fragment once (counted, not timed: the timing is in scripts/bench);
- 5: `totalCount` is priced by what it may count;
- 6: several operations without `operationName` are a request error, nothing runs;
- 7: the parser/validation cache is bounded by bytes;
- 10: errors agree with REST (415, lone surrogates, null, repeated fields, a BOM).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from graphql import parse

from app.core.config import Settings
from app.main import create_app
from tests.api.graphql.gql import gql, only_error
from tests.conftest import make_settings
from tests.support import Key, new_rfc


@pytest.fixture(scope="module", params=["fast", "standard"])
async def http(request: pytest.FixtureRequest, settings: Settings) -> AsyncIterator[Any]:
    """The app with the fast path on, then off (Strawberry's executor for everything)."""
    app = create_app(
        make_settings(settings.database_url, graphql_fast_path=request.param == "fast")
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        yield c
    await app.app.state.services.db.dispose()


def doubling_fragments(n: int, leaf: str = "__typename") -> str:
    """`fragment F0 on Query { ...F1 ...F1 }` … `fragment Fn on Query { leaf }`: 2**n leaves."""
    chain = " ".join(f"fragment F{i} on Query {{ ...F{i + 1} ...F{i + 1} }}" for i in range(n))
    return f"query Doubling {{ ...F0 }} {chain} fragment F{n} on Query {{ {leaf} }}"


# -- 1: exponential fragments -----------------------------------------------------------------


@pytest.mark.parametrize("n", [13, 22, 40, 150])
async def test_doubling_fragments_are_refused_by_cost(http: Any, key_a: Key, n: int) -> None:
    error = only_error(await gql(http, key_a, doubling_fragments(n)))
    assert error["extensions"]["code"] == "QUERY_TOO_COSTLY"
    assert error["extensions"]["cost"] == 2**n  # counted exactly, without expanding


async def test_doubling_fragments_within_the_budget_run(http: Any, key_a: Key) -> None:
    assert (await gql(http, key_a, doubling_fragments(10)))["data"] == {"__typename": "Query"}


async def test_doubling_aliases_are_refused_by_the_alias_limit(http: Any, key_a: Key) -> None:
    body = await gql(http, key_a, doubling_fragments(60, "a: __typename"))
    assert "data" not in body
    assert f"{2**60} aliases found. Allowed: 30" in [e["message"] for e in body["errors"]]


def test_each_fragment_is_measured_once(monkeypatch: pytest.MonkeyPatch) -> None:
    from schema import limits

    calls = 0
    measure = limits._Walker.selection_set

    def counted(self: Any, node: Any) -> Any:
        nonlocal calls
        calls += 1
        return measure(self, node)

    monkeypatch.setattr(limits._Walker, "selection_set", counted)
    document = parse(doubling_fragments(200), max_tokens=10_000)
    bounds = limits.DocumentLimits(max_depth=10, max_aliases=30, max_cost=5000, count_cost=1000)
    errors = limits.limit_errors(document, bounds)
    assert [e.extensions["code"] for e in errors if e.extensions] == ["QUERY_TOO_COSTLY"]
    assert calls <= 2 * 202  # the operation and 201 fragments, each once (not 2**200)


async def test_depth_through_fragments_is_measured_once_too(http: Any, key_a: Key) -> None:
    # Each fragment nests one level deeper and spreads the next twice: depth 30, 2**30 spreads.
    chain = " ".join(
        f"fragment D{i} on Client {{ address {{ city }} ...D{i + 1} ...D{i + 1} }}"
        for i in range(30)
    )
    last = "fragment D30 on Client { id }"
    query = f'{{ client(id: "x") {{ ... on Client {{ ...D0 }} }} }} {chain} {last}'
    body = await gql(http, key_a, query)
    assert "data" not in body and body["errors"]


# -- 5: counts --------------------------------------------------------------------------------


async def test_a_document_of_many_counts_is_too_costly(http: Any, key_a: Key) -> None:
    counts = " ".join(
        f'c{i}: clients(first: 1, filter: {{name: "a"}}) {{ totalCount }}' for i in range(30)
    )
    error = only_error(await gql(http, key_a, "{ " + counts + " }"))
    assert error["extensions"]["code"] == "QUERY_TOO_COSTLY"
    assert error["extensions"]["cost"] >= 30 * Settings().graphql_count_cost


async def test_one_count_beside_a_full_page_is_within_the_budget(http: Any, key_a: Key) -> None:
    # A count runs once per connection: not multiplied by the page size.
    query = "{ clients(first: 100) { totalCount nodes { id name rfc email } } }"
    body = await gql(http, key_a, query)
    assert body["data"]["clients"]["totalCount"] == 0, body


# -- 6: several operations --------------------------------------------------------------------


async def test_several_operations_without_a_name_run_nothing(http: Any, key_a: Key) -> None:
    rfc = new_rfc()
    query = (
        f'mutation Make {{ createClient(input: {{name: "Sin nombre", rfc: "{rfc}"}}) '
        "{ __typename } } query Read { clients { totalCount } }"
    )
    error = only_error(await gql(http, key_a, query))
    assert error["message"] == "Must provide operation name if query contains multiple operations"
    assert error["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    read = await gql(http, key_a, query, operation_name="Read")
    assert read["data"]["clients"]["totalCount"] == 0  # the mutation never ran


async def test_several_queries_without_a_name_on_the_fast_path(http: Any, key_a: Key) -> None:
    query = "query A { clients { totalCount } } query B { clients(first: 1) { nodes { id } } }"
    error = only_error(await gql(http, key_a, query))
    assert "operation name" in error["message"]
    assert (await gql(http, key_a, query, operation_name="B"))["data"]["clients"]["nodes"] == []


# -- 7: the document cache is bounded by bytes ------------------------------------------------


async def test_large_distinct_documents_do_not_grow_the_cache(
    settings: Settings, key_a: Key
) -> None:
    from schema.documents import DocumentChecker

    app = create_app(make_settings(settings.database_url, graphql_cache_mb=1))
    documents: DocumentChecker = app.app.state.graphql_documents
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
            for i in range(40):  # 40 distinct documents of 200 KiB: 8 MiB of query text
                padding = f"# {i} " + "x" * 200_000 + "\n"
                query = padding + "{ clients(first: 1) { nodes { id } } }"
                body = await gql(c, key_a, query)
                assert body["data"]["clients"]["nodes"] == [], body
                assert documents.bytes <= documents.max_bytes
            assert len(documents) == 0  # texts that large are checked, never kept
            for i in range(200):  # many small ones: kept until the bytes run out
                await gql(
                    c, key_a, f"query Q{i} {{ clients(first: {i % 100 + 1}) {{ totalCount }} }}"
                )
                assert documents.bytes <= documents.max_bytes
        assert 0 < len(documents) < 200
    finally:
        await app.app.state.services.db.dispose()


# -- 10: errors agree with REST ----------------------------------------------------------------


async def test_unsupported_media_type_carries_the_rest_code(http: Any, key_a: Key) -> None:
    headers = {**key_a.headers, "content-type": "text/plain"}
    gql_answer = await http.post(
        "/graphql", content=b'{"query": "{ __typename }"}', headers=headers
    )
    rest_answer = await http.post("/v2/clients", content=b"{}", headers=headers)
    assert gql_answer.status_code == rest_answer.status_code == 415
    code = rest_answer.json()["error"]["code"]
    assert only_error(gql_answer.json())["extensions"]["code"] == code == "UNSUPPORTED_MEDIA_TYPE"


async def test_a_lone_surrogate_in_variables_gets_the_rest_message(http: Any, key_a: Key) -> None:
    rfc = new_rfc()
    query = (
        "mutation($name: String!, $rfc: String!) { createClient(input: {name: $name, rfc: $rfc}) "
        "{ __typename ... on ValidationError { fields { field message } } } }"
    )
    raw = json.dumps({"query": query, "variables": {"name": "a\ud800b", "rfc": rfc}})
    headers = {**key_a.headers, "content-type": "application/json"}
    answer = (await http.post("/graphql", content=raw.encode(), headers=headers)).json()
    result = answer["data"]["createClient"]
    rest = await http.post(
        "/v2/clients", content=json.dumps({"name": "a\ud800b", "rfc": rfc}), headers=headers
    )
    assert rest.status_code == 400
    expected = rest.json()["error"]["details"]["name"]
    assert expected == "Must not contain unpaired surrogate characters"
    assert result == {
        "__typename": "ValidationError",
        "fields": [{"field": "name", "message": expected}],
    }


async def test_a_lone_surrogate_echoed_in_an_error_is_not_a_fault(http: Any, key_a: Key) -> None:
    raw = json.dumps(
        {
            "query": "query($n: Int!) { clients(first: $n) { totalCount } }",
            "variables": {"n": "\ud800"},
        }
    )
    headers = {**key_a.headers, "content-type": "application/json"}
    answer = await http.post("/graphql", content=raw.encode(), headers=headers)
    assert answer.status_code == 200
    assert only_error(answer.json())["extensions"]["code"] == "VALIDATION_ERROR"


async def test_null_for_a_non_null_variable_is_worded_as_json(http: Any, key_a: Key) -> None:
    query = "mutation($i: CreateClientInput!) { createClient(input: $i) { __typename } }"
    body = await gql(http, key_a, query, {"i": {"name": None, "rfc": new_rfc()}})
    error = only_error(body)
    [field] = error["extensions"]["fields"]
    assert field["field"] == "$i.name"
    assert "None" not in field["message"] and "null" in field["message"], field


@pytest.mark.parametrize(
    ("field", "times"), [("__typename", 1000), ("nope", 1000), ("clients { totalCount }", 400)]
)
async def test_a_thousand_repeated_fields_get_a_clear_message(
    http: Any, key_a: Key, field: str, times: int
) -> None:
    body = await gql(http, key_a, "{ " + f"{field} " * times + "}")
    assert "data" not in body
    name = field.split()[0]
    expected = f"'{name}' is selected {times} times in one selection set; at most 20 are allowed"
    assert expected in [e["message"] for e in body["errors"]]


async def test_repeats_merged_through_inline_fragments_count_too(http: Any, key_a: Key) -> None:
    query = "{ " + "... on Query { __typename } " * 300 + "}"
    error = only_error(await gql(http, key_a, query))
    assert "selected 300 times" in error["message"]


async def test_a_byte_order_mark_is_accepted_by_both_transports(http: Any, key_a: Key) -> None:
    headers = {**key_a.headers, "content-type": "application/json"}
    bom = b"\xef\xbb\xbf"
    answer = await http.post(
        "/graphql", content=bom + b'{"query": "{ __typename }"}', headers=headers
    )
    assert answer.status_code == 200 and answer.json() == {"data": {"__typename": "Query"}}
    body = json.dumps({"name": "Con BOM", "rfc": new_rfc()}).encode()
    assert (await http.post("/v2/clients", content=bom + body, headers=headers)).status_code == 201
