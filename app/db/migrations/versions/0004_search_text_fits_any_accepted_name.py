"""search_text wide enough for every name the contract accepts.

`search_text` holds name and legal name NFKD-normalised and case-folded: that can grow a
300-character name eighteen-fold (U+FDFA becomes 18 characters, "ß" becomes "ss"), past the
varchar(700) it had, and PostgreSQL refused such rows (a 500). It becomes unbounded text; the
GIN trigram index on it is kept as is (varchar to text needs no rewrite). (`email_lower`
cannot outgrow its 254: "İ", the one character that lengthens when lower-cased, is two
UTF-8 bytes, and an address is at most 254 bytes.) SQLite does not enforce declared lengths;
its column is left alone.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.alter_column("clients", "search_text", type_=sa.Text(), existing_nullable=False)


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.alter_column("clients", "search_text", type_=sa.String(700), existing_nullable=False)
