"""Bring a database to the newest migration, and tell whether it is there."""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

MIGRATIONS = Path(__file__).parent / "migrations"
# The PostgreSQL advisory lock that lets one process at a time migrate a database.
MIGRATION_LOCK_KEY = int.from_bytes(b"clientsM", "big")


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()


def upgrade(url: str) -> None:
    """Alembic upgrade to head (runs its own event loop: call from sync code)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    if parsed.get_backend_name() == "postgresql":
        asyncio.run(_upgrade_locked(url))
    else:
        command.upgrade(alembic_config(url), "head")


async def _upgrade_locked(url: str) -> None:
    """Upgrade while holding an advisory lock: several processes starting at once (`serve` on
    many hosts, a rolling deploy) would otherwise race to create the same tables. The others
    wait, then find the database at head and do nothing."""
    engine = create_async_engine(url, poolclass=NullPool)
    try:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT pg_advisory_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
            await conn.commit()  # a session lock: it outlives this transaction
            try:
                await asyncio.to_thread(command.upgrade, alembic_config(url), "head")
            finally:
                await conn.execute(
                    text("SELECT pg_advisory_unlock(:key)"), {"key": MIGRATION_LOCK_KEY}
                )
                await conn.commit()
    finally:
        await engine.dispose()


async def upgrade_async(url: str) -> None:
    await asyncio.to_thread(upgrade, url)


def _current(connection: Connection) -> str | None:
    # A plain read rather than alembic's MigrationContext, which logs two INFO lines per call:
    # /readyz asks this on every probe.
    if not inspect(connection).has_table("alembic_version"):
        return None
    value = connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
    return None if value is None else str(value)


async def is_at_head(engine: AsyncEngine) -> bool:
    async with engine.connect() as conn:
        current = await conn.run_sync(_current)
    return current == head_revision()
