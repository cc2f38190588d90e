"""Persistence of clients: SQL only, no rules. Rows become `types.Client` here and nowhere
else; unique and foreign-key violations become domain-neutral exceptions here, per dialect."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    Boolean,
    ColumnElement,
    Integer,
    Select,
    Table,
    bindparam,
    delete,
    func,
    literal_column,
    select,
    tuple_,
    update,
)
from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app.clients.search import name_search, probes_index
from app.clients.types import ADDRESS_ATTRS, Address, Client, Position
from app.core.clock import from_ms, to_ms
from app.db import dialect as sql_dialect
from app.db.tables import ClientCounter, ClientRow, Invoice, Payment

clients = cast(Table, ClientRow.__table__)
counters = cast(Table, ClientCounter.__table__)
columns = clients.c

RFC_UNIQUE_CONSTRAINT = "uq_clients_team_id_livemode_rfc_unique"
# The foreign keys that keep a client with invoices or payments from being deleted.
CLIENT_REFERENCES = frozenset({"fk_invoices_client_id_clients", "fk_payments_client_id_clients"})

SELECT_COLUMNS = (
    columns.id,
    columns.public_id,
    columns.name,
    columns.legal_name,
    columns.rfc,
    columns.rfc_check_digit_valid,
    columns.email,
    columns.phone,
    columns.street,
    columns.city,
    columns.state,
    columns.zip_code,
    columns.country,
    columns.exterior,
    columns.interior,
    columns.neighborhood,
    columns.municipality,
    columns.tax_system,
    columns.cfdi_use,
    columns.metadata_json,
    columns.livemode,
    columns.created_at,
    columns.updated_at,
)


Rows = list[Any]  # result rows of SELECT_COLUMNS (named like the columns)


class RfcTaken(Exception):
    """The (team, mode, RFC) unique constraint refused a write."""


class StillReferenced(Exception):
    """A foreign key from invoices or payments refused a delete."""


@dataclass(frozen=True, slots=True)
class SearchFilter:
    """A normalised filter, ready for SQL."""

    name: str | None = None
    rfc: str | None = None
    email: str | None = None
    created_from: datetime | None = None
    created_to: datetime | None = None
    tax_system: str | None = None
    invoice_ready: bool | None = None

    @property
    def is_empty(self) -> bool:
        return (
            not (self.name or self.rfc or self.email or self.created_from or self.created_to)
            and self.tax_system is None
            and self.invoice_ready is None
        )


def row_to_client(row: Any) -> Client:
    address: Address | None = Address(**{name: getattr(row, name) for name in ADDRESS_ATTRS})
    if address is not None and address.is_empty():
        address = None
    return Client(
        id=row.public_id,
        name=row.name,
        legal_name=row.legal_name,
        rfc=row.rfc,
        rfc_check_digit_valid=row.rfc_check_digit_valid,
        email=row.email,
        phone=row.phone,
        address=address,
        livemode=row.livemode,
        created_at=row.created_at,
        updated_at=row.updated_at,
        tax_system=row.tax_system,
        cfdi_use=row.cfdi_use,
        # A JSON column: asyncpg and aiosqlite both decode it to a dict.
        metadata=dict(row.metadata_json or {}),
    )


def row_position(row: Any) -> Position:
    return Position(created_ms=to_ms(row.created_at), row_id=row.id)


def _is_rfc_violation(exc: sa_exc.IntegrityError) -> bool:
    # SQLite names the columns of the violated index, not the index.
    return sql_dialect.is_unique_violation(
        exc, constraint=RFC_UNIQUE_CONSTRAINT, sqlite_columns="clients.rfc_unique"
    )


def _is_fk_violation(exc: sa_exc.IntegrityError) -> bool:
    return sql_dialect.is_foreign_key_violation(exc, constraints=CLIENT_REFERENCES)


def _scope(team_id: int, livemode: bool, *, driven: bool = False) -> list[ColumnElement[bool]]:
    if driven:
        # SQLite: unary + keeps the planner off the (team, mode, …) index, so the query
        # starts from the full-text matches instead of scanning the team in order.
        return [
            literal_column("+clients.team_id", Integer) == team_id,
            literal_column("+clients.livemode", Boolean) == livemode,
        ]
    return [columns.team_id == team_id, columns.livemode == livemode]


# Get-by-id, built once (building a statement costs more CPU than running this one).
_GET = select(*SELECT_COLUMNS).where(
    columns.team_id == bindparam("team_id"),
    columns.livemode == bindparam("livemode"),
    columns.public_id == bindparam("public_id"),
)
_GET_FOR_UPDATE = _GET.with_for_update()


@dataclass(frozen=True, slots=True)
class Prepared:
    """A filter turned into SQL conditions, for a page and for a count."""

    page: list[ColumnElement[bool]]
    count: list[ColumnElement[bool]]
    team_id: int
    livemode: bool
    unfiltered: bool


def _filter_conditions(f: SearchFilter) -> list[ColumnElement[bool]]:
    """Every condition but the name search (see `ClientRepository.prepare`)."""
    conds: list[ColumnElement[bool]] = []
    if f.rfc:
        conds.append(columns.rfc == f.rfc)
    if f.email:
        conds.append(columns.email_lower == f.email)
    if f.created_from is not None:
        conds.append(columns.created_at >= f.created_from)
    if f.created_to is not None:
        conds.append(columns.created_at <= f.created_to)
    if f.tax_system is not None:
        conds.append(columns.tax_system == f.tax_system)
    if f.invoice_ready is not None:
        conds.append(columns.invoice_ready == f.invoice_ready)
    return conds


class ClientRepository:
    def __init__(self, dialect: str) -> None:
        self.dialect = dialect

    async def insert(self, session: AsyncSession, values: dict[str, Any]) -> int | None:
        """Insert a client; None when its RFC is taken in its team and mode.

        ON CONFLICT DO NOTHING leaves the transaction usable on both engines, so the caller
        can look up the existing client in the same transaction.
        """
        ins = sql_dialect.insert(self.dialect, clients)
        stmt = (
            ins.values(**values)
            .on_conflict_do_nothing(index_elements=["team_id", "livemode", "rfc_unique"])
            .returning(columns.id)
        )
        return (await session.execute(stmt)).scalar_one_or_none()

    async def insert_many(
        self, session: AsyncSession, rows: list[dict[str, Any]]
    ) -> dict[str, int]:
        """Insert clients (rows with the same keys) in one executemany (multi-row VALUES
        statements); the row id of each inserted one by its public id. A row whose RFC is
        taken in its team and mode is skipped (ON CONFLICT DO NOTHING), so it is absent."""
        if not rows:
            return {}
        stmt = (
            sql_dialect.insert(self.dialect, clients)
            .on_conflict_do_nothing(index_elements=["team_id", "livemode", "rfc_unique"])
            .returning(columns.id, columns.public_id)
        )
        result = await session.execute(stmt, rows)
        return {public_id: row_id for row_id, public_id in result.all()}

    async def adjust_count(
        self, session: AsyncSession, team_id: int, livemode: bool, delta: int
    ) -> None:
        ins = sql_dialect.insert(self.dialect, counters)
        stmt = ins.values(team_id=team_id, livemode=livemode, count=max(delta, 0))
        stmt = stmt.on_conflict_do_update(
            index_elements=["team_id", "livemode"],
            set_={"count": counters.c.count + delta},
        )
        await session.execute(stmt)

    async def get(
        self,
        session: Executor,
        team_id: int,
        livemode: bool,
        public_id: str,
        *,
        for_update: bool = False,
    ) -> Any | None:
        stmt = _GET_FOR_UPDATE if for_update and self.dialect == sql_dialect.POSTGRESQL else _GET
        params = {"team_id": team_id, "livemode": livemode, "public_id": public_id}
        return (await session.execute(stmt, params)).first()

    async def by_rfcs(
        self, session: AsyncSession, team_id: int, livemode: bool, rfcs: set[str]
    ) -> list[Any]:
        """The clients with one of these (normalised) RFCs: imports match rows by RFC."""
        if not rfcs:
            return []
        stmt = select(*SELECT_COLUMNS).where(
            *_scope(team_id, livemode), columns.rfc.in_(sorted(rfcs))
        )
        return list((await session.execute(stmt)).all())

    async def rfc_owner(
        self, session: AsyncSession, team_id: int, livemode: bool, rfc: str
    ) -> str | None:
        stmt = (
            select(columns.public_id)
            .where(*_scope(team_id, livemode), columns.rfc_unique == rfc)
            .limit(1)
        )
        return (await session.execute(stmt)).scalar_one_or_none()

    async def update(self, session: AsyncSession, row_id: int, values: dict[str, Any]) -> None:
        """Update one row; RfcTaken when the new RFC is taken.

        The UPDATE runs in a savepoint: on PostgreSQL a violation aborts the transaction, and
        rolling back to the savepoint keeps it usable for the caller's next query.
        """
        try:
            async with session.begin_nested():
                await session.execute(update(clients).where(columns.id == row_id).values(**values))
        except sa_exc.IntegrityError as exc:
            if _is_rfc_violation(exc):
                raise RfcTaken from exc
            raise

    async def usage(self, session: AsyncSession, row_id: int) -> tuple[int, int]:
        invoices = select(func.count()).select_from(Invoice).where(Invoice.client_id == row_id)
        payments = select(func.count()).select_from(Payment).where(Payment.client_id == row_id)
        stmt = select(invoices.scalar_subquery(), payments.scalar_subquery())
        row = (await session.execute(stmt)).one()
        return int(row[0]), int(row[1])

    async def delete(self, session: AsyncSession, row_id: int) -> None:
        try:
            async with session.begin_nested():
                await session.execute(delete(clients).where(columns.id == row_id))
        except sa_exc.IntegrityError as exc:
            if _is_fk_violation(exc):
                raise StillReferenced from exc
            raise

    def probes(self, f: SearchFilter) -> bool:
        """Whether `prepare` runs a statement (a full-text probe) for this filter."""
        return probes_index(self.dialect, f.name)

    async def prepare(
        self, session: Executor, team_id: int, livemode: bool, f: SearchFilter
    ) -> Prepared:
        """The conditions of a filter, for a page and for a count (a name search probes the
        full-text index once for both)."""
        base = _filter_conditions(f)
        if not f.name:
            conds = _scope(team_id, livemode) + base
            return Prepared(conds, conds, team_id, livemode, f.is_empty)
        search = await name_search(session, self.dialect, f.name)
        return Prepared(
            [*_scope(team_id, livemode, driven=search.drive_page), *base, search.page],
            [*_scope(team_id, livemode, driven=search.drive_count), *base, search.count],
            team_id,
            livemode,
            False,
        )

    def _list_stmt(
        self,
        conds: list[ColumnElement[bool]],
        after: Position | None,
        limit: int,
        offset: int,
    ) -> Select[Any]:
        conds = list(conds)
        if after is not None:
            conds.append(
                tuple_(columns.created_at, columns.id)
                < tuple_(
                    bindparam(None, from_ms(after.created_ms), type_=columns.created_at.type),
                    bindparam(None, after.row_id, type_=columns.id.type),
                )
            )
        stmt = (
            select(*SELECT_COLUMNS)
            .where(*conds)
            .order_by(columns.created_at.desc(), columns.id.desc())
            .limit(limit)
        )
        if offset:
            stmt = stmt.offset(offset)
        return stmt

    async def list(
        self,
        session: AsyncSession,
        prepared: Prepared,
        *,
        after: Position | None,
        limit: int,
        offset: int,
    ) -> list[Any]:
        stmt = self._list_stmt(prepared.page, after, limit, offset)
        return list((await session.execute(stmt)).all())

    async def count(self, session: Executor, prepared: Prepared) -> int:
        return int((await session.execute(_count_stmt(prepared))).scalar_one_or_none() or 0)

    async def page(
        self,
        session: Executor,
        prepared: Prepared,
        *,
        after: Position | None,
        limit: int,
        offset: int,
        with_total: bool,
    ) -> tuple[Rows, int | None]:
        """Rows of a page and, when asked, the exact number of matches, in ONE statement: the
        count is an uncorrelated scalar subquery, evaluated once (SQLite runs it once per
        statement, PostgreSQL as an InitPlan), so page and total come from one snapshot
        with no transaction around them. An empty page carries no total: then it is counted
        by a statement of its own (nothing on the page can disagree with it)."""
        if prepared.unfiltered and not offset:
            # The commonest page, built once (see _unfiltered_page): only values change.
            params: dict[str, Any] = {
                "team_id": prepared.team_id,
                "livemode": prepared.livemode,
                "limit": limit,
            }
            if after is not None:
                params["after_at"] = from_ms(after.created_ms)
                params["after_id"] = after.row_id
            stmt = _unfiltered_page(after is not None, with_total)
            rows = list((await session.execute(stmt, params)).all())
            if not with_total:
                return rows, None
        else:
            stmt = self._list_stmt(prepared.page, after, limit, offset)
            if not with_total:
                return list((await session.execute(stmt)).all()), None
            total = _count_stmt(prepared).correlate(None).scalar_subquery().label("total_matches")
            rows = list((await session.execute(stmt.add_columns(total))).all())
        if rows:
            return rows, int(rows[0].total_matches or 0)
        return rows, await self.count(session, prepared)


# Repository reads run in a unit of work (a session) or as one statement (a connection).
Executor = AsyncSession | AsyncConnection


@functools.cache
def _unfiltered_page(after: bool, with_total: bool) -> Select[Any]:
    """A page of a team's clients without a filter, with bound parameters for everything
    that varies (building a statement costs more CPU than SQLite takes to run this one, and
    a statement built once also keeps its cache key): the same SQL `page` builds otherwise."""
    conds = [columns.team_id == bindparam("team_id"), columns.livemode == bindparam("livemode")]
    if after:
        conds.append(
            tuple_(columns.created_at, columns.id)
            < tuple_(
                bindparam("after_at", type_=columns.created_at.type),
                bindparam("after_id", type_=columns.id.type),
            )
        )
    stmt = (
        select(*SELECT_COLUMNS)
        .where(*conds)
        .order_by(columns.created_at.desc(), columns.id.desc())
        .limit(bindparam("limit", type_=Integer))
    )
    if not with_total:
        return stmt
    total = (
        select(counters.c.count)
        .where(
            counters.c.team_id == bindparam("team_id"),
            counters.c.livemode == bindparam("livemode"),
        )
        .scalar_subquery()
        .label("total_matches")
    )
    return stmt.add_columns(total)


def _count_stmt(prepared: Prepared) -> Select[Any]:
    if prepared.unfiltered:
        return select(counters.c.count).where(
            counters.c.team_id == prepared.team_id, counters.c.livemode == prepared.livemode
        )
    return select(func.count()).select_from(clients).where(*prepared.count)
