"""Prometheus metrics at GET /metrics (prometheus-client).

What is measured: every request by route template (or GraphQL operation name) and status,
their latency, the database pools' connections in use, rate-limit refusals, idempotent
replays, and what the GraphQL fast path answered.

Invariants:
- No label holds an id, an RFC, a path as sent, or anything else a client chose: routes are
  the matched templates (`/v2/clients/{clientId}`, `unmatched` for unknown paths), methods
  one of the standard ones (else `OTHER`), and GraphQL operation names — the only client-sent
  label — must look like GraphQL names of at most 64 characters and are capped at
  `MAX_OPERATION_NAMES` distinct values per process: anything else is `other`, and an
  anonymous operation is `anonymous`.
- Several workers add up: `python -m app serve` points PROMETHEUS_MULTIPROC_DIR at an emptied
  directory before any worker imports prometheus-client (multiprocess mode), and /metrics
  aggregates every worker's files. Without that variable (tests, an embedding server) the
  process's own registry is served.
- Access: in development /metrics is public unless METRICS_TOKEN is set; in production it
  does not exist (404) until METRICS_TOKEN is set, and then needs
  `Authorization: Bearer <METRICS_TOKEN>` (else 401).
"""

from __future__ import annotations

import atexit
import hmac
import os
import re
import shutil
import threading
import time
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client import multiprocess as prometheus_multiprocess
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from app.core.config import Settings

if TYPE_CHECKING:
    from app.http.deps import Services
from app.core.errors import Unauthorized

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
MAX_OPERATION_NAMES = 100
_OPERATION_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

HTTP_REQUESTS = Counter(
    "http_requests_total",
    "HTTP requests answered, by method, route template and status",
    ["method", "route", "status"],
)
HTTP_LATENCY = Histogram(
    "http_request_duration_seconds",
    "Time from the request's arrival to the end of its answer",
    ["method", "route"],
    buckets=_BUCKETS,
)
GRAPHQL_REQUESTS = Counter(
    "graphql_requests_total",
    "POST /graphql requests, by operation name (bounded, see app/http/metrics.py) and status",
    ["operation", "status"],
)
GRAPHQL_LATENCY = Histogram(
    "graphql_request_duration_seconds",
    "Latency of POST /graphql, by operation name",
    ["operation"],
    buckets=_BUCKETS,
)
GRAPHQL_FAST_PATH = Counter(
    "graphql_fast_path_total",
    "GraphQL requests offered to the compiled fast path: answered there, or handed back",
    ["outcome"],
)
RATE_LIMIT_REFUSALS = Counter(
    "rate_limit_refusals_total", "Requests refused with 429 by the per-key rate limit"
)
IDEMPOTENT_REPLAYS = Counter(
    "idempotent_replays_total", "Creates answered by replaying a stored Idempotency-Key answer"
)
DB_CONNECTIONS_IN_USE = Gauge(
    "db_pool_connections_in_use",
    "Database connections checked out of the pools, all workers together",
    ["pool"],
    multiprocess_mode="livesum",
)
DB_POOL_CAPACITY = Gauge(
    "db_pool_connections_max",
    "Connections the pools may open (pool size + overflow), all workers together",
    ["pool"],
    multiprocess_mode="livesum",
)

_operation_names: set[str] = set()
_names_lock = threading.Lock()


def operation_label(name: object) -> str:
    """The label of a GraphQL operation name: itself when it is a plain GraphQL name of at
    most 64 characters and among the first MAX_OPERATION_NAMES seen, else `other`."""
    if name is None:
        return "anonymous"
    if not isinstance(name, str) or not _OPERATION_NAME.match(name):
        return "other"
    with _names_lock:
        if name in _operation_names:
            return name
        if len(_operation_names) >= MAX_OPERATION_NAMES:
            return "other"
        _operation_names.add(name)
        return name


def rate_limited() -> None:
    RATE_LIMIT_REFUSALS.inc()


def idempotent_replay() -> None:
    IDEMPOTENT_REPLAYS.inc()


def fast_path(answered: bool) -> None:
    GRAPHQL_FAST_PATH.labels("answered" if answered else "handed_back").inc()


# -- the database pools -------------------------------------------------------------------


def instrument_pools(services: Services) -> None:
    """The database's pools: one on PostgreSQL, a reader and a writer on SQLite."""
    db, settings = services.db, services.settings
    capacity = settings.db_pool_size + settings.db_max_overflow
    if db.write_engine is db.engine:
        instrument_pool(db.engine, "main", capacity)
    else:
        instrument_pool(db.engine, "read", capacity)
        instrument_pool(db.write_engine, "write", capacity)
    mark_worker_exit()


def instrument_pool(engine: AsyncEngine, name: str, capacity: int) -> None:
    """Count `engine`'s checked-out connections under `pool=name`."""
    DB_POOL_CAPACITY.labels(name).set(capacity)
    in_use = DB_CONNECTIONS_IN_USE.labels(name)

    @event.listens_for(engine.sync_engine, "checkout")
    def checkout(*_args: Any) -> None:
        in_use.inc()

    @event.listens_for(engine.sync_engine, "checkin")
    def checkin(*_args: Any) -> None:
        in_use.dec()


# -- requests -----------------------------------------------------------------------------

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class MetricsMiddleware:
    """Counts and times every HTTP request once it is answered (inside the FastAPI app, so
    the matched route is known)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = {"code": 500}

        async def send_status(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            _observe(scope, status["code"], time.perf_counter() - started)


def _observe(scope: Scope, status: int, elapsed: float) -> None:
    method = scope.get("method", "")
    method = method if method in _METHODS else "OTHER"
    route = getattr(scope.get("route"), "path", None) or "unmatched"
    HTTP_REQUESTS.labels(method, route, str(status)).inc()
    HTTP_LATENCY.labels(method, route).observe(elapsed)
    if route == "/graphql" and method == "POST":
        state = scope.get("state") or {}
        operation = operation_label(state.get("operation"))
        GRAPHQL_REQUESTS.labels(operation, str(status)).inc()
        GRAPHQL_LATENCY.labels(operation).observe(elapsed)


# -- /metrics -----------------------------------------------------------------------------


def _authorized(request: Request, token: str) -> bool:
    header = request.headers.get("authorization", "")
    scheme, _, given = header.partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(
        given.strip().encode(), token.encode()
    )


def exposition() -> bytes:
    """Every worker's metrics in multiprocess mode, else this process's."""
    if os.environ.get(MULTIPROC_ENV):
        registry = CollectorRegistry()
        prometheus_multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry)
    return generate_latest(REGISTRY)


def mount_metrics(app: FastAPI, settings: Settings) -> None:
    """The request middleware, and GET /metrics unless production has no METRICS_TOKEN."""
    token = settings.metrics_token
    app.add_middleware(MetricsMiddleware)
    if settings.is_production and not token:
        return  # no route: /metrics is a 404 like any unknown path

    @app.get("/metrics", include_in_schema=False)
    async def metrics(request: Request) -> Response:
        if token and not _authorized(request, token):
            raise Unauthorized()
        return Response(exposition(), media_type=CONTENT_TYPE_LATEST)


# -- `serve` ------------------------------------------------------------------------------


def prepare_multiprocess_dir(var_dir: Path) -> Path:
    """Before `serve` starts workers: PROMETHEUS_MULTIPROC_DIR (kept if set, else
    VAR_DIR/metrics), emptied so counts start at zero, and exported to the workers."""
    path = Path(os.environ.get(MULTIPROC_ENV) or var_dir / "metrics")
    if path.exists():
        for child in path.iterdir():
            if child.is_file() and child.suffix == ".db":
                child.unlink()
            elif child.is_dir():
                shutil.rmtree(child)
    path.mkdir(parents=True, exist_ok=True)
    os.environ[MULTIPROC_ENV] = str(path)
    return path


_marked: set[int] = set()


def mark_worker_exit() -> None:
    """Remove this worker's live gauges when it exits (livesum counts live processes only)."""
    pid = os.getpid()
    if os.environ.get(MULTIPROC_ENV) and pid not in _marked:
        _marked.add(pid)
        atexit.register(prometheus_multiprocess.mark_process_dead, pid)
