"""The outermost layer of every request, before any routing: request id, body size limit,
security headers, one structured log line, and a JSON 500 for anything unexpected (bodies
made by the mount's error renderer: the edge knows no transport's shape).

It is plain ASGI wrapped around the whole FastAPI app, so even Starlette's own error
responses carry the request id and nothing ever answers with an HTML page or a trace.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import orjson

from app.core.errors import InternalError, PayloadTooLarge, RequestTimeout
from app.http.errors import ErrorRenderer, ErrorRenderers

MAX_BODY = 256 * 1024
_REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")
_OPERATION_NAME_RE = re.compile(r"^[_A-Za-z][_0-9A-Za-z]{0,127}$")
_BODY_METHODS = {"POST", "PUT", "PATCH", "DELETE"}

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

log = logging.getLogger("clients.access")


SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
]


class EdgeMiddleware:
    """`renderers` make the bodies of the errors answered here (408, 413, 500), per mount."""

    def __init__(self, app: ASGIApp, renderers: ErrorRenderers, *, body_timeout: float = 0) -> None:
        self.app = app
        self.renderers = renderers
        # Seconds a request may take to send its whole body (0: no deadline): a client that
        # trickles it gets a 408 and the connection is closed (HTTP_BODY_TIMEOUT).
        self.body_timeout = body_timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = _request_id(scope)
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        render = self.renderers.for_path(scope.get("path", ""))
        response = _ResponseStart(send, state, scope.get("path", ""), request_id)
        try:
            body_receive = await self._read_body(scope, receive, response, render)
            if body_receive is None:
                return
            await self.app(scope, body_receive, response)
        except Exception:
            log.exception("unhandled error", extra={"request_id": request_id})
            if not response.started:
                await _send_error(response, render(InternalError(request_id)), 500)
        finally:
            _log_request(scope, state, response.status, started, request_id)

    async def _read_body(
        self, scope: Scope, receive: Receive, response: Send, render: ErrorRenderer
    ) -> Receive | None:
        """A receive replaying the whole body; None when a 408 or 413 was answered."""
        try:
            async with asyncio.timeout(self.body_timeout or None):
                body_receive = await _limited_body(scope, receive)
        except TimeoutError:
            await _send_error(response, render(RequestTimeout()), 408, close=True)
            return None
        if body_receive is None:
            await _send_error(response, render(PayloadTooLarge(MAX_BODY)), 413)
        return body_receive


class _ResponseStart:
    """The `send` the app gets: it adds the edge's headers to the response start and
    remembers its status."""

    def __init__(self, send: Send, state: dict[str, Any], path: str, request_id: str) -> None:
        self.send = send
        self.state = state
        self.request_id = request_id
        self.docs = _is_docs(path)
        self.status = 0
        self.started = False

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
            self.started = True
            message["headers"] = self._headers(list(message.get("headers", [])))
        await self.send(message)

    def _headers(self, headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
        names = {h[0].lower() for h in headers}
        headers.append((b"x-request-id", self.request_id.encode()))
        for name, value in SECURITY_HEADERS:
            if name not in names:
                headers.append((name, value))
        if b"cache-control" not in names and not self.docs:
            headers.append((b"cache-control", b"no-store"))
        decision = self.state.get("ratelimit")
        if decision is not None:
            headers.extend(h for h in decision.headers() if h[0] not in names)
        return headers


def _is_docs(path: str) -> bool:
    # The UI assets are pinned files: browsers may keep them.
    return path in ("/docs", "/openapi.json") or path.startswith("/ui-assets/")


def _request_id(scope: Scope) -> str:
    for name, value in scope.get("headers", []):
        if name == b"x-request-id":
            try:
                text = value.decode("ascii")
            except UnicodeDecodeError:
                break
            if _REQUEST_ID_RE.match(text):
                return text
            break
    return os.urandom(16).hex()  # 32 hex digits, as a uuid4().hex, at an eighth of its cost


async def _limited_body(scope: Scope, receive: Receive) -> Receive | None:
    """Read the body up front, counting bytes as they stream (chunked bodies have no
    Content-Length); None when it is over the limit. Returns a receive that replays it."""
    # A declared size is refused on every method (a GET may carry a body too)...
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                if int(value) > MAX_BODY:
                    return None
            except ValueError:
                pass
    # ...but only the methods whose bodies are read are counted as they stream.
    if scope.get("method") not in _BODY_METHODS:
        return receive
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            chunks_done = b"".join(chunks)
            return _replay(chunks_done, receive, disconnected=True)
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return _replay(b"".join(chunks), receive, disconnected=False)


def _replay(body: bytes, receive: Receive, *, disconnected: bool) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            if disconnected:
                return {"type": "http.disconnect"}
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


async def _send_error(send: Send, body: bytes, status: int, *, close: bool = False) -> None:
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ]
    if close:  # the rest of the request will not be read: the connection cannot be reused
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _log_request(
    scope: Scope, state: dict[str, Any], status: int, started: float, request_id: str
) -> None:
    if not log.isEnabledFor(logging.INFO):
        return
    # Never the query string, a header or a body: RFCs, emails and phones are personal data.
    # The route is the matched template (`/v2/clients/{clientId}`), never the path as sent:
    # an unknown path may carry anything.
    route = getattr(scope.get("route"), "path", None)
    record = {
        "request_id": request_id,
        "method": scope.get("method"),
        "route": route,
        "status": status,
        "latency_ms": round((time.perf_counter() - started) * 1000, 2),
        "team_id": state.get("team_id"),
    }
    operation = state.get("operation")
    if operation:
        # The GraphQL operationName comes in the body: logged only when it is a GraphQL name.
        record["operation"] = operation if _OPERATION_NAME_RE.match(operation) else "<invalid>"
    log.info(orjson.dumps(record).decode())
