"""SQLite: the full-text index stops merging its segments inside inserts.

FTS5 merges index segments as part of the write that pushes a level over `automerge`
segments (4 by default), and merges a whole level at once at `crisismerge` (16): at a million
clients one create in a few hundred paid for a merge of seconds. With automerge 0 an insert
only appends its small segment; `app/db/upkeep.py`, running beside the server, merges a few
pages at a time in short transactions of its own. crisismerge 64 still bounds the segments
per level if nothing runs the upkeep (a CLI-only installation): then a rare insert merges.

Both are settings FTS5 keeps in the index itself (its config table), so they hold for every
connection. PostgreSQL: nothing to do (see the README's performance section for its GIN index).

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-26
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

AUTOMERGE_OFF = "INSERT INTO clients_fts(clients_fts, rank) VALUES ('automerge', 0)"
CRISISMERGE = "INSERT INTO clients_fts(clients_fts, rank) VALUES ('crisismerge', 64)"


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute(AUTOMERGE_OFF)
        op.execute(CRISISMERGE)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("INSERT INTO clients_fts(clients_fts, rank) VALUES ('automerge', 4)")
        op.execute("INSERT INTO clients_fts(clients_fts, rank) VALUES ('crisismerge', 16)")
