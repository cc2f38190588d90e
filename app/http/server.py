"""The HTTP/1.1 protocol `serve` runs: uvicorn's, with a deadline for a request's headers.

uvicorn closes a connection that stays idle between requests (`timeout_keep_alive`), but
not one that trickles its request line and headers a byte at a time: that connection, and
a new one that sends nothing at all, would stay open forever. Here a timer is armed when a
connection opens and again when each response completes; if it fires while no request is
being handled (the next request's headers are still incomplete), the server answers 408
and closes the connection. The body has its own deadline, in the edge (app/http/edge.py).

Invariant: a connection costs the server at most HTTP_HEADER_TIMEOUT seconds of waiting for
headers, then at most HTTP_BODY_TIMEOUT for the body, whatever the client does.
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from app.core.config import get_settings

_REQUEST_TIMEOUT_BODY = orjson.dumps(
    {
        "error": {"code": "REQUEST_TIMEOUT", "message": "Request headers not received in time"},
        "message": "Request timeout",
    }
)
_REQUEST_TIMEOUT = (
    b"HTTP/1.1 408 Request Timeout\r\n"
    b"content-type: application/json\r\n"
    b"connection: close\r\n"
    b"content-length: " + str(len(_REQUEST_TIMEOUT_BODY)).encode() + b"\r\n\r\n"
) + _REQUEST_TIMEOUT_BODY


class _HeaderDeadline:
    """Mixed into a uvicorn HTTP protocol (see the module's docstring)."""

    transport: asyncio.Transport
    cycle: Any
    loop: asyncio.AbstractEventLoop

    def connection_made(self, transport: asyncio.Transport) -> None:
        super().connection_made(transport)  # type: ignore[misc]
        self._header_timeout = get_settings().http_header_timeout
        self._header_timer: asyncio.TimerHandle | None = None
        self._arm_header_deadline()

    def on_response_complete(self) -> None:
        super().on_response_complete()  # type: ignore[misc]
        self._arm_header_deadline()  # for the next request on this connection

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_header_deadline()
        super().connection_lost(exc)  # type: ignore[misc]

    def handle_websocket_upgrade(self, *args: Any) -> None:
        self._disarm_header_deadline()  # the connection is the WebSocket protocol's now
        super().handle_websocket_upgrade(*args)  # type: ignore[misc]

    def _arm_header_deadline(self) -> None:
        self._disarm_header_deadline()
        if self._header_timeout > 0 and not self.transport.is_closing():
            self._header_timer = self.loop.call_later(
                self._header_timeout, self._header_deadline_passed
            )

    def _disarm_header_deadline(self) -> None:
        timer = getattr(self, "_header_timer", None)
        if timer is not None:
            timer.cancel()
            self._header_timer = None

    def _header_deadline_passed(self) -> None:
        self._header_timer = None
        if self.cycle is not None and not self.cycle.response_complete:
            return  # a request is being handled: its headers came in time
        if not self.transport.is_closing():
            self.transport.write(_REQUEST_TIMEOUT)
            self.transport.close()


class GuardedH11Protocol(_HeaderDeadline, H11Protocol):  # type: ignore[misc]
    pass


class GuardedHttpToolsProtocol(_HeaderDeadline, HttpToolsProtocol):  # type: ignore[misc]
    pass


# What uvicorn's "auto" would choose: httptools (installed with uvicorn[standard]).
HTTP_PROTOCOL: type[asyncio.Protocol] = GuardedHttpToolsProtocol
