"""A real server process, started and administered through the CLI, spoken to over HTTP."""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import Server, ServerFactory
from tests.support import client_body, new_rfc, unique_team

pytestmark = pytest.mark.e2e

KEY_LINE = re.compile(r"^sk_(live|test)_[A-Za-z0-9]{32}$")


@pytest.fixture(scope="module")
async def http(server: Server) -> AsyncIterator[httpx.AsyncClient]:
    limits = httpx.Limits(max_connections=100, max_keepalive_connections=100)
    async with httpx.AsyncClient(base_url=server.base_url, timeout=60, limits=limits) as c:
        yield c


@pytest.fixture(scope="module")
def live_key(server: Server) -> str:
    return server.create_key(unique_team("e2e"))


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


# -- health ---------------------------------------------------------------------------------


async def test_health(http: httpx.AsyncClient) -> None:
    r = await http.get("/healthz")
    assert r.status_code == 200
    assert r.json() == {"status": "ok"}
    assert r.headers["x-request-id"]
    r = await http.get("/readyz")
    assert r.status_code == 200
    assert r.json() == {"status": "ready"}


# -- the CLI's keys -------------------------------------------------------------------------


def test_create_api_key_prints_the_key_alone_on_the_last_line(server: Server) -> None:
    team = unique_team("cli")
    for mode, prefix in (("live", "sk_live_"), ("test", "sk_test_")):
        done = server.cli("create-api-key", "--team", team, "--mode", mode)
        assert done.returncode == 0, done.stderr
        last = done.stdout.rstrip("\n").splitlines()[-1]
        assert KEY_LINE.match(last)
        assert last.startswith(prefix)
    default = server.cli("create-api-key", "--team", team)
    assert default.stdout.strip().splitlines()[-1].startswith("sk_live_")


def test_create_api_key_errors(server: Server) -> None:
    for args in (("create-api-key",), ("create-api-key", "--team", "t", "--mode", "prod")):
        done = server.cli(*args)
        assert done.returncode != 0
        assert done.stderr.strip()
        assert not done.stdout.strip()
    blank = server.cli("create-api-key", "--team", "   ")
    assert blank.returncode == 1
    assert "team" in blank.stderr


async def test_list_and_revoke_keys(server: Server, http: httpx.AsyncClient) -> None:
    team = unique_team("revoke")
    by_key = server.create_key(team)
    by_id = server.create_key(team, "test")
    keeper = server.create_key(team)
    for key in (by_key, by_id, keeper):
        assert (await http.get("/v2/clients", headers=auth(key))).status_code == 200

    listed = server.cli("list-api-keys", "--team", team)
    assert listed.returncode == 0, listed.stderr
    for key in (by_key, by_id, keeper):
        assert key not in listed.stdout
        assert key[8:] not in listed.stdout  # not even the random part
        assert key[:12] in listed.stdout  # the prefix, to recognise it
    rows = [line for line in listed.stdout.splitlines() if team in line]
    assert len(rows) == 3
    test_row = next(line for line in rows if by_id[:12] in line)
    key_id = test_row.split()[0]
    assert key_id.isdigit()
    everything = server.cli("list-api-keys")
    assert team in everything.stdout

    done = server.cli("revoke-api-key", by_key)
    assert done.returncode == 0, done.stderr
    assert by_key not in done.stdout
    done = server.cli("revoke-api-key", key_id)
    assert done.returncode == 0, done.stderr

    # At once, with no restart.
    for key in (by_key, by_id):
        r = await http.get("/v2/clients", headers=auth(key))
        assert r.status_code == 401
        assert r.headers["www-authenticate"].startswith("Bearer")
    assert (await http.get("/v2/clients", headers=auth(keeper))).status_code == 200
    listed = server.cli("list-api-keys", "--team", team)
    assert sum("revoked" in line for line in listed.stdout.splitlines()) == 2


def test_revoking_an_unknown_key_or_id_exits_1(server: Server) -> None:
    for target in ("sk_live_" + "Q" * 32, "987654321", "not-a-key"):
        done = server.cli("revoke-api-key", target)
        assert done.returncode == 1, (target, done.stdout)
        assert done.stderr.strip()
        assert "Traceback" not in done.stderr


# -- the REST routes ------------------------------------------------------------------------


async def test_client_lifecycle(http: httpx.AsyncClient, live_key: str) -> None:
    headers = auth(live_key)
    rfc = new_rfc()
    r = await http.post(
        "/v2/clients",
        json={"name": "Ferretería Ñandú", "rfc": rfc, "email": "f@example.mx"},
        headers=headers,
    )
    assert r.status_code == 201, r.text
    created = r.json()["data"]
    url = f"/v2/clients/{created['id']}"

    r = await http.get(url, headers=headers)
    assert r.status_code == 200
    assert r.json()["data"] == created

    r = await http.get("/v2/clients", params={"name": "ferreteria nandu"}, headers=headers)
    assert [c["id"] for c in r.json()["data"]] == [created["id"]]
    assert r.json()["totalResults"] == 1

    r = await http.put(url, json={"phone": "55 1234 5678"}, headers=headers)
    assert r.status_code == 200, r.text
    assert r.json()["data"]["phone"] == "55 1234 5678"
    assert r.json()["data"]["updatedAt"] > created["updatedAt"]

    r = await http.post("/v2/clients", json=client_body(rfc=rfc), headers=headers)
    assert r.status_code == 409
    assert r.json()["error"]["details"]["existingClientId"] == created["id"]

    r = await http.delete(url, headers=headers)
    assert r.status_code == 200
    assert r.json()["data"] == {"id": created["id"], "deleted": True}
    assert (await http.get(url, headers=headers)).status_code == 404


async def test_errors_over_the_wire(http: httpx.AsyncClient, live_key: str) -> None:
    r = await http.get("/v2/clients")
    assert r.status_code == 401
    r = await http.get("/no/such/route", headers=auth(live_key))
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "ROUTE_NOT_FOUND"
    r = await http.post(
        "/v2/clients",
        content=b"{" + b" " * (256 * 1024) + b"}",
        headers={**auth(live_key), "Content-Type": "application/json"},
    )
    assert r.status_code == 413

    async def chunked() -> AsyncIterator[bytes]:
        for _ in range(20):
            yield b" " * (16 * 1024)

    r = await http.post(
        "/v2/clients",
        content=chunked(),
        headers={**auth(live_key), "Content-Type": "application/json"},
    )
    assert r.status_code == 413
    assert r.json()["error"]["code"] == "PAYLOAD_TOO_LARGE"


# -- concurrency ----------------------------------------------------------------------------


async def test_simultaneous_creates_of_one_rfc(server: Server, http: httpx.AsyncClient) -> None:
    key = server.create_key(unique_team("race"))
    rfc = new_rfc()

    async def attempt(i: int) -> httpx.Response:
        return await http.post(
            "/v2/clients", json={"name": f"Carrera {i}", "rfc": rfc}, headers=auth(key)
        )

    responses = await asyncio.gather(*(attempt(i) for i in range(50)))
    statuses = sorted(r.status_code for r in responses)
    assert statuses.count(201) == 1, statuses
    assert statuses.count(409) == 49, statuses
    winner = next(r for r in responses if r.status_code == 201).json()["data"]["id"]
    for r in responses:
        if r.status_code == 409:
            assert r.json()["error"]["details"]["existingClientId"] == winner
    listed = await http.get("/v2/clients", params={"rfc": rfc}, headers=auth(key))
    assert listed.json()["totalResults"] == 1
    total = await http.get("/v2/clients", headers=auth(key))
    assert total.json()["totalResults"] == 1


async def test_simultaneous_distinct_creates_all_land(
    server: Server, http: httpx.AsyncClient
) -> None:
    key = server.create_key(unique_team("burst"))

    async def attempt(i: int) -> Any:
        r = await http.post("/v2/clients", json=client_body(name=f"Ráfaga {i}"), headers=auth(key))
        return r.status_code, r.json()["data"]["id"] if r.status_code == 201 else r.text

    results = await asyncio.gather(*(attempt(i) for i in range(100)))
    assert [status for status, _ in results] == [201] * 100, results
    created = {cid for _, cid in results}
    assert len(created) == 100

    # Every row is there, exactly once, and the count agrees.
    seen: list[str] = []
    r = await http.get("/v2/clients", params={"limit": 30}, headers=auth(key))
    assert r.json()["totalResults"] == 100
    while True:
        body = r.json()
        seen += [c["id"] for c in body["data"]]
        if not body["next"]:
            break
        r = await http.get("/v2/clients", params={"next": body["next"]}, headers=auth(key))
    assert len(seen) == 100
    assert set(seen) == created
    filtered = await http.get("/v2/clients", params={"name": "ráfaga"}, headers=auth(key))
    assert filtered.json()["totalResults"] == 100


# -- start-up and restarts ------------------------------------------------------------------


@pytest.mark.skipif(
    os.environ.get("TEST_DATABASE", "sqlite") != "sqlite", reason="the embedded default database"
)
def test_serve_migrates_a_new_database_and_tokens_survive_a_restart(
    server_factory: ServerFactory,
) -> None:
    """No SECRET_KEY in development: one is generated once into VAR_DIR, so a `next` token
    from before a restart still works after it."""
    first = server_factory(env={"SECRET_KEY": ""})
    workdir = first.cwd
    # A database file that did not exist: serve created and migrated it (ready = at head).
    assert (workdir / "clients.db").exists()
    assert httpx.get(f"{first.base_url}/readyz").status_code == 200
    key = first.create_key("restart")
    for i in range(3):
        r = httpx.post(
            f"{first.base_url}/v2/clients", json=client_body(name=f"R{i}"), headers=auth(key)
        )
        assert r.status_code == 201, r.text
    page = httpx.get(f"{first.base_url}/v2/clients", params={"limit": 1}, headers=auth(key))
    token = page.json()["next"]
    assert token
    secret = (workdir / "var" / "secret_key").read_text().strip()
    assert len(secret) >= 32
    first.stop()

    second = server_factory(workdir=workdir, env={"SECRET_KEY": ""})
    assert (workdir / "var" / "secret_key").read_text().strip() == secret
    rest = httpx.get(f"{second.base_url}/v2/clients", params={"next": token}, headers=auth(key))
    assert rest.status_code == 200, rest.text
    assert [c["name"] for c in rest.json()["data"]] == ["R1"]
    assert rest.json()["totalResults"] == 3
