"""PostgreSQL as a first-class engine: the migrations, the constraints PostgreSQL enforces
itself, how its errors are recognised, the pool settings, and answers identical to SQLite's.

Runs in the TEST_DATABASE=postgres half, against the shared server (127.0.0.1:5432) through the
suite's per-module database, plus databases of its own where a test needs an empty one.
"""

from __future__ import annotations

import asyncio
import secrets
import subprocess
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from sqlalchemy import exc as sa_exc
from sqlalchemy import insert, inspect, select, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from app.clients.repository import (
    RFC_UNIQUE_CONSTRAINT,
    ClientRepository,
    RfcTaken,
    StillReferenced,
    _is_fk_violation,
    _is_rfc_violation,
)
from app.core.config import Settings
from app.core.errors import ServiceUnavailable
from app.db import database
from app.db.database import Database
from app.db.migrate import alembic_config, head_revision, upgrade
from app.db.tables import ClientRow, Invoice, Payment
from app.main import create_app
from tests.e2e.pg_support import PYTHON, base_env, only_on_postgres
from tests.support import TEST_SECRET, Key, new_rfc

pytestmark = only_on_postgres

ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"
GENERIC_RFC = "XAXX010101000"


async def admin(*statements: str) -> None:
    conn = await asyncpg.connect(ADMIN_DSN, timeout=10)
    try:
        for sql in statements:
            await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture
def empty_database() -> Iterator[str]:
    """A new, empty database on the shared server (a SQLAlchemy URL); dropped afterwards."""
    name = f"clients_test_empty_{secrets.token_hex(4)}"
    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    try:
        yield f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"
    finally:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


# -- migrations -------------------------------------------------------------------------------

# Search structures that exist on one engine only, by design of migration 0002: SQLite's FTS5
# table (and its shadow tables), PostgreSQL's trigram index.
ENGINE_SPECIFIC_TABLE_PREFIX = "clients_fts"
ENGINE_SPECIFIC_INDEXES = {"ix_clients_search_text_trgm"}


def schema_names(conn: Connection) -> dict[str, set[tuple[str, str | None]]]:
    """Per table, every constraint and index name as the engine reports it."""
    found = inspect(conn)
    names: dict[str, set[tuple[str, str | None]]] = {}
    for table in found.get_table_names():
        if table.startswith(ENGINE_SPECIFIC_TABLE_PREFIX):
            continue
        objects = {("pk", found.get_pk_constraint(table).get("name"))}
        objects |= {("uq", u["name"]) for u in found.get_unique_constraints(table)}
        objects |= {("fk", f["name"]) for f in found.get_foreign_keys(table)}
        objects |= {
            ("ix", i["name"])
            for i in found.get_indexes(table)
            # PostgreSQL also lists the index behind each unique constraint.
            if not i.get("duplicates_constraint") and i["name"] not in ENGINE_SPECIFIC_INDEXES
        }
        objects |= {("ck", c["name"]) for c in found.get_check_constraints(table)}
        names[table] = objects
    return names


async def reflect(url: str) -> dict[str, set[tuple[str, str | None]]]:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(schema_names)
    finally:
        await engine.dispose()


def test_migrations_give_postgresql_the_same_constraint_and_index_names_as_sqlite(
    empty_database: str, tmp_path: Path
) -> None:
    sqlite_url = f"sqlite+aiosqlite:///{tmp_path / 'names.db'}"
    upgrade(sqlite_url)
    upgrade(empty_database)
    on_sqlite = asyncio.run(reflect(sqlite_url))
    on_postgres = asyncio.run(reflect(empty_database))
    # SQLite cannot name an AUTOINCREMENT primary key (AUTOINCREMENT is a column constraint
    # only): the tables whose ids must never be reused (events and deliveries, read with
    # `after` cursors) have their primary key unnamed there, named on PostgreSQL.
    for table in ("events", "webhook_deliveries"):
        assert ("pk", None) in on_sqlite[table]
        on_sqlite[table] = (on_sqlite[table] - {("pk", None)}) | {("pk", f"pk_{table}")}
    assert on_postgres == on_sqlite
    assert ("uq", RFC_UNIQUE_CONSTRAINT) in on_postgres["clients"]
    assert ("fk", "fk_invoices_client_id_clients") in on_postgres["invoices"]


def test_concurrent_migrations_of_an_empty_database_all_succeed(empty_database: str) -> None:
    """Several processes starting at once (a rolling deploy) migrate one at a time."""
    env = base_env(DATABASE_URL=empty_database)
    procs = [
        subprocess.Popen(
            [PYTHON, "-m", "app", "migrate"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for _ in range(3)
    ]
    outputs = [p.communicate(timeout=120)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], outputs

    async def version() -> str:
        conn = await asyncpg.connect(empty_database.replace("+asyncpg", ""), timeout=10)
        try:
            return str(await conn.fetchval("SELECT version_num FROM alembic_version"))
        finally:
            await conn.close()

    assert asyncio.run(version()) == head_revision()


def test_migrations_downgrade_to_nothing_and_upgrade_again(empty_database: str) -> None:
    from alembic import command

    upgrade(empty_database)
    command.downgrade(alembic_config(empty_database), "base")

    async def tables() -> set[str]:
        conn = await asyncpg.connect(empty_database.replace("+asyncpg", ""), timeout=10)
        try:
            rows = await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
            return {r["tablename"] for r in rows}
        finally:
            await conn.close()

    assert asyncio.run(tables()) <= {"alembic_version"}
    upgrade(empty_database)
    assert {"clients", "invoices", "payments", "teams", "api_keys"} <= asyncio.run(tables())


# -- constraints and how their violations are recognised --------------------------------------


def client_values(key: Key, rfc: str, *, livemode: bool | None = None) -> dict[str, Any]:
    now = datetime.now(UTC)
    return {
        "public_id": "client_" + secrets.token_hex(13).upper()[:26],
        "team_id": key.team_id,
        "livemode": key.livemode if livemode is None else livemode,
        "name": "Directo",
        "rfc": rfc,
        "rfc_unique": None if rfc == GENERIC_RFC else rfc,
        "rfc_check_digit_valid": True,
        "search_text": "directo\n",
        "created_at": now,
        "updated_at": now,
    }


async def insert_row(db: Database, values: dict[str, Any]) -> int:
    async with db.write() as session:
        row_id = (
            await session.execute(insert(ClientRow).values(**values).returning(ClientRow.id))
        ).scalar_one()
    return int(row_id)


async def test_postgresql_itself_enforces_rfc_uniqueness_per_team_and_mode(
    db: Database, key_a: Key, key_b: Key
) -> None:
    """Plain INSERTs, no service in between: the database refuses the duplicate."""
    rfc = new_rfc()
    await insert_row(db, client_values(key_a, rfc))
    await insert_row(db, client_values(key_a, rfc, livemode=not key_a.livemode))  # other mode
    await insert_row(db, client_values(key_b, rfc))  # other team
    with pytest.raises(sa_exc.IntegrityError) as caught:
        await insert_row(db, client_values(key_a, rfc))
    assert _is_rfc_violation(caught.value)
    assert not _is_fk_violation(caught.value)


async def test_the_generic_rfcs_are_exempt_in_the_database_too(db: Database, key_a: Key) -> None:
    for _ in range(3):
        await insert_row(db, client_values(key_a, GENERIC_RFC))
    async with db.read() as session:
        count = (
            await session.execute(
                select(ClientRow.id).where(
                    ClientRow.team_id == key_a.team_id, ClientRow.rfc == GENERIC_RFC
                )
            )
        ).all()
    assert len(count) == 3


async def test_other_violations_are_not_mistaken_for_rfc_or_in_use(
    db: Database, key_a: Key
) -> None:
    values = client_values(key_a, new_rfc())
    await insert_row(db, values)
    # Same public id: a unique violation, but not of the RFC constraint.
    with pytest.raises(sa_exc.IntegrityError) as same_id:
        await insert_row(db, {**values, "rfc": new_rfc(), "rfc_unique": None})
    assert not _is_rfc_violation(same_id.value)
    # A team that does not exist: a foreign-key violation, but not a reference to a client.
    with pytest.raises(sa_exc.IntegrityError) as no_team:
        await insert_row(db, {**client_values(key_a, new_rfc()), "team_id": 2**40})
    assert not _is_fk_violation(no_team.value)
    assert not _is_rfc_violation(no_team.value)


async def test_a_duplicate_insert_leaves_the_transaction_usable(db: Database, key_a: Key) -> None:
    """ON CONFLICT DO NOTHING: no error, so the owner can be read in the same transaction
    (after a unique violation PostgreSQL would refuse every further statement)."""
    repo = ClientRepository(db.dialect)
    rfc = new_rfc()
    async with db.write() as session:
        first = await repo.insert(session, client_values(key_a, rfc))
        second = await repo.insert(session, client_values(key_a, rfc))
        owner = await repo.rfc_owner(session, key_a.team_id, key_a.livemode, rfc)
    assert first is not None and second is None
    assert owner is not None and owner.startswith("client_")


async def test_an_update_to_a_taken_rfc_is_recognised_and_the_transaction_goes_on(
    db: Database, key_a: Key
) -> None:
    repo = ClientRepository(db.dialect)
    taken, mine = new_rfc(), new_rfc()
    await insert_row(db, client_values(key_a, taken))
    row_id = await insert_row(db, client_values(key_a, mine))
    async with db.write() as session:
        with pytest.raises(RfcTaken):
            await repo.update(session, row_id, {"rfc": taken, "rfc_unique": taken})
        # The savepoint was rolled back, not the transaction.
        assert await repo.rfc_owner(session, key_a.team_id, key_a.livemode, taken) is not None
        await repo.update(session, row_id, {"name": "Sigue"})
    async with db.read() as session:
        name = (
            await session.execute(select(ClientRow.name).where(ClientRow.id == row_id))
        ).scalar_one()
    assert name == "Sigue"


@pytest.mark.parametrize("table", [Invoice, Payment])
async def test_a_delete_refused_by_a_reference_is_recognised(
    db: Database, key_a: Key, table: Any
) -> None:
    """The race the service guards against (an invoice arriving after its count): the
    foreign key refuses the DELETE, which becomes StillReferenced, i.e. CLIENT_IN_USE."""
    repo = ClientRepository(db.dialect)
    row_id = await insert_row(db, client_values(key_a, new_rfc()))
    amount = "total_cents" if table is Invoice else "amount_cents"
    async with db.write() as session:
        await session.execute(
            insert(table).values(client_id=row_id, created_at=datetime.now(UTC), **{amount: 100})
        )
    async with db.write() as session:
        with pytest.raises(StillReferenced):
            await repo.delete(session, row_id)
        assert await repo.usage(session, row_id) == ((1, 0) if table is Invoice else (0, 1))


# -- pool settings and the 503 mapping --------------------------------------------------------


async def test_pool_settings_come_from_the_environment(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("DB_POOL_SIZE", "2")
    monkeypatch.setenv("DB_MAX_OVERFLOW", "1")
    monkeypatch.setenv("DB_POOL_TIMEOUT", "4")
    monkeypatch.setenv("DB_STATEMENT_TIMEOUT_MS", "1234")
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    db = Database(settings)
    try:
        pool: Any = db.engine.pool
        assert (pool.size(), pool._max_overflow, pool._timeout) == (2, 1, 4.0)
        async with db.read() as session:
            timeout = (await session.execute(text("SHOW statement_timeout"))).scalar_one()
            app_name = (await session.execute(text("SHOW application_name"))).scalar_one()
        assert timeout == "1234ms"
        assert app_name == "clients-gateway"
    finally:
        await db.dispose()


async def test_an_idle_connection_whose_server_side_ended_is_replaced_before_use(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A pooled connection idle past PING_AFTER_IDLE_S is pinged before use: one whose
    backend ended meanwhile (as in a server restart) is replaced, and the read succeeds."""
    monkeypatch.setattr(database, "PING_AFTER_IDLE_S", 0.2)
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("DB_POOL_SIZE", "1")
    monkeypatch.setenv("DB_MAX_OVERFLOW", "0")
    db = Database(Settings(_env_file=None))  # type: ignore[call-arg]
    try:
        async with db.read() as session:
            first = (await session.execute(text("SELECT pg_backend_pid()"))).scalar_one()
        url = database_url.replace("postgresql+asyncpg://", "postgresql://")
        other = await asyncpg.connect(url)
        try:
            assert await other.fetchval("SELECT pg_terminate_backend($1)", first)
        finally:
            await other.close()
        await asyncio.sleep(0.3)
        async with db.read() as session:
            second = (await session.execute(text("SELECT pg_backend_pid()"))).scalar_one()
        assert second != first
    finally:
        await db.dispose()


async def test_the_defaults_are_sound() -> None:
    settings = Settings(_env_file=None, database_url="postgresql+asyncpg://x@127.0.0.1/x")  # type: ignore[call-arg]
    # Four workers stay under PostgreSQL's default max_connections (100).
    assert 4 * (settings.db_pool_size + settings.db_max_overflow) < 100
    assert 0 < settings.db_connect_timeout <= settings.db_pool_timeout
    assert settings.db_statement_timeout_ms > 0


async def test_a_statement_past_the_timeout_is_service_unavailable(database_url: str) -> None:
    db = Database(Settings(_env_file=None, database_url=database_url, db_statement_timeout_ms=300))  # type: ignore[call-arg]
    try:
        with pytest.raises(ServiceUnavailable):
            async with db.read() as session:
                await session.execute(text("SELECT pg_sleep(5)"))
        # The same pool serves the next unit of work.
        async with db.read() as session:
            assert (await session.execute(text("SELECT 1"))).scalar_one() == 1
    finally:
        await db.dispose()


async def test_an_unreachable_server_is_service_unavailable() -> None:
    from tests.e2e.pg_support import free_port

    url = f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/nothing"
    db = Database(Settings(_env_file=None, database_url=url, db_connect_timeout=2))  # type: ignore[call-arg]
    try:
        with pytest.raises(ServiceUnavailable):
            async with db.read() as session:
                await session.execute(text("SELECT 1"))
    finally:
        await db.dispose()


# -- the same answers as SQLite ---------------------------------------------------------------

NAMES = [
    ("Comercial México", None),
    ("MEXICANA DE AVIACION", None),
    ("Niño Feliz", "NIÑOS FELICES SA DE CV"),
    ("50% Descuento", None),
    ("a_b Distribuidora", None),
    ("Barra \\ Invertida", None),
    ("Straße Import", "Ærø Ltd"),
    ("Ωmega Ελλάδα", None),
    ("Cliente común", "Comunidad Común SC"),
    ('Taller "El Güero"', None),
]

QUERIES = {
    "mexico": {"Comercial México"},
    "MÉXICO": {"Comercial México"},
    "méx": {"Comercial México", "MEXICANA DE AVIACION"},
    "nino": {"Niño Feliz"},
    "NIÑOS": {"Niño Feliz"},
    "%": {"50% Descuento"},
    "50%": {"50% Descuento"},
    "_": {"a_b Distribuidora"},
    "a_b": {"a_b Distribuidora"},
    "\\": {"Barra \\ Invertida"},
    "strasse": {"Straße Import"},
    "ærø": {"Straße Import"},
    "ελλαδα": {"Ωmega Ελλάδα"},
    "ΩMEGA": {"Ωmega Ελλάδα"},
    "comun": {"Cliente común"},
    "co": {"Comercial México", "Cliente común"},  # two characters: too short for trigrams
    '"el guero"': {'Taller "El Güero"'},
    "güero": {'Taller "El Güero"'},
    "feliz niño": set(),  # no match spans name and legal name in the wrong order
    "zzz": set(),
}


async def _search_answers(client: httpx.AsyncClient, key: Key) -> dict[str, set[str]]:
    for name, legal in NAMES:
        r = await client.post(
            "/v2/clients",
            json={"name": name, "legalName": legal, "rfc": new_rfc()},
            headers=key.headers,
        )
        assert r.status_code == 201, r.text
    answers: dict[str, set[str]] = {}
    for query in QUERIES:
        r = await client.get(
            "/v2/clients", params={"name": query, "limit": 100}, headers=key.headers
        )
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["totalResults"] == len(body["data"])
        answers[query] = {c["name"] for c in body["data"]}
    return answers


@pytest.fixture
async def sqlite_client(tmp_path: Path) -> AsyncIterator[tuple[httpx.AsyncClient, Key]]:
    from tests.support import create_key, unique_team

    url = f"sqlite+aiosqlite:///{tmp_path / 'search.db'}"
    await asyncio.to_thread(upgrade, url)
    app = create_app(
        Settings(_env_file=None, database_url=url, secret_key=TEST_SECRET, rate_limit_per_second=0)  # type: ignore[call-arg]
    )
    key = await create_key(app.app.state.services.db, team=unique_team("search"))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        yield c, key
    await app.app.state.services.db.dispose()


async def test_name_search_gives_the_same_answers_on_both_engines(
    client: httpx.AsyncClient, key_a: Key, sqlite_client: tuple[httpx.AsyncClient, Key]
) -> None:
    on_postgres = await _search_answers(client, key_a)
    on_sqlite = await _search_answers(*sqlite_client)
    assert on_postgres == on_sqlite
    assert on_postgres == QUERIES


async def test_sqlite_tells_an_outage_from_a_fault(tmp_path: Path) -> None:
    """The 503 mapping on the other engine: a database locked past busy_timeout is
    unavailable; a missing table is a fault of ours (500), not an outage."""
    import sqlite3

    path = tmp_path / "busy.db"
    await asyncio.to_thread(upgrade, f"sqlite+aiosqlite:///{path}")
    db = Database(
        Settings(
            _env_file=None, database_url=f"sqlite+aiosqlite:///{path}", sqlite_busy_timeout_ms=100
        )  # type: ignore[call-arg]
    )
    holder = sqlite3.connect(path, isolation_level=None)
    try:
        holder.execute("BEGIN EXCLUSIVE")
        with pytest.raises(ServiceUnavailable):
            async with db.write() as session:
                await session.execute(text("DELETE FROM client_counters WHERE team_id = -1"))
        holder.execute("ROLLBACK")
        with pytest.raises(sa_exc.OperationalError):
            async with db.read() as session:
                await session.execute(text("SELECT * FROM no_such_table"))
    finally:
        holder.close()
        await db.dispose()
