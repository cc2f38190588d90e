"""CFDI 4.0 receptor data of a client: régimen fiscal, uso CFDI, four address fields,
metadata and the stored invoice readiness, with their filter indexes.

Every column is nullable or has a default, so clients of the first version keep working:
no régimen, no use, `{}` metadata. Their readiness is computed here as the service would:
without a régimen or a legal name only a generic RFC (XAXX010101000, XEXX010101000, which need
neither) can be invoiced. Plain ADD COLUMN on SQLite (no batch rebuild: the FTS triggers of
0002 stay), metadata-only on PostgreSQL.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TEXT_COLUMNS = (
    ("exterior", 200),
    ("interior", 200),
    ("neighborhood", 200),
    ("municipality", 200),
    ("tax_system", 3),
    ("cfdi_use", 4),
)
_INDEXES = {
    "ix_clients_team_id_livemode_tax_system_created_at_id": "tax_system",
    "ix_clients_team_id_livemode_invoice_ready_created_at_id": "invoice_ready",
}
# A snapshot of app.clients.fiscal.GENERIC_RFCS when this migration was written (a migration
# must not change meaning when the application code does).
_GENERIC_RFCS = ("XAXX010101000", "XEXX010101000")


def upgrade() -> None:
    for name, length in _TEXT_COLUMNS:
        op.add_column("clients", sa.Column(name, sa.String(length), nullable=True))
    op.add_column(
        "clients",
        sa.Column("metadata_json", sa.JSON(), nullable=False, server_default=sa.text("'{}'")),
    )
    op.add_column(
        "clients",
        sa.Column("invoice_ready", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    clients = sa.table("clients", sa.column("rfc"), sa.column("invoice_ready", sa.Boolean()))
    op.execute(clients.update().where(clients.c.rfc.in_(_GENERIC_RFCS)).values(invoice_ready=True))
    for index, column in _INDEXES.items():
        op.create_index(index, "clients", ["team_id", "livemode", column, "created_at", "id"])


def downgrade() -> None:
    for index in _INDEXES:
        op.drop_index(index, table_name="clients")
    with op.batch_alter_table("clients") as batch:
        for name in ("invoice_ready", "metadata_json", *(n for n, _ in _TEXT_COLUMNS)):
            batch.drop_column(name)
    if op.get_bind().dialect.name == "sqlite":
        # The batch rebuild of `clients` dropped the FTS triggers of 0002.
        from app.db.migrations.fts import create_sqlite_fts

        create_sqlite_fts()
