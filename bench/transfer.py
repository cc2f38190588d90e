"""`scripts/bench --transfer`: import and export of N clients through the real CLI.

1. Writes a file (CSV by default, or JSON Lines) of N valid, distinct clients: RFCs with
   their check digit (python-stdnum's, the seed's generator), names, emails, phones, SAT zip
   codes, a régimen and a uso that apply to the person type, some metadata. The values are
   written by this module, not read back from the application.
2. `python -m app migrate`, then `python -m app import FILE --team T` into a fresh database:
   rows/s and the peak RSS of the importing process and its worker processes together
   (`run_measured`). Every row must be created.
3. The same file again: every row must be unchanged (0 created, 0 updated); timed too.
4. `python -m app export` to a file (JSON Lines and CSV): rows/s and peak RSS; the line
   counts must be N.
5. `GET /v2/clients/export` from a real server (`python -m app serve`, one worker, which
   serves in its own process), streamed and counted: rows/s and the server's peak RSS.

SQLite databases live in a temporary directory; PostgreSQL ones are created as
`clients_bench_transfer_<pid>` on the local server and dropped at the end.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import resource
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from bench.events import _drop_pg, _fresh_database

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
TEAM = "bench-transfer"
TARGET_ROWS_PER_S = 5_000
TARGET_RSS_MB = 200

# c_CodigoPostal codes (checked by the service against SAT's catalog on import).
ZIPS = ("06700", "03100", "44100", "64000", "97000", "76000", "37000", "01000")
# (régimen, uso) pairs SAT's matrix allows: personas morales, personas físicas.
MORAL = (("601", "G03"), ("601", "G01"), ("603", "S01"), ("626", "I04"))
FISICA = (("612", "G03"), ("605", "D01"), ("626", "CP01"), ("606", "G01"))
FIRST = ("María", "José", "Ángel", "Sofía", "Iñaki", "Lucía", "Raúl", "Xóchitl")
LAST = ("Hernández", "García", "Núñez", "Peña", "Ibáñez", "Muñoz", "López", "Cruz")
COLUMNS = (
    "name",
    "legalName",
    "rfc",
    "email",
    "phone",
    "address.street",
    "address.zipCode",
    "address.country",
    "taxSystem",
    "cfdiUse",
    "metadata",
)


def clients(n: int, seed: str = "bench-transfer") -> Any:
    """N distinct valid clients, as REST-named dicts (address fields dotted)."""
    from app.ops.seed import make_rfc

    rng = random.Random(seed)
    seen: set[str] = set()
    for i in range(n):
        moral = i % 2 == 0
        rfc = make_rfc(rng, moral)
        while rfc in seen:
            rfc = make_rfc(rng, moral)
        seen.add(rfc)
        tax_system, use = rng.choice(MORAL if moral else FISICA)
        if moral:
            name = f"Comercializadora {i} del Bajío"
            legal = f"{name} S.A. de C.V."
        else:
            name = f"{rng.choice(FIRST)} {rng.choice(LAST)} {i}"
            legal = name
        yield {
            "name": name,
            "legalName": legal,
            "rfc": rfc,
            "email": f"cliente{i}@example.com",
            "phone": f"+52 55 {rng.randrange(1000, 9999)} {rng.randrange(1000, 9999)}",
            "address.street": f"Calle {i % 300} #{i % 999 + 1}",
            "address.zipCode": rng.choice(ZIPS),
            "address.country": "México",
            "taxSystem": tax_system,
            "cfdiUse": use,
            "metadata": {"origen": "bench", "lote": str(i // 1000)},
        }


def write_file(path: Path, n: int) -> None:
    import csv

    with path.open("w", encoding="utf-8", newline="") as handle:
        if path.suffix == ".csv":
            writer = csv.writer(handle, lineterminator="\n")
            writer.writerow(COLUMNS)
            for c in clients(n):
                c["metadata"] = orjson.dumps(c["metadata"]).decode()
                writer.writerow([c[k] for k in COLUMNS])
        else:
            for c in clients(n):
                address = {
                    k.split(".", 1)[1]: c.pop(k) for k in list(c) if k.startswith("address.")
                }
                handle.write(orjson.dumps({**c, "address": address}).decode() + "\n")


@dataclass
class Measured:
    seconds: float
    peak_rss_mb: float  # see run_measured
    stderr: str


def _tree_kb(pid: int) -> tuple[int, int]:
    """The summed VmRSS of a process and all its descendants, and the largest VmHWM among
    them, in kB ((0, 0) once they are gone)."""
    total, hwm, todo = 0, 0, [pid]
    while todo:
        current = todo.pop()
        try:
            status = Path(f"/proc/{current}/status").read_text()
            for task in Path(f"/proc/{current}/task").iterdir():
                todo.extend(int(c) for c in (task / "children").read_text().split())
        except (FileNotFoundError, ProcessLookupError, ValueError):
            continue
        rss = re.search(r"VmRSS:\s+(\d+) kB", status)
        peak = re.search(r"VmHWM:\s+(\d+) kB", status)
        total += int(rss.group(1)) if rss else 0
        hwm = max(hwm, int(peak.group(1)) if peak else 0)
    return total, hwm


def run_measured(cmd: list[str], env: dict[str, str], stdout: Any = None) -> Measured:
    """Runs a command to its end: wall time, and its peak memory: the largest of the summed
    RSS of the process and its worker processes (sampled every 50 ms) and of any one
    process's own high-water mark (VmHWM). Not `wait4`'s ru_maxrss: Linux carries into it
    the RSS of this process at the fork, so a big benchmark process would show as the
    command's peak."""
    peak_kb = 0
    with tempfile.TemporaryFile() as err:
        started = time.monotonic()
        proc = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=stdout, stderr=err)
        done = threading.Event()

        def sample() -> None:
            nonlocal peak_kb
            while not done.wait(0.05):
                peak_kb = max(peak_kb, *_tree_kb(proc.pid))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        proc.wait()
        seconds = time.monotonic() - started
        done.set()
        sampler.join()
        err.seek(0)
        text = err.read().decode(errors="replace")
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[2:5])} exited {proc.returncode}:\n{text[-3000:]}")
    return Measured(seconds, peak_kb / 1024, text)


def import_counts(stderr: str) -> dict[str, int]:
    found = re.search(
        r"(\d+) created, (\d+) updated, (\d+) unchanged, (\d+) failed", stderr.replace("\r", "\n")
    )
    if not found:
        raise RuntimeError(f"no import summary in:\n{stderr[-2000:]}")
    keys = ("created", "updated", "unchanged", "failed")
    return dict(zip(keys, map(int, found.groups()), strict=True))


def count_lines(path: Path) -> int:
    with path.open("rb") as handle:
        return sum(1 for _ in handle)


def http_export(env: dict[str, str], n: int) -> tuple[float, float]:
    """Seconds to stream GET /v2/clients/export of n clients, and the server's peak RSS."""
    from bench.run import free_port

    key = (
        subprocess.run(
            [PY, "-m", "app", "create-api-key", "--team", TEAM],
            env=env,
            cwd=ROOT,
            check=True,
            capture_output=True,
            text=True,
        )
        .stdout.strip()
        .splitlines()[-1]
    )
    port = free_port()
    server = subprocess.Popen(
        [PY, "-m", "app", "serve", "--port", str(port)],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{base}/healthz", timeout=1):
                    break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the server did not start") from None
                time.sleep(0.2)
        request = urllib.request.Request(
            f"{base}/v2/clients/export", headers={"Authorization": f"Bearer {key}"}
        )
        started = time.monotonic()
        lines = 0
        with urllib.request.urlopen(request, timeout=600) as response:
            for _ in response:
                lines += 1
        seconds = time.monotonic() - started
        if lines != n:
            raise RuntimeError(f"HTTP export: {lines} lines, expected {n}")
        status = Path(f"/proc/{server.pid}/status").read_text()
        match = re.search(r"VmHWM:\s+(\d+) kB", status)
        peak = int(match.group(1)) / 1024 if match else float("nan")
        return seconds, peak
    finally:
        server.terminate()
        try:
            server.wait(15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def _row(what: str, rows: int, m_seconds: float, rss: float, note: str = "") -> str:
    rate = rows / m_seconds if m_seconds else float("inf")
    return f"| {what} | {rows:,} | {m_seconds:.1f} | {rate:,.0f} | {rss:.0f} | {note} |"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/bench --transfer", description=__doc__)
    parser.add_argument("--engine", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--rows", type=lambda s: int(s.replace("_", "")), default=1_000_000)
    parser.add_argument("--format", choices=["csv", "jsonl"], default="csv", help="import file")
    parser.add_argument("--no-http", dest="http", action="store_false",
                        help="skip the GET /v2/clients/export run")  # fmt: skip
    parser.add_argument("--jobs", type=int, help="the import's --jobs (default: the CLI's)")
    parser.add_argument("--workdir", type=Path, help="where the temporary files go")
    args = parser.parse_args(argv)
    n = args.rows
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp_name:
        tmp = Path(tmp_name)
        source = tmp / f"clients.{args.format}"
        started = time.monotonic()
        write_file(source, n)
        size_mb = source.stat().st_size / 1e6
        print(f"wrote {n:,} clients to {source.name} ({size_mb:.0f} MB) in "
              f"{time.monotonic() - started:.1f} s", file=sys.stderr)  # fmt: skip
        url = _fresh_database(args.engine, tmp)
        try:
            return _measure(args, n, url, source, tmp)
        finally:
            if args.engine == "postgres":
                _drop_pg(url)


def _measure(args: argparse.Namespace, n: int, url: str, source: Path, tmp: Path) -> int:
    from bench.run import env_for

    env = {**env_for(url), "VAR_DIR": str(tmp / "var")}  # the reads' benchmark settings
    subprocess.run([PY, "-m", "app", "migrate"], env=env, cwd=ROOT, check=True,
                   capture_output=True)  # fmt: skip
    cli = [PY, "-m", "app"]
    table: list[str] = []

    do_import = [*cli, "import", str(source), "--team", TEAM]
    if args.jobs is not None:
        do_import += ["--jobs", str(args.jobs)]
    first = run_measured(do_import, env)
    counts = import_counts(first.stderr)
    if counts != {"created": n, "updated": 0, "unchanged": 0, "failed": 0}:
        raise RuntimeError(f"first import: {counts}")
    table.append(_row("import (new database)", n, first.seconds, first.peak_rss_mb,
                      f"{n:,} created"))  # fmt: skip
    print(table[-1], file=sys.stderr)

    again = run_measured(do_import, env)
    counts = import_counts(again.stderr)
    if counts != {"created": 0, "updated": 0, "unchanged": n, "failed": 0}:
        raise RuntimeError(f"second import of the same file: {counts}")
    table.append(_row("import again (same file)", n, again.seconds, again.peak_rss_mb,
                      "0 created, 0 updated"))  # fmt: skip
    print(table[-1], file=sys.stderr)

    for fmt in ("jsonl", "csv"):
        out = tmp / f"export.{fmt}"
        m = run_measured(
            [*cli, "export", "--team", TEAM, "--format", fmt, "--output", str(out)], env
        )
        lines = count_lines(out) - (1 if fmt == "csv" else 0)
        if lines != n:
            raise RuntimeError(f"export {fmt}: {lines} rows, expected {n}")
        table.append(_row(f"export, CLI ({fmt})", n, m.seconds, m.peak_rss_mb))
        print(table[-1], file=sys.stderr)
        out.unlink()

    if args.http:
        seconds, peak = http_export(env, n)
        table.append(_row("export, GET /v2/clients/export", n, seconds, peak, "server's peak"))
        print(table[-1], file=sys.stderr)

    jobs = "the CLI's default" if args.jobs is None else args.jobs
    print(f"\n### Import and export ({args.engine}, {n:,} clients, {args.format}, --jobs {jobs}, "
          f"{os.cpu_count()} cores; target ≥ {TARGET_ROWS_PER_S:,} rows/s, peak RSS < "
          f"{TARGET_RSS_MB} MB)\n")  # fmt: skip
    print("| run | rows | seconds | rows/s | peak RSS MB | |")
    print("|---|---:|---:|---:|---:|---|")
    print("\n".join(table))
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\n(this benchmark's own process, which generated the file: {own:.0f} MB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
