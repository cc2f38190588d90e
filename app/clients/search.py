"""How a `name` filter is searched, per engine.

Names are matched on clients.search_text (NFKD, accents removed, case-folded), so both engines
give the same answers; only the access path differs:

- PostgreSQL: `LIKE '%…%'`, which the planner serves from the pg_trgm GIN index when the
  pattern is selective and from the (team, mode, created_at, id) index otherwise.
- SQLite: patterns of three characters or more probe the FTS5 trigram index (a quoted phrase
  is a substring match). When the probe finds more than PROBE_LIMIT rows the pattern is
  unselective, and the ordered scan that stops at the page size is cheaper; that scan, with
  LIKE, also serves patterns too short for trigrams. (LIKE … ESCAPE would bypass the FTS index
  in any case, hence MATCH.)
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Select, bindparam, func, literal_column, select, table, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app.db.dialect import SQLITE
from app.db.tables import ClientRow

PROBE_LIMIT = 5000
TRIGRAM = 3

_fts = table("clients_fts")
_PROBE = text("SELECT rowid FROM clients_fts WHERE clients_fts MATCH :q LIMIT :n")


def like_escape(text_: str) -> str:
    return text_.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def like_condition(query: str) -> ColumnElement[bool]:
    return ClientRow.search_text.like(f"%{like_escape(query)}%", escape="\\")


def fts_phrase(query: str) -> str:
    return '"' + query.replace('"', '""') + '"'


@dataclass(frozen=True, slots=True)
class NameSearch:
    """The condition of a name filter, for a page and for a count. `drive_*` is True when the
    matches come from the full-text index: that query should start from them (then sort),
    not from the ordered (team, mode, created_at, id) index."""

    page: ColumnElement[bool]
    count: ColumnElement[bool]
    drive_page: bool = False
    drive_count: bool = False


def probes_index(dialect: str, query: str | None) -> bool:
    """Whether searching `query` starts with a probe of the full-text index (a statement of
    its own before the page)."""
    return bool(query) and dialect == SQLITE and len(query or "") >= TRIGRAM


async def name_search(
    session: AsyncSession | AsyncConnection, dialect: str, query: str
) -> NameSearch:
    """How to search a normalised `name` filter (one full-text probe at most)."""
    if not probes_index(dialect, query):
        like = like_condition(query)
        return NameSearch(like, like)
    phrase = fts_phrase(query)
    probe = {"q": phrase, "n": PROBE_LIMIT + 1}
    ids = (await session.execute(_PROBE, probe)).scalars().all()
    if len(ids) > PROBE_LIMIT:
        # Unselective: the ordered scan finds a page of matches almost at once; a count
        # still reads fewer rows through the full-text index than through a scan.
        matches: Select[Any] = (
            select(literal_column("rowid"))
            .select_from(_fts)
            .where(text("clients_fts MATCH :fts_phrase").bindparams(fts_phrase=phrase))
        )
        return NameSearch(like_condition(query), ClientRow.id.in_(matches), drive_count=True)
    # Selective: the probe already holds every match; reuse it (one JSON parameter) rather
    # than asking the full-text index again for the page and for the count.
    found = func.json_each(bindparam("fts_ids", json.dumps(ids))).table_valued("value")
    condition = ClientRow.id.in_(select(found.c.value))
    return NameSearch(condition, condition, drive_page=True, drive_count=True)
