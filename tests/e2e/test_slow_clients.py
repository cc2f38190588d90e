"""Slow clients against a real server process, over raw sockets (issue 10, class 9).

A client that trickles its headers or its body, or opens a connection and sends nothing,
holds it for at most HTTP_HEADER_TIMEOUT / HTTP_BODY_TIMEOUT seconds: then the server
answers 408 and closes the connection, while other requests keep being answered. The loops
below wait for the server to close the connection; their bound (TRICKLE_LIMIT) only stops a
hang, it is never what a test asserts.
"""

from __future__ import annotations

import contextlib
import json
import select
import socket
from collections.abc import Iterator

import httpx
import pytest

from tests.e2e.conftest import Server, start_server
from tests.support import new_rfc

HEADER_TIMEOUT = 2
BODY_TIMEOUT = 2
TRICKLE_EVERY = 0.25  # seconds between two bytes a slow client sends
TRICKLE_LIMIT = 240  # bytes: a minute of trickling, far past both deadlines


@pytest.fixture(scope="module")
def slow_server(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = start_server(
        tmp_path_factory.mktemp("slow"),
        database_url=database_url,
        env={"HTTP_HEADER_TIMEOUT": str(HEADER_TIMEOUT), "HTTP_BODY_TIMEOUT": str(BODY_TIMEOUT)},
    )
    try:
        yield srv
    finally:
        srv.stop()


def _connect(server: Server) -> socket.socket:
    host, port = server.base_url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=30)


def _trickle_until_closed(sock: socket.socket, data: bytes) -> tuple[bytes, bool]:
    """Send `data` one byte at a time (then nothing) until the server closes the connection;
    returns what the server sent and whether it closed the connection."""
    received = b""
    for i in range(TRICKLE_LIMIT):
        if i < len(data):
            try:
                sock.sendall(data[i : i + 1])
            except (BrokenPipeError, ConnectionResetError):
                return received, True
        readable, _, _ = select.select([sock], [], [], TRICKLE_EVERY)
        if readable:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                return received, True
            if not chunk:
                return received, True
            received += chunk
    return received, False


def _status_and_body(raw: bytes) -> tuple[int, dict[str, str], dict[str, object]]:
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), headers, json.loads(body)


def test_trickled_headers_get_a_408_and_the_connection_closed(slow_server: Server) -> None:
    with contextlib.closing(_connect(slow_server)) as sock:
        request = b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + b"X-Slow: " + b"a" * 200
        received, closed = _trickle_until_closed(sock, request)
    assert closed, "the server kept a connection whose headers never ended"
    status, headers, body = _status_and_body(received)
    assert status == 408 and headers["connection"] == "close"
    assert body["error"] == {
        "code": "REQUEST_TIMEOUT",
        "message": "Request headers not received in time",
    }


def test_a_connection_that_sends_nothing_is_closed(slow_server: Server) -> None:
    with contextlib.closing(_connect(slow_server)) as sock:
        received, closed = _trickle_until_closed(sock, b"")
    assert closed
    assert received.startswith(b"HTTP/1.1 408 ")


def test_the_next_request_on_a_kept_alive_connection_has_the_same_deadline(
    slow_server: Server,
) -> None:
    with contextlib.closing(_connect(slow_server)) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        first = b""
        while b'"ok"' not in first:
            chunk = sock.recv(65536)
            assert chunk, "closed before answering"
            first += chunk
        assert first.startswith(b"HTTP/1.1 200 ")
        received, closed = _trickle_until_closed(sock, b"GET /healthz HTTP/1.1\r\n" + b"a" * 200)
    assert closed and received.startswith(b"HTTP/1.1 408 ")


@pytest.mark.parametrize("path", ["/v2/clients", "/graphql"])
def test_a_trickled_body_gets_a_408_in_the_transport_shape(slow_server: Server, path: str) -> None:
    key = slow_server.create_key("slow-body")
    body = json.dumps({"name": "Lento", "rfc": new_rfc()}).encode()
    if path == "/graphql":
        body = json.dumps({"query": "{ __typename }"}).encode()
    head = (
        f"POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body) + 100}\r\n\r\n"
    ).encode()
    with contextlib.closing(_connect(slow_server)) as sock:
        sock.sendall(head)
        received, closed = _trickle_until_closed(sock, body + b" " * 100)
    assert closed, "the server kept a connection whose body never ended"
    status, headers, answer = _status_and_body(received)
    assert status == 408 and headers["connection"] == "close"
    if path == "/graphql":
        assert answer["errors"][0]["extensions"]["code"] == "REQUEST_TIMEOUT"  # type: ignore[index]
    else:
        assert answer["error"]["code"] == "REQUEST_TIMEOUT"  # type: ignore[index]
    listed = httpx.get(
        f"{slow_server.base_url}/v2/clients",
        params={"name": "Lento"},
        headers={"Authorization": f"Bearer {key}"},
    )
    assert listed.json()["data"] == []  # nothing was created


def test_other_requests_are_answered_while_slow_clients_hold_connections(
    slow_server: Server,
) -> None:
    sockets = [_connect(slow_server) for _ in range(30)]
    try:
        for sock in sockets:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # never finished
        for _ in range(5):
            assert httpx.get(f"{slow_server.base_url}/healthz", timeout=30).status_code == 200
        for sock in sockets:  # and every slow one is closed in the end
            received, closed = _trickle_until_closed(sock, b"")
            assert closed and received.startswith(b"HTTP/1.1 408 ")
    finally:
        for sock in sockets:
            sock.close()
