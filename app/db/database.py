"""Engines and units of work.

`Database.read()` and `Database.write()` each yield an AsyncSession inside one transaction.
On SQLite a write transaction starts with BEGIN IMMEDIATE, so concurrent writers queue on
the database lock (busy_timeout) instead of failing with SQLITE_BUSY when a read
transaction later tries to upgrade; reads start with a plain deferred BEGIN. On PostgreSQL
both are the same engine.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from app.core.config import Settings
from app.core.errors import ServiceUnavailable

log = logging.getLogger("clients.db")

# Failures that mean "the database cannot be reached", answered 503 rather than 500.
_UNAVAILABLE = (
    sa_exc.OperationalError,
    sa_exc.InterfaceError,
    sa_exc.TimeoutError,
    sa_exc.DisconnectionError,
    ConnectionError,
    OSError,  # TimeoutError (connect or command timeout) included
)

# PostgreSQL SQLSTATEs that mean "not now" rather than "wrong": connection exceptions (08),
# insufficient resources (53, e.g. too many connections), operator intervention (57: admin or
# crash shutdown, starting up, and 57014, the statement_timeout), system errors (58).
# asyncpg's errors outside its IntegrityError/ProgrammingError families reach SQLAlchemy as a
# plain DBAPIError, so the SQLSTATE is the only reliable sign.
_UNAVAILABLE_SQLSTATE_CLASSES = ("08", "53", "57", "58")

# SQLite result codes (and their extended forms) that mean the same: the file is locked past
# busy_timeout, cannot be opened, read or written, or the disk is full or read-only. Others
# (SQLITE_ERROR for a missing table or column, SQLITE_CORRUPT...) are faults: 500.
_UNAVAILABLE_SQLITE_CODES = (
    "SQLITE_BUSY",
    "SQLITE_LOCKED",
    "SQLITE_IOERR",
    "SQLITE_CANTOPEN",
    "SQLITE_FULL",
    "SQLITE_READONLY",
    "SQLITE_PROTOCOL",
    "SQLITE_NOMEM",
)


def driver_error(exc: BaseException) -> BaseException | None:
    """The driver's own exception behind a SQLAlchemy one (asyncpg's, or sqlite3's)."""
    orig = getattr(exc, "orig", None)
    if orig is None:
        return None
    # SQLAlchemy 2.1 wraps asyncpg's exceptions in emulated DBAPI ones that keep the
    # original as `.orig` (and as `__cause__`); sqlite3's are the DBAPI exceptions themselves.
    inner = getattr(orig, "orig", None) or orig.__cause__
    return inner if isinstance(inner, Exception) else orig


def sqlstate(exc: BaseException) -> str | None:
    """The PostgreSQL SQLSTATE of a SQLAlchemy exception, if any."""
    for candidate in (driver_error(exc), getattr(exc, "orig", None)):
        code = getattr(candidate, "sqlstate", None)
        if isinstance(code, str):
            return code
    return None


def is_unavailable(exc: BaseException) -> bool:
    if isinstance(exc, sa_exc.DBAPIError):
        if exc.connection_invalidated:
            return True
        code = sqlstate(exc)
        if code is not None:
            return code[:2] in _UNAVAILABLE_SQLSTATE_CLASSES
        name = getattr(driver_error(exc), "sqlite_errorname", None)
        if isinstance(name, str):
            return name.startswith(_UNAVAILABLE_SQLITE_CODES)
        # No code at all (asyncpg's InterfaceError "connection is closed", say).
        return isinstance(exc, sa_exc.OperationalError | sa_exc.InterfaceError)
    return isinstance(exc, _UNAVAILABLE)


def _sqlite_engine(settings: Settings, *, immediate: bool) -> AsyncEngine:
    url = make_url(settings.database_url)
    if url.database and url.database != ":memory:":
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_async_engine(
        url,
        # A failing statement's message would otherwise carry its parameters (RFCs, emails)
        # into the trace that is logged.
        hide_parameters=True,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_timeout=settings.db_pool_timeout,
        pool_pre_ping=False,
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
        cur.close()

    begin = "BEGIN IMMEDIATE" if immediate else "BEGIN"

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql(begin)

    return engine


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
    return create_async_engine(
        settings.database_url,
        hide_parameters=True,  # no RFC or email in a logged trace (see _sqlite_engine)
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_timeout=settings.db_pool_timeout,
        # A pooled connection is checked before use, so a server restart costs one failed
        # ping per stale connection instead of a failed request.
        pool_pre_ping=True,
        pool_recycle=settings.db_pool_recycle,
        connect_args=connect_args,
    )


class Database:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        if settings.is_sqlite:
            self.engine = _sqlite_engine(settings, immediate=False)
            self.write_engine = _sqlite_engine(settings, immediate=True)
        else:
            self.engine = _postgres_engine(settings)
            self.write_engine = self.engine
        self.dialect = self.engine.dialect.name
        # Called with a session's `info` after each unit of work commits.
        self.after_commit: list[Callable[[dict[Any, Any]], None]] = []
        self._read = async_sessionmaker(self.engine, expire_on_commit=False, autoflush=False)
        self._write = async_sessionmaker(self.write_engine, expire_on_commit=False, autoflush=False)

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        async with self._unit(self._read) as session:
            yield session

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncSession]:
        async with self._unit(self._write) as session:
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
                log.warning("database unavailable: %s", _describe(exc))
                raise ServiceUnavailable() from exc
            raise

    async def dispose(self) -> None:
        await self.engine.dispose()
        if self.write_engine is not self.engine:
            await self.write_engine.dispose()


def _describe(exc: BaseException) -> str:
    """The kind of failure, for the log: class names and SQLSTATE, never statements or data."""
    inner = driver_error(exc)
    code = sqlstate(exc)
    parts = [type(exc).__name__]
    if inner is not None:
        parts.append(type(inner).__name__)
    if code:
        parts.append(f"SQLSTATE {code}")
    return " / ".join(parts)
