"""The benchmark behind scripts/bench.

For each size (`--sizes`, default 1,000, 100,000 and 1,000,000 clients) it seeds a database
(kept under var/bench/ or as clients_bench_<size> on the local PostgreSQL, and reused), starts
the real gateway (one worker, pinned to core 0), the plain reference (bench/reference.py) and
the naive Strawberry and Ariadne peers (bench/peers/) on the same database, and drives one at
a time with wrk pinned to core 1 (-t1 -c8, loopback), in rounds that alternate every scenario.

Ratios are computed inside each round (a scenario's req/s over its baseline's in the same
round, seconds apart) and the table shows their median, so the machine's drift over minutes
cancels out. Latency flatness compares p50s of the largest and the smallest size.
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
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
SECRET = "bench-secret-key-not-for-production"
GQL_FIELDS = "id name legalName rfc email phone createdAt"
GQL_LIST = "{ clients(first: 100) { nodes { " + GQL_FIELDS + " } } }"

# Baselines: the plain reference's endpoints.
PLAIN = "plain list-100, no auth"
PLAIN_KEYED = "plain list-100 + key look-up"
PLAIN_COUNTED = "plain list-100 + key look-up + COUNT(*)"
PLAIN_GET = "plain get-by-id + key look-up"
REST_LIST = "REST list-100"
GQL = "GraphQL list-100"
REST_GET = "REST get by id"
CREATE = "REST create"


@dataclass
class Scenario:
    name: str
    server: str  # gateway | reference | strawberry | ariadne
    path: str
    method: str = "GET"
    body: str | None = None
    lua_body: str | None = None  # a Lua expression evaluated per request
    baseline: str | None = None  # the scenario its req/s is divided by


@dataclass
class Run:
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int


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
        BENCH_TEAM="bench",
    )
    return env


def run(cmd: list[str], env: dict[str, str]) -> str:
    out = subprocess.run(cmd, env=env, cwd=ROOT, check=True, capture_output=True, text=True)
    return out.stdout


def psql(sql: str) -> None:
    subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-qc", sql], check=True)


def ensure_database(engine: str, rows: int, workdir: Path, reseed: bool) -> str:
    url = db_url(engine, rows, workdir)
    env = env_for(url)
    marker = workdir / f"seeded-{engine}-{rows}"
    if engine == "postgres":
        if reseed or not marker.exists():
            psql(f"DROP DATABASE IF EXISTS clients_bench_{rows}")
            psql(f"CREATE DATABASE clients_bench_{rows}")
            marker.unlink(missing_ok=True)
    elif reseed or not marker.exists():
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
    else:
        run([PY, "-m", "app", "migrate"], env)  # a database seeded by an older version
    return url


def new_key(env: dict[str, str]) -> str:
    return run([PY, "-m", "app", "create-api-key", "--team", "bench"], env).strip().splitlines()[-1]


def fixtures(env: dict[str, str], rows: int) -> dict[str, Any]:
    """Values to query for: an id, an RFC, an email, a 150-client time window, and a `next`
    token about 900,000 rows deep (built with the app's own signer and the shared SECRET_KEY)."""
    out = run([PY, "-m", "bench.fixtures", str(rows)], env)
    return dict(json.loads(out.strip().splitlines()[-1]))


class Server:
    def __init__(self, cmd: list[str], env: dict[str, str], port: int) -> None:
        self.port = port
        self.proc = subprocess.Popen(
            ["taskset", "-c", "0", *cmd], env=env, cwd=ROOT, stdout=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1):
                    return
            except OSError:
                if self.proc.poll() is not None:
                    break
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"server did not start: {' '.join(cmd)}")

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


def uvicorn(app: str, port: int) -> list[str]:
    return [
        PY,
        "-m",
        "uvicorn",
        app,
        "--port",
        str(port),
        "--no-access-log",
        "--log-level",
        "warning",
    ]


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


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def _ms(text: str) -> float:
    m = re.match(r"([\d.]+)(us|ms|s|m)\b", text)
    return float(m.group(1)) * _UNITS[m.group(2)] if m else float("nan")


def wrk(url: str, script: Path, duration: int) -> Run:
    cmd = ["taskset", "-c", "1", "wrk", "-t1", "-c8", f"-d{duration}s", "--latency",
           "-s", str(script), url]  # fmt: skip
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"50%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"99%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = int(bad.group(1)) if bad else 0
    errors += sum(int(x) for x in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))
    return Run(rps, p50, p99, errors)


def scenarios(fx: dict[str, Any]) -> list[Scenario]:
    gql = json.dumps({"query": GQL_LIST})
    name_query = '{ clients(first: 100, filter: {name: "xolotl"}) { nodes { id name } } }'
    out = [
        Scenario(PLAIN, "reference", "/ref/plain/clients?limit=100"),
        Scenario(PLAIN_KEYED, "reference", "/ref/clients?limit=100"),
        Scenario(PLAIN_COUNTED, "reference", "/ref/counted/clients?limit=100", baseline=PLAIN_KEYED),
        Scenario(PLAIN_GET, "reference", f"/ref/clients/{fx['id']}"),
        Scenario(REST_LIST, "gateway", "/v2/clients?limit=100", baseline=PLAIN_KEYED),
        Scenario(GQL, "gateway", "/graphql", "POST", body=gql, baseline=PLAIN_KEYED),
        Scenario("naive Strawberry list-100", "strawberry", "/graphql", "POST", body=gql, baseline=PLAIN_KEYED),
        Scenario("Ariadne list-100", "ariadne", "/graphql", "POST", body=gql, baseline=PLAIN_KEYED),
        Scenario(REST_GET, "gateway", f"/v2/clients/{fx['id']}", baseline=PLAIN_GET),
        Scenario("REST list-100, rfc filter", "gateway", f"/v2/clients?limit=100&rfc={fx['rfc']}"),
        Scenario("REST list-100, email filter", "gateway", f"/v2/clients?limit=100&email={fx['email']}"),
        Scenario("REST list-100, from/to (150 matches)", "gateway",
                 f"/v2/clients?limit=100&from={fx['from']}&to={fx['to']}"),
        Scenario("REST list-100, selective name", "gateway", "/v2/clients?limit=100&name=xolotl"),
        Scenario("REST list-100, unselective name", "gateway", "/v2/clients?limit=100&name=garc",
                 baseline=REST_LIST),
        Scenario("GraphQL list-100, selective name", "gateway", "/graphql", "POST",
                 body=json.dumps({"query": name_query})),
    ]  # fmt: skip
    if fx["depth"] > 0:
        out.append(
            Scenario(f"REST list-100, cursor {fx['depth']:,} rows deep", "gateway",
                     f"/v2/clients?next={fx['deep']}", baseline=REST_LIST)
        )  # fmt: skip
    return out


def create_scenario() -> Scenario:
    body = '\'{"name":"Bench client \' .. counter .. \'","rfc":"XAXX010101000"}\''
    return Scenario(CREATE, "gateway", "/v2/clients", "POST", lua_body=body)


SERVERS = {
    "reference": "bench.reference:app",
    "strawberry": "bench.peers.strawberry_app:app",
    "ariadne": "bench.peers.ariadne_app:app",
}


def bench_size(
    engine: str, rows: int, args: argparse.Namespace, tmp: Path
) -> tuple[dict[str, tuple[Scenario, list[Run]]], float]:
    """Every scenario at one size, in alternating rounds; the gateway's peak RSS."""
    url = ensure_database(engine, rows, ROOT / "var" / "bench", args.reseed)
    env = env_for(url)
    key = new_key(env)
    fx = fixtures(env, rows)
    plan = scenarios(fx)
    if args.only:
        wanted = re.compile(args.only, re.I)
        keep = {s.baseline for s in plan if wanted.search(s.name)}
        plan = [s for s in plan if wanted.search(s.name) or s.name in keep]
    if args.creates:
        plan.append(create_scenario())  # last: it writes
    needed = {s.server for s in plan}
    servers: dict[str, Server] = {}
    runs: dict[str, list[Run]] = {}
    peak = 0.0
    try:
        for name in sorted(needed):
            port = free_port()
            cmd = (
                [PY, "-m", "app", "serve", "--port", str(port)]
                if name == "gateway"
                else uvicorn(SERVERS[name], port)
            )
            servers[name] = Server(cmd, env, port)
        for round_no in range(args.rounds):
            for s in plan:
                script = lua_script(s, key, tmp)
                target = f"http://127.0.0.1:{servers[s.server].port}{s.path}"
                wrk(target, script, 1)  # warm-up
                got = wrk(target, script, args.duration)
                runs.setdefault(s.name, []).append(got)
                print(
                    f"{engine} {rows:>9,} round {round_no + 1}: {s.name:42} {got.rps:7.0f} req/s"
                    f"  p50 {got.p50_ms:7.2f} ms  p99 {got.p99_ms:8.2f} ms  errors {got.errors}",
                    file=sys.stderr,
                )
        if "gateway" in servers:
            peak = servers["gateway"].peak_rss_mb()
    finally:
        for server in servers.values():
            server.stop()
    return {s.name: (s, runs[s.name]) for s in plan}, peak


def median_ratio(runs: list[Run], base: list[Run]) -> float:
    """The median over rounds of req/s over the baseline's req/s in the same round."""
    return statistics.median(a.rps / b.rps for a, b in zip(runs, base, strict=True))


def main() -> int:
    if "--fragments" in sys.argv[1:]:
        # Hostile GraphQL documents (bench/fragments.py): refusal time against their size.
        from bench import fragments

        return fragments.main([a for a in sys.argv[1:] if a != "--fragments"])
    if "--events" in sys.argv[1:]:
        # The events benchmark (bench/events.py) has its own options.
        from bench.events import main as events_main

        return events_main([a for a in sys.argv[1:] if a != "--events"])
    if "--transfer" in sys.argv[1:]:
        # Import and export through the CLI (bench/transfer.py) has its own options.
        from bench.transfer import main as transfer_main

        return transfer_main([a for a in sys.argv[1:] if a != "--transfer"])
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--engine", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--sizes", default="1000,100000,1000000",
                        help="comma-separated client counts; the first is the flatness base")  # fmt: skip
    parser.add_argument("--duration", type=int, default=5, help="seconds per scenario and round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds; the table shows medians")
    parser.add_argument("--only", help="a regular expression: run only matching scenarios")
    parser.add_argument("--no-creates", dest="creates", action="store_false",
                        help="skip the create scenario (it adds clients to the database)")  # fmt: skip
    parser.add_argument("--reseed", action="store_true", help="seed the databases again")
    parser.add_argument(
        "--fragments",
        action="store_true",
        help="time hostile GraphQL documents instead (bench/fragments.py; --memory N too)",
    )
    parser.add_argument(
        "--transfer",
        action="store_true",
        help="time import and export through the CLI instead (bench/transfer.py; "
        "--rows N, --engine, --format csv|jsonl, --no-http)",
    )
    args = parser.parse_args()
    sizes = [int(x.replace("_", "")) for x in args.sizes.split(",") if x.strip()]
    (ROOT / "var" / "bench").mkdir(parents=True, exist_ok=True)
    results: dict[int, dict[str, tuple[Scenario, list[Run]]]] = {}
    peak = 0.0
    with tempfile.TemporaryDirectory() as tmpdir:
        for rows in sizes:
            results[rows], size_peak = bench_size(args.engine, rows, args, Path(tmpdir))
            peak = max(peak, size_peak)
    print_table(results, peak, sizes, args)
    return 0


def print_table(
    results: dict[int, dict[str, tuple[Scenario, list[Run]]]],
    peak: float,
    sizes: list[int],
    args: argparse.Namespace,
) -> None:
    print(
        f"\n### Benchmark ({args.engine}, {datetime.now(UTC):%Y-%m-%d}, {os.cpu_count()} cores; "
        f"server on core 0, wrk -t1 -c8 on core 1; medians of {args.rounds} rounds of "
        f"{args.duration} s)\n"
    )
    print("| scenario | clients | req/s | p50 ms | p99 ms | non-2xx | ratio (req/s) | vs. | "
          f"p50 vs. {sizes[0]:,} |")  # fmt: skip
    print("|---|---:|---:|---:|---:|---:|---:|---|---:|")
    small = {name: runs for name, (_, runs) in results[sizes[0]].items()}
    for rows in sizes:
        at = {name: runs for name, (_, runs) in results[rows].items()}
        for name, (scenario, runs) in results[rows].items():
            base_name = scenario.baseline
            base = at.get(base_name or "")
            ratio = f"{median_ratio(runs, base):.2f}×" if base else ""
            flat = ""
            if rows != sizes[0] and name in small:
                flat = f"{_p50(runs) / _p50(small[name]):.2f}×"
            print(
                f"| {name} | {rows:,} | {statistics.median(r.rps for r in runs):,.0f} | "
                f"{_p50(runs):.2f} | {statistics.median(r.p99_ms for r in runs):.2f} | "
                f"{sum(r.errors for r in runs)} | {ratio} | {base_name or ''} | {flat} |"
            )
    largest = {name: runs for name, (_, runs) in results[sizes[-1]].items()}
    rfc, sel = (
        largest.get("REST list-100, rfc filter"),
        largest.get("REST list-100, selective name"),
    )
    unsel, first = largest.get("REST list-100, unselective name"), largest.get(REST_LIST)
    print()
    if rfc and sel:
        print(f"- selective name search / exact-RFC list latency at {sizes[-1]:,} (p50): "
              f"{_p50(sel) / _p50(rfc):.2f}×")  # fmt: skip
    if unsel and first:
        print(f"- unselective name search (`garc`) / unfiltered list at {sizes[-1]:,}: "
              f"{_p50(unsel) / _p50(first):.2f}× the latency (p50), "
              f"{1 / median_ratio(unsel, first):.2f}× the CPU per answer (1 / req/s ratio)")  # fmt: skip
    for name, runs in largest.items():
        if "cursor" in name and first:
            print(f"- deep cursor page / first page latency (p50): {_p50(runs) / _p50(first):.2f}×")
    print(f"- gateway peak RSS: {peak:.0f} MB")


def _p50(runs: list[Run]) -> float:
    return statistics.median(r.p50_ms for r in runs)


if __name__ == "__main__":
    raise SystemExit(main())
