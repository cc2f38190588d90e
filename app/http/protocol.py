"""The HTTP server's own answer to a request it cannot parse (a raw non-ASCII character in
the URL, a malformed request line or header): the documented JSON error envelope, like every
other answer, instead of uvicorn's text/plain "Invalid HTTP request received.".

Such a request never reaches the application (there is no path, no route, no request id to
echo), so the answer is written here, on the connection, and the connection is closed.
`python -m app serve` runs uvicorn with `server_protocol()`.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from app.core.errors import ValidationFailed
from app.http.edge import SECURITY_HEADERS
from app.http.server import GuardedH11Protocol, GuardedHttpToolsProtocol
from app.rest.errors import render_error

MESSAGE = (
    "Malformed HTTP request: the request line or a header could not be parsed "
    "(characters outside ASCII in a URL must be percent-encoded)"
)


def _json_400(protocol: Any) -> None:
    # The REST envelope: no path was parsed, so no mount can claim the request.
    body = render_error(ValidationFailed({"request": MESSAGE}))
    head = [b"HTTP/1.1 400 Bad Request\r\n"]
    headers = [
        *protocol.server_state.default_headers,
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode("ascii")),
        (b"x-request-id", uuid.uuid4().hex.encode("ascii")),
        (b"cache-control", b"no-store"),
        *SECURITY_HEADERS,
        (b"connection", b"close"),
    ]
    head.extend(name + b": " + value + b"\r\n" for name, value in headers)
    protocol.transport.write(b"".join(head) + b"\r\n" + body)
    protocol.transport.close()


class JsonErrorH11Protocol(GuardedH11Protocol):
    def send_400_response(self, msg: str) -> None:
        _json_400(self)


class JsonErrorHttpToolsProtocol(GuardedHttpToolsProtocol):
    def send_400_response(self, msg: str) -> None:
        _json_400(self)


def server_protocol() -> type[asyncio.Protocol]:
    """What `serve` runs: httptools (as uvicorn's "auto" with uvicorn[standard]), with the
    header deadline of app/http/server.py, answering 400 in JSON."""
    return JsonErrorHttpToolsProtocol
