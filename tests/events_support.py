"""Helpers of the events and webhooks tests: a real webhook receiver (an HTTP server on
127.0.0.1, in a thread of its own) and bounded waits."""

from __future__ import annotations

import asyncio
import secrets
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from standardwebhooks import Webhook

WAIT_LIMIT = 60.0  # seconds: a bound on a hang, never an assertion of speed


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    status: int

    @property
    def event_id(self) -> str:
        return self.headers["webhook-id"]

    def verify(self, secret: str) -> Any:
        """The event, verified as a Standard Webhooks receiver does (raises otherwise)."""
        return Webhook(secret).verify(self.body, self.headers)


@dataclass
class Receiver:
    """Answers each POST with `answer(received_so_far_for_this_event)` (default 200)."""

    answer: Callable[[Received, int], int] = lambda _r, _n: 200
    delay: float = 0.0
    received: list[Received] = field(default_factory=list)
    arrived: int = 0  # requests read, answered or not yet
    # A path of its own: deliveries meant for an earlier receiver on a reused port are
    # answered 410 and not recorded.
    path: str = field(default_factory=lambda: f"/hook/{secrets.token_hex(8)}")
    port: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: uvicorn.Server | None = None
    _thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.path}"

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        if scope["path"] != self.path:
            await send({"type": "http.response.start", "status": 410, "headers": []})
            await send({"type": "http.response.body", "body": b""})
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        with self._lock:
            self.arrived += 1
        if self.delay:
            await asyncio.sleep(self.delay)
        with self._lock:
            probe = Received(headers, body, 0)
            seen = sum(
                1
                for r in self.received
                if r.headers.get("webhook-id") == probe.headers.get("webhook-id")
            )
            status = self.answer(probe, seen)
            self.received.append(Received(headers, body, status))
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", b"text/plain")],
            }
        )
        await send({"type": "http.response.body", "body": b"ok"})

    def start(self) -> Receiver:
        self.port = free_port()
        config = uvicorn.Config(
            self, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off"
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + WAIT_LIMIT
        while not self._server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("receiver did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)

    def snapshot(self) -> list[Received]:
        with self._lock:
            return list(self.received)

    def accepted_ids(self) -> list[str]:
        """Event ids answered 2xx, first receipt of each, in arrival order."""
        seen: list[str] = []
        for r in self.snapshot():
            if 200 <= r.status < 300 and r.event_id not in seen:
                seen.append(r.event_id)
        return seen


async def wait_for(
    predicate: Callable[[], Any], *, limit: float = WAIT_LIMIT, step: float = 0.05
) -> Any:
    """Poll `predicate` until it is truthy (its value) or fail after `limit` seconds."""
    deadline = time.monotonic() + limit
    while True:
        value = predicate()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {limit} s")
        await asyncio.sleep(step)


def wait_for_sync(
    predicate: Callable[[], Any], *, limit: float = WAIT_LIMIT, step: float = 0.05
) -> Any:
    deadline = time.monotonic() + limit
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {limit} s")
        time.sleep(step)
