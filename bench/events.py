"""`scripts/bench --events`: what events cost and how fast they travel.

1. The outbox's cost: creates through the service layer, each answer rendered as the REST
   route renders it (8 concurrent writers, a fresh database), with the real outbox, with the
   outbox and one subscribed webhook endpoint (one delivery row queued per event), and with
   no outbox (the same service; the event is neither rendered nor written). Rounds alternate
   the variants; medians are printed: creates per second, and CPU time per create of this
   process (less noisy on a shared machine; on SQLite it includes the database's own work,
   on PostgreSQL the server's is not counted).
2. Commit-to-receiver latency: a real server (`python -m app serve`, one worker, delivery
   inside it) and a local receiver (an HTTP server on 127.0.0.1); creates at a fixed rate
   (default 200/s) for a few seconds; latency = arrival at the receiver minus the event's
   `created` time (taken just before its transaction commits, so it slightly overstates).
3. Subscriptions: N (default 1,000) graphql-transport-ws subscriptions held by that one
   worker; the server's RSS before and after, per subscription; and the time until all N
   subscribers received one new event.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import statistics
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
SECRET = "bench-secret-key-not-for-production"


def _rss_mb(pid: int) -> float:
    text = Path(f"/proc/{pid}/status").read_text()
    for line in text.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _rfc(i: int) -> str:
    from app.ops.seed import make_rfc

    return make_rfc(random.Random(f"bench-events-{os.getpid()}-{i}"), moral=False)


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


# -- 1. the outbox's cost ---------------------------------------------------------------------


def _outbox_cost(engine: str, creates: int, rounds: int) -> dict[str, float]:
    from app.db.migrate import upgrade

    with tempfile.TemporaryDirectory() as tmp:
        url = _fresh_database(engine, Path(tmp))
        upgrade(url)  # before the loop: Alembic's env runs a loop of its own
        try:
            return asyncio.run(_outbox_rounds(url, creates, rounds))
        finally:
            if engine == "postgres":
                _drop_pg(url)


async def _outbox_rounds(url: str, creates: int, rounds: int) -> dict[str, float]:
    from app.auth.principal import Principal
    from app.clients.service import ClientService
    from app.clients.types import NewClient
    from app.core.config import Settings
    from app.core.errors import DuplicateRfc
    from app.events.outbox import Outbox
    from app.http.deps import Services
    from app.rest.clients import _created as rest_answer

    class NoOutbox(Outbox):
        """The create minus its event: nothing rendered, serialized or inserted."""

        def created_event(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
            return {}

        async def write(self, *args: Any, **kwargs: Any) -> str:
            return ""

        async def client_updated(self, *args: Any, **kwargs: Any) -> str:
            return ""

        async def client_deleted(self, *args: Any, **kwargs: Any) -> str:
            return ""

    settings = Settings(database_url=url, secret_key=SECRET, rate_limit_per_second=0)
    services = Services.build(settings)
    service: ClientService = services.clients
    _info, _key = await services.keys.create(team="bench-outbox", livemode=True)
    team_id = await services.keys.team_id("bench-outbox")
    who = Principal(team_id=team_id, livemode=True, key_id=_info.id)
    real = service.outbox
    off = NoOutbox(real.events.dialect, real.render_client)
    variants = ("no outbox", "outbox", "outbox + 1 webhook")
    results: dict[str, list[tuple[float, float]]] = {v: [] for v in variants}
    counter = iter(range(10**9))

    async def burst() -> tuple[float, float]:
        """(creates per second, CPU microseconds per create) of one round."""
        queue = list(range(creates))
        rfcs = [_rfc(next(counter)) for _ in range(creates)]  # not part of the measure
        started, cpu = time.perf_counter(), time.process_time()

        async def writer() -> None:
            while queue:
                rfc = rfcs[queue.pop()]
                with contextlib.suppress(DuplicateRfc):
                    made = await service.create(principal=who, data=NewClient(name="B", rfc=rfc))
                    rest_answer(made)  # the answer, as the REST route renders it

        await asyncio.gather(*(writer() for _ in range(8)))
        cpu_us = (time.process_time() - cpu) / creates * 1e6
        return creates / (time.perf_counter() - started), cpu_us

    hook = None
    service.outbox = real
    await burst()  # warm-up: statement caches, pools, the first pages of every table
    for _ in range(rounds):
        for variant in results:
            if variant == "outbox + 1 webhook" and hook is None:
                from app.webhooks.types import NewWebhook

                hook = await services.webhooks.create(
                    principal=who,
                    data=NewWebhook(url="http://127.0.0.1:9/none", events=["*"]),
                )
            elif variant != "outbox + 1 webhook" and hook is not None:
                await services.webhooks.delete(principal=who, webhook_id=hook.id)
                hook = None
            service.outbox = off if variant == "no outbox" else real
            results[variant].append(await burst())
    await services.db.dispose()
    out = {f"{k} creates/s": statistics.median(r for r, _ in v) for k, v in results.items()}
    out.update(
        {f"{k} cpu us/create": statistics.median(c for _, c in v) for k, v in results.items()}
    )
    return out


def _fresh_database(engine: str, tmp: Path) -> str:
    if engine == "sqlite":
        return f"sqlite+aiosqlite:///{tmp / 'bench-events.db'}"
    import subprocess

    name = f"clients_bench_events_{os.getpid()}"
    subprocess.run(
        ["psql", "-h", "127.0.0.1", "-U", "postgres", "-qc", f"DROP DATABASE IF EXISTS {name}"],
        check=True,
    )
    subprocess.run(
        ["psql", "-h", "127.0.0.1", "-U", "postgres", "-qc", f"CREATE DATABASE {name}"],
        check=True,
    )
    return f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"


def _drop_pg(url: str) -> None:
    import subprocess

    name = url.rsplit("/", 1)[1]
    subprocess.run(
        [
            "psql",
            "-h",
            "127.0.0.1",
            "-U",
            "postgres",
            "-qc",
            f"DROP DATABASE IF EXISTS {name} WITH (FORCE)",
        ],
        check=False,
    )


# -- 2 and 3: a real server -------------------------------------------------------------------


class _Receiver:
    """A minimal webhook receiver: records arrival times per event id."""

    def __init__(self) -> None:
        self.arrivals: dict[str, tuple[float, str]] = {}
        self.lock = threading.Lock()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        now = time.time()
        event = json.loads(body)
        with self.lock:
            self.arrivals.setdefault(event["id"], (now, event["created"]))
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})


def _start_receiver() -> tuple[_Receiver, int, Any]:
    import uvicorn

    from tests.events_support import free_port

    receiver = _Receiver()
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(receiver, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.01)
    return receiver, port, server


def _start_server(engine: str, tmp: Path, extra: dict[str, str]) -> tuple[Any, str, str]:
    from tests.e2e.conftest import start_server

    url = _fresh_database(engine, tmp) if engine == "postgres" else None
    env = {"EVENTS_POLL_INTERVAL": "1", "SUBSCRIPTIONS_PER_KEY": "5000", **extra}
    server = start_server(tmp / "server", database_url=url, env=env)
    key = server.create_key("bench-events")
    return server, key, url or ""


async def _latency(engine: str, rate: int, seconds: int) -> dict[str, float]:
    import httpx

    receiver, port, rserver = _start_receiver()
    with tempfile.TemporaryDirectory() as tmp:
        server, key, url = _start_server(engine, Path(tmp), {})
        headers = {"Authorization": f"Bearer {key}"}
        try:
            async with httpx.AsyncClient(
                base_url=server.base_url, headers=headers, timeout=30
            ) as c:
                r = await c.post(
                    "/v2/webhooks",
                    json={"url": f"http://127.0.0.1:{port}/hook", "events": ["*"]},
                )
                assert r.status_code == 201, r.text
                total = rate * seconds
                started = time.perf_counter()
                tasks = []
                # At most 64 requests in flight: an overloaded server slows the offered rate
                # down (reported as achieved_rate) instead of piling up requests.
                gate = asyncio.Semaphore(64)

                async def post(i: int) -> int:
                    async with gate:
                        r = await c.post("/v2/clients", json={"name": "Lat", "rfc": _rfc(i)})
                        return r.status_code

                for i in range(total):
                    due = started + i / rate
                    delay = due - time.perf_counter()
                    if delay > 0:
                        await asyncio.sleep(delay)
                    await gate.acquire()
                    gate.release()
                    tasks.append(asyncio.create_task(post(i)))
                answers = await asyncio.gather(*tasks, return_exceptions=True)
                achieved = total / (time.perf_counter() - started)
                ok = sum(1 for a in answers if a == 201)
                deadline = time.monotonic() + 60
                while len(receiver.arrivals) < ok and time.monotonic() < deadline:  # noqa: ASYNC110
                    await asyncio.sleep(0.1)
        finally:
            server.stop()
            rserver.should_exit = True
            if url:
                _drop_pg(url)
    latencies = [
        (arrived - datetime.fromisoformat(created.replace("Z", "+00:00")).timestamp()) * 1000
        for arrived, created in receiver.arrivals.values()
    ]
    return {
        "offered_rate": rate,
        "achieved_rate": achieved,
        "created": ok,
        "delivered": len(latencies),
        "p50_ms": _pct(latencies, 0.5),
        "p99_ms": _pct(latencies, 0.99),
        "max_ms": max(latencies),
    }


async def _subscriptions(engine: str, count: int) -> dict[str, float]:
    import httpx

    from tests.e2e.ws_support import authenticated, subscribe

    with tempfile.TemporaryDirectory() as tmp:
        server, key, url = _start_server(engine, Path(tmp), {"WEBHOOK_DELIVERY": "external"})
        try:
            pid = server.process.pid  # one worker: uvicorn serves in this process
            await asyncio.sleep(1)
            before = _rss_mb(pid)
            sockets = []
            for i in range(count):
                ws = await authenticated(server.base_url, key)
                await subscribe(ws, str(i))
                sockets.append(ws)
            await asyncio.sleep(2)
            after = _rss_mb(pid)
            async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as c:
                started = time.perf_counter()
                r = await c.post(
                    "/v2/clients",
                    json={"name": "Fan", "rfc": "XAXX010101000"},
                    headers={"Authorization": f"Bearer {key}"},
                )
                assert r.status_code == 201

                async def one(ws: Any) -> None:
                    while True:
                        message = json.loads(await ws.recv())
                        if message.get("type") == "next":
                            return

                await asyncio.gather(*(one(ws) for ws in sockets))
                fan_out = time.perf_counter() - started
            for ws in sockets:
                await ws.close()
        finally:
            server.stop()
            if url:
                _drop_pg(url)
    return {
        "subscriptions": count,
        "rss_before_mb": before,
        "rss_after_mb": after,
        "kb_per_subscription": (after - before) * 1024 / count,
        "all_received_s": fan_out,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/bench --events", description=__doc__)
    parser.add_argument("--engine", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--creates", type=int, default=400, help="creates per outbox round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--rate", type=int, default=200, help="creates per second (latency)")
    parser.add_argument("--seconds", type=int, default=10, help="length of the latency run")
    parser.add_argument("--subscriptions", type=int, default=1000)
    parser.add_argument("--only", choices=["outbox", "latency", "subscriptions"])
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    out: dict[str, Any] = {"engine": args.engine}
    if args.only in (None, "outbox"):
        cost = _outbox_cost(args.engine, args.creates, args.rounds)
        out["outbox"] = cost
        rate, cpu = "creates/s", "cpu us/create"
        for variant in ("outbox", "outbox + 1 webhook"):
            out[f"{variant}: slower by (rate) %"] = 100 * (
                1 - cost[f"{variant} {rate}"] / cost[f"no outbox {rate}"]
            )
            out[f"{variant}: more CPU per create %"] = 100 * (
                cost[f"{variant} {cpu}"] / cost[f"no outbox {cpu}"] - 1
            )
    if args.only in (None, "latency"):
        out["latency"] = asyncio.run(_latency(args.engine, args.rate, args.seconds))
    if args.only in (None, "subscriptions"):
        out["subscriptions"] = asyncio.run(_subscriptions(args.engine, args.subscriptions))
    print(json.dumps(out, indent=2, default=float))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
