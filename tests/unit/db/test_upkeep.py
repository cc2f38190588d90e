"""SQLite upkeep (app/db/upkeep.py): the full-text index no longer merges inside inserts, the
background steps merge its segments, and searches answer the same before and after."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import text

from app.clients.types import ClientFilter, NewClient
from app.db.database import Database
from app.db.upkeep import SqliteUpkeep, start_upkeep
from tests.support import Key, new_rfc


async def _segments(db: Database) -> int:
    # The index's pages (leaves of every segment, and their headers): merging small
    # segments into one packs them into fewer pages.
    async with db.read() as session:
        pages = await session.execute(text("SELECT count(*) FROM clients_fts_data"))
        return int(pages.scalar_one())


async def _names(app: Any, key: Key, name: str) -> list[str]:
    service = app.app.state.services.clients
    page = await service.list(
        principal=key.principal, filters=ClientFilter(name=name), limit=100, with_total=True
    )
    return [*sorted(c.id for c in page.items), str(page.total)]


async def test_automerge_is_off_and_steps_merge_without_changing_answers(
    app: Any, db: Database, key_a: Key, engine_name: str
) -> None:
    if engine_name != "sqlite":
        pytest.skip("SQLite's full-text index only")
    async with db.read() as session:
        config = dict((await session.execute(text("SELECT k, v FROM clients_fts_config"))).all())
    assert config["automerge"] == 0 and config["crisismerge"] == 64
    service = app.app.state.services.clients
    for i in range(40):  # 40 write transactions: 40 small segments, none merged by inserts
        await service.create(
            principal=key_a.principal, data=NewClient(name=f"Upkeep Garcíaz {i}", rfc=new_rfc())
        )
    before_rows = await _segments(db)
    before = await _names(app, key_a, "garciaz")
    upkeep = SqliteUpkeep(db, interval_s=1)
    await upkeep.round()
    assert upkeep.steps > 0, "there were segments to merge"
    while await upkeep.merge_step():
        pass
    assert await _segments(db) < before_rows
    assert await _names(app, key_a, "garciaz") == before
    assert before[-1] == "40"
    async with db.write() as session:  # the index is whole and agrees with its content
        await session.execute(
            text("INSERT INTO clients_fts(clients_fts, rank) VALUES ('integrity-check', 1)")
        )


async def test_no_task_on_postgresql_or_when_off(db: Database, engine_name: str) -> None:
    assert start_upkeep(db, 0) is None
    if engine_name != "sqlite":
        assert start_upkeep(db, 1.0) is None
