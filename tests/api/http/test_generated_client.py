"""A client generated from /openapi.json by `openapi-python-client` (into a temporary
directory) parses every answer of every route into its documented model: successes, and the
error envelope of each documented error status."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from types import ModuleType
from typing import Any

import httpx
import pytest

from tests.support import Key, new_rfc

PACKAGE = "clients_gateway_client"


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    from app.main import create_app
    from tests.conftest import make_settings

    root = tmp_path_factory.mktemp("generated")
    never_opened = root / "docs-only.db"
    doc = create_app(make_settings(f"sqlite+aiosqlite:///{never_opened}")).app.openapi()
    spec = root / "openapi.json"
    spec.write_text(json.dumps(doc))
    # JSON Lines (GET /v2/clients/export) reach the generated client as bytes.
    config = root / "config.json"
    config.write_text(
        json.dumps({"content_type_overrides": {"application/x-ndjson": "application/octet-stream"}})
    )
    generate = ["generate", "--path", str(spec), "--meta", "none", "--config", str(config)]
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "openapi_python_client",
            *generate,
            "--output-path",
            str(root / PACKAGE),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Warning" not in done.stdout + done.stderr, done.stdout + done.stderr
    sys.path.insert(0, str(root))
    try:
        yield importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(root))
        for name in [m for m in sys.modules if m.split(".")[0] == PACKAGE]:
            del sys.modules[name]


def _module(generated: ModuleType, name: str) -> Any:
    return importlib.import_module(f"{generated.__name__}.{name}")


@pytest.fixture
async def api(generated: ModuleType, app: Any, key_a: Key) -> AsyncIterator[Any]:
    client_module = _module(generated, "client")
    api = client_module.AuthenticatedClient(
        base_url="http://testserver",
        token=key_a.key,
        httpx_args={"transport": httpx.ASGITransport(app=app)},
    )
    yield api
    await api.get_async_httpx_client().aclose()


def _parsed(response: Any, status: int, model: str) -> Any:
    assert response.status_code == status, response.content
    assert type(response.parsed).__name__ == model, (response.parsed, response.content)
    return response.parsed


async def test_every_client_route_answers_what_the_client_parses(
    generated: ModuleType, api: Any
) -> None:
    models = _module(generated, "models")
    ops = {
        name: _module(generated, f"api.clients.{name}")
        for name in (
            "create_client",
            "list_clients",
            "get_client",
            "put_client",
            "patch_client",
            "delete_client",
        )
    }
    body = models.ClientCreateBody.from_dict(
        {
            "name": "Cliente Generado",
            "rfc": new_rfc(),
            "email": "generado@example.com",
            "address": {"zipCode": "03100", "country": "México"},
        }
    )
    created = _parsed(
        await ops["create_client"].asyncio_detailed(client=api, body=body), 201, "ClientEnvelope"
    )
    client_id = created.data.id
    assert created.data.client.rfc == body.rfc
    assert created.data.address.zip_code == "03100"

    duplicate = await ops["create_client"].asyncio_detailed(client=api, body=body)
    assert _parsed(duplicate, 409, "ErrorEnvelope").error.code == "DUPLICATE_RFC"
    invalid = models.ClientCreateBody.from_dict({"name": "x", "rfc": "NOT-AN-RFC"})
    refused = _parsed(
        await ops["create_client"].asyncio_detailed(client=api, body=invalid), 400, "ErrorEnvelope"
    )
    assert "rfc" in refused.error.details.to_dict()

    page = _parsed(
        await ops["list_clients"].asyncio_detailed(client=api, limit=1, name="generado"),
        200,
        "ClientListEnvelope",
    )
    assert [c.id for c in page.data] == [client_id]
    got = _parsed(
        await ops["get_client"].asyncio_detailed(client_id, client=api), 200, "ClientEnvelope"
    )
    assert got.data.name == "Cliente Generado"

    patch = models.ClientUpdateBody.from_dict({"phone": "+52 55 1234 5678"})
    patched = _parsed(
        await ops["patch_client"].asyncio_detailed(client_id, client=api, body=patch),
        200,
        "ClientEnvelope",
    )
    put = models.ClientUpdateBody.from_dict({"legalName": "Cliente Generado S.A."})
    stale = await ops["put_client"].asyncio_detailed(
        client_id, client=api, body=put, if_match='"1"'
    )
    assert _parsed(stale, 412, "ErrorEnvelope").error.code == "PRECONDITION_FAILED"
    current = f'"{patched.data.updated_at}"'  # not an ETag: also refused
    assert (
        await ops["put_client"].asyncio_detailed(client_id, client=api, body=put, if_match=current)
    ).status_code == 412
    _parsed(
        await ops["put_client"].asyncio_detailed(client_id, client=api, body=put),
        200,
        "ClientEnvelope",
    )

    deleted = _parsed(
        await ops["delete_client"].asyncio_detailed(client_id, client=api), 200, "DeletedEnvelope"
    )
    assert deleted.data.deleted is True
    missing = await ops["get_client"].asyncio_detailed(client_id, client=api)
    assert _parsed(missing, 404, "ErrorEnvelope").error.code == "NOT_FOUND"


async def test_unauthorized_health_and_graphql(generated: ModuleType, app: Any) -> None:
    client_module = _module(generated, "client")
    anonymous = client_module.Client(
        base_url="http://testserver", httpx_args={"transport": httpx.ASGITransport(app=app)}
    )
    listing = _module(generated, "api.clients.list_clients")
    denied = await listing.asyncio_detailed(client=anonymous)
    assert _parsed(denied, 401, "ErrorEnvelope").error.code == "UNAUTHORIZED"
    export = _module(generated, "api.clients.export_clients")
    assert (await export.asyncio_detailed(client=anonymous)).status_code == 401
    healthz = _module(generated, "api.health.healthz")
    assert (await healthz.asyncio_detailed(client=anonymous)).status_code == 200
    await anonymous.get_async_httpx_client().aclose()
