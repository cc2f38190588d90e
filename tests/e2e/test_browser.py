"""The two pages a person explores the API with, in a real browser: headless Chromium (Debian's
`chromium`, the one on PATH; Playwright downloads nothing) against a real server process.

- /graphql (development) opens GraphiQL with the development key in its Headers tab and an
  example query; running it through the UI shows, in the result pane, the client just created
  with that key.
- /docs renders the REST routes with Swagger UI.
- Neither page asks any other host for anything, and neither raises a script error.

Where Chromium is missing the module is skipped with one line saying so, except under CI=true,
where that is a failure: `scripts/test` installs it (`apt-get install chromium`) when it can.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from tests.e2e.conftest import Server
from tests.support import new_rfc

pytestmark = pytest.mark.e2e
CHROMIUM = shutil.which("chromium")
WAIT_MS = 30_000  # a bound on a hang, never an assertion

if CHROMIUM is None:
    if os.environ.get("CI") == "true":
        raise RuntimeError("chromium is not on PATH: the browser tests must run in CI")
    pytest.skip(
        "browser tests: no `chromium` on PATH (apt-get install chromium)", allow_module_level=True
    )

playwright_api = pytest.importorskip("playwright.async_api")


@pytest.fixture(scope="module")
def dev_key(server: Server) -> str:
    done = server.cli("dev-key")
    assert done.returncode == 0, done.stderr
    return (server.cwd / "var" / "dev-api-key").read_text().strip()


class PageWatch:
    """Every URL a page requested and every script error it raised."""

    def __init__(self, page: Any) -> None:
        self.urls: list[str] = []
        self.errors: list[str] = []
        page.on("request", lambda request: self.urls.append(request.url))
        page.on("pageerror", lambda error: self.errors.append(str(error)))
        page.on(
            "console",
            lambda m: self.errors.append(m.text) if m.type == "error" else None,
        )

    def assert_only(self, base_url: str) -> None:
        origin = urlsplit(base_url).netloc
        foreign = [u for u in self.urls if urlsplit(u).netloc != origin]
        assert self.urls, "the page requested nothing"
        assert foreign == [], f"requests to other hosts: {foreign}"
        assert self.errors == [], self.errors


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    async with playwright_api.async_playwright() as playwright:
        chromium = await playwright.chromium.launch(executable_path=CHROMIUM)
        try:
            yield chromium
        finally:
            await chromium.close()


async def test_graphiql_runs_the_example_query_with_the_development_key(
    server: Server, dev_key: str, browser: Any
) -> None:
    name = f"Navegador {uuid.uuid4().hex[:8]}"
    created = httpx.post(
        f"{server.base_url}/v2/clients",
        headers={"Authorization": f"Bearer {dev_key}"},
        json={"name": name, "rfc": new_rfc()},
    )
    assert created.status_code == 201, created.text
    page = await browser.new_page()
    watch = PageWatch(page)

    await page.goto(f"{server.base_url}/graphql")
    run = page.locator(".graphiql-execute-button")
    await run.wait_for(timeout=WAIT_MS)
    headers = await page.locator(".graphiql-editor-tool").inner_text()
    assert f"Bearer {dev_key}" in headers.replace("\n", "")
    await run.click()
    result = page.locator(".result-window")
    await result.get_by_text(name).wait_for(timeout=WAIT_MS)
    text = await result.inner_text()
    assert '"totalCount"' in text
    assert "errors" not in text
    watch.assert_only(server.base_url)


async def test_graphiql_without_a_key_file_shows_a_placeholder(
    server: Server, browser: Any, tmp_path: Any
) -> None:
    """A development key must exist for the page to carry it; the page itself never fails."""
    key_file = server.cwd / "var" / "dev-api-key"
    saved = key_file.read_text() if key_file.exists() else None
    key_file.unlink(missing_ok=True)
    try:
        page = await browser.new_page()
        await page.goto(f"{server.base_url}/graphql")
        await page.locator(".graphiql-execute-button").wait_for(timeout=WAIT_MS)
        headers = await page.locator(".graphiql-editor-tool").inner_text()
        assert "python -m app dev-key" in headers.replace("\n", "")
    finally:
        if saved is not None:
            key_file.write_text(saved)


async def test_docs_render_the_client_routes(server: Server, browser: Any) -> None:
    page = await browser.new_page()
    watch = PageWatch(page)
    await page.goto(f"{server.base_url}/docs")
    operations = page.locator(".opblock")
    await operations.first.wait_for(timeout=WAIT_MS)
    rendered = set()
    for summary in await page.locator(".opblock-summary").all():
        method = await summary.locator(".opblock-summary-method").inner_text()
        path = await summary.locator(".opblock-summary-path").inner_text()
        rendered.add((method.strip().upper(), path.strip().replace("\u200b", "")))
    expected = {
        ("POST", "/v2/clients"),
        ("GET", "/v2/clients"),
        ("GET", "/v2/clients/{clientId}"),
        ("PUT", "/v2/clients/{clientId}"),
        ("PATCH", "/v2/clients/{clientId}"),
        ("DELETE", "/v2/clients/{clientId}"),
    }
    assert expected <= rendered, expected - rendered
    watch.assert_only(server.base_url)
