"""The one place that tells SQLite from PostgreSQL: upserts and what a driver error means.

Repositories ask `insert(dialect, table)` for an INSERT that has `on_conflict_do_nothing` /
`on_conflict_do_update` (both engines spell them the same in SQLAlchemy, from different
modules), and classify failures by the engines' typed codes, never by message text where a
code exists: PostgreSQL's SQLSTATE (with the constraint name asyncpg reports) and SQLite's
extended result code name (`sqlite_errorname`). SQLite names the columns of a unique
violation, not the index: that one check reads the message, as the engine gives no better.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects.postgresql import Insert as PgInsert
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import Insert as SqliteInsert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

POSTGRESQL = "postgresql"
SQLITE = "sqlite"

UNIQUE_VIOLATION = "23505"
FOREIGN_KEY_VIOLATION = "23503"

# PostgreSQL SQLSTATE classes that mean "not now" rather than "wrong": connection exceptions
# (08), insufficient resources (53, e.g. too many connections), operator intervention (57:
# admin or crash shutdown, starting up, and 57014, the statement_timeout), system errors (58).
# asyncpg's errors outside its IntegrityError/ProgrammingError families reach SQLAlchemy as a
# plain DBAPIError, so the SQLSTATE is the only reliable sign.
UNAVAILABLE_SQLSTATE_CLASSES = ("08", "53", "57", "58")

# SQLite result codes (and their extended forms) that mean the same: the file is locked past
# busy_timeout, cannot be opened, read or written, or the disk is full or read-only. Others
# (SQLITE_ERROR for a missing table or column, SQLITE_CORRUPT...) are faults: 500.
UNAVAILABLE_SQLITE_CODES = (
    "SQLITE_BUSY",
    "SQLITE_LOCKED",
    "SQLITE_IOERR",
    "SQLITE_CANTOPEN",
    "SQLITE_FULL",
    "SQLITE_READONLY",
    "SQLITE_PROTOCOL",
    "SQLITE_NOMEM",
)

# Failures that mean "the database cannot be reached" when no code says more.
_UNAVAILABLE = (
    sa_exc.OperationalError,
    sa_exc.InterfaceError,
    sa_exc.TimeoutError,
    sa_exc.DisconnectionError,
    ConnectionError,
    OSError,  # TimeoutError (connect or command timeout) included
)


def insert(dialect: str, table: Table) -> PgInsert | SqliteInsert:
    """INSERT into `table` with the engine's ON CONFLICT clauses available."""
    return pg_insert(table) if dialect == POSTGRESQL else sqlite_insert(table)


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


def sqlite_errorname(exc: BaseException) -> str | None:
    """SQLite's extended result code name (`SQLITE_CONSTRAINT_UNIQUE`...), if any."""
    for candidate in (getattr(exc, "orig", None), driver_error(exc)):
        name = getattr(candidate, "sqlite_errorname", None)
        if isinstance(name, str):
            return name
    return None


def constraint_name(exc: BaseException) -> str | None:
    """The constraint PostgreSQL names in a violation (SQLite names none)."""
    name = getattr(driver_error(exc), "constraint_name", None)
    return name if isinstance(name, str) else None


def is_unique_violation(
    exc: sa_exc.IntegrityError, *, constraint: str, sqlite_columns: str
) -> bool:
    """A unique violation of `constraint` (PostgreSQL) or on `sqlite_columns` ("table.col",
    as SQLite's message names them)."""
    if sqlstate(exc) is not None:
        return sqlstate(exc) == UNIQUE_VIOLATION and constraint_name(exc) == constraint
    if sqlite_errorname(exc) == "SQLITE_CONSTRAINT_UNIQUE":
        return sqlite_columns in str(exc.orig)
    return False


def is_foreign_key_violation(exc: sa_exc.IntegrityError, *, constraints: frozenset[str]) -> bool:
    """A foreign key among `constraints` refused the write (SQLite does not say which)."""
    if sqlstate(exc) is not None:
        return sqlstate(exc) == FOREIGN_KEY_VIOLATION and constraint_name(exc) in constraints
    return sqlite_errorname(exc) == "SQLITE_CONSTRAINT_FOREIGNKEY"


def is_unavailable(exc: BaseException) -> bool:
    """The database cannot answer now (a 503), as opposed to a fault (a 500)."""
    if isinstance(exc, sa_exc.DBAPIError):
        if exc.connection_invalidated:
            return True
        code = sqlstate(exc)
        if code is not None:
            return code[:2] in UNAVAILABLE_SQLSTATE_CLASSES
        name = getattr(driver_error(exc), "sqlite_errorname", None)
        if isinstance(name, str):
            return name.startswith(UNAVAILABLE_SQLITE_CODES)
        # No code at all (asyncpg's InterfaceError "connection is closed", say).
        return isinstance(exc, sa_exc.OperationalError | sa_exc.InterfaceError)
    return isinstance(exc, _UNAVAILABLE)


def describe(exc: BaseException) -> str:
    """The kind of failure, for the log: class names and SQLSTATE, never statements or data."""
    inner = driver_error(exc)
    code = sqlstate(exc)
    parts = [type(exc).__name__]
    if inner is not None:
        parts.append(type(inner).__name__)
    if code:
        parts.append(f"SQLSTATE {code}")
    return " / ".join(parts)


__all__: list[Any] = [
    "POSTGRESQL",
    "SQLITE",
    "constraint_name",
    "describe",
    "driver_error",
    "insert",
    "is_foreign_key_violation",
    "is_unavailable",
    "is_unique_violation",
    "sqlite_errorname",
    "sqlstate",
]
