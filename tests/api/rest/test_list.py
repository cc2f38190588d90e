"""`GET /v2/clients`: filters, bounds, ordering, totals and `next` tokens (contract §3)."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from sqlalchemy import update

from app.db.database import Database
from app.db.tables import Client as ClientRow
from tests.support import Key, client_body, new_rfc

URL = "/v2/clients"


async def create(client: httpx.AsyncClient, key: Key, **body: Any) -> dict[str, Any]:
    r = await client.post(URL, json=client_body(**body), headers=key.headers)
    assert r.status_code == 201, r.text
    data: dict[str, Any] = r.json()["data"]
    return data


async def listing(
    client: httpx.AsyncClient, key: Key, params: Any = None, *, status: int = 200
) -> dict[str, Any]:
    r = await client.get(URL, params=params, headers=key.headers)
    assert r.status_code == status, r.text
    body: dict[str, Any] = r.json()
    return body


def ids(page: dict[str, Any]) -> list[str]:
    return [c["id"] for c in page["data"]]


async def set_created(db: Database, client_id: str, when: datetime) -> None:
    """Move a client's creation time (rows are written directly for time-range tests)."""
    async with db.write() as session:
        await session.execute(
            update(ClientRow)
            .where(ClientRow.public_id == client_id)
            .values(created_at=when, updated_at=when)
        )


def validation_details(body: dict[str, Any]) -> dict[str, str]:
    assert body["error"]["code"] == "VALIDATION_ERROR"
    assert body["message"] == "Request validation failed"
    details: dict[str, str] = body["error"]["details"]
    return details


# -- shape and defaults ---------------------------------------------------------------------


async def test_empty_list(client: httpx.AsyncClient, key_a: Key) -> None:
    assert await listing(client, key_a) == {
        "data": [],
        "message": "Clients retrieved successfully",
        "totalResults": 0,
        "hasMore": False,
        "next": None,
    }


async def test_default_limit_is_20_newest_first(client: httpx.AsyncClient, key_a: Key) -> None:
    made = [(await create(client, key_a))["id"] for _ in range(22)]
    page = await listing(client, key_a)
    assert ids(page) == list(reversed(made))[:20]
    assert page["totalResults"] == 22
    assert page["hasMore"] is True
    assert isinstance(page["next"], str)
    rest = await listing(client, key_a, {"next": page["next"]})
    assert ids(rest) == list(reversed(made))[20:]
    assert rest["hasMore"] is False
    assert rest["next"] is None
    assert rest["totalResults"] == 22


async def test_ties_in_creation_time_newest_inserted_first(
    client: httpx.AsyncClient, db: Database, key_a: Key
) -> None:
    made = [(await create(client, key_a))["id"] for _ in range(5)]
    same = datetime(2024, 5, 5, 12, 0, tzinfo=UTC)
    for cid in made:
        await set_created(db, cid, same)
    page = await listing(client, key_a, {"limit": 2})
    seen = ids(page)
    while page["next"]:
        page = await listing(client, key_a, {"next": page["next"]})
        seen += ids(page)
    assert seen == list(reversed(made))
    assert {c["timestamp"] for c in page["data"]} == {"2024-05-05T12:00:00.000Z"}


# -- limit and offset -----------------------------------------------------------------------


async def test_limit_and_offset(client: httpx.AsyncClient, key_a: Key) -> None:
    made = list(reversed([(await create(client, key_a))["id"] for _ in range(5)]))
    page = await listing(client, key_a, {"limit": 2, "offset": 1})
    assert ids(page) == made[1:3]
    assert page["totalResults"] == 5
    assert page["hasMore"] is True
    last = await listing(client, key_a, {"limit": 2, "offset": 3})
    assert ids(last) == made[3:5]
    assert last["hasMore"] is False
    assert last["next"] is None
    beyond = await listing(client, key_a, {"offset": 10_000})
    assert beyond["data"] == []
    assert beyond["totalResults"] == 5
    assert ids(await listing(client, key_a, {"limit": 1})) == made[:1]
    assert len((await listing(client, key_a, {"limit": 100}))["data"]) == 5


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": 101}, "limit"),
        ({"limit": -1}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"limit": "1.5"}, "limit"),
        ({"limit": ""}, "limit"),
        ({"limit": "99999999999999999999999"}, "limit"),
        ({"offset": -1}, "offset"),
        ({"offset": 10_001}, "offset"),
        ({"offset": "x"}, "offset"),
        ({"from": "yesterday"}, "from"),
        ({"to": "2024-02-30"}, "to"),
        ({"from": "2024-01-15T25:00:00"}, "from"),
        ({"next": "garbage"}, "next"),
        ({"name": "x" * 301}, "name"),
        ({"name": "a\x00b"}, "name"),
    ],
)
async def test_bad_parameters_are_400(
    client: httpx.AsyncClient, key_a: Key, params: dict[str, Any], field: str
) -> None:
    body = await listing(client, key_a, params, status=400)
    assert set(validation_details(body)) == {field}


async def test_every_bad_parameter_is_reported_at_once(
    client: httpx.AsyncClient, key_a: Key
) -> None:
    params = {"limit": 0, "offset": -1, "from": "nope", "to": "2024-13-01"}
    body = await listing(client, key_a, params, status=400)
    assert set(validation_details(body)) == {"limit", "offset", "from", "to"}
    body = await listing(client, key_a, {"next": "tampered", "limit": 500}, status=400)
    assert set(validation_details(body)) == {"next", "limit"}


async def test_unknown_and_repeated_parameters_are_named(
    client: httpx.AsyncClient, key_a: Key
) -> None:
    body = await listing(client, key_a, {"page": 2, "sort": "name"}, status=400)
    assert set(validation_details(body)) == {"page", "sort"}
    body = await listing(client, key_a, [("limit", 1), ("limit", 2), ("name", "a")], status=400)
    assert set(validation_details(body)) == {"limit"}
    body = await listing(client, key_a, [("name", "a"), ("name", "b")], status=400)
    assert validation_details(body)["name"] == "Repeated query parameter"


# -- filters --------------------------------------------------------------------------------


async def test_name_is_partial_and_case_and_accent_insensitive(
    client: httpx.AsyncClient, key_a: Key
) -> None:
    mx = await create(client, key_a, name="Tacos México")
    legal = await create(client, key_a, name="Otro", legalName="Comercializadora de MEXICO S.A.")
    await create(client, key_a, name="Nada que ver")
    for query in ("mexico", "MÉXICO", "méx", "Mexic", "  mexico  "):
        page = await listing(client, key_a, {"name": query})
        assert set(ids(page)) == {mx["id"], legal["id"]}, query
        assert page["totalResults"] == 2
    assert ids(await listing(client, key_a, {"name": "tacos méxico"})) == [mx["id"]]
    assert ids(await listing(client, key_a, {"name": "comercializadora"})) == [legal["id"]]
    # No match across name and legal name.
    assert (await listing(client, key_a, {"name": "otro comercializadora"}))["data"] == []


async def test_enye_and_decomposed_input(client: httpx.AsyncClient, key_a: Key) -> None:
    made = await create(client, key_a, name="Piñatas Ñandú")
    for query in ("pinatas", "PIÑATAS", "Pin\u0303atas", "nandu"):
        assert ids(await listing(client, key_a, {"name": query})) == [made["id"]], query


async def test_percent_and_underscore_are_literal(client: httpx.AsyncClient, key_a: Key) -> None:
    pct = await create(client, key_a, name="100% Natural")
    under = await create(client, key_a, name="snake_case S.A.")
    other = await create(client, key_a, name="100 Natural snakeXcase")
    assert ids(await listing(client, key_a, {"name": "%"})) == [pct["id"]]
    assert ids(await listing(client, key_a, {"name": "0% n"})) == [pct["id"]]
    assert ids(await listing(client, key_a, {"name": "_"})) == [under["id"]]
    assert ids(await listing(client, key_a, {"name": "e_c"})) == [under["id"]]
    assert ids(await listing(client, key_a, {"name": "\\"})) == []
    assert other["id"] in ids(await listing(client, key_a, {"name": "natural"}))


async def test_blank_filters_are_ignored(client: httpx.AsyncClient, key_a: Key) -> None:
    made = await create(client, key_a)
    page = await listing(client, key_a, {"name": " ", "rfc": "", "email": ""})
    assert ids(page) == [made["id"]]


async def test_rfc_filter_is_exact_after_normalisation(
    client: httpx.AsyncClient, key_a: Key
) -> None:
    rfc = new_rfc()
    made = await create(client, key_a, rfc=rfc)
    await create(client, key_a)
    spaced = f" {rfc[:4].lower()}-{rfc[4:10]} {rfc[10:].lower()} "
    for query in (rfc, rfc.lower(), spaced):
        page = await listing(client, key_a, {"rfc": query})
        assert ids(page) == [made["id"]], query
        assert page["totalResults"] == 1
    assert (await listing(client, key_a, {"rfc": rfc[:-1]}))["data"] == []


async def test_email_filter_is_exact_and_case_insensitive(
    client: httpx.AsyncClient, key_a: Key
) -> None:
    made = await create(client, key_a, email="Ana.Perez@Example.com")
    await create(client, key_a, email="ana.perez@example.com.mx")
    for query in ("ana.perez@example.com", "ANA.PEREZ@EXAMPLE.COM"):
        assert ids(await listing(client, key_a, {"email": query})) == [made["id"]]
    assert (await listing(client, key_a, {"email": "ana.perez"}))["data"] == []
    got = (await listing(client, key_a, {"email": "ana.perez@example.com"}))["data"][0]
    assert got["client"]["email"] == "Ana.Perez@Example.com"


async def test_filters_combine(client: httpx.AsyncClient, key_a: Key) -> None:
    want = await create(client, key_a, name="Aceros del Norte", email="x@norte.mx")
    await create(client, key_a, name="Aceros del Sur", email="x@sur.mx")
    page = await listing(client, key_a, {"name": "aceros", "email": "X@NORTE.MX"})
    assert ids(page) == [want["id"]]
    assert page["totalResults"] == 1


async def test_date_range(client: httpx.AsyncClient, db: Database, key_a: Key) -> None:
    day = datetime(2024, 1, 15, tzinfo=UTC)
    times = {
        "before": day - timedelta(milliseconds=1),
        "start": day,
        "noon": day + timedelta(hours=12),
        "last": day + timedelta(days=1) - timedelta(milliseconds=1),
        "after": day + timedelta(days=1),
    }
    made = {}
    for label, when in times.items():
        made[label] = (await create(client, key_a, name=label))["id"]
        await set_created(db, made[label], when)

    def labels(page: dict[str, Any]) -> list[str]:
        return [c["name"] for c in page["data"]]

    # Both ends inclusive; a date-only `to` covers the whole day.
    page = await listing(client, key_a, {"from": "2024-01-15", "to": "2024-01-15"})
    assert labels(page) == ["last", "noon", "start"]
    assert page["totalResults"] == 3
    # Date-times without an offset are UTC.
    page = await listing(client, key_a, {"from": "2024-01-15T12:00:00", "to": "2024-01-16"})
    assert labels(page) == ["after", "last", "noon"]
    # With an offset: 06:00 in Mexico City (UTC-6) is noon UTC.
    page = await listing(client, key_a, {"to": "2024-01-15T06:00:00-06:00"})
    assert labels(page) == ["noon", "start", "before"]
    page = await listing(client, key_a, {"from": "2024-01-15T23:59:59.999Z"})
    assert labels(page) == ["after", "last"]
    assert labels(await listing(client, key_a, {"to": "2024-01-14"})) == ["before"]
    # A range of one instant.
    page = await listing(
        client, key_a, {"from": "2024-01-15T00:00:00Z", "to": "2024-01-15T00:00:00Z"}
    )
    assert labels(page) == ["start"]


async def test_from_after_to_is_400(client: httpx.AsyncClient, key_a: Key) -> None:
    body = await listing(client, key_a, {"from": "2024-02-01", "to": "2024-01-31"}, status=400)
    assert set(validation_details(body)) == {"from"}
    # The same day on both ends is a valid range.
    await listing(client, key_a, {"from": "2024-02-01", "to": "2024-02-01"})


# -- next tokens ----------------------------------------------------------------------------


async def test_next_carries_the_filters_and_limit(client: httpx.AsyncClient, key_a: Key) -> None:
    wanted = [(await create(client, key_a, name=f"Grupo Ñ {i}"))["id"] for i in range(5)]
    for _ in range(3):
        await create(client, key_a, name="Otro")
    page = await listing(client, key_a, {"name": "grupo n", "limit": 2})
    seen = ids(page)
    assert page["totalResults"] == 5
    while page["next"]:
        assert len(page["data"]) == 2
        page = await listing(client, key_a, {"next": page["next"]})
        assert page["totalResults"] == 5
        seen += ids(page)
    assert seen == list(reversed(wanted))


async def test_limit_may_accompany_next(client: httpx.AsyncClient, key_a: Key) -> None:
    made = list(reversed([(await create(client, key_a))["id"] for _ in range(6)]))
    first = await listing(client, key_a, {"limit": 1})
    second = await listing(client, key_a, {"next": first["next"], "limit": 4})
    assert ids(second) == made[1:5]
    # The new limit travels in the following token.
    third = await listing(client, key_a, {"next": second["next"]})
    assert ids(third) == made[5:]


@pytest.mark.parametrize("other", ["name", "offset", "rfc", "email", "from", "to", "page"])
async def test_next_with_another_parameter_is_400(
    client: httpx.AsyncClient, key_a: Key, other: str
) -> None:
    for _ in range(2):
        await create(client, key_a)
    token = (await listing(client, key_a, {"limit": 1}))["next"]
    value = {"offset": "1", "from": "2024-01-01", "to": "2024-01-01"}.get(other, "x")
    body = await listing(client, key_a, {"next": token, other: value}, status=400)
    assert other in validation_details(body)


async def test_next_walk_sees_every_row_once_while_clients_are_added(
    client: httpx.AsyncClient, key_a: Key
) -> None:
    before = [(await create(client, key_a))["id"] for _ in range(9)]
    page = await listing(client, key_a, {"limit": 4})
    seen = ids(page)
    added = []
    while page["next"]:
        added.append((await create(client, key_a))["id"])  # newer: never on a later page
        page = await listing(client, key_a, {"next": page["next"]})
        seen += ids(page)
    assert seen == list(reversed(before))
    assert len(set(seen)) == len(seen)
    assert added
    fresh = await listing(client, key_a, {"limit": 100})
    assert fresh["totalResults"] == len(before) + len(added)


async def test_next_walk_survives_deletes(client: httpx.AsyncClient, key_a: Key) -> None:
    made = list(reversed([(await create(client, key_a))["id"] for _ in range(6)]))
    page = await listing(client, key_a, {"limit": 2})
    # Delete the last row seen and the first of the next page: the walk goes on from the
    # position, not from the row.
    for cid in (made[1], made[2]):
        assert (await client.delete(f"{URL}/{cid}", headers=key_a.headers)).status_code == 200
    rest = await listing(client, key_a, {"next": page["next"]})
    assert ids(rest) == made[3:5]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


async def test_tampered_tokens_are_400(client: httpx.AsyncClient, key_a: Key) -> None:
    for _ in range(3):
        await create(client, key_a)
    token = (await listing(client, key_a, {"limit": 1}))["next"]
    body, mac = token.split(".")
    payload = _unb64(body).replace(b'"l":1', b'"l":100')
    assert payload != _unb64(body)
    for bad in (f"{_b64(payload)}.{mac}", token[:-2], token + "x", f"{body}.", "a.b", "é"):
        details = validation_details(await listing(client, key_a, {"next": bad}, status=400))
        assert list(details) == ["next"]


async def test_tokens_are_bound_to_team_and_mode(
    client: httpx.AsyncClient, key_a: Key, key_a_test: Key, key_b: Key
) -> None:
    for key in (key_a, key_a_test, key_b):
        for _ in range(2):
            await create(client, key)
    token = (await listing(client, key_a, {"limit": 1}))["next"]
    for other in (key_b, key_a_test):
        details = validation_details(await listing(client, other, {"next": token}, status=400))
        assert list(details) == ["next"]


async def test_token_in_url_needs_no_escaping_beyond_the_usual(
    client: httpx.AsyncClient, key_a: Key
) -> None:
    for _ in range(2):
        await create(client, key_a, name="Ñ % _ & = ? #")
    token = (await listing(client, key_a, {"limit": 1, "name": "ñ % _ & = ? #"}))["next"]
    r = await client.get(f"{URL}?next={quote(token)}", headers=key_a.headers)
    assert r.status_code == 200
    assert len(r.json()["data"]) == 1


# -- tenancy --------------------------------------------------------------------------------


async def test_teams_and_modes_see_only_their_own(
    client: httpx.AsyncClient, key_a: Key, key_a_test: Key, key_b: Key
) -> None:
    rfc = new_rfc()
    mine = await create(client, key_a, rfc=rfc, name="Compartido", email="s@example.com")
    # The same RFC exists in A live, A test and B.
    test_twin = await create(client, key_a_test, rfc=rfc, name="Compartido")
    b_twin = await create(client, key_b, rfc=rfc, name="Compartido")
    assert test_twin["livemode"] is False
    assert len({mine["id"], test_twin["id"], b_twin["id"]}) == 3

    for other, theirs in ((key_a_test, test_twin), (key_b, b_twin)):
        for params in (
            None,
            {"name": "compartido"},
            {"rfc": rfc},
            {"email": "s@example.com"},
            {"from": "2000-01-01"},
        ):
            page = await listing(client, other, params)
            assert mine["id"] not in ids(page)
            assert page["totalResults"] == (0 if params and "email" in params else 1)
        got = await client.get(f"{URL}/{mine['id']}", headers=other.headers)
        assert got.status_code == 404
        assert got.json()["error"]["code"] == "NOT_FOUND"
        put = await client.put(f"{URL}/{mine['id']}", json={"name": "x"}, headers=other.headers)
        assert put.status_code == 404
        delete = await client.delete(f"{URL}/{mine['id']}", headers=other.headers)
        assert delete.status_code == 404
        assert theirs["id"] in ids(await listing(client, other))

    own = await client.get(f"{URL}/{mine['id']}", headers=key_a.headers)
    assert own.json()["data"] == mine
