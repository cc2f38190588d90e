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

from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Select, literal_column, select, table, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import Client

PROBE_LIMIT = 5000
TRIGRAM = 3

_fts = table("clients_fts")
_PROBE = text(
    "SELECT count(*) FROM (SELECT 1 FROM clients_fts WHERE clients_fts MATCH :q LIMIT :n)"
)


def like_escape(text_: str) -> str:
    return text_.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def like_condition(query: str) -> ColumnElement[bool]:
    return Client.search_text.like(f"%{like_escape(query)}%", escape="\\")


def fts_phrase(query: str) -> str:
    return '"' + query.replace('"', '""') + '"'


@dataclass(frozen=True, slots=True)
class NameSearch:
    condition: ColumnElement[bool]
    # True when the matches are few and known up front: the query should be driven from them
    # (then sorted), not from the ordered (team, mode, created_at, id) index.
    drive_from_matches: bool = False


async def name_search(
    session: AsyncSession, dialect: str, query: str, *, counting: bool = False
) -> NameSearch:
    """How to search a normalised `name` filter for a page (or, `counting`, for a count)."""
    if dialect != "sqlite" or len(query) < TRIGRAM:
        return NameSearch(like_condition(query))
    phrase = fts_phrase(query)
    if not counting:
        probe = {"q": phrase, "n": PROBE_LIMIT + 1}
        found = (await session.execute(_PROBE, probe)).scalar_one()
        if found > PROBE_LIMIT:
            # Unselective: the ordered scan finds a page of matches almost at once.
            return NameSearch(like_condition(query))
    matches: Select[Any] = (
        select(literal_column("rowid"))
        .select_from(_fts)
        .where(text("clients_fts MATCH :fts_phrase").bindparams(fts_phrase=phrase))
    )
    return NameSearch(Client.id.in_(matches), drive_from_matches=True)
