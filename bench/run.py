"""The benchmark behind scripts/bench.

Seeds a small and a large database (kept under var/bench/ and reused), starts the real server
(one worker, pinned to core 0) and drives it with wrk pinned to core 1 (-t1 -c8, loopback),
then does the same for the reference endpoint (bench/reference.py) on the same database.
Prints a Markdown table: req/s, p50, p99, errors, and the server's peak RSS.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
SECRET = "bench-secret-key-not-for-production"
REFERENCE = "Reference: plain FastAPI list-100"
GQL_LIST = "{ clients(first: 100) { nodes { id name legalName rfc email phone createdAt } } }"


@dataclass
class Scenario:
    name: str
    path: str
    method: str = "GET"
    body: str | None = None
    lua_body: str | None = None  # a Lua expression evaluated per request
    reference: bool = False


@dataclass
class Result:
    scenario: str
    rows: int
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    extra: dict[str, Any] = field(default_factory=dict)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def db_url(engine: str, rows: int, workdir: Path) -> str:
    if engine == "sqlite":
        return f"sqlite+aiosqlite:///{workdir / f'clients-{rows}.db'}"
    return f"postgresql+asyncpg://postgres@127.0.0.1:5432/clients_bench_{rows}"


def env_for(url: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        DATABASE_URL=url,
        SECRET_KEY=SECRET,
        APP_ENV="production",
        RATE_LIMIT_PER_SECOND="0",
        LOG_LEVEL="WARNING",
        VAR_DIR=str(ROOT / "var" / "bench"),
    )
    return env


def run(cmd: list[str], env: dict[str, str]) -> str:
    out = subprocess.run(cmd, env=env, cwd=ROOT, check=True, capture_output=True, text=True)
    return out.stdout


def ensure_database(engine: str, rows: int, workdir: Path, reseed: bool) -> str:
    url = db_url(engine, rows, workdir)
    env = env_for(url)
    marker = workdir / f"seeded-{engine}-{rows}"
    if engine == "postgres":
        name = f"clients_bench_{rows}"
        if reseed or not marker.exists():
            subprocess.run(
                [
                    "psql",
                    "-h",
                    "127.0.0.1",
                    "-U",
                    "postgres",
                    "-qc",
                    f"DROP DATABASE IF EXISTS {name}",
                ],
                check=True,
            )
            subprocess.run(
                ["psql", "-h", "127.0.0.1", "-U", "postgres", "-qc", f"CREATE DATABASE {name}"],
                check=True,
            )
            marker.unlink(missing_ok=True)
    elif reseed:
        for suffix in ("", "-wal", "-shm"):
            Path(str(workdir / f"clients-{rows}.db") + suffix).unlink(missing_ok=True)
        marker.unlink(missing_ok=True)
    if not marker.exists():
        print(f"seeding {rows:,} clients ({engine})…", file=sys.stderr)
        started = time.monotonic()
        subprocess.run(
            [PY, "-m", "app", "seed", "--clients", str(rows), "--team", "bench", "--mode", "live"],
            env=env,
            cwd=ROOT,
            check=True,
        )
        print(f"  seeded in {time.monotonic() - started:.1f} s", file=sys.stderr)
        marker.write_text(url)
    return url


def new_key(env: dict[str, str]) -> str:
    return run([PY, "-m", "app", "create-api-key", "--team", "bench"], env).strip().splitlines()[-1]


def fixtures(env: dict[str, str], rows: int) -> dict[str, Any]:
    """Values to query for: an id, an RFC, an email, a 150-client time window, and a `next`
    token for page 9,000 (built with the app's own signer and the shared SECRET_KEY)."""
    out = run([PY, "-m", "bench.fixtures", str(rows)], env)
    return dict(json.loads(out.strip().splitlines()[-1]))


class Server:
    def __init__(self, cmd: list[str], env: dict[str, str], port: int) -> None:
        self.port = port
        self.proc = subprocess.Popen(
            ["taskset", "-c", "0", *cmd], env=env, cwd=ROOT, stdout=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1):
                    return
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError("server did not start")

    def peak_rss_mb(self) -> float:
        # The uvicorn process serves requests itself when there is one worker.
        status = Path(f"/proc/{self.proc.pid}/status").read_text()
        match = re.search(r"VmHWM:\s+(\d+) kB", status)
        return int(match.group(1)) / 1024 if match else float("nan")

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def lua_script(s: Scenario, key: str, tmp: Path) -> Path:
    headers = {"Authorization": f"Bearer {key}"}
    if s.method != "GET":
        headers["Content-Type"] = "application/json"
    lines = [f'wrk.method = "{s.method}"']
    lines += [f'wrk.headers["{k}"] = "{v}"' for k, v in headers.items()]
    if s.body is not None:
        lines.append(f"wrk.body = {json.dumps(s.body)}")
    if s.lua_body is not None:
        lines += [
            "local counter = 0",
            "request = function()",
            "  counter = counter + 1",
            f"  return wrk.format(nil, nil, nil, {s.lua_body})",
            "end",
        ]
    path = tmp / f"{re.sub(r'[^a-z0-9]+', '-', s.name.lower())}.lua"
    path.write_text("\n".join(lines) + "\n")
    return path


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _ms(text: str) -> float:
    m = re.match(r"([\d.]+)(us|ms|s)", text)
    return float(m.group(1)) * _UNITS[m.group(2)] if m else float("nan")


def wrk(url: str, script: Path, duration: int) -> tuple[float, float, float, int]:
    cmd = [
        "taskset",
        "-c",
        "1",
        "wrk",
        "-t1",
        "-c8",
        f"-d{duration}s",
        "--latency",
        "-s",
        str(script),
        url,
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"50%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"99%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = int(bad.group(1)) if bad else 0
    errors += sum(int(x) for x in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))
    return rps, p50, p99, errors


def scenarios(fx: dict[str, Any], large: bool) -> list[Scenario]:
    gql = json.dumps({"query": GQL_LIST})
    out = [
        Scenario("REST list-100", "/v2/clients?limit=100"),
        Scenario("GraphQL list-100", "/graphql", "POST", body=gql),
        Scenario("REST list-100, rfc filter", f"/v2/clients?limit=100&rfc={fx['rfc']}"),
        Scenario("REST list-100, email filter", f"/v2/clients?limit=100&email={fx['email']}"),
        Scenario(
            "REST list-100, from/to (150 matches)",
            f"/v2/clients?limit=100&from={fx['from']}&to={fx['to']}",
        ),
        Scenario("REST list-100, selective name", "/v2/clients?limit=100&name=xolotl"),
        Scenario("REST list-100, unselective name", "/v2/clients?limit=100&name=garc"),
        Scenario(
            "GraphQL list-100, selective name",
            "/graphql",
            "POST",
            body=json.dumps(
                {"query": '{ clients(first: 100, filter: {name: "xolotl"}) { nodes { id name } } }'}
            ),
        ),
    ]
    if large:
        if fx["depth"] > 0:
            out.append(
                Scenario(
                    f"REST list-100, cursor {fx['depth']:,} rows deep",
                    f"/v2/clients?next={fx['deep']}",
                )
            )
        out.append(Scenario("REST get by id", f"/v2/clients/{fx['id']}"))
        out.append(
            Scenario(
                "REST create",
                "/v2/clients",
                "POST",
                lua_body='\'{"name":"Bench client \' .. counter .. \'","rfc":"XAXX010101000"}\'',
            )
        )
    return out


def main() -> int:
    if "--fragments" in sys.argv[1:]:
        # Hostile GraphQL documents (bench/fragments.py): refusal time against their size.
        from bench import fragments

        return fragments.main([a for a in sys.argv[1:] if a != "--fragments"])
    if "--events" in sys.argv[1:]:
        # The events benchmark (bench/events.py) has its own options.
        from bench.events import main as events_main

        return events_main([a for a in sys.argv[1:] if a != "--events"])
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--engine", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--small", type=int, default=1000)
    parser.add_argument("--large", type=int, default=1_000_000)
    parser.add_argument("--duration", type=int, default=5, help="seconds per scenario and round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds; the table shows medians")
    parser.add_argument("--reseed", action="store_true", help="seed the databases again")
    parser.add_argument(
        "--fragments",
        action="store_true",
        help="time hostile GraphQL documents instead (bench/fragments.py; --memory N too)",
    )
    args = parser.parse_args()

    workdir = ROOT / "var" / "bench"
    workdir.mkdir(parents=True, exist_ok=True)
    results: list[Result] = []
    peak = 0.0
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        for rows in (args.small, args.large):
            url = ensure_database(args.engine, rows, workdir, args.reseed)
            env = env_for(url)
            key = new_key(env)
            fx = fixtures(env, rows)
            port, ref_port = free_port(), free_port()
            # Both servers up at once (only one is loaded at a time), so every round runs the
            # gateway's scenarios and the reference back to back: this machine's speed drifts
            # over minutes, and ratios between rounds far apart would measure the drift.
            server = Server([PY, "-m", "app", "serve", "--port", str(port)], env, port)
            ref = Server(
                [PY, "-m", "uvicorn", "bench.reference:app", "--port", str(ref_port),
                 "--no-access-log", "--log-level", "warning"],
                env,
                ref_port,
            )  # fmt: skip
            plan = [(s, port) for s in scenarios(fx, large=rows == args.large)]
            plan.append((Scenario(REFERENCE, "/ref/clients?limit=100"), ref_port))
            create = [p for p in plan if p[0].method == "POST" and p[0].lua_body]
            plan = [p for p in plan if p not in create] + create  # writes last
            rounds: dict[str, list[tuple[float, float, float, int]]] = {}
            try:
                for round_no in range(args.rounds):
                    for s, target_port in plan:
                        script = lua_script(s, key, tmp)
                        target = f"http://127.0.0.1:{target_port}{s.path}"
                        wrk(target, script, 1)  # warm-up
                        got = wrk(target, script, args.duration)
                        rounds.setdefault(s.name, []).append(got)
                        print(
                            f"round {round_no + 1}: {s.name:45} {rows:>9,} {got[0]:9.0f} req/s  "
                            f"p50 {got[1]:7.2f} ms  p99 {got[2]:7.2f} ms  errors {got[3]}",
                            file=sys.stderr,
                        )
                peak = max(peak, server.peak_rss_mb())
            finally:
                server.stop()
                ref.stop()
            for s, _ in plan:
                runs = rounds[s.name]
                results.append(
                    Result(
                        s.name,
                        rows,
                        statistics.median(r[0] for r in runs),
                        statistics.median(r[1] for r in runs),
                        statistics.median(r[2] for r in runs),
                        sum(r[3] for r in runs),
                    )
                )

    print_table(results, peak, args)
    return 0


def print_table(results: list[Result], peak: float, args: argparse.Namespace) -> None:
    by = {(r.scenario, r.rows): r for r in results}
    print(
        f"\n### Benchmark ({args.engine}, {datetime.now(UTC):%Y-%m-%d}, {os.cpu_count()} cores; "
        f"server on core 0, wrk -t1 -c8 on core 1; medians of {args.rounds} rounds of "
        f"{args.duration} s)\n"
    )
    print(
        "| scenario | clients | req/s | p50 ms | p99 ms | non-2xx | vs. reference | vs. 1k rows (latency) |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in results:
        ref = by.get((REFERENCE, r.rows))
        ratio = (
            f"{r.rps / ref.rps:.2f}×"
            if ref
            and "list-100" in r.scenario
            and "filter" not in r.scenario
            and "name" not in r.scenario
            and "from/to" not in r.scenario
            and "cursor" not in r.scenario
            else ""
        )
        small = by.get((r.scenario, args.small))
        flat = f"{r.p50_ms / small.p50_ms:.2f}×" if small and r.rows == args.large else ""
        print(
            f"| {r.scenario} | {r.rows:,} | {r.rps:,.0f} | {r.p50_ms:.2f} | {r.p99_ms:.2f} | {r.errors} | {ratio} | {flat} |"
        )
    large = args.large
    first = by.get(("REST list-100", large))
    deep = next((r for r in results if "cursor" in r.scenario), None)
    rfc = by.get(("REST list-100, rfc filter", large))
    sel = by.get(("REST list-100, selective name", large))
    print()
    if first and deep:
        print(f"- deep cursor page / first page latency (p50): {deep.p50_ms / first.p50_ms:.2f}×")
    if rfc and sel:
        print(
            f"- selective name search / exact-RFC list latency at {large:,} (p50): {sel.p50_ms / rfc.p50_ms:.2f}×"
        )
    print(f"- server peak RSS: {peak:.0f} MB")


if __name__ == "__main__":
    raise SystemExit(main())
