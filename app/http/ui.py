"""The two pages a person explores the API with, served by the product itself: GraphiQL
(GET /graphql in development) and Swagger UI (GET /docs, always).

Invariants:
- Every script, stylesheet and image the pages load is a file of `app/http/ui_assets/`, at the
  version pinned in its VERSIONS file (written by `scripts/update-ui-assets` from the npm
  registry), served under /ui-assets/: a page never asks another host for anything.
- In development, GraphiQL opens with the development key (`python -m app dev-key`, read from
  its file when the page is served, so a new key is picked up without a restart) in its
  Headers tab, but only for a browser on this machine (a loopback peer): the page is public,
  the key must not be. Anyone else gets a placeholder to fill in.
- What the page embeds is JSON in a `<script type="application/json">` with `<`, `>` and `&`
  escaped, so nothing read from a file or a header can close the tag.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from app.core.config import DEV_KEY_FILE

ASSETS_DIR = Path(__file__).resolve().parent / "ui_assets"
ASSETS_URL = "/ui-assets"
PLACEHOLDER_KEY = "<your API key: python -m app dev-key>"

# Runs as it is against any database, an empty one included.
EXAMPLE_QUERY = """\
# The newest clients your key (Headers tab) sees.
# Run: ▶ or Ctrl-Enter. Schema: the book icon.
query NewestClients {
  clients(first: 5) {
    totalCount
    nodes {
      id
      name
      rfc
      email
      createdAt
    }
    pageInfo {
      hasNextPage
      endCursor
    }
  }
}
"""

_GRAPHIQL_PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>Clients gateway · GraphiQL</title>
  <link rel="icon" href="{assets}/swagger-ui-dist/favicon-32x32.png">
  <link rel="stylesheet" href="{assets}/graphiql/graphiql.min.css">
  <style>body {{ margin: 0; }} #graphiql {{ height: 100vh; }}</style>
</head>
<body>
  <div id="graphiql">Loading GraphiQL…</div>
  <script id="graphiql-config" type="application/json">{config}</script>
  <script src="{assets}/react/react.production.min.js"></script>
  <script src="{assets}/react-dom/react-dom.production.min.js"></script>
  <script src="{assets}/graphql-ws/graphql-ws.min.js"></script>
  <script src="{assets}/graphiql/graphiql.min.js"></script>
  <script>
    const config = JSON.parse(document.getElementById("graphiql-config").textContent);
    const endpoint = new URL(config.path, window.location.href);
    const wsUrl = (endpoint.protocol === "https:" ? "wss://" : "ws://") + endpoint.host
      + endpoint.pathname;
    // The headers of the Headers tab as they are when a subscription connects: the key goes
    // in graphql-transport-ws's connection_init payload, since a browser WebSocket cannot
    // send an Authorization header.
    let editedHeaders = config.headers;
    function currentHeaders() {{
      try {{
        return JSON.parse(editedHeaders || "{{}}");
      }} catch (error) {{
        return JSON.parse(config.headers);  // being edited, not JSON yet
      }}
    }}
    const wsClient = graphqlWs.createClient({{
      url: wsUrl, lazy: true, connectionParams: currentHeaders,
    }});
    const fetcher = GraphiQL.createFetcher({{
      url: endpoint.href, subscriptionUrl: wsUrl, wsClient: wsClient,
    }});
    ReactDOM.createRoot(document.getElementById("graphiql")).render(
      React.createElement(GraphiQL, {{
        fetcher: fetcher,
        defaultQuery: config.query,
        headers: config.headers,
        defaultHeaders: config.headers,
        shouldPersistHeaders: false,
        defaultEditorToolsVisibility: "headers",
        isHeadersEditorEnabled: true,
        onEditHeaders: (value) => {{ editedHeaders = value; }},
      }}),
    );
  </script>
</body>
</html>
"""


def _script_json(value: Any) -> str:
    """JSON safe inside a <script> element: no `</script>` or `<!--` can be formed."""
    text = orjson.dumps(value).decode()
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _is_loopback(request: Request) -> bool:
    host = request.client.host if request.client else ""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def development_key(request: Request) -> str | None:
    """The development key for a browser on this machine; None for anyone else, or when
    `python -m app dev-key` has not written it yet."""
    if not _is_loopback(request):
        return None
    try:
        key = DEV_KEY_FILE.read_text(encoding="utf-8").strip()
    except OSError:
        return None
    return key or None


def graphiql_page(request: Request, graphql_path: str = "/graphql") -> HTMLResponse:
    key = development_key(request) or PLACEHOLDER_KEY
    headers = orjson.dumps({"Authorization": f"Bearer {key}"}, option=orjson.OPT_INDENT_2)
    config = {"path": graphql_path, "headers": headers.decode(), "query": EXAMPLE_QUERY}
    html = _GRAPHIQL_PAGE.format(assets=ASSETS_URL, config=_script_json(config))
    # The key is on the page: no cache may keep it.
    return HTMLResponse(html, headers={"Cache-Control": "no-store"})


def mount_ui(app: FastAPI, *, docs_url: str = "/docs") -> None:
    """Serve the pinned assets and Swagger UI at `docs_url` (FastAPI's own is turned off)."""
    app.mount(ASSETS_URL, StaticFiles(directory=ASSETS_DIR), name="ui-assets")

    @app.get(docs_url, include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{app.title} · REST API",
            swagger_js_url=f"{ASSETS_URL}/swagger-ui-dist/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS_URL}/swagger-ui-dist/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS_URL}/swagger-ui-dist/favicon-32x32.png",
            swagger_ui_parameters={"persistAuthorization": False},
        )
