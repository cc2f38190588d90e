"""Authentication, request ids, unknown routes and methods, health (contract §2 and §3)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from app.auth.service import ApiKeyService
from app.db.database import Database
from tests.support import Key, client_body, create_key, unique_team

MISSING_ID = "client_01JD0Q5Z8X3V2N7K4M6P9R1T2W"

ROUTES = [
    ("GET", "/v2/clients"),
    ("POST", "/v2/clients"),
    ("GET", f"/v2/clients/{MISSING_ID}"),
    ("PUT", f"/v2/clients/{MISSING_ID}"),
    ("PATCH", f"/v2/clients/{MISSING_ID}"),
    ("DELETE", f"/v2/clients/{MISSING_ID}"),
]


def assert_unauthorized(r: httpx.Response) -> None:
    assert r.status_code == 401, r.text
    assert r.headers["www-authenticate"].startswith("Bearer")
    body = r.json()
    assert set(body) == {"error", "message"}
    assert body["message"] == "Authentication required"
    assert body["error"]["code"] == "UNAUTHORIZED"
    assert body["error"]["message"]


# -- authentication -------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "path"), ROUTES)
async def test_missing_key_is_401_on_every_route(
    client: httpx.AsyncClient, method: str, path: str
) -> None:
    r = await client.request(method, path, json=client_body())
    assert_unauthorized(r)


@pytest.mark.parametrize(
    "authorization",
    [
        "",
        "Bearer",
        "Bearer ",
        "Basic dXNlcjpwYXNz",
        "Token sk_live_" + "a" * 32,
        "Bearer sk_live_short",
        "Bearer sk_prod_" + "a" * 32,
        "Bearer sk_live_" + "a" * 31 + "!",
        "Bearer sk_live_" + "a" * 33,
        "sk_live_" + "a" * 32,
    ],
)
async def test_malformed_keys_are_401(client: httpx.AsyncClient, authorization: str) -> None:
    r = await client.get("/v2/clients", headers={"Authorization": authorization})
    assert_unauthorized(r)


async def test_unknown_key_is_401(client: httpx.AsyncClient) -> None:
    for key in ("sk_live_" + "A" * 32, "sk_test_" + "0" * 32):
        r = await client.get("/v2/clients", headers={"Authorization": f"Bearer {key}"})
        assert_unauthorized(r)


async def test_scheme_is_case_insensitive(client: httpx.AsyncClient, key_a: Key) -> None:
    r = await client.get("/v2/clients", headers={"Authorization": f"bearer {key_a.key}"})
    assert r.status_code == 200


async def test_revoked_key_is_401_at_once(client: httpx.AsyncClient, db: Database) -> None:
    team = unique_team("revoke")
    by_key = await create_key(db, team=team)
    by_id = await create_key(db, team=team, livemode=False)
    survivor = await create_key(db, team=team)
    for key in (by_key, by_id, survivor):
        assert (await client.get("/v2/clients", headers=key.headers)).status_code == 200
    keys = ApiKeyService(db)
    assert await keys.revoke(by_key.key) is not None
    assert await keys.revoke(str(by_id.key_id)) is not None
    for key in (by_key, by_id):
        assert_unauthorized(await client.get("/v2/clients", headers=key.headers))
        assert_unauthorized(
            await client.post("/v2/clients", json=client_body(), headers=key.headers)
        )
    assert (await client.get("/v2/clients", headers=survivor.headers)).status_code == 200


async def test_revoking_unknown_keys(db: Database) -> None:
    keys = ApiKeyService(db)
    assert await keys.revoke("sk_live_" + "B" * 32) is None
    assert await keys.revoke("999999999") is None
    assert await keys.revoke("not-a-key") is None


async def test_keys_say_their_mode_and_are_random(db: Database) -> None:
    live = await create_key(db, team=unique_team("k"))
    test = await create_key(db, team=unique_team("k"), livemode=False)
    assert live.key.startswith("sk_live_")
    assert test.key.startswith("sk_test_")
    assert len(live.key) - len("sk_live_") >= 22  # at least 128 bits in base62
    listed = await ApiKeyService(db).list(team=live.team)
    assert [k.prefix for k in listed] == [live.key[:12]]
    assert all(live.key not in repr(k) for k in listed)


async def test_last_used_is_recorded(client: httpx.AsyncClient, db: Database) -> None:
    key = await create_key(db, team=unique_team("used"))
    before = await ApiKeyService(db).list(team=key.team)
    assert before[0].last_used_at is None
    await client.get("/v2/clients", headers=key.headers)
    after = await ApiKeyService(db).list(team=key.team)
    assert after[0].last_used_at is not None


# -- public routes --------------------------------------------------------------------------


async def test_health_is_public(client: httpx.AsyncClient) -> None:
    r = await client.get("/healthz")
    assert r.status_code == 200
    assert r.json() == {"status": "ok"}
    r = await client.get("/readyz")
    assert r.status_code == 200
    assert r.json() == {"status": "ready"}


async def test_docs_are_public(client: httpx.AsyncClient) -> None:
    assert (await client.get("/openapi.json")).status_code == 200
    docs = await client.get("/docs")
    assert docs.status_code == 200
    assert "text/html" in docs.headers["content-type"]


async def test_readyz_is_503_on_an_unmigrated_database(tmp_path: Any) -> None:
    from app.main import create_app
    from tests.conftest import make_settings

    app = create_app(make_settings(f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}"))
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
            r = await c.get("/readyz")
            assert r.status_code == 503
            assert r.json()["error"]["code"] == "SERVICE_UNAVAILABLE"
            assert (await c.get("/healthz")).status_code == 200
    finally:
        await app.app.state.services.db.dispose()


# -- request ids ----------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/healthz", "/v2/clients", "/nowhere", "/openapi.json"])
async def test_every_response_has_a_request_id(client: httpx.AsyncClient, path: str) -> None:
    r = await client.get(path)
    assert len(r.headers["x-request-id"]) >= 16


@pytest.mark.parametrize("sane", ["abc-123", "req_01JD0Q5Z8X3V2N7K4M6P9R1T2W", "a.b:c", "x" * 128])
async def test_sane_request_id_is_echoed(client: httpx.AsyncClient, sane: str) -> None:
    r = await client.get("/healthz", headers={"X-Request-Id": sane})
    assert r.headers["x-request-id"] == sane
    r = await client.get("/v2/clients", headers={"X-Request-Id": sane})
    assert r.status_code == 401
    assert r.headers["x-request-id"] == sane


@pytest.mark.parametrize(
    "insane", ["", "has space", "x" * 129, "semi;colon", "<script>", "ñ", "a\tb"]
)
async def test_insane_request_id_is_replaced(client: httpx.AsyncClient, insane: str) -> None:
    r = await client.get("/healthz", headers={"X-Request-Id": insane.encode("utf-8")})
    assert r.headers["x-request-id"]
    assert r.headers["x-request-id"] != insane
    assert " " not in r.headers["x-request-id"]


async def test_request_ids_differ(client: httpx.AsyncClient) -> None:
    ids = {(await client.get("/healthz")).headers["x-request-id"] for _ in range(5)}
    assert len(ids) == 5


# -- unknown routes and methods -------------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["/nowhere", "/v2", "/v2/client", "/v1/clients", "/v2/clients/x/y"]
)
async def test_unknown_route_is_route_not_found(
    client: httpx.AsyncClient, key_a: Key, path: str
) -> None:
    r = await client.get(path, headers=key_a.headers)
    assert r.status_code == 404, r.text
    body = r.json()
    assert body["error"]["code"] == "ROUTE_NOT_FOUND"
    assert "Client not found" not in r.text
    assert body["message"]
    assert "application/json" in r.headers["content-type"]


async def test_nested_unknown_route_under_a_client(client: httpx.AsyncClient, key_a: Key) -> None:
    r = await client.get(f"/v2/clients/{MISSING_ID}/invoices", headers=key_a.headers)
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "ROUTE_NOT_FOUND"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("DELETE", "/v2/clients"),
        ("PUT", "/v2/clients"),
        ("PATCH", "/v2/clients"),
        ("POST", f"/v2/clients/{MISSING_ID}"),
        ("POST", "/healthz"),
    ],
)
async def test_wrong_method_is_405(
    client: httpx.AsyncClient, key_a: Key, method: str, path: str
) -> None:
    r = await client.request(method, path, headers=key_a.headers)
    assert r.status_code == 405, r.text
    body = r.json()
    assert body["error"]["code"] == "METHOD_NOT_ALLOWED"
    assert body["message"]
    assert r.headers.get("allow")


async def test_errors_are_never_html(client: httpx.AsyncClient, key_a: Key) -> None:
    for method, path in (("GET", "/x"), ("TRACE", "/v2/clients"), ("POST", "/v2/clients")):
        r = await client.request(
            method, path, headers={**key_a.headers, "Accept": "text/html"}, content=b"{"
        )
        assert r.status_code >= 400
        assert r.headers["content-type"].startswith("application/json"), (method, path)
        assert "error" in r.json()


# -- unexpected faults ----------------------------------------------------------------------


async def test_unexpected_fault_is_a_masked_500(
    client: httpx.AsyncClient, key_a: Key, app: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bug in a handler answers the documented 500 with the request id and no internals."""
    service = app.app.state.services.clients

    async def broken(**_: Any) -> Any:
        raise RuntimeError("secret internal detail")

    monkeypatch.setattr(service, "create", broken)
    r = await client.post(
        "/v2/clients", json=client_body(), headers={**key_a.headers, "X-Request-Id": "trace-me"}
    )
    assert r.status_code == 500
    body = r.json()
    assert body["error"]["code"] == "INTERNAL_ERROR"
    assert body["error"]["requestId"] == "trace-me"
    assert body["message"]
    assert "secret" not in r.text
    assert "Traceback" not in r.text


async def test_security_headers(client: httpx.AsyncClient, key_a: Key) -> None:
    r = await client.get("/v2/clients", headers=key_a.headers)
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["cache-control"] == "no-store"
