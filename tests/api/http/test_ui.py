"""GraphiQL and Swagger UI pages: every asset from this server, pinned, shipped in the package;
the development key only for a browser on this machine, and never able to break the page.
(tests/e2e/test_browser.py runs both pages in a real browser.)"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import zipfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.core.config import Settings
from app.http import ui
from app.main import create_app

ROOT = Path(__file__).resolve().parents[3]
HTML = {"Accept": "text/html"}
ASSET_REF = re.compile(r"""(?:src|href)=["']([^"']+)["']""")


@pytest.fixture
def dev_key_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "dev-api-key"
    monkeypatch.setattr(ui, "DEV_KEY_FILE", path)
    return path


async def _client(settings: Settings, peer: str) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings)
    transport = httpx.ASGITransport(app=app, client=(peer, 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c
    await app.app.state.services.db.dispose()


@pytest.fixture
async def local(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async for c in _client(settings, "127.0.0.1"):
        yield c


@pytest.fixture
async def remote(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async for c in _client(settings, "203.0.113.7"):
        yield c


def _config(html: str) -> dict[str, Any]:
    import json

    match = re.search(r'<script id="graphiql-config" type="application/json">(.*?)</script>', html)
    assert match, html
    config: dict[str, Any] = json.loads(match[1])
    return config


async def _assets_load(client: httpx.AsyncClient, html: str) -> list[str]:
    refs = ASSET_REF.findall(html)
    assert refs
    for ref in refs:
        assert ref.startswith("/ui-assets/"), f"not served by the product: {ref}"
        r = await client.get(ref)
        assert r.status_code == 200, ref
        assert len(r.content) > 100, ref
    # Nothing in the page names another host (scripts would fetch it).
    assert re.findall(r"https?://", html) == []
    return refs


async def test_graphiql_page_loads_only_packaged_assets_with_the_dev_key(
    local: httpx.AsyncClient, dev_key_file: Path
) -> None:
    dev_key_file.write_text("sk_test_abc\n")
    r = await local.get("/graphql", headers=HTML)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    assert r.headers["cache-control"] == "no-store"
    refs = await _assets_load(local, r.text)
    assert any("graphiql.min.js" in ref for ref in refs)
    config = _config(r.text)
    assert '"Bearer sk_test_abc"' in config["headers"]
    assert config["path"] == "/graphql"
    assert "subscriptionUrl" in r.text and "graphqlWs.createClient" in r.text


async def test_the_example_query_runs_as_it_is(
    local: httpx.AsyncClient, dev_key_file: Path, key_a: Any
) -> None:
    page = await local.get("/graphql", headers=HTML)
    query = _config(page.text)["query"]
    r = await local.post("/graphql", json={"query": query}, headers=key_a.headers)
    assert r.status_code == 200
    body = r.json()
    assert "errors" not in body, body
    assert body["data"]["clients"]["totalCount"] == 0


async def test_no_key_for_a_browser_on_another_machine(
    remote: httpx.AsyncClient, dev_key_file: Path
) -> None:
    dev_key_file.write_text("sk_test_secret\n")
    r = await remote.get("/graphql", headers=HTML)
    assert r.status_code == 200
    assert "sk_test_secret" not in r.text
    assert ui.PLACEHOLDER_KEY in _config(r.text)["headers"]


async def test_a_key_file_cannot_break_out_of_the_page(
    local: httpx.AsyncClient, dev_key_file: Path
) -> None:
    dev_key_file.write_text('</script><script>alert("x")</script>')
    r = await local.get("/graphql", headers=HTML)
    assert "<script>alert" not in r.text
    assert "</script><script>alert(" in _config(r.text)["headers"]


async def test_missing_key_file_gives_the_placeholder(
    local: httpx.AsyncClient, dev_key_file: Path
) -> None:
    r = await local.get("/graphql", headers=HTML)
    assert ui.PLACEHOLDER_KEY in _config(r.text)["headers"]


async def test_swagger_ui_loads_only_packaged_assets(local: httpx.AsyncClient) -> None:
    r = await local.get("/docs")
    assert r.status_code == 200
    refs = await _assets_load(local, r.text)
    assert any("swagger-ui-bundle.js" in ref for ref in refs)
    assert "/openapi.json" in r.text


async def test_unknown_asset_is_a_json_404(local: httpx.AsyncClient) -> None:
    for path in ("/ui-assets/nope.js", "/ui-assets/../app/main.py", "/ui-assets/%2e%2e/VERSIONS"):
        r = await local.get(path)
        assert r.status_code == 404, path
        assert r.headers["content-type"] == "application/json", path


async def test_production_has_docs_but_no_graphiql(settings: Settings) -> None:
    prod = settings.model_copy(update={"app_env": "production"})
    async for client in _client(prod, "127.0.0.1"):
        assert (await client.get("/graphql", headers=HTML)).status_code == 405
        docs = await client.get("/docs")
        assert docs.status_code == 200
        await _assets_load(client, docs.text)


def test_versions_are_pinned_with_their_licences() -> None:
    assets = ROOT / "app" / "http" / "ui_assets"
    lines = [
        line.split()
        for line in (assets / "VERSIONS").read_text().splitlines()
        if not line.startswith("#")
    ]
    names = {name for name, _version, _integrity in lines}
    assert names == {"graphiql", "react", "react-dom", "graphql-ws", "swagger-ui-dist"}
    for name, version, integrity in lines:
        assert re.fullmatch(r"\d+\.\d+\.\d+", version), (name, version)
        assert integrity.startswith("sha512-"), name
        assert any(p.name.startswith("LICENSE") for p in (assets / name).iterdir()), name


def test_the_wheel_ships_every_asset(tmp_path: Path) -> None:
    """`pip install .` serves working pages: the built wheel holds every asset file."""
    # Built from a copy, so that no build/ or egg-info is left in the work tree.
    source = tmp_path / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    for name in ("app", "schema"):
        shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
    build = ["pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path)]
    subprocess.run(
        [sys.executable, "-m", *build, str(source)],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assets = ROOT / "app" / "http" / "ui_assets"
    expected = {
        str(p.relative_to(ROOT)) for p in assets.rglob("*") if p.is_file() and p.name != ".gitkeep"
    }
    assert expected and expected <= names, expected - names
