"""Indexes for every filter in the default order, and trigram name search.

- rfc and email_lower indexes extended with (created_at, id), so an exact filter is served in
  the default order straight from the index, and the seek of a `next` page stays a seek.
- SQLite: an FTS5 table with the trigram tokenizer over clients.search_text (external
  content), kept in step by triggers on insert, update and delete.
- PostgreSQL: pg_trgm (a trusted extension on PostgreSQL 15: the database owner can create
  it) and a GIN trigram index on search_text, which LIKE '%…%' uses.

A later migration that rebuilds `clients` in SQLite batch mode drops the triggers: it must
call `app.db.migrations.fts.create_sqlite_fts()` again.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

from app.db.migrations.fts import create_sqlite_fts, drop_sqlite_fts

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_index("ix_clients_team_id_livemode_rfc", table_name="clients")
    op.drop_index("ix_clients_team_id_livemode_email_lower", table_name="clients")
    op.create_index(
        "ix_clients_team_id_livemode_rfc_created_at_id",
        "clients",
        ["team_id", "livemode", "rfc", "created_at", "id"],
    )
    op.create_index(
        "ix_clients_team_id_livemode_email_lower_created_at_id",
        "clients",
        ["team_id", "livemode", "email_lower", "created_at", "id"],
    )
    if op.get_bind().dialect.name == "sqlite":
        create_sqlite_fts()
    else:
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        op.execute(
            "CREATE INDEX ix_clients_search_text_trgm ON clients "
            "USING gin (search_text gin_trgm_ops)"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        drop_sqlite_fts()
    else:
        op.execute("DROP INDEX IF EXISTS ix_clients_search_text_trgm")
    op.drop_index("ix_clients_team_id_livemode_email_lower_created_at_id", table_name="clients")
    op.drop_index("ix_clients_team_id_livemode_rfc_created_at_id", table_name="clients")
    op.create_index(
        "ix_clients_team_id_livemode_email_lower", "clients", ["team_id", "livemode", "email_lower"]
    )
    op.create_index("ix_clients_team_id_livemode_rfc", "clients", ["team_id", "livemode", "rfc"])
