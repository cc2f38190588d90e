"""The taxSystem and invoiceReady filters are served from their indexes, in the default order
(newest first), on both engines: EXPLAIN of the statements the repository runs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import insert, text
from sqlalchemy.dialects import postgresql, sqlite

from app.clients.ids import new_client_id
from app.clients.repository import ClientRepository, SearchFilter
from app.core.clock import to_ms
from app.db.database import Database
from app.db.tables import Client as ClientRow
from tests.support import Key, create_key, unique_team

INDEXES = {
    "tax_system": "ix_clients_team_id_livemode_tax_system_created_at_id",
    "invoice_ready": "ix_clients_team_id_livemode_invoice_ready_created_at_id",
}


TEAM_SIZE = 5_000


@pytest.fixture(scope="module")
async def big_team(db: Database, engine_name: str) -> Key:
    """A team of TEAM_SIZE clients (10% invoice-ready, régimenes spread), with statistics:
    the planners choose as they would with real data, not as with an empty table."""
    key = await create_key(db, team=unique_team("explain"))
    start = datetime(2025, 1, 1, tzinfo=UTC)
    rows = [
        {
            "public_id": new_client_id(to_ms(start) + i),
            "team_id": key.team_id,
            "livemode": True,
            "name": f"Cliente {i}",
            "rfc": "XAXX010101000",
            "rfc_unique": None,
            "rfc_check_digit_valid": True,
            "search_text": f"cliente {i}\n",
            "created_at": start + timedelta(milliseconds=i),
            "updated_at": start + timedelta(milliseconds=i),
            "tax_system": ("601", "612", "626", None)[i % 4],
            "invoice_ready": i % 10 == 0,
        }
        for i in range(TEAM_SIZE)
    ]
    async with db.write() as session:
        await session.execute(insert(ClientRow), rows)
    async with db.write() as session:
        await session.execute(text("ANALYZE"))
    return key


async def _plan(db: Database, key: Key, search: SearchFilter, engine_name: str) -> str:
    repo = ClientRepository(db.dialect)
    async with db.read() as session:
        prepared = await repo.prepare(session, key.team_id, key.livemode, search)
        stmt = repo._list_stmt(prepared.page, None, 21, 0)
        dialect = postgresql.dialect() if engine_name == "postgres" else sqlite.dialect()
        sql = str(stmt.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))
        if engine_name == "postgres":
            rows = (await session.execute(text(f"EXPLAIN {sql}"))).all()
            return "\n".join(str(r[0]) for r in rows)
        rows = (await session.execute(text(f"EXPLAIN QUERY PLAN {sql}"))).all()
        return "\n".join(str(r[-1]) for r in rows)


@pytest.mark.parametrize(
    ("search", "index"),
    [
        (SearchFilter(tax_system="601"), "tax_system"),
        (SearchFilter(invoice_ready=True), "invoice_ready"),
        # 90% of the team: walking the newest-first index and skipping the few others is
        # as good (PostgreSQL does; SQLite takes the filter's index), never a sort.
        (SearchFilter(invoice_ready=False), None),
    ],
)
async def test_filter_uses_its_index_in_order(
    db: Database, big_team: Key, engine_name: str, search: SearchFilter, index: str | None
) -> None:
    plan = await _plan(db, big_team, search, engine_name)
    if index is not None:
        assert INDEXES[index] in plan, plan
    assert "USING INDEX" in plan or "Index Scan" in plan, plan
    assert "SCAN clients\n" not in plan + "\n" and "Seq Scan" not in plan, plan
    assert "TEMP B-TREE" not in plan and "Sort" not in plan, plan  # no sort: index order
