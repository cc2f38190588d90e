"""The outermost layer of every request, before any routing: request id, body size limit,
security headers, one structured log line, and a JSON 500 for anything unexpected.

It is plain ASGI wrapped around the whole FastAPI app, so even Starlette's own error
responses carry the request id and nothing ever answers with an HTML page or a trace.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import orjson

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


def is_graphql(path: str) -> bool:
    return path == "/graphql" or path.startswith("/graphql/")


def error_body(
    path: str,
    *,
    code: str,
    message: str,
    summary: str,
    details: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
) -> bytes:
    """The documented error envelope (REST), or a GraphQL error body on /graphql."""
    if is_graphql(path):
        ext: dict[str, Any] = {"code": code, **(extra or {})}
        if details:
            ext["fields"] = details
        return orjson.dumps({"errors": [{"message": message, "extensions": ext}]})
    error: dict[str, Any] = {"code": code, "message": message}
    if details is not None:
        error["details"] = details
    if extra:
        error.update(extra)
    return orjson.dumps({"error": error, "message": summary})


SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
]


class EdgeMiddleware:
    def __init__(self, app: ASGIApp, *, body_timeout: float = 0) -> None:
        self.app = app
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
        path: str = scope.get("path", "")
        status_holder = {"status": 0, "started": False}

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_holder["status"] = message["status"]
                status_holder["started"] = True
                headers = list(message.get("headers", []))
                names = {h[0].lower() for h in headers}
                headers.append((b"x-request-id", request_id.encode()))
                for name, value in SECURITY_HEADERS:
                    if name not in names:
                        headers.append((name, value))
                if b"cache-control" not in names and not _is_docs(path):
                    headers.append((b"cache-control", b"no-store"))
                decision = state.get("ratelimit")
                if decision is not None:
                    headers.extend(h for h in decision.headers() if h[0] not in names)
                message["headers"] = headers
            await send(message)

        try:
            try:
                async with asyncio.timeout(self.body_timeout or None):
                    body_receive = await _limited_body(scope, receive)
            except TimeoutError:
                await _send_error(
                    send_wrapper,
                    408,
                    error_body(
                        path,
                        code="REQUEST_TIMEOUT",
                        message="Request body not received in time",
                        summary="Request timeout",
                    ),
                    close=True,
                )
                return
            if body_receive is None:
                await _send_error(
                    send_wrapper,
                    413,
                    error_body(
                        path,
                        code="PAYLOAD_TOO_LARGE",
                        message=f"Request body exceeds {MAX_BODY} bytes",
                        summary="Payload too large",
                    ),
                )
                return
            await self.app(scope, body_receive, send_wrapper)
        except Exception:
            log.exception("unhandled error", extra={"request_id": request_id})
            if not status_holder["started"]:
                await _send_error(
                    send_wrapper,
                    500,
                    error_body(
                        path,
                        code="INTERNAL_ERROR",
                        message="Internal server error",
                        summary="An unexpected error occurred",
                        extra={"requestId": request_id},
                    ),
                )
        finally:
            _log_request(scope, state, status_holder["status"], started, request_id)


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
    return uuid.uuid4().hex


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


async def _send_error(send: Send, status: int, body: bytes, *, close: bool = False) -> None:
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
