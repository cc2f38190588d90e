"""Settings from the environment (12-factor); a `.env` file is optional."""

from __future__ import annotations

import os
import secrets
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

VAR_DIR = Path(os.environ.get("VAR_DIR", "./var"))
# The development team and the file holding its key (`python -m app dev-key` writes it; the
# GraphiQL page reads it in development).
DEV_TEAM = "development"
DEV_KEY_FILE = VAR_DIR / "dev-api-key"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    database_url: str = "sqlite+aiosqlite:///./var/clients.db"
    app_env: Literal["development", "production"] = "development"
    secret_key: str | None = None

    # Per-key token bucket; RATE_LIMIT_PER_SECOND=0 turns it off.
    rate_limit_per_second: float = Field(default=50.0, ge=0)
    rate_limit_burst: int = Field(default=200, ge=1)

    # Comma-separated list of allowed CORS origins; none by default.
    cors_origins: str = ""

    # Database pool, per server process (PostgreSQL, and file-backed SQLite). With N workers
    # PostgreSQL sees up to N * (DB_POOL_SIZE + DB_MAX_OVERFLOW) connections: the defaults
    # keep 4 workers (60) under PostgreSQL's default max_connections (100). Connections
    # beyond the pool size are closed when returned (a new one per request under load: on
    # PostgreSQL a connect costs more than most requests), so the pool keeps most of them.
    db_pool_size: int = Field(default=10, ge=1)
    db_max_overflow: int = Field(default=5, ge=0)
    # Seconds a request waits for a free pooled connection before answering 503.
    db_pool_timeout: float = Field(default=10.0, gt=0)
    # Seconds to open a new connection (an unreachable host answers 503 after this).
    db_connect_timeout: float = Field(default=5.0, gt=0)
    # PostgreSQL statement_timeout for every statement (0 = none). The client gives up one
    # second later, so a database that stops answering mid-query is a 503, not a hang.
    db_statement_timeout_ms: int = Field(default=15000, ge=0)
    # Seconds after which a pooled connection is replaced (PostgreSQL).
    db_pool_recycle: int = Field(default=1800, ge=-1)
    sqlite_busy_timeout_ms: int = Field(default=15000, ge=0)
    # NORMAL in WAL mode: a committed transaction survives a crash of the process (SIGKILL);
    # FULL also survives power loss, at the cost of an fsync per commit.
    sqlite_synchronous: Literal["NORMAL", "FULL", "EXTRA"] = "NORMAL"

    # GraphQL document limits.
    graphql_max_depth: int = Field(default=10, ge=1)
    graphql_max_aliases: int = Field(default=30, ge=1)
    graphql_max_tokens: int = Field(default=2000, ge=10)
    graphql_max_cost: int = Field(default=5000, ge=1)
    # What one `totalCount` adds to a document's cost: a count may have to read every client
    # of the team, however small the page it comes with.
    graphql_count_cost: int = Field(default=1000, ge=1)
    # Parsed and validated documents kept per process, bounded by their estimated size.
    graphql_cache_mb: int = Field(default=32, ge=1)
    # Plain `clients`/`client` queries run on a compiled plan instead of the field-by-field
    # executor (schema/fast.py); the answers are the same. false sends every document
    # through Strawberry's executor.
    graphql_fast_path: bool = True

    # Slow clients (app/http/server.py, app/http/edge.py): seconds a connection may take to
    # send a request's headers, then its body, before a 408 closes it (0: no deadline); and
    # how long an idle connection is kept open between requests.
    http_header_timeout: float = Field(default=10.0, ge=0)
    http_body_timeout: float = Field(default=30.0, ge=0)
    http_keep_alive_timeout: int = Field(default=5, ge=1)

    # Events and webhooks (app/events, app/webhooks).
    # `internal`: every `serve` worker also delivers webhooks (claims make that safe);
    # `external`: only `python -m app deliver` does.
    webhook_delivery: Literal["internal", "external"] = "internal"
    # Production refuses webhook URLs whose host resolves to a non-public address; true
    # lifts that (development never checks).
    webhook_allow_private: bool = False
    # Seconds to wait before each retry of a failed delivery; after the last, it is failed.
    webhook_retry_schedule: str = "5,30,120,600,3600,10800,21600"
    # Seconds a receiver has to answer 2xx.
    webhook_timeout: float = Field(default=10.0, gt=0)
    # Deliveries in flight per endpoint and in all, per process.
    webhook_concurrency_per_endpoint: int = Field(default=8, ge=1)
    webhook_concurrency: int = Field(default=32, ge=1)
    events_retention_days: int = Field(default=30, ge=1)
    # Seconds between looks at the events table when no wake-up came (other processes on
    # SQLite, a lost PostgreSQL notification).
    events_poll_interval: float = Field(default=1.0, gt=0)
    # Open GraphQL subscriptions per API key, per process.
    subscriptions_per_key: int = Field(default=100, ge=1)

    log_level: str = "INFO"

    # SQLite: seconds between rounds of full-text index merging and WAL checkpoints beside
    # the server (app/db/upkeep.py); 0 turns it off (then inserts merge, rarely, by themselves).
    sqlite_upkeep_interval_s: float = Field(default=0.5, ge=0)
    # Bearer token of GET /metrics. Development: /metrics is public unless it is set.
    # Production: /metrics does not exist (404) until it is set.
    metrics_token: str | None = None

    @field_validator("webhook_retry_schedule")
    @classmethod
    def _valid_schedule(cls, value: str) -> str:
        parse_retry_schedule(value)
        return value

    @property
    def retry_schedule(self) -> list[float]:
        """WEBHOOK_RETRY_SCHEDULE as seconds (a bad value is refused at start-up)."""
        return parse_retry_schedule(self.webhook_retry_schedule)

    @property
    def is_production(self) -> bool:
        return self.app_env == "production"

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def cors_origin_list(self) -> list[str]:
        return [o.strip() for o in self.cors_origins.split(",") if o.strip()]

    def resolved_secret_key(self) -> str:
        """The key that signs pagination tokens.

        Production must set SECRET_KEY. In development one is generated once into ./var so
        tokens survive restarts and every worker shares it (O_EXCL makes the first writer win).
        """
        if self.secret_key:
            return self.secret_key
        if self.is_production:
            raise RuntimeError("SECRET_KEY must be set when APP_ENV=production")
        return _development_secret()


def parse_retry_schedule(text: str) -> list[float]:
    values = [float(part) for part in text.split(",") if part.strip()]
    if not values or any(v < 0 or v != v for v in values):
        raise ValueError("WEBHOOK_RETRY_SCHEDULE must be comma-separated seconds, e.g. 5,30,120")
    return values


def _development_secret() -> str:
    path = VAR_DIR / "secret_key"
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        for _ in range(50):
            value = path.read_text().strip()
            if value:
                return value
            import time

            time.sleep(0.01)
        raise RuntimeError(f"{path} is empty") from None
    value = secrets.token_urlsafe(48)
    with os.fdopen(fd, "w") as f:
        f.write(value + "\n")
    return value


@lru_cache
def get_settings() -> Settings:
    return Settings()
