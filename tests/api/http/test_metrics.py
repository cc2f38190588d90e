"""GET /metrics: what is counted, what no label may hold, and who may read it.

The process's registry is shared by every app of the test run, so each test reads a counter
before and after what it does and compares the difference.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from app.core.config import Settings
from app.http import metrics
from app.main import create_app
from tests.support import Key, new_rfc


def sample(text: str, name: str, **labels: str) -> float:
    """The value of one sample of the exposition (0 when absent)."""
    for line in text.splitlines():
        if line.startswith("#") or not line.startswith(name):
            continue
        match = re.fullmatch(r"(\w+)(?:\{(.*)\})? (\S+)", line)
        if not match or match[1] != name:
            continue
        found = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', match[2] or ""))
        if found == labels:
            return float(match[3])
    return 0.0


async def scrape(client: httpx.AsyncClient, **headers: str) -> str:
    r = await client.get("/metrics", headers=headers)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain")
    return r.text


@pytest.fixture
async def open_client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async for c in _client(settings):
        yield c


async def _client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c
    await app.app.state.services.db.dispose()


async def test_requests_by_route_template_and_status(
    open_client: httpx.AsyncClient, key_a: Key
) -> None:
    route = "/v2/clients/{clientId}"
    before = await scrape(open_client)
    missing = f"client_01JD0Q5Z8X3V2N7K4M6P9R{uuid.uuid4().hex[:4].upper()}"
    for _ in range(3):
        r = await open_client.get(f"/v2/clients/{missing}", headers=key_a.headers)
        assert r.status_code == 404
    await open_client.get(f"/no/such/{missing}")
    after = await scrape(open_client)
    labels = {"method": "GET", "route": route, "status": "404"}
    assert (
        sample(after, "http_requests_total", **labels)
        - sample(before, "http_requests_total", **labels)
        == 3
    )
    assert (
        sample(after, "http_request_duration_seconds_count", method="GET", route=route)
        - sample(before, "http_request_duration_seconds_count", method="GET", route=route)
        == 3
    )
    unmatched = {"method": "GET", "route": "unmatched", "status": "404"}
    assert sample(after, "http_requests_total", **unmatched) > sample(
        before, "http_requests_total", **unmatched
    )
    assert missing not in after  # no id, no path as sent


async def test_graphql_by_operation_name_and_the_fast_path(
    open_client: httpx.AsyncClient, key_a: Key
) -> None:
    before = await scrape(open_client)
    query = "query NewestOnes { clients(first: 2) { totalCount nodes { id } } }"
    r = await open_client.post(
        "/graphql", json={"query": query, "operationName": "NewestOnes"}, headers=key_a.headers
    )
    assert r.status_code == 200 and "errors" not in r.json()
    after = await scrape(open_client)
    labels = {"operation": "NewestOnes", "status": "200"}
    assert (
        sample(after, "graphql_requests_total", **labels)
        - sample(before, "graphql_requests_total", **labels)
        == 1
    )
    assert (
        sample(after, "graphql_fast_path_total", outcome="answered")
        - sample(before, "graphql_fast_path_total", outcome="answered")
        == 1
    )


async def test_operation_names_are_bounded(open_client: httpx.AsyncClient, key_a: Key) -> None:
    """A name that is not a short GraphQL name, or one past the cap, is `other`."""
    sent = ['Evil"} 1\nfake_metric{a="', "x" * 65, "ño", f"ClientPicked_{uuid.uuid4().hex}"]
    for name in sent:
        await open_client.post(
            "/graphql",
            json={"query": "{ __typename }", "operationName": name},
            headers=key_a.headers,
        )
    text = await scrape(open_client)
    for name in sent[:3]:
        assert name not in text
    assert "fake_metric" not in text
    assert sample(text, "graphql_requests_total", operation="other", status="200") >= 3
    # The cap: once MAX_OPERATION_NAMES distinct names are known, every new one is `other`.
    for i in range(metrics.MAX_OPERATION_NAMES + 1):
        metrics.operation_label(f"Filler{i}")
    assert metrics.operation_label(f"Late_{uuid.uuid4().hex}") == "other"
    assert metrics.operation_label(None) == "anonymous"


async def test_rate_limit_refusals_and_idempotent_replays(settings: Settings, key_a: Key) -> None:
    limited = settings.model_copy(update={"rate_limit_per_second": 0.001, "rate_limit_burst": 3})
    async for client in _client(limited):
        before = await scrape(client)
        body = {"name": "Repetido", "rfc": new_rfc()}
        headers = {**key_a.headers, "Idempotency-Key": f"metrics-{uuid.uuid4().hex}"}
        statuses = [
            (await client.post("/v2/clients", json=body, headers=headers)).status_code
            for _ in range(4)
        ]
        assert statuses == [201, 201, 201, 429]
        after = await scrape(client)
        assert (
            sample(after, "idempotent_replays_total") - sample(before, "idempotent_replays_total")
            == 2
        )
        assert (
            sample(after, "rate_limit_refusals_total") - sample(before, "rate_limit_refusals_total")
            == 1
        )


async def test_database_pools_are_reported(open_client: httpx.AsyncClient) -> None:
    text = await scrape(open_client)
    pools = re.findall(r'^db_pool_connections_max\{pool="(\w+)"\} (\S+)$', text, re.M)
    assert pools and all(float(value) > 0 for _, value in pools)
    for pool, _ in pools:
        assert f'db_pool_connections_in_use{{pool="{pool}"}}' in text


async def test_development_with_a_token_requires_it(settings: Settings) -> None:
    token = uuid.uuid4().hex
    async for client in _client(settings.model_copy(update={"metrics_token": token})):
        assert (await client.get("/metrics")).status_code == 401
        await scrape(client, Authorization=f"Bearer {token}")


@pytest.mark.parametrize("authorization", [None, "Bearer wrong", "Basic abc", "Bearer ", "bearer"])
async def test_production_requires_the_token(settings: Settings, authorization: Any) -> None:
    token = uuid.uuid4().hex
    production = settings.model_copy(update={"app_env": "production", "metrics_token": token})
    async for client in _client(production):
        headers = {"Authorization": authorization} if authorization else {}
        r = await client.get("/metrics", headers=headers)
        assert r.status_code == 401
        assert r.json()["error"]["code"] == "UNAUTHORIZED"
        assert r.headers["www-authenticate"].startswith("Bearer")
        await scrape(client, Authorization=f"Bearer {token}")


async def test_production_without_a_token_has_no_metrics(settings: Settings) -> None:
    async for client in _client(settings.model_copy(update={"app_env": "production"})):
        r = await client.get("/metrics", headers={"Authorization": "Bearer anything"})
        assert r.status_code == 404
        assert r.json()["error"]["code"] == "ROUTE_NOT_FOUND"
