"""Where a request's time goes, in process: `python -m bench.profile` (DATABASE_URL as for the
gateway, e.g. a database scripts/bench seeded; `--cprofile` adds the top functions).

No server and no HTTP client: requests are ASGI calls made straight into the app, one at a
time. Each figure is the median of `--repeat` runs of the mean per call of:

- CPU µs: the process's CPU time (every thread: the event loop and aiosqlite's), the figure
  that bounds req/s when the server has one core, and that a busy machine barely changes;
- wall µs: elapsed time (includes waiting for the database thread or server, and for the CPU
  on a busy machine);
- trips (SQLite): hand-offs to aiosqlite's thread, each a wake-up of another thread.

Three kinds of figure: whole requests (REST and GraphQL list at 1 and at 100 rows, REST
get-by-id, and the plain reference's; per row = (t(100) - t(1)) / 99); per-request layers,
each timed alone (the edge middleware with and without its access log line, authentication
and its `last_used_at` write, the rate limiter, an empty unit of work, the service's page with
its total); per-row steps on 100 real rows (row mapping, JSON shape, timestamps, orjson).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import logging
import os
import pstats
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any, NamedTuple

import orjson
from sqlalchemy import text

from app.auth.principal import Principal
from app.auth.service import ApiKeyService
from app.clients.types import ClientFilter
from app.core.config import Settings
from app.http.deps import Services
from app.http.edge import EdgeMiddleware
from app.http.errors import ErrorRenderers
from app.main import create_app
from app.platform.ratelimit import MemoryRateLimiter, PostgresRateLimiter
from app.rest import clients as rest
from app.rest.errors import render_error

Asgi = Callable[[dict[str, Any], Any, Any], Awaitable[None]]
GQL = "{ clients(first: %d) { nodes { id name legalName rfc email phone createdAt } } }"


async def call(app: Asgi, method: str, path: str, key: str, body: bytes = b"") -> bytes:
    """One request through the ASGI app; its body (asserting a 2xx)."""
    route, _, query = path.partition("?")
    headers = [(b"host", b"bench"), (b"authorization", f"Bearer {key}".encode())]
    if body:
        headers += [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
        "scheme": "http", "path": route, "raw_path": route.encode(), "root_path": "",
        "query_string": query.encode(), "headers": headers, "client": ("127.0.0.1", 9),
        "server": ("127.0.0.1", 80),
    }  # fmt: skip
    sent = False
    out: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        out.append(message)

    await app(scope, receive, send)
    status = out[0]["status"]
    payload = b"".join(m.get("body", b"") for m in out[1:])
    if not 200 <= status < 300:
        raise RuntimeError(f"{method} {path}: {status} {payload[:300]!r}")
    return payload


class Figure(NamedTuple):
    cpu_us: float
    wall_us: float
    trips: float


TRIPS = [0]


def count_trips() -> None:
    """Count every hand-off to an aiosqlite connection's thread."""
    try:
        from aiosqlite import core
    except ImportError:
        return
    original = core.Connection._execute

    async def counted(self: Any, fn: Any, *args: Any, **kwargs: Any) -> Any:
        TRIPS[0] += 1
        return await original(self, fn, *args, **kwargs)

    core.Connection._execute = counted  # type: ignore[method-assign]


async def timed(fn: Callable[[], Awaitable[Any]], n: int, repeat: int) -> Figure:
    """Medians over `repeat` runs of the mean per call of `fn`."""
    for _ in range(max(5, n // 10)):
        await fn()
    runs = []
    for _ in range(repeat):
        wall, cpu, trips = time.perf_counter(), time.process_time(), TRIPS[0]
        for _ in range(n):
            await fn()
        runs.append(
            Figure(
                (time.process_time() - cpu) / n * 1e6,
                (time.perf_counter() - wall) / n * 1e6,
                (TRIPS[0] - trips) / n,
            )
        )
    return Figure(*(statistics.median(r[i] for r in runs) for i in range(3)))


def timed_sync(fn: Callable[[], Any], n: int, repeat: int) -> Figure:
    runs = []
    for _ in range(repeat):
        wall, cpu = time.perf_counter(), time.process_time()
        for _ in range(n):
            fn()
        runs.append(
            Figure((time.process_time() - cpu) / n * 1e6, (time.perf_counter() - wall) / n * 1e6, 0)
        )
    return Figure(*(statistics.median(r[i] for r in runs) for i in range(3)))


def per_row_of(one: Figure, hundred: Figure) -> Figure:
    return Figure(*((h - o) / 99 for h, o in zip(hundred, one, strict=True)))


def scaled(f: Figure, per: int) -> Figure:
    return Figure(f.cpu_us / per, f.wall_us / per, 0)


async def _ok_app(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"{}"})


async def whole_requests(
    gateway: Asgi, reference: Asgi, key: str, client_id: str, n: int, repeat: int
) -> dict[str, Figure]:
    async def rest_list(limit: int) -> Figure:
        return await timed(
            lambda: call(gateway, "GET", f"/v2/clients?limit={limit}", key), n, repeat
        )

    async def gql_list(limit: int) -> Figure:
        body = orjson.dumps({"query": GQL % limit})
        return await timed(lambda: call(gateway, "POST", "/graphql", key, body), n, repeat)

    async def ref_list(limit: int) -> Figure:
        return await timed(
            lambda: call(reference, "GET", f"/ref/clients?limit={limit}", key), n, repeat
        )

    out = {}
    for label, fn in (("REST list", rest_list), ("GraphQL list", gql_list), ("plain list + key look-up", ref_list)):  # fmt: skip
        one, hundred = await fn(1), await fn(100)
        out[f"{label}, 1 row"] = one
        out[f"{label}, 100 rows"] = hundred
        out[f"{label}: per row"] = per_row_of(one, hundred)
    out["REST get by id"] = await timed(
        lambda: call(gateway, "GET", f"/v2/clients/{client_id}", key), n, repeat
    )
    out["plain get by id + key look-up"] = await timed(
        lambda: call(reference, "GET", f"/ref/clients/{client_id}", key), n, repeat
    )
    return out


async def layers(s: Services, key: str, n: int, repeat: int) -> dict[str, Figure]:
    out: dict[str, Figure] = {}
    access = logging.getLogger("clients.access")
    level = access.level
    edge = EdgeMiddleware(_ok_app, ErrorRenderers(default=render_error))
    out["bare ASGI app (no middleware)"] = await timed(
        lambda: call(_ok_app, "GET", "/x", key), n, repeat
    )
    try:
        access.setLevel(logging.WARNING)
        out["edge middleware, access log off"] = await timed(
            lambda: call(edge, "GET", "/x", key), n, repeat
        )
        sink = logging.NullHandler()  # the line is formatted and handled, then dropped
        sink.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
        sink.handle = lambda record: bool(sink.format(record))  # type: ignore[method-assign]
        access.addHandler(sink)
        access.propagate = False
        access.setLevel(logging.INFO)
        out["edge middleware + access log line"] = await timed(
            lambda: call(edge, "GET", "/x", key), n, repeat
        )
        access.removeHandler(sink)
    finally:
        access.setLevel(level)
        access.propagate = True
    header = f"Bearer {key}"
    who = await s.keys.authenticate(header)
    out["authentication (key look-up)"] = await timed(
        lambda: s.keys.authenticate(header), n, repeat
    )

    async def touch(key_id: int) -> None:
        now = _stale()
        async with s.db.write() as session:
            await s.keys.repository.touch(session, key_id, now, not_since=now)

    out["last_used_at write (once a minute per key)"] = await timed(
        lambda: touch(who.key_id), max(10, n // 5), repeat
    )
    limiter = (
        PostgresRateLimiter(s.db, 1e6, 10**6)
        if s.db.dialect == "postgresql"
        else MemoryRateLimiter(1e6, 10**6)
    )
    out["rate limiter hit"] = await timed(lambda: limiter.hit(who.key_id), n, repeat)

    async def empty_unit() -> None:
        async with s.db.read() as session:
            await session.execute(text("SELECT 1"))

    async def bare_connection() -> None:
        async with s.db.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    out["read unit of work + SELECT 1"] = await timed(empty_unit, n, repeat)
    out["bare pooled connection + SELECT 1"] = await timed(bare_connection, n, repeat)
    for limit in (1, 100):
        out[f"service page of {limit} + total"] = await timed(
            lambda limit=limit: s.clients.list(  # type: ignore[misc]
                principal=who, filters=ClientFilter(), limit=limit, with_total=True
            ),
            n,
            repeat,
        )
    return out


def _stale() -> Any:
    from datetime import UTC, datetime

    return datetime.now(UTC)


async def per_row(s: Services, who: Principal, n: int, repeat: int) -> dict[str, Figure]:
    """µs per row of each step of a REST page, on 100 real rows."""
    page = await s.clients.list(principal=who, filters=ClientFilter(), limit=100)
    from app.clients.repository import ClientRepository, row_to_client

    repo = ClientRepository(s.db.dialect)
    async with s.db.read() as session:
        from app.clients.repository import SearchFilter

        prepared = await repo.prepare(session, who.team_id, who.livemode, SearchFilter())
        rows = await repo.list(session, prepared, after=None, limit=100, offset=0)
    items = page.items
    shaped = [rest.client_json(c) for c in items]
    k = max(1, n // 10)
    per = len(rows)
    from app.core.clock import format_timestamp

    def steps(fn: Callable[[], Any]) -> Figure:
        return scaled(timed_sync(fn, k, repeat), per)

    return {
        "row mapping (row_to_client)": steps(lambda: [row_to_client(r) for r in rows]),
        "JSON shape from the domain object (client_json, timestamps included)": steps(
            lambda: [rest.client_json(c) for c in items]
        ),
        "REST shape straight from the row (client_record_json)": steps(
            lambda: [rest.client_record_json(r) for r in rows]
        ),
        "two timestamps formatted": steps(
            lambda: [
                (format_timestamp(c.created_at), format_timestamp(c.updated_at)) for c in items
            ]
        ),
        "orjson.dumps": steps(lambda: orjson.dumps({"data": shaped})),
    }


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=200, help="requests per figure and run")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--cprofile", action="store_true", help="also profile REST list-100")
    args = parser.parse_args()
    os.environ.setdefault("APP_ENV", "production")
    os.environ.setdefault("SECRET_KEY", "bench-secret-key-not-for-production")
    os.environ["RATE_LIMIT_PER_SECOND"] = "0"
    settings = Settings()
    logging.getLogger().setLevel(logging.WARNING)
    count_trips()
    gateway = create_app(settings)
    s: Services = gateway.app.state.services
    from bench import reference

    _info, key = await ApiKeyService(s.db).create(team="bench", livemode=True)
    who = await s.keys.authenticate(f"Bearer {key}")
    first = await s.clients.list(principal=who, filters=ClientFilter(), limit=1)
    client_id = first.items[0].id
    n, repeat = args.requests, args.repeat
    report = {
        "whole requests": await whole_requests(gateway, reference.app, key, client_id, n, repeat),
        "per-request layers": await layers(s, key, n, repeat),
        "per-row steps (per row)": await per_row(s, who, n, repeat),
    }
    print(f"\n{s.db.dialect}, {args.requests} requests × {args.repeat} runs (medians)")
    for title, figures in report.items():
        print(f"\n| {title} | CPU µs | wall µs | trips |\n|---|---:|---:|---:|")
        for label, f in figures.items():
            trips = f"{f.trips:.1f}" if f.trips else ""
            print(f"| {label} | {f.cpu_us:,.1f} | {f.wall_us:,.1f} | {trips} |")
    if args.cprofile:
        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(n):
            await call(gateway, "GET", "/v2/clients?limit=100", key)
        profiler.disable()
        buf = io.StringIO()
        pstats.Stats(profiler, stream=buf).sort_stats("tottime").print_stats(30)
        print(buf.getvalue())
    await s.db.dispose()
    await reference.engine.dispose()


if __name__ == "__main__":
    asyncio.run(main())
