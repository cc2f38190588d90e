"""`scripts/bench --events`: what events cost and how fast they travel.

1. The outbox's cost: creates through the service layer, each answer rendered as the REST
   route renders it (8 concurrent writers, a fresh database), with the real outbox, with the
   outbox and one subscribed webhook endpoint (one delivery row queued per event), and with
   no outbox (the same service; the event is neither rendered nor written). Rounds alternate
   the variants. Printed: the median creates per second, and the least CPU time per create of
   this process in any round (far less noisy on a shared machine; on SQLite it includes the
   database's own work, on PostgreSQL the server's is not counted).
2. Commit-to-receiver latency: a real server (`python -m app serve`, delivery inside it; one
   worker on SQLite, two on PostgreSQL) and a local receiver (an HTTP server on 127.0.0.1, in
   a process of its own); creates offered at a fixed rate (default 200/s) by 32 concurrent
   connections for a few seconds, after an unmeasured warm-up; latency = arrival at the
   receiver minus the event's `created` time (taken just before its transaction commits, so
   it slightly overstates). Reports the achieved rate, the answers, how many events arrived
   (and how many did not within 60 s), p50/p99/max.
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


def _group_cpu_s(pgid: int) -> float:
    """CPU seconds (user + system) used so far by the live processes of a process group."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:  # fields after the name: state, ppid, pgrp, …
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / os.sysconf("SC_CLK_TCK")


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
    # The least disturbed round: on a shared machine the others only add noise.
    out.update({f"{k} cpu us/create": min(c for _, c in v) for k, v in results.items()})
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
        # event id → (arrival, the event's `created`, the client's id)
        self.arrivals: dict[str, tuple[float, str, str]] = {}
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
            self.arrivals.setdefault(
                event["id"], (now, event["created"], event["data"]["object"]["id"])
            )
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})


def _receiver_process(conn: Any) -> None:
    """The receiver in a process of its own, so the load generator's CPU never delays the
    arrival times it records. Over `conn`: sends its port; answers "count" with how many
    events arrived; "stop" with every arrival, then exits."""
    import socket

    import uvicorn

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    receiver = _Receiver()
    server = uvicorn.Server(
        uvicorn.Config(
            receiver,
            host="127.0.0.1",
            port=port,
            log_level="warning",
            access_log=False,
            lifespan="off",
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    conn.send(port)
    while True:
        command = conn.recv()
        with receiver.lock:
            arrivals = dict(receiver.arrivals)
        if command == "count":
            conn.send(len(arrivals))
        else:
            conn.send(arrivals)
            server.should_exit = True
            thread.join(5)
            return


def _start_server(
    engine: str, tmp: Path, extra: dict[str, str], workers: int = 1
) -> tuple[Any, str, str]:
    from tests.e2e.conftest import start_server

    url = _fresh_database(engine, tmp) if engine == "postgres" else None
    env = {"EVENTS_POLL_INTERVAL": "1", "SUBSCRIPTIONS_PER_KEY": "5000", **extra}
    server = start_server(tmp / "server", database_url=url, env=env, workers=workers)
    key = server.create_key("bench-events")
    return server, key, url or ""


async def _latency(
    engine: str, rate: int, seconds: int, writers: int, teams: int
) -> dict[str, float]:
    """Creates offered at `rate` per second for `seconds` by `writers` concurrent connections
    (each takes the next slot of the schedule and waits for its time: a late answer makes
    later requests late, reported as the achieved rate), after a warm-up that is not
    measured. Latency of each measured create: its event's arrival at the receiver minus the
    event's `created`. On SQLite one server worker (one writer process is the fastest on one
    file); on PostgreSQL two. The creates go round-robin to `teams` teams (one endpoint each):
    one team's events are committed one at a time from the event's insert to the commit (to
    keep them in commit order), so on PostgreSQL a single team's rate is bounded by commit
    latency, where several teams' commits overlap."""
    import multiprocessing

    import httpx

    ctx = multiprocessing.get_context("spawn")
    here, there = ctx.Pipe()
    receiver = ctx.Process(target=_receiver_process, args=(there,), daemon=True)
    receiver.start()
    port = here.recv()
    workers = 1 if engine == "sqlite" else 2
    statuses: dict[int, int] = {}
    measured: set[str] = set()
    with tempfile.TemporaryDirectory() as tmp:
        server, key, url = _start_server(engine, Path(tmp), {}, workers=workers)
        keys = [key] + [server.create_key(f"bench-events-{n}") for n in range(1, teams)]
        auth = [{"Authorization": f"Bearer {k}"} for k in keys]
        limits = httpx.Limits(max_connections=writers, max_keepalive_connections=writers)
        try:
            async with httpx.AsyncClient(base_url=server.base_url, timeout=30, limits=limits) as c:
                for headers in auth:  # one endpoint per team, all at the one receiver
                    r = await c.post(
                        "/v2/webhooks",
                        json={"url": f"http://127.0.0.1:{port}/hook", "events": ["*"]},
                        headers=headers,
                    )
                    assert r.status_code == 201, r.text

                async def run(total: int, per_second: float, record: bool) -> float:
                    first = 0 if record else 10**6  # the warm-up's RFCs are others
                    slots = iter(range(total))
                    started = time.perf_counter()

                    async def writer() -> None:
                        for i in slots:  # shared: each writer takes the next slot
                            delay = started + i / per_second - time.perf_counter()
                            if delay > 0:
                                await asyncio.sleep(delay)
                            try:
                                r = await c.post(
                                    "/v2/clients",
                                    json={"name": "Lat", "rfc": _rfc(first + i)},
                                    headers=auth[i % teams],
                                )
                                status = r.status_code
                            except httpx.HTTPError:
                                status = 0
                            if record:
                                statuses[status] = statuses.get(status, 0) + 1
                                if status == 201:
                                    measured.add(r.json()["data"]["id"])

                    await asyncio.gather(*(writer() for _ in range(writers)))
                    return time.perf_counter() - started

                await run(min(rate, 100), min(rate, 50), record=False)  # warm-up
                server_cpu, own_cpu = _group_cpu_s(server.process.pid), time.process_time()
                elapsed = await run(rate * seconds, rate, record=True)
                server_cpu = _group_cpu_s(server.process.pid) - server_cpu
                own_cpu = time.process_time() - own_cpu
                deadline = time.monotonic() + 60
                while time.monotonic() < deadline:
                    here.send("count")
                    if here.recv() >= len(measured) + min(rate, 100):
                        break
                    await asyncio.sleep(0.2)
        finally:
            server.stop()
            here.send("stop")
            arrivals: dict[str, tuple[float, str, str]] = here.recv()
            receiver.join(10)
            if url:
                _drop_pg(url)
    latencies = [
        (arrived - datetime.fromisoformat(created.replace("Z", "+00:00")).timestamp()) * 1000
        for arrived, created, client_id in arrivals.values()
        if client_id in measured
    ]
    out: dict[str, Any] = {
        "server_workers": workers,
        "teams": teams,
        "writers": writers,
        "offered_rate": rate,
        "achieved_rate": len(measured) / elapsed,
        "answers": {str(k): v for k, v in sorted(statuses.items())},
        "created": len(measured),
        "delivered": len(latencies),
        "undelivered_after_60s": len(measured) - len(latencies),
        # While offering: near 100 % per worker means the server was the limit; the load
        # generator's own share shows whether it was (both share this machine's cores).
        "server_cpu_pct": 100 * server_cpu / elapsed,
        "load_generator_cpu_pct": 100 * own_cpu / elapsed,
    }
    if latencies:
        out.update(p50_ms=_pct(latencies, 0.5), p99_ms=_pct(latencies, 0.99), max_ms=max(latencies))
    return out


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
    parser.add_argument("--creates", type=int, default=200, help="creates per outbox round")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--rate", type=int, default=200, help="creates per second (latency)")
    parser.add_argument("--seconds", type=int, default=10, help="length of the latency run")
    parser.add_argument(
        "--writers", type=int, default=32, help="concurrent connections offering the creates"
    )
    parser.add_argument("--teams", type=int, default=1, help="teams the creates are spread over")
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
        out["latency"] = asyncio.run(
            _latency(args.engine, args.rate, args.seconds, args.writers, args.teams)
        )
    if args.only in (None, "subscriptions"):
        out["subscriptions"] = asyncio.run(_subscriptions(args.engine, args.subscriptions))
    print(json.dumps(out, indent=2, default=float))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
