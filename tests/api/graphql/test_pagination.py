"""`clients`: argument errors, cursor walks, offsets, filters and totalCount (contract §5)."""

from __future__ import annotations

import base64
import re
from typing import Any

import httpx
import pytest

from tests.api.graphql.gql import LIST, StatementLog, assert_argument_error, create, data, gql
from tests.support import Key, new_rfc

COUNTS = re.compile(r"\bcount\(|\bclient_counters\b", re.IGNORECASE)
IDS = """
query Page($filter: ClientFilter, $first: Int! = 20, $after: String, $offset: Int) {
  clients(filter: $filter, first: $first, after: $after, offset: $offset) {
    nodes { id }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
  }
}
"""


async def make_clients(client: httpx.AsyncClient, key: Key, *names: str) -> list[str]:
    """Create clients in order; returns their ids newest first (the list order)."""
    ids = [(await create(client, key, name=name, rfc=new_rfc()))["id"] for name in names]
    return ids[::-1]


async def page(client: httpx.AsyncClient, key: Key, **variables: Any) -> dict[str, Any]:
    result: dict[str, Any] = (await data(client, key, IDS, variables))["clients"]
    return result


def ids_of(connection: dict[str, Any]) -> list[str]:
    return [n["id"] for n in connection["nodes"]]


async def walk(client: httpx.AsyncClient, key: Key, first: int, **variables: Any) -> list[str]:
    """Every id, following endCursor until hasNextPage is false."""
    seen: list[str] = []
    after = None
    for _ in range(100):
        p = await page(client, key, first=first, after=after, **variables)
        seen += ids_of(p)
        if not p["pageInfo"]["hasNextPage"]:
            return seen
        after = p["pageInfo"]["endCursor"]
    raise AssertionError("the walk did not end")


# -- argument errors --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("arguments", "fields"),
    [
        ({"first": 0}, ["first"]),
        ({"first": 101}, ["first"]),
        ({"first": -1}, ["first"]),
        ({"offset": -1}, ["offset"]),
        ({"offset": 10_001}, ["offset"]),
        ({"first": 0, "offset": -5}, ["first", "offset"]),
    ],
)
async def test_out_of_range_page_arguments_are_argument_errors(
    client: httpx.AsyncClient, key_a: Key, arguments: dict[str, int], fields: list[str]
) -> None:
    assert_argument_error(await gql(client, key_a, IDS, arguments), *fields)
    literal = ", ".join(f"{k}: {v}" for k, v in arguments.items())
    body = await gql(client, key_a, f"{{ clients({literal}) {{ nodes {{ id }} }} }}")
    assert_argument_error(body, *fields)


async def test_page_argument_bounds_are_accepted(client: httpx.AsyncClient, key_a: Key) -> None:
    await make_clients(client, key_a, "Uno", "Dos")
    assert len(ids_of(await page(client, key_a, first=1))) == 1
    assert len(ids_of(await page(client, key_a, first=100))) == 2
    assert len(ids_of(await page(client, key_a, first=100, offset=0))) == 2
    assert ids_of(await page(client, key_a, first=100, offset=10_000)) == []


def tamper(cursor: str) -> str:
    body, mac = cursor.split(".")
    payload = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    forged = payload.replace(b"[", b"[1", 1)  # another position, same signature
    return base64.urlsafe_b64encode(forged).rstrip(b"=").decode() + "." + mac


async def test_bad_after_is_an_argument_error(
    client: httpx.AsyncClient, key_a: Key, key_a_test: Key, key_b: Key
) -> None:
    await make_clients(client, key_a, "Uno", "Dos")
    cursor = (await page(client, key_a, first=1))["pageInfo"]["endCursor"]
    assert cursor

    body, mac = cursor.split(".")
    for bad in ("garbage", "", "a.b", "a.b.c", "x" * 5000, tamper(cursor), f"{body}.{mac[::-1]}"):
        assert_argument_error(await gql(client, key_a, IDS, {"after": bad}), "after")
    # Bound to the team and the mode it was issued to.
    for other in (key_b, key_a_test):
        assert_argument_error(await gql(client, other, IDS, {"after": cursor}), "after")


@pytest.mark.parametrize(
    ("filter_", "field"),
    [
        ({"createdFrom": "notadate"}, "$filter.createdFrom"),
        ({"createdTo": "2024-13-45T00:00:00Z"}, "$filter.createdTo"),
        ({"createdFrom": 12}, "$filter.createdFrom"),
        ({"unknown": "x"}, "$filter"),
        ({"name": 5}, "$filter.name"),
    ],
)
async def test_bad_filter_variable_is_a_validation_error(
    client: httpx.AsyncClient, key_a: Key, filter_: dict[str, Any], field: str
) -> None:
    body = await gql(client, key_a, IDS, {"filter": filter_})
    assert assert_argument_error(body, field)[field]


async def test_bad_date_time_variable_is_a_validation_error(
    client: httpx.AsyncClient, key_a: Key
) -> None:
    query = "query($d: DateTime) { clients(filter: {createdFrom: $d}) { nodes { id } } }"
    body = await gql(client, key_a, query, {"d": "notadate"})
    error = body["errors"][0]
    assert body.get("data") is None and len(body["errors"]) == 1
    assert error["message"] == "Invalid request parameters"
    assert error["extensions"]["code"] == "VALIDATION_ERROR"
    assert [f["field"] for f in error["extensions"]["fields"]] == ["$d"]


@pytest.mark.parametrize(
    "value", ["notadate", "2024-02-30T00:00:00Z", "9999-12-31T23:59:59-01:00", "x" * 100]
)
async def test_bad_date_time_is_a_validation_error(
    client: httpx.AsyncClient, key_a: Key, value: str
) -> None:
    literal = f'{{ clients(filter: {{createdTo: "{value}"}}) {{ nodes {{ id }} }} }}'
    assert_argument_error(await gql(client, key_a, literal), "query")
    query = "query($d: DateTime) { clients(filter: {createdTo: $d}) { nodes { id } } }"
    assert_argument_error(await gql(client, key_a, query, {"d": value}), "$d")


async def test_extreme_date_times_are_valid_bounds(client: httpx.AsyncClient, key_a: Key) -> None:
    created = await create(client, key_a, name="En el tiempo", rfc=new_rfc())
    for bounds, expected in (
        ({"createdFrom": "9999-12-31T23:59:59.999999Z"}, []),
        ({"createdFrom": "0001-01-01T00:00:00Z", "createdTo": "9999-12-31T23:59:59Z"}, [created]),
        ({"createdTo": "0001-01-01T00:00:00+00:00"}, []),
    ):
        found = ids_of(await page(client, key_a, filter=bounds))
        assert found == [c["id"] for c in expected], bounds


async def test_created_from_after_created_to_is_an_argument_error(
    client: httpx.AsyncClient, key_a: Key
) -> None:
    window = {"createdFrom": "2024-02-01T00:00:00Z", "createdTo": "2024-01-01T00:00:00.000Z"}
    assert_argument_error(await gql(client, key_a, IDS, {"filter": window}), "filter.createdFrom")


async def test_every_bad_argument_is_reported_at_once(
    client: httpx.AsyncClient, key_a: Key
) -> None:
    window = {"createdFrom": "2024-02-01T00:00:00Z", "createdTo": "2024-01-01T00:00:00Z"}
    variables = {"first": 0, "offset": -1, "after": "garbage", "filter": window}
    body = await gql(client, key_a, IDS, variables)
    assert_argument_error(body, "first", "offset", "after", "filter.createdFrom")


async def test_argument_errors_and_rest_share_messages(
    client: httpx.AsyncClient, key_a: Key
) -> None:
    window = {"createdFrom": "2024-02-01T00:00:00Z", "createdTo": "2024-01-01T00:00:00Z"}
    fields = assert_argument_error(
        await gql(client, key_a, IDS, {"filter": window}), "filter.createdFrom"
    )
    rest = await client.get("/v2/clients?from=2024-02-01&to=2024-01-01", headers=key_a.headers)
    assert rest.status_code == 400
    error = rest.json()["error"]
    assert (error["code"], error["message"]) == ("VALIDATION_ERROR", "Invalid request parameters")
    assert error["details"] == {"from": fields["filter.createdFrom"]}


# -- walking pages ----------------------------------------------------------------------------


async def test_cursor_walk_sees_every_client_once(client: httpx.AsyncClient, key_a: Key) -> None:
    expected = await make_clients(client, key_a, *(f"Cliente {n}" for n in range(7)))
    assert await walk(client, key_a, first=3) == expected
    assert await walk(client, key_a, first=1) == expected
    assert await walk(client, key_a, first=7) == expected


async def test_cursor_walk_with_a_name_filter(client: httpx.AsyncClient, key_a: Key) -> None:
    created = await make_clients(
        client, key_a, "Alfa Uno", "Beta", "ALFA dos", "Gamma", "Álfa tres", "alfalfa", "Delta"
    )
    alfas = [created[i] for i in (1, 2, 4, 6)]  # newest first: alfalfa, Álfa, ALFA, Alfa
    assert await walk(client, key_a, first=2, filter={"name": "alfa"}) == alfas
    count = (await data(client, key_a, LIST, {"filter": {"name": "alfa"}}))["clients"]
    assert count["totalCount"] == 4


async def test_cursor_walk_is_stable_while_clients_are_added(
    client: httpx.AsyncClient, key_a: Key
) -> None:
    expected = await make_clients(client, key_a, *(f"Antes {n}" for n in range(5)))
    seen: list[str] = []
    after = None
    while True:
        p = await page(client, key_a, first=2, after=after)
        seen += ids_of(p)
        await make_clients(client, key_a, "Nuevo a", "Nuevo b")
        if not p["pageInfo"]["hasNextPage"]:
            break
        after = p["pageInfo"]["endCursor"]
    assert seen == expected


async def test_offset_counts_from_the_cursor(client: httpx.AsyncClient, key_a: Key) -> None:
    expected = await make_clients(client, key_a, *(f"Cliente {n}" for n in range(8)))
    first_page = await page(client, key_a, first=2)
    after = first_page["pageInfo"]["endCursor"]

    assert ids_of(await page(client, key_a, first=2, after=after, offset=3)) == expected[5:7]
    assert ids_of(await page(client, key_a, first=3, offset=4)) == expected[4:7]
    tail = await page(client, key_a, first=5, after=after, offset=3)
    assert ids_of(tail) == expected[5:] and tail["pageInfo"]["hasNextPage"] is False


async def test_page_info(client: httpx.AsyncClient, key_a: Key) -> None:
    await make_clients(client, key_a, *(f"Cliente {n}" for n in range(3)))
    result = (await data(client, key_a, LIST, {"first": 2}))["clients"]
    info = result["pageInfo"]
    assert info["hasNextPage"] is True and info["hasPreviousPage"] is False
    assert info["startCursor"] == result["edges"][0]["cursor"]
    assert info["endCursor"] == result["edges"][-1]["cursor"]
    assert [e["node"]["id"] for e in result["edges"]] == ids_of(result)

    after = info["endCursor"]
    assert (await page(client, key_a, after=after))["pageInfo"]["hasPreviousPage"] is True
    assert (await page(client, key_a, offset=1))["pageInfo"]["hasPreviousPage"] is True
    assert (await page(client, key_a, offset=0))["pageInfo"]["hasPreviousPage"] is False
    last = await page(client, key_a, first=3)
    assert last["pageInfo"]["hasNextPage"] is False


async def test_an_edge_cursor_continues_after_its_node(
    client: httpx.AsyncClient, key_a: Key
) -> None:
    expected = await make_clients(client, key_a, *(f"Cliente {n}" for n in range(4)))
    edges = (await data(client, key_a, LIST, {"first": 4}))["clients"]["edges"]
    assert ids_of(await page(client, key_a, after=edges[1]["cursor"])) == expected[2:]


async def test_empty_page(client: httpx.AsyncClient, key_a: Key) -> None:
    result = (await data(client, key_a, LIST))["clients"]
    assert result == {
        "nodes": [],
        "edges": [],
        "pageInfo": {
            "hasNextPage": False,
            "hasPreviousPage": False,
            "startCursor": None,
            "endCursor": None,
        },
        "totalCount": 0,
    }


# -- filters and totalCount -------------------------------------------------------------------


async def test_total_count_is_exact_for_each_filter(client: httpx.AsyncClient, key_a: Key) -> None:
    rfc = new_rfc()
    a = await create(client, key_a, name="Tienda México", rfc=rfc, email="Ventas@Tienda.mx")
    b = await create(client, key_a, name="Otra", legalName="Grupo Mexico SA", rfc=new_rfc())
    c = await create(client, key_a, name="Nada que ver", rfc=new_rfc())

    async def matches(filter_: dict[str, Any] | None) -> tuple[int, list[str]]:
        result = (await data(client, key_a, LIST, {"filter": filter_, "first": 1}))["clients"]
        walked = await walk(client, key_a, first=100, filter=filter_)
        return result["totalCount"], walked

    assert await matches(None) == (3, [c["id"], b["id"], a["id"]])
    assert await matches({"name": "mexico"}) == (2, [b["id"], a["id"]])
    assert await matches({"rfc": rfc.lower()}) == (1, [a["id"]])
    assert await matches({"email": "ventas@tienda.MX"}) == (1, [a["id"]])
    assert await matches({"name": "100%"}) == (0, [])
    window = {"createdFrom": b["createdAt"], "createdTo": b["createdAt"]}
    assert await matches(window) == (1, [b["id"]])
    assert await matches({"createdFrom": b["createdAt"]}) == (2, [c["id"], b["id"]])
    assert await matches({"createdTo": b["createdAt"]}) == (2, [b["id"], a["id"]])
    assert await matches({"name": "mexico", "createdTo": a["createdAt"]}) == (1, [a["id"]])


async def test_total_count_is_computed_only_when_selected(
    app: Any, client: httpx.AsyncClient, key_a: Key
) -> None:
    await make_clients(client, key_a, "Uno", "Dos")
    log = StatementLog(app)
    await gql(client, key_a, "{ __typename }")  # authenticated once: no key bookkeeping below

    for filter_ in (None, {"name": "uno"}):
        with log.capture():
            await data(client, key_a, IDS, {"filter": filter_})
        without = log.touching_clients()
        with log.capture():
            result = await data(client, key_a, LIST, {"filter": filter_})
        with_count = log.touching_clients()

        assert result["clients"]["totalCount"] == (2 if filter_ is None else 1)
        # The same statements plus one that counts (COUNT(*), or the per-team counter).
        assert len(with_count) == len(without) + 1, (without, with_count)
        assert not any(COUNTS.search(s) for s in without), without
        assert sum(bool(COUNTS.search(s)) for s in with_count) == 1, with_count


async def test_a_list_is_one_statement(app: Any, client: httpx.AsyncClient, key_a: Key) -> None:
    await make_clients(client, key_a, *(f"Cliente {n}" for n in range(5)))
    log = StatementLog(app)
    await gql(client, key_a, "{ __typename }")
    with log.capture():
        await data(client, key_a, IDS, {"first": 5})
    assert len(log.touching_clients()) == 1, log.statements


async def test_date_time_bounds_are_exact_below_the_millisecond(
    client: httpx.AsyncClient, key_a: Key
) -> None:
    created = await create(client, key_a, name="Al milisegundo", rfc=new_rfc())
    at = created["createdAt"]  # 2024-01-15T10:30:00.123Z
    just_after = at[:-1] + "5Z"  # 2024-01-15T10:30:00.1235Z
    just_before = at[:-1] + "999Z"  # …123999Z is after .123, so it still includes it
    offset_form = at[:-1] + "+00:00"

    async def matching(filter_: dict[str, Any]) -> list[str]:
        return ids_of(await page(client, key_a, filter=filter_))

    assert await matching({"createdFrom": at, "createdTo": offset_form}) == [created["id"]]
    assert await matching({"createdFrom": just_after}) == []
    assert await matching({"createdTo": just_before}) == [created["id"]]
