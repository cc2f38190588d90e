"""A graphql-transport-ws client for the e2e tests (the `websockets` package, as any client
would use it), with every wait bounded."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

WAIT = 30.0  # seconds: a bound on a hang, never an assertion of speed

SUBSCRIPTION = """
subscription($types: [String!], $after: ID) {
  clientEvents(types: $types, after: $after) { id type created livemode data previousAttributes }
}
"""


def ws_url(base_url: str) -> str:
    return base_url.replace("http://", "ws://") + "/graphql"


async def open_socket(base_url: str, key: str | None, **payload: Any) -> ClientConnection:
    """Connect and send connection_init (with the key when given); no wait for the ack."""
    ws = await connect(
        ws_url(base_url), subprotocols=[Subprotocol("graphql-transport-ws")], open_timeout=WAIT
    )
    init: dict[str, Any] = dict(payload)
    if key is not None:
        init["Authorization"] = f"Bearer {key}"
    await ws.send(json.dumps({"type": "connection_init", "payload": init}))
    return ws


async def authenticated(base_url: str, key: str) -> ClientConnection:
    ws = await open_socket(base_url, key)
    ack = await receive(ws)
    assert ack == {"type": "connection_ack"}, ack
    return ws


async def receive(ws: ClientConnection) -> dict[str, Any]:
    """The next message that is not a ping (answered)."""
    while True:
        raw = await asyncio.wait_for(ws.recv(), WAIT)
        message: dict[str, Any] = json.loads(raw)
        if message.get("type") == "ping":
            await ws.send(json.dumps({"type": "pong"}))
            continue
        return message


async def subscribe(
    ws: ClientConnection, op_id: str, *, query: str = SUBSCRIPTION, **variables: Any
) -> None:
    await ws.send(
        json.dumps(
            {"id": op_id, "type": "subscribe", "payload": {"query": query, "variables": variables}}
        )
    )


async def next_events(ws: ClientConnection, count: int) -> list[dict[str, Any]]:
    """The next `count` events pushed on this socket (any operation id)."""
    out: list[dict[str, Any]] = []
    while len(out) < count:
        message = await receive(ws)
        assert message["type"] == "next", message
        out.append(message["payload"]["data"]["clientEvents"])
    return out


async def closed_with(ws: ClientConnection) -> tuple[int | None, str]:
    """Wait for the server to close the socket: (code, reason)."""
    try:
        while True:
            await asyncio.wait_for(ws.recv(), WAIT)
    except ConnectionClosed as exc:
        rcvd = exc.rcvd
        return (rcvd.code if rcvd else None), (rcvd.reason if rcvd else "")
