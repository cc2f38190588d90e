"""Shared fixtures: a real, migrated database per test module, on SQLite or PostgreSQL.

TEST_DATABASE=sqlite (default) or postgres selects the engine. SQLite: one migrated file per
run, copied for each module. PostgreSQL (127.0.0.1:5432, user postgres, trust auth): one
migrated template database per run, and `CREATE DATABASE … TEMPLATE` for each module, dropped
after it.

Tests stay independent inside a module by using their own teams (the `key_*` fixtures make
new teams for every test), so nothing has to be cleaned between tests.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import secrets
import shutil
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from app.core.config import Settings
from app.db.database import Database
from app.db.migrate import upgrade
from app.main import create_app
from tests.support import TEST_SECRET, Key, create_key, new_rfc, unique_team

# The CI server; TEST_PG_HOST / TEST_PG_PORT point the suite at another one.
PG_HOST = os.environ.get("TEST_PG_HOST", "127.0.0.1")
PG_PORT = int(os.environ.get("TEST_PG_PORT", "5432"))
PG_USER = "postgres"
ENGINE = os.environ.get("TEST_DATABASE", "sqlite").strip().lower() or "sqlite"

if ENGINE not in ("sqlite", "postgres"):
    raise pytest.UsageError(f"TEST_DATABASE must be sqlite or postgres, not {ENGINE!r}")


def pg_url(name: str, *, driver: str = "postgresql+asyncpg") -> str:
    return f"{driver}://{PG_USER}@{PG_HOST}:{PG_PORT}/{name}"


async def pg_admin(*statements: str) -> None:
    """Run statements on the `postgres` maintenance database (CREATE/DROP DATABASE)."""
    import asyncpg

    conn = await asyncpg.connect(pg_url("postgres", driver="postgresql"), timeout=5)
    try:
        for sql in statements:
            await conn.execute(sql)
    finally:
        await conn.close()


def _pg_admin_sync(*statements: str) -> None:
    # Sync fixtures run outside the test loop, so a private loop is fine here.
    asyncio.run(pg_admin(*statements))


# -- databases --------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def engine_name() -> str:
    """`sqlite` or `postgres`: the engine this run tests."""
    return ENGINE


@pytest.fixture(scope="session")
def template_database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A migrated database to copy: a file path (SQLite) or a database name (PostgreSQL)."""
    if ENGINE == "sqlite":
        path = tmp_path_factory.mktemp("template") / "template.db"
        upgrade(f"sqlite+aiosqlite:///{path}")
        yield str(path)
        return
    name = f"clients_test_tmpl_{secrets.token_hex(4)}"
    try:
        _pg_admin_sync(f'CREATE DATABASE "{name}"')
    except (OSError, ConnectionError, TimeoutError) as exc:
        pytest.exit(
            f"TEST_DATABASE=postgres, but no PostgreSQL server answers at {PG_HOST}:{PG_PORT} "
            f"as user {PG_USER!r} ({type(exc).__name__}: {exc})",
            returncode=3,
        )
    try:
        upgrade(pg_url(name))
        yield name
    finally:
        _pg_admin_sync(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


_module_counter = itertools.count()


@pytest.fixture(scope="module")
def database_url(template_database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A fresh, migrated database for one test module (a SQLAlchemy URL)."""
    if ENGINE == "sqlite":
        path = tmp_path_factory.mktemp("db") / "clients.db"
        shutil.copyfile(template_database, path)
        yield f"sqlite+aiosqlite:///{path}"
        return
    name = f"{template_database}_{next(_module_counter)}"
    _pg_admin_sync(f'CREATE DATABASE "{name}" TEMPLATE "{template_database}"')
    try:
        yield pg_url(name)
    finally:
        _pg_admin_sync(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def make_settings(database_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": database_url,
        "app_env": "development",
        "secret_key": TEST_SECRET,
        "rate_limit_per_second": 0,
        **overrides,
    }
    return Settings(**values)


@pytest.fixture(scope="module")
def settings(database_url: str) -> Settings:
    return make_settings(database_url)


@pytest.fixture(scope="module")
async def app(settings: Settings) -> AsyncIterator[Any]:
    """The ASGI app as servers run it: EdgeMiddleware around FastAPI (`app.app`)."""
    asgi = create_app(settings)
    yield asgi
    await asgi.app.state.services.db.dispose()


@pytest.fixture(scope="module")
def db(app: Any) -> Database:
    """The app's own Database, for writing rows directly (invoices, payments, keys)."""
    database: Database = app.app.state.services.db
    return database


@pytest.fixture(scope="module")
async def client(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    """Real HTTP requests into the ASGI app."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        yield c


# -- keys and RFCs ------------------------------------------------------------------------


@pytest.fixture
def team_a() -> str:
    return unique_team("a")


@pytest.fixture
async def key_a(db: Database, team_a: str) -> Key:
    """Team A, live mode (a new team for every test)."""
    return await create_key(db, team=team_a, livemode=True)


@pytest.fixture
async def key_a_test(db: Database, team_a: str) -> Key:
    """Team A (the same team as key_a), test mode."""
    return await create_key(db, team=team_a, livemode=False)


@pytest.fixture
async def key_b(db: Database) -> Key:
    """Team B, live mode."""
    return await create_key(db, team=unique_team("b"), livemode=True)


@pytest.fixture
def rfc() -> str:
    """A valid RFC no other test uses."""
    return new_rfc()
