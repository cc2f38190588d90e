"""Events (the transactional outbox), webhook endpoints, pending deliveries and attempts, and
the trigger that queues an event's deliveries (app/db/migrations/fan_out.py).

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from app.db.migrations.fan_out import create_fan_out, drop_fan_out

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _id() -> sa.Column[int]:
    return sa.Column("id", _ID, autoincrement=True, nullable=False)


def upgrade() -> None:
    op.create_table(
        "events",
        _id(),
        sa.Column("public_id", sa.String(length=30), nullable=False),
        sa.Column("team_id", _ID, nullable=False),
        sa.Column("livemode", sa.Boolean(), nullable=False),
        sa.Column("type", sa.String(length=40), nullable=False),
        sa.Column("subject_id", sa.String(length=40), nullable=False),
        sa.Column("data", sa.Text(), nullable=False),
        sa.Column("previous_attributes", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["team_id"], ["teams.id"], name=op.f("fk_events_team_id_teams"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_events")),
        sa.UniqueConstraint("public_id", name=op.f("uq_events_public_id")),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_events_team_id_livemode_id", "events", ["team_id", "livemode", "id"])
    op.create_index(
        "ix_events_team_id_livemode_type_id", "events", ["team_id", "livemode", "type", "id"]
    )
    op.create_index(op.f("ix_events_created_at"), "events", ["created_at"])

    op.create_table(
        "webhook_endpoints",
        _id(),
        sa.Column("public_id", sa.String(length=30), nullable=False),
        sa.Column("team_id", _ID, nullable=False),
        sa.Column("livemode", sa.Boolean(), nullable=False),
        sa.Column("url", sa.String(length=2048), nullable=False),
        sa.Column("events", sa.Text(), nullable=False),
        sa.Column("description", sa.String(length=500), nullable=True),
        sa.Column("secret", sa.String(length=100), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["team_id"],
            ["teams.id"],
            name=op.f("fk_webhook_endpoints_team_id_teams"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_endpoints")),
        sa.UniqueConstraint("public_id", name=op.f("uq_webhook_endpoints_public_id")),
    )
    op.create_index(
        "ix_webhook_endpoints_team_id_livemode_id",
        "webhook_endpoints",
        ["team_id", "livemode", "id"],
    )

    op.create_table(
        "webhook_deliveries",
        _id(),
        sa.Column("endpoint_id", _ID, nullable=False),
        sa.Column("event_id", _ID, nullable=False),
        sa.Column("subject_id", sa.String(length=40), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lease_owner", sa.String(length=40), nullable=True),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["endpoint_id"],
            ["webhook_endpoints.id"],
            name=op.f("fk_webhook_deliveries_endpoint_id_webhook_endpoints"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["event_id"],
            ["events.id"],
            name=op.f("fk_webhook_deliveries_event_id_events"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_deliveries")),
        sqlite_autoincrement=True,
    )
    op.create_index(
        "ix_webhook_deliveries_status_next_attempt_at",
        "webhook_deliveries",
        ["status", "next_attempt_at"],
    )
    op.create_index(
        "ix_webhook_deliveries_endpoint_id_subject_id_id",
        "webhook_deliveries",
        ["endpoint_id", "subject_id", "id"],
    )
    op.create_index(op.f("ix_webhook_deliveries_event_id"), "webhook_deliveries", ["event_id"])

    op.create_table(
        "webhook_attempts",
        _id(),
        sa.Column("endpoint_id", _ID, nullable=False),
        sa.Column("event_public_id", sa.String(length=30), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("error", sa.String(length=300), nullable=True),
        sa.Column("duration_ms", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["endpoint_id"],
            ["webhook_endpoints.id"],
            name=op.f("fk_webhook_attempts_endpoint_id_webhook_endpoints"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_attempts")),
    )
    op.create_index("ix_webhook_attempts_endpoint_id_id", "webhook_attempts", ["endpoint_id", "id"])
    op.create_index(op.f("ix_webhook_attempts_created_at"), "webhook_attempts", ["created_at"])
    create_fan_out()


def downgrade() -> None:
    drop_fan_out()
    op.drop_table("webhook_attempts")
    op.drop_table("webhook_deliveries")
    op.drop_table("webhook_endpoints")
    op.drop_table("events")
