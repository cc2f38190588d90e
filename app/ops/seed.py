"""`python -m app seed`: fast synthetic clients for demos and benchmarks.

Rows are generated in Python (valid RFCs with correct check digits, accented names, creation
times spread over two years) and written in large batches, with the per-team counter kept in
the same transactions.
"""

from __future__ import annotations

import asyncio
import random
import sqlite3
import string
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import make_url
from stdnum.mx import rfc as stdnum_rfc
from tqdm import tqdm

from app.catalogs.store import CfdiUse, PostalCodes, TaxSystem, catalogs
from app.clients import fiscal, validation
from app.clients.ids import new_client_id
from app.clients.repository import ClientRepository
from app.clients.repository import clients as clients_table
from app.core.clock import to_ms
from app.core.config import Settings
from app.db.database import Database
from app.db.dialect import SQLITE

FIRST = [
    "María",
    "José",
    "Ángel",
    "Sofía",
    "Iñaki",
    "Lucía",
    "Andrés",
    "Renée",
    "Jesús",
    "Mónica",
    "Raúl",
    "Begoña",
    "Óscar",
    "Citlali",
    "Xóchitl",
    "Héctor",
    "Nuño",
    "Inés",
]
LAST = [
    "Hernández",
    "García",
    "Martínez",
    "López",
    "González",
    "Pérez",
    "Rodríguez",
    "Sánchez",
    "Ramírez",
    "Cruz",
    "Gómez",
    "Núñez",
    "Peña",
    "Ibáñez",
    "Muñoz",
    "Ortíz",
]
COMPANY = [
    "Comercializadora",
    "Servicios",
    "Grupo",
    "Distribuidora",
    "Constructora",
    "Tecnología",
    "Alimentos",
    "Logística",
    "Diseño",
    "Farmacéutica",
    "Papelería",
]
PLACE = [
    "del Bajío",
    "de México",
    "Peñasco",
    "Azteca",
    "Nórdica",
    "del Pacífico",
    "Querétaro",
    "Yucatán",
    "Michoacán",
    "San Andrés",
    "Tláloc",
]
CITIES = [
    ("Ciudad de México", "CDMX"),
    ("Guadalajara", "Jalisco"),
    ("Monterrey", "Nuevo León"),
    ("Mérida", "Yucatán"),
    ("Querétaro", "Querétaro"),
    ("León", "Guanajuato"),
]
# Syllables of trade names: 20^3 combinations, so a whole trade name ("Xolotl") is a selective
# search (about one company in 8,000), while surnames ("garc") are unselective ones.
SYLLABLES = ["xo", "lo", "tl", "ca", "te", "pa", "mi", "zu", "na", "hui", "co", "ya", "ma",
             "to", "chi", "que", "ri", "sa", "ne", "ba"]  # fmt: skip
SUFFIX = ["S.A. de C.V.", "S. de R.L. de C.V.", "S.C.", "S.A.P.I. de C.V."]
_LETTERS = "ABCDEFGHIJKLMNOPRSTUVXYZ"
_HOMOCLAVE = string.digits[1:] + string.ascii_uppercase
BATCH = 5000


def make_rfc(rng: random.Random, moral: bool) -> str:
    while True:
        letters = "".join(rng.choice(_LETTERS) for _ in range(3 if moral else 4))
        if moral or letters not in stdnum_rfc._name_blacklist:
            break
    born = datetime(1950, 1, 1) + timedelta(days=rng.randrange(0, 20000))
    base = letters + born.strftime("%y%m%d") + rng.choice(_HOMOCLAVE) + rng.choice(_HOMOCLAVE)
    return base + stdnum_rfc.calc_check_digit(base)


@dataclass
class Generator:
    team_id: int
    livemode: bool
    total: int
    rng: random.Random
    start: datetime
    span_ms: int

    def row(self, i: int) -> dict[str, Any]:
        rng = self.rng
        created = self.start + timedelta(milliseconds=self.span_ms * i // max(1, self.total))
        moral = rng.random() < 0.45
        legal: str | None
        if moral:
            brand = "".join(rng.choice(SYLLABLES) for _ in range(3)).capitalize()
            name = f"{rng.choice(COMPANY)} {brand} {rng.choice(PLACE)}"
            legal = f"{name} {rng.choice(SUFFIX)}"
        else:
            name = f"{rng.choice(FIRST)} {rng.choice(LAST)} {rng.choice(LAST)}"
            legal = None if rng.random() < 0.5 else name
        rfc = make_rfc(rng, moral)
        receptor = self.receptor(moral)
        zip_code = self.postal.code_at(rng.randrange(len(self.postal)))
        ready = not fiscal.readiness(rfc=rfc, legal_name=legal, zip_code=zip_code, **receptor)
        city, state = rng.choice(CITIES)
        email = f"contacto{i}@{'empresa' if moral else 'correo'}{i % 97}.mx"
        return {
            "public_id": new_client_id(to_ms(created)),
            "team_id": self.team_id,
            "livemode": self.livemode,
            "name": name,
            "legal_name": legal,
            "rfc": rfc,
            "rfc_unique": rfc,
            "rfc_check_digit_valid": True,
            "email": email,
            "email_lower": email.lower(),
            "phone": f"+52 55 {rng.randrange(1000, 9999)} {rng.randrange(1000, 9999)}",
            "street": f"Calle {rng.randrange(1, 300)} #{rng.randrange(1, 999)}",
            "city": city,
            "state": state,
            "zip_code": zip_code,
            "country": "México",
            "search_text": validation.search_text(name, legal),
            "created_at": created,
            "updated_at": created,
            **receptor,
            "invoice_ready": ready,
        }

    def receptor(self, moral: bool) -> dict[str, str | None]:
        """A régimen that applies to the person type (15% none) and a use it allows (30%
        none), from SAT's catalogs: seeded clients are valid ones, most of them ready."""
        rng = self.rng
        regimenes = [t.code for t in self.tax_systems if (t.moral if moral else t.fisica)]
        tax_system = None if rng.random() < 0.15 else rng.choice(regimenes)
        uses = [u.code for u in self.cfdi_uses if tax_system in u.tax_systems]
        cfdi_use = None if tax_system is None or rng.random() < 0.3 else rng.choice(uses)
        return {"tax_system": tax_system, "cfdi_use": cfdi_use}

    @cached_property
    def postal(self) -> PostalCodes:
        return catalogs().postal_codes

    @cached_property
    def tax_systems(self) -> list[TaxSystem]:
        return list(catalogs().tax_systems.values())

    @cached_property
    def cfdi_uses(self) -> list[CfdiUse]:
        return list(catalogs().cfdi_uses.values())


COLUMNS = (
    "public_id", "team_id", "livemode", "name", "legal_name", "rfc", "rfc_unique",
    "rfc_check_digit_valid", "email", "email_lower", "phone", "street", "city", "state",
    "zip_code", "country", "search_text", "created_at", "updated_at", "tax_system", "cfdi_use",
    "invoice_ready",
)  # fmt: skip
# Loads this large (or larger than the table) drop secondary indexes and search structures
# first and build them once at the end, which is several times faster than keeping them.
REBUILD_AT = 50_000


def _sqlite_time(value: datetime) -> str:
    # The text form SQLAlchemy's SQLite DateTime stores (naive UTC), so ordering is consistent.
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")


async def seed(settings: Settings, *, clients: int, team: str, livemode: bool) -> int:
    from app.auth.service import ApiKeyService
    from app.db.migrate import upgrade_async

    await upgrade_async(settings.database_url)
    # A bulk load builds indexes over every row at the end: minutes at a million rows, far
    # past the per-statement bound that protects requests.
    db = Database(settings.model_copy(update={"db_statement_timeout_ms": 0}))
    try:
        team_id = await ApiKeyService(db).team_id(team)
        c = clients_table.c
        async with db.read() as session:
            taken = await session.execute(
                select(c.rfc_unique).where(c.team_id == team_id, c.livemode == livemode)
            )
            seen = {r for (r,) in taken if r}
            existing = (
                await session.execute(select(func.count()).select_from(clients_table))
            ).scalar_one()
        gen = Generator(
            team_id=team_id,
            livemode=livemode,
            total=clients,
            rng=random.Random(f"{team}/{livemode}/{clients}/{len(seen)}"),
            # Whole milliseconds, as every creation time the service writes.
            start=(datetime.now(UTC) - timedelta(days=730)).replace(microsecond=0),
            span_ms=730 * 86_400_000,
        )

        def batches() -> Iterator[list[dict[str, Any]]]:
            done = 0
            while done < clients:
                n = min(BATCH, clients - done)
                rows = []
                for i in range(done, done + n):
                    row = gen.row(i)
                    while row["rfc_unique"] in seen:
                        row = gen.row(i)
                    seen.add(row["rfc_unique"])
                    rows.append(row)
                done += n
                yield rows

        rebuild = clients >= REBUILD_AT or clients > existing
        with tqdm(total=clients, unit="clients", desc="seeding") as bar:
            if db.dialect == SQLITE:
                await asyncio.to_thread(_load_sqlite, settings, batches(), rebuild, bar)
            else:
                await _load_postgres(db, batches(), rebuild, bar)
        async with db.write() as session:
            await ClientRepository(db.dialect).adjust_count(session, team_id, livemode, clients)
        mode = "live" if livemode else "test"
        print(f"seeded {clients} clients for team {team!r} ({mode})")
        return 0
    finally:
        await db.dispose()


def _load_sqlite(
    settings: Settings, batches: Iterator[list[dict[str, Any]]], rebuild: bool, bar: tqdm[Any]
) -> None:
    path = make_url(settings.database_url).database
    conn = sqlite3.connect(str(path), isolation_level=None)
    try:
        conn.execute(f"PRAGMA busy_timeout={settings.sqlite_busy_timeout_ms}")
        conn.execute("PRAGMA synchronous=OFF")
        conn.execute("BEGIN IMMEDIATE")
        saved: list[str] = []
        if rebuild:
            for kind, name, sql in conn.execute(
                "SELECT type, name, sql FROM sqlite_master WHERE tbl_name = 'clients' "
                "AND type IN ('index', 'trigger') AND sql IS NOT NULL"
            ).fetchall():
                saved.append(sql)
                conn.execute(f'DROP {kind.upper()} "{name}"')
        placeholders = ", ".join("?" for _ in COLUMNS)
        insert_sql = f"INSERT INTO clients ({', '.join(COLUMNS)}) VALUES ({placeholders})"  # noqa: S608 (constant column names)
        for rows in batches:
            conn.executemany(
                insert_sql,
                [
                    tuple(
                        _sqlite_time(r[k]) if k in ("created_at", "updated_at") else r[k]
                        for k in COLUMNS
                    )
                    for r in rows
                ],
            )
            bar.update(len(rows))
        if rebuild:
            bar.set_description("indexing")
            for sql in saved:
                conn.execute(sql)
            conn.execute("INSERT INTO clients_fts(clients_fts) VALUES ('rebuild')")
            # A bulk build leaves many segments (automerge is off: app/db/upkeep.py merges a
            # little at a time), and every search reads each one: merge them into one, as
            # FTS5 advises after a bulk load.
            conn.execute("INSERT INTO clients_fts(clients_fts) VALUES ('optimize')")
        conn.execute("COMMIT")
        conn.execute("PRAGMA optimize")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    finally:
        conn.close()


async def _load_postgres(
    db: Database, batches: Iterator[list[dict[str, Any]]], rebuild: bool, bar: tqdm[Any]
) -> None:
    async with db.engine.connect() as sa_conn:
        raw = await sa_conn.get_raw_connection()
        conn: Any = raw.driver_connection
        async with conn.transaction():
            saved: list[str] = []
            if rebuild:
                # Secondary indexes only: those backing constraints stay.
                for name, ddl in await conn.fetch(
                    "SELECT i.indexname, i.indexdef FROM pg_indexes i "
                    "WHERE i.tablename = 'clients' AND i.schemaname = current_schema() "
                    "AND NOT EXISTS (SELECT 1 FROM pg_constraint k "
                    "WHERE k.conname = i.indexname)"
                ):
                    saved.append(ddl)
                    await conn.execute(f'DROP INDEX "{name}"')
            for rows in batches:
                await conn.copy_records_to_table(
                    "clients", records=[tuple(r[k] for k in COLUMNS) for r in rows], columns=COLUMNS
                )
                bar.update(len(rows))
            if rebuild:
                bar.set_description("indexing")
                for ddl in saved:
                    await conn.execute(ddl)
        await conn.execute("ANALYZE clients")
