"""SQLite upkeep off the request path: full-text index merges and WAL checkpoints.

Invariants:
- No request pays for a merge of the full-text index: migration 0007 turns FTS5's automerge
  off, so an insert only appends a small segment, and this task merges them a few pages at a
  time (`'merge', PAGES`), each step its own short write transaction, so a create waits for
  one step at most (a few milliseconds), never for a whole merge.
- No request pays for a WAL checkpoint either: request connections checkpoint only past
  `CHECKPOINT_SAFETY_PAGES` of WAL (app/db/database.py: a safety net when this task is not
  running), and this task runs passive checkpoints, which never wait for readers or writers.
- Answers never depend on it: a search reads every segment whether merged or not; merging
  only keeps the number of segments (and the read cost) small.

One task per server process (`serve --workers N` runs N; their steps queue on the write lock
like any writer). PostgreSQL has nothing to do here.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from sqlalchemy import text

from app.db.database import Database

log = logging.getLogger("clients.db")

PAGES = 32  # pages merged per step: a few milliseconds of the write lock
STEP_BUDGET_S = 0.2  # merge steps per round at most this long (then requests have the lock)
_MERGE = text("INSERT INTO clients_fts(clients_fts, rank) VALUES ('merge', :pages)")
_CHANGES = text("SELECT total_changes()")


class SqliteUpkeep:
    def __init__(self, db: Database, interval_s: float) -> None:
        self.db = db
        self.interval_s = interval_s
        self.steps = 0  # merge steps that found work (tests read it)

    async def run_forever(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            try:
                await self.round()
            except Exception as exc:  # a busy or broken database: try again next round
                log.warning("sqlite upkeep skipped a round: %r", exc)

    async def round(self) -> None:
        deadline = time.monotonic() + STEP_BUDGET_S
        for _ in range(1000):
            if time.monotonic() > deadline or not await self.merge_step():
                break
            await asyncio.sleep(0)  # let requests in between steps
        await self.checkpoint()

    async def merge_step(self) -> bool:
        """Merge up to PAGES pages of index segments; False when there was nothing to merge.
        (FTS5 says so only through the change counter: fewer than two changes is no work.)"""
        async with self.db.write() as session:
            before = (await session.execute(_CHANGES)).scalar_one()
            await session.execute(_MERGE, {"pages": PAGES})
            after = (await session.execute(_CHANGES)).scalar_one()
        worked = int(after) - int(before) >= 2
        self.steps += worked
        return worked

    async def checkpoint(self) -> None:
        # Outside any transaction: the driver connection itself, not a unit of work.
        async with self.db.engine.connect() as conn:
            raw: Any = (await conn.get_raw_connection()).driver_connection
            cursor = await raw.execute("PRAGMA wal_checkpoint(PASSIVE)")
            await cursor.close()


def start_upkeep(db: Database, interval_s: float) -> asyncio.Task[None] | None:
    """The upkeep task of this process (SQLite with a positive interval), or None."""
    if db.dialect != "sqlite" or interval_s <= 0:
        return None
    return asyncio.get_running_loop().create_task(SqliteUpkeep(db, interval_s).run_forever())
