"""Engines and units of work.

`Database.read()` and `Database.write()` each yield an AsyncSession inside one transaction;
`Database.statement()` yields a connection in autocommit, for reads of a single statement.
On SQLite a write transaction starts with BEGIN IMMEDIATE, so concurrent writers queue on
the database lock (busy_timeout) instead of failing with SQLITE_BUSY when a read
transaction later tries to upgrade; reads start with a plain deferred BEGIN. On PostgreSQL
both are the same engine.

On SQLite the write units of one process also queue on an asyncio lock, first come first
served, before they ask for the database lock. SQLite's busy handler is no queue: a waiting
writer sleeps and polls with growing sleeps (up to 100 ms each), so under 8 concurrent creates
an unlucky one lost the race for a second or more while the lock sat idle between sleeps.
Write units never nest (on SQLite a nested one could never get the database lock either).
Writers in other processes (`serve --workers N`, the CLI) still meet at the busy handler.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from app.core.config import Settings
from app.core.errors import ServiceUnavailable
from app.db.dialect import describe, is_unavailable

log = logging.getLogger("clients.db")

# SQLite: a request connection checkpoints the WAL only past this many pages (~80 MB); below
# it, app/db/upkeep.py checkpoints in the background, so no commit waits for one.
CHECKPOINT_SAFETY_PAGES = 20_000


def _sqlite_engine(settings: Settings, *, begin: str | None) -> AsyncEngine:
    url = make_url(settings.database_url)
    if url.database and url.database != ":memory:":
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_async_engine(
        url,
        # A failing statement's message would otherwise carry its parameters (RFCs, emails)
        # into the trace that is logged.
        hide_parameters=True,
        # Every connection is kept once opened (an SQLite connection is a thread and a file
        # handle in this process, and opening one runs five PRAGMAs): no overflow that is
        # closed on return and opened again by the next request. The cap is the same.
        pool_size=settings.db_pool_size + settings.db_max_overflow,
        max_overflow=0,
        pool_timeout=settings.db_pool_timeout,
        pool_pre_ping=False,
        # Without BEGIN no transaction is ever open, so there is nothing to roll back when a
        # connection goes back to the pool (a rollback would be one more trip to its thread).
        pool_reset_on_return="rollback" if begin else None,
    )
    busy_ms = settings.sqlite_busy_timeout_ms
    synchronous = settings.sqlite_synchronous

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Take transaction control away from the driver; the "begin" hook below issues it.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute(f"PRAGMA busy_timeout={int(busy_ms)}")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute(f"PRAGMA synchronous={synchronous}")
        cur.execute(f"PRAGMA wal_autocheckpoint={CHECKPOINT_SAFETY_PAGES}")
        cur.close()

    if begin is not None:

        @event.listens_for(engine.sync_engine, "begin")
        def _on_begin(conn: Any) -> None:
            conn.exec_driver_sql(begin)

    else:
        _skip_needless_rollbacks(engine)
    return engine


def _skip_needless_rollbacks(engine: AsyncEngine) -> None:
    """A connection that never sends BEGIN has no transaction to roll back when SQLAlchemy
    closes its (implicit) one: skip that trip to aiosqlite's thread unless SQLite says a
    transaction is open (asked of the sqlite3 connection directly, no trip)."""
    dialect = engine.sync_engine.dialect
    roll_back = dialect.do_rollback

    def do_rollback(dbapi_connection: Any) -> None:
        sqlite_conn = getattr(getattr(dbapi_connection, "_connection", None), "_conn", None)
        if sqlite_conn is None or sqlite_conn.in_transaction:
            roll_back(dbapi_connection)

    dialect.do_rollback = do_rollback  # type: ignore[method-assign]


def _postgres_engine(settings: Settings) -> AsyncEngine:
    server_settings = {"application_name": "clients-gateway"}
    connect_args: dict[str, Any] = {
        "timeout": settings.db_connect_timeout,
        "server_settings": server_settings,
    }
    if settings.db_statement_timeout_ms:
        server_settings["statement_timeout"] = str(settings.db_statement_timeout_ms)
        # The client-side bound, a second after the server's: it also covers a server that
        # stopped answering altogether (the pre-ping of a pooled connection included).
        connect_args["command_timeout"] = settings.db_statement_timeout_ms / 1000 + 1
    engine = create_async_engine(
        settings.database_url,
        hide_parameters=True,  # no RFC or email in a logged trace (see _sqlite_engine)
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_timeout=settings.db_pool_timeout,
        # Pooled connections are checked before use by _ping_idle_connections instead.
        pool_pre_ping=False,
        pool_recycle=settings.db_pool_recycle,
        connect_args=connect_args,
    )
    _ping_idle_connections(engine)
    return engine


# A pooled connection idle this long is pinged before it is handed out (see below).
PING_AFTER_IDLE_S = 1.0


def _ping_idle_connections(engine: AsyncEngine) -> None:
    """A pooled connection that has been idle for a while is pinged before use, so a server
    restart costs one failed ping per stale connection instead of a failed request; one
    returned less than PING_AFTER_IDLE_S ago is not (a restart takes longer than that, and
    under load every connection is that fresh), and the ping is one round trip (`;`).

    SQLAlchemy's `pool_pre_ping` pinged every checkout, and on asyncpg outside a
    transaction as BEGIN, `;`, ROLLBACK: three round trips before every statement, six per
    authenticated read — more than the reads themselves. A failed ping raises
    DisconnectionError, on which the pool discards the connection and opens another."""

    @event.listens_for(engine.sync_engine, "checkin")
    def _returned(_dbapi_conn: Any, record: Any) -> None:
        record.info["returned_at"] = time.monotonic()

    @event.listens_for(engine.sync_engine, "checkout")
    def _checked_out(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        returned = record.info.get("returned_at")
        if returned is None or time.monotonic() - returned < PING_AFTER_IDLE_S:
            return  # new (just connected), or in use a moment ago
        try:
            dbapi_conn.run_async(lambda conn: conn.fetchrow(";"))
        except Exception as exc:
            raise sa_exc.DisconnectionError(describe(exc)) from exc


class Database:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        if settings.is_sqlite:
            self.engine = _sqlite_engine(settings, begin="BEGIN")
            self.write_engine = _sqlite_engine(settings, begin="BEGIN IMMEDIATE")
            self.statement_engine = _sqlite_engine(settings, begin=None)
        else:
            self.engine = _postgres_engine(settings)
            self.write_engine = self.engine
            # The same pool; each checkout in autocommit (asyncpg: no BEGIN, no COMMIT).
            self.statement_engine = self.engine.execution_options(isolation_level="AUTOCOMMIT")
        self.dialect = self.engine.dialect.name
        # Called with a session's `info` after each unit of work commits.
        self.after_commit: list[Callable[[dict[Any, Any]], None]] = []
        self._read = async_sessionmaker(self.engine, expire_on_commit=False, autoflush=False)
        self._write = async_sessionmaker(self.write_engine, expire_on_commit=False, autoflush=False)
        self._write_queue = asyncio.Lock() if settings.is_sqlite else None

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        async with self._unit(self._read) as session:
            yield session

    @asynccontextmanager
    async def statement(self) -> AsyncIterator[AsyncConnection]:
        """A connection outside any transaction, for reads of ONE statement (a single
        statement sees one consistent snapshot on both engines): no BEGIN and no COMMIT,
        which are round trips of their own (to aiosqlite's thread, or to the server)."""
        try:
            async with self.statement_engine.connect() as conn:
                yield conn
        except sa_exc.IntegrityError:
            raise
        except (sa_exc.SQLAlchemyError, OSError) as exc:
            if is_unavailable(exc):
                log.warning("database unavailable: %s", describe(exc))
                raise ServiceUnavailable() from exc
            raise

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncSession]:
        if self._write_queue is None:
            async with self._unit(self._write) as session:
                yield session
            return
        async with self._write_queue, self._unit(self._write) as session:
            yield session

    @asynccontextmanager
    async def _unit(self, factory: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
        try:
            async with factory() as session:
                async with session.begin():
                    yield session
                # Committed: tell who asked (the events outbox wakes its readers).
                for hook in self.after_commit:
                    hook(session.info)
        except sa_exc.IntegrityError:
            raise
        except (sa_exc.SQLAlchemyError, OSError) as exc:
            if is_unavailable(exc):
                log.warning("database unavailable: %s", describe(exc))
                raise ServiceUnavailable() from exc
            raise

    @property
    def engines(self) -> tuple[AsyncEngine, ...]:
        """The engines with a pool of their own (SQLite: reads, writes, statements; PostgreSQL:
        one, whose autocommit variant shares its pool and its event listeners)."""
        if self.settings.is_sqlite:
            return (self.engine, self.write_engine, self.statement_engine)
        return (self.engine,)

    async def dispose(self) -> None:
        for engine in self.engines:
            await engine.dispose()
