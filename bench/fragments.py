"""Hostile GraphQL documents against a real server: `./scripts/bench --fragments`.

Starts `python -m app serve` (one worker, APP_ENV=production, pinned to core 0) on a fresh
SQLite database and times, for each family of documents that once took exponential or
quadratic time to check, the answer against the size of the document:

- doubling fragments: `fragment F0 on Query { ...F1 ...F1 }` … n fragments (2**n spreads);
- doubling aliases: the same with an aliased leaf (the alias rule used to walk it all);
- repeated fields: one field selected k times in one selection set;
- repeated inline fragments: `... on Query { __typename }` k times.

Every document is new to the server (its operation name changes), so no cache answers it.
Then `/healthz` is timed while another connection sends the largest doubling document in a
loop, and, with `--memory`, the server's peak RSS before and after 2,200 distinct 250 KiB
documents. Prints Markdown tables; a person reads them (never part of the tests).
"""

from __future__ import annotations

import argparse
import http.client
import json
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from bench.run import PY, Server, env_for, free_port, new_key

REPEATS = 7  # each document size: the median of this many distinct documents


def doubling(n: int, name: str, leaf: str = "__typename") -> str:
    chain = " ".join(f"fragment F{i} on Query {{ ...F{i + 1} ...F{i + 1} }}" for i in range(n))
    return f"query {name} {{ ...F0 }} {chain} fragment F{n} on Query {{ {leaf} }}"


def doubling_aliases(n: int, name: str) -> str:
    return doubling(n, name, "a: __typename")


def repeated_fields(k: int, name: str) -> str:
    return f"query {name} {{ " + "__typename " * k + "}"


def repeated_inline(k: int, name: str) -> str:
    return f"query {name} {{ " + "... on Query { __typename } " * k + "}"


FAMILIES: list[tuple[str, Callable[[int, str], str], list[int]]] = [
    ("doubling fragments (n fragments)", doubling, [4, 8, 12, 16, 20, 22, 24, 32, 64, 128, 190]),
    ("doubling aliases (n fragments)", doubling_aliases, [8, 16, 22, 32, 64, 128, 190]),
    ("repeated fields (k fields)", repeated_fields, [10, 100, 500, 1000, 1990]),
    ("repeated inline fragments (k)", repeated_inline, [10, 50, 100, 200, 330]),
]


class Client:
    """One keep-alive connection to the server."""

    def __init__(self, port: int, key: str) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        self.headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}

    def graphql(self, query: str) -> tuple[float, int, dict[str, object]]:
        body = json.dumps({"query": query})
        started = time.perf_counter()
        self.conn.request("POST", "/graphql", body, self.headers)
        response = self.conn.getresponse()
        payload = json.loads(response.read())
        return (time.perf_counter() - started) * 1000, response.status, payload

    def healthz(self) -> float:
        started = time.perf_counter()
        self.conn.request("GET", "/healthz")
        self.conn.getresponse().read()
        return (time.perf_counter() - started) * 1000


def outcome(payload: dict[str, object]) -> str:
    errors = payload.get("errors")
    if not errors:
        return "ran"
    first = errors[0]  # type: ignore[index]
    code = first.get("extensions", {}).get("code", "")
    return f"refused ({code}: {first['message'][:48]}…)"


def time_families(client: Client) -> None:
    serial = 0
    for title, build, sizes in FAMILIES:
        print(
            f"\n### {title}\n\n| size | bytes | answer | median ms | max ms |\n|---:|---:|---|---:|---:|"
        )
        for size in sizes:
            timings = []
            for _ in range(REPEATS):
                serial += 1
                query = build(size, f"Q{serial}")
                elapsed, status, payload = client.graphql(query)
                timings.append(elapsed)
            print(
                f"| {size} | {len(query):,} | {status} {outcome(payload)} | "
                f"{statistics.median(timings):.2f} | {max(timings):.2f} |"
            )


def healthz_under_attack(port: int, key: str, seconds: float = 5.0) -> None:
    stop = threading.Event()
    sent = [0]

    def attack() -> None:
        attacker = Client(port, key)
        while not stop.is_set():
            sent[0] += 1
            attacker.graphql(doubling(190, f"Attack{sent[0]}"))

    thread = threading.Thread(target=attack, daemon=True)
    calm = Client(port, key)
    quiet = [calm.healthz() for _ in range(50)]
    thread.start()
    loaded: list[float] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        loaded.append(calm.healthz())
    stop.set()
    thread.join()
    print(
        "\n### /healthz while another connection sends 190-fragment documents in a loop\n\n"
        f"- quiet: p50 {statistics.median(quiet):.2f} ms, max {max(quiet):.2f} ms\n"
        f"- under attack ({sent[0]} documents refused in {seconds:.0f} s): "
        f"p50 {statistics.median(loaded):.2f} ms, max {max(loaded):.2f} ms"
    )


def memory(server: Server, port: int, key: str, count: int) -> None:
    client = Client(port, key)  # a new connection: the others may have idled out
    before = server.peak_rss_mb()
    started = time.monotonic()
    for i in range(count):
        padding = f"# {i} " + "x" * (250 * 1024 - 200) + "\n"
        client.graphql(padding + f"query M{i} {{ clients(first: 1) {{ nodes {{ id }} }} }}")
    print(
        f"\n### Memory: {count:,} distinct documents of 250 KiB\n\n"
        f"- peak RSS before: {before:.0f} MB, after: {server.peak_rss_mb():.0f} MB "
        f"({time.monotonic() - started:.0f} s)"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--memory",
        type=int,
        default=0,
        metavar="N",
        help="also send N distinct 250 KiB documents and report peak RSS",
    )
    args = parser.parse_args(argv)  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        env = env_for(f"sqlite+aiosqlite:///{Path(tmp) / 'fragments.db'}")
        env["VAR_DIR"] = tmp
        port = free_port()
        server = Server([PY, "-m", "app", "serve", "--port", str(port)], env, port)
        try:
            key = new_key(env)
            client = Client(port, key)
            client.graphql("{ __typename }")  # warm-up
            print(f"# Hostile documents ({time.strftime('%Y-%m-%d')}, one worker on core 0)")
            time_families(client)
            healthz_under_attack(port, key)
            if args.memory:
                memory(server, port, key, args.memory)
            print(f"\n- server peak RSS: {server.peak_rss_mb():.0f} MB")
        finally:
            server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
