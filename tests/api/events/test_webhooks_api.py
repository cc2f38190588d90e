"""Webhook endpoints through REST and GraphQL: creation rules (URL, event types, SSRF guard
in production), the secret shown once, tenancy, deletion; bad input changes nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from app.main import create_app
from tests.conftest import make_settings
from tests.support import Key

pytestmark = pytest.mark.asyncio

HOOK = {"url": "https://example.com/hooks", "events": ["client.created"]}


async def make(client: httpx.AsyncClient, key: Key, **body: Any) -> httpx.Response:
    return await client.post("/v2/webhooks", json={**HOOK, **body}, headers=key.headers)


async def listed(client: httpx.AsyncClient, key: Key) -> list[dict[str, Any]]:
    r = await client.get("/v2/webhooks", headers=key.headers)
    assert r.status_code == 200
    assert r.json()["message"] == "Webhooks retrieved successfully"
    data: list[dict[str, Any]] = r.json()["data"]
    return data


async def test_create_get_list_delete(client, key_a):
    r = await make(client, key_a, description="CRM", events=["client.created", "client.updated"])
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["message"] == "Webhook created successfully"
    hook = body["data"]
    assert hook["id"].startswith("wh_") and len(hook["id"]) == 29
    assert hook["url"] == HOOK["url"] and hook["events"] == ["client.created", "client.updated"]
    assert hook["description"] == "CRM" and hook["livemode"] is True
    assert hook["timestamp"].endswith("Z")
    assert hook["secret"].startswith("whsec_")
    import base64

    assert len(base64.b64decode(hook["secret"][6:])) >= 24
    # The secret is shown once.
    r = await client.get(f"/v2/webhooks/{hook['id']}", headers=key_a.headers)
    assert r.status_code == 200 and r.json()["message"] == "Webhook retrieved successfully"
    shown = r.json()["data"]
    assert "secret" not in shown
    assert shown == {k: v for k, v in hook.items() if k != "secret"}
    assert await listed(client, key_a) == [shown]
    r = await client.get(f"/v2/webhooks/{hook['id']}/deliveries", headers=key_a.headers)
    assert r.status_code == 200
    assert r.json() == {"data": [], "message": "Deliveries retrieved successfully"}
    r = await client.delete(f"/v2/webhooks/{hook['id']}", headers=key_a.headers)
    assert r.json() == {
        "data": {"id": hook["id"], "deleted": True},
        "message": "Webhook deleted successfully",
    }
    r = await client.get(f"/v2/webhooks/{hook['id']}", headers=key_a.headers)
    assert r.status_code == 404 and r.json()["error"]["message"] == "Webhook not found"
    r = await client.delete(f"/v2/webhooks/{hook['id']}", headers=key_a.headers)
    assert r.status_code == 404


async def test_all_events_and_duplicates(client, key_a):
    r = await make(client, key_a, events=["client.created", "*"])
    assert r.json()["data"]["events"] == ["*"]
    r = await make(client, key_a, events=["client.deleted", "client.deleted"])
    assert r.json()["data"]["events"] == ["client.deleted"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"url": None}, "url"),
        ({"url": ""}, "url"),
        ({"url": 5}, "url"),
        ({"url": "ftp://example.com/x"}, "url"),
        ({"url": "example.com/hooks"}, "url"),
        ({"url": "https://"}, "url"),
        ({"url": "https://user:pw@example.com/x"}, "url"),
        ({"url": "https://example.com/x#frag"}, "url"),
        ({"url": "https://exa mple.com/x"}, "url"),
        ({"url": "https://example.com:99999/x"}, "url"),
        ({"url": "https://example.com/" + "a" * 2100}, "url"),
        ({"events": []}, "events"),
        ({"events": None}, "events"),
        ({"events": "client.created"}, "events"),
        ({"events": ["client.exploded"]}, "events"),
        ({"events": [5]}, "events"),
        ({"description": 5}, "description"),
        ({"description": "x" * 501}, "description"),
        ({"description": "a\u0000b"}, "description"),
        ({"secret": "whsec_mine"}, "secret"),
    ],
)
async def test_bad_input_is_400_and_writes_nothing(client, key_a, body, field):
    r = await make(client, key_a, **body)
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["code"] == "VALIDATION_ERROR" and field in error["details"]
    assert await listed(client, key_a) == []


async def test_bodies_that_are_not_objects(client, key_a):
    for content in (b"[]", b"{", b'"x"'):
        r = await client.post(
            "/v2/webhooks",
            content=content,
            headers={**key_a.headers, "content-type": "application/json"},
        )
        assert r.status_code == 400, content
    r = await client.post(
        "/v2/webhooks", content=b"url=x", headers={**key_a.headers, "content-type": "text/plain"}
    )
    assert r.status_code == 415
    assert await listed(client, key_a) == []


async def test_tenancy_and_unknown_ids(client, key_a, key_a_test, key_b):
    hook = (await make(client, key_a)).json()["data"]
    for other in (key_b, key_a_test):
        assert await listed(client, other) == []
        for path in (f"/v2/webhooks/{hook['id']}", f"/v2/webhooks/{hook['id']}/deliveries"):
            r = await client.get(path, headers=other.headers)
            assert r.status_code == 404 and r.json()["error"]["code"] == "NOT_FOUND"
        r = await client.delete(f"/v2/webhooks/{hook['id']}", headers=other.headers)
        assert r.status_code == 404
    assert len(await listed(client, key_a)) == 1
    for bad in ("wh_00000000000000000000000000", "wh_x", "evt_1", "x" * 500):
        r = await client.get(f"/v2/webhooks/{bad}", headers=key_a.headers)
        assert r.status_code == 404
    r = await client.get(f"/v2/webhooks/{hook['id']}/deliveries?limit=0", headers=key_a.headers)
    assert r.status_code == 400
    r = await client.get("/v2/webhooks?x=1", headers=key_a.headers)
    assert r.status_code == 400
    assert (await client.get("/v2/webhooks")).status_code == 401


@pytest.fixture(scope="module")
async def production(database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(make_settings(database_url, app_env="production"))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        yield c
    await app.app.state.services.db.dispose()


@pytest.fixture(scope="module")
async def production_private(database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    settings = make_settings(database_url, app_env="production", webhook_allow_private=True)
    app = create_app(settings)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        yield c
    await app.app.state.services.db.dispose()


@pytest.mark.parametrize(
    "url",
    [
        "http://93.184.215.14/hooks",  # public, but http in production
        "https://127.0.0.1/hooks",
        "https://localhost/hooks",
        "https://10.1.2.3/hooks",
        "https://172.16.0.1/hooks",
        "https://192.168.1.1/hooks",
        "https://169.254.169.254/latest/meta-data",
        "https://100.64.0.1/hooks",
        "https://0.0.0.0/hooks",
        "https://[::1]/hooks",
        "https://[fe80::1]/hooks",
        "https://[fd00::1]/hooks",
        "https://[::ffff:127.0.0.1]/hooks",
        "https://224.0.0.1/hooks",
        "https://2130706433/hooks",  # 127.0.0.1 as one number
        "https://no-such-host.invalid/hooks",
    ],
)
async def test_production_refuses_non_public_hosts(production, key_a, url):
    r = await make(production, key_a, url=url)
    assert r.status_code == 400, (url, r.text)
    assert "url" in r.json()["error"]["details"]
    assert await listed(production, key_a) == []


async def test_production_takes_a_public_address(production, key_a):
    r = await make(production, key_a, url="https://93.184.215.14/hooks")
    assert r.status_code == 201, r.text


async def test_allow_private_lifts_the_guard(production_private, key_a):
    r = await make(production_private, key_a, url="https://127.0.0.1:8443/hooks")
    assert r.status_code == 201, r.text
    r = await make(production_private, key_a, url="http://127.0.0.1:8443/hooks")
    assert r.status_code == 400  # still https only in production


async def test_development_takes_http_and_local_hosts(client, key_a):
    r = await make(client, key_a, url="http://127.0.0.1:9/hooks")
    assert r.status_code == 201


GQL_CREATE = """
mutation($input: CreateWebhookInput!) {
  createWebhook(input: $input) {
    __typename
    ... on Webhook { id url events description livemode createdAt secret }
    ... on ValidationError { code message fields { field message } }
  }
}
"""


async def gql(client: httpx.AsyncClient, key: Key, query: str, **variables: Any) -> Any:
    r = await client.post(
        "/graphql", json={"query": query, "variables": variables}, headers=key.headers
    )
    assert r.status_code == 200, r.text
    return r.json()


async def test_graphql_webhooks(client, key_a, key_b):
    made = await gql(client, key_a, GQL_CREATE, input={"url": HOOK["url"], "events": ["*"]})
    hook = made["data"]["createWebhook"]
    assert hook["__typename"] == "Webhook" and hook["secret"].startswith("whsec_")
    listed_ = await gql(client, key_a, "{ webhooks { id secret events deliveries { attempt } } }")
    assert listed_["data"]["webhooks"] == [
        {"id": hook["id"], "secret": None, "events": ["*"], "deliveries": []}
    ]
    bad = await gql(client, key_a, GQL_CREATE, input={"url": "ftp://x", "events": ["nope"]})
    error = bad["data"]["createWebhook"]
    assert error["__typename"] == "ValidationError"
    assert {f["field"] for f in error["fields"]} == {"url", "events"}
    delete = (
        "mutation($id: ID!) { deleteWebhook(id: $id) { __typename "
        "... on DeletedWebhook { id deleted } ... on NotFoundError { code message id } } }"
    )
    other = await gql(client, key_b, delete, id=hook["id"])
    assert other["data"]["deleteWebhook"] == {
        "__typename": "NotFoundError",
        "code": "NOT_FOUND",
        "message": "Webhook not found",
        "id": hook["id"],
    }
    done = await gql(client, key_a, delete, id=hook["id"])
    assert done["data"]["deleteWebhook"] == {
        "__typename": "DeletedWebhook",
        "id": hook["id"],
        "deleted": True,
    }
    assert (await gql(client, key_a, "{ webhooks { id } }"))["data"]["webhooks"] == []
