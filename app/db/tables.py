"""The persistence model: one MetaData, every constraint named by convention so the names are
the same on SQLite and PostgreSQL (the repository maps violations by name)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# An integer primary key that is BIGINT on PostgreSQL and the rowid alias on SQLite.
IntPK = BigInteger().with_variant(Integer(), "sqlite")


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on both engines, kept to the millisecond.

    SQLite has no timezone type: values are stored as naive UTC text (which sorts correctly)
    and read back with tzinfo=UTC.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime")
        value = value.astimezone(UTC)
        value = value.replace(microsecond=value.microsecond // 1000 * 1000)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Team(Base):
    __tablename__ = "teams"

    id: Mapped[int] = mapped_column(IntPK, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ApiKey(Base):
    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(IntPK, primary_key=True, autoincrement=True)
    team_id: Mapped[int] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"), index=True)
    livemode: Mapped[bool] = mapped_column(Boolean)
    # The first characters of the key ("sk_live_AbCd"), enough to recognise it in a list.
    prefix: Mapped[str] = mapped_column(String(32))
    # SHA-256 of the whole key; the key itself is never stored.
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class Client(Base):
    __tablename__ = "clients"
    __table_args__ = (
        # RFC uniqueness per team and mode. rfc_unique is NULL for the generic RFCs, and NULLs
        # are distinct on both engines, so they are exempt without a partial index.
        UniqueConstraint("team_id", "livemode", "rfc_unique"),
        # The default order (newest first) and the seek of every page.
        Index(
            "ix_clients_team_id_livemode_created_at_id", "team_id", "livemode", "created_at", "id"
        ),
        # Exact filters, served in the default order straight from the index.
        Index(
            "ix_clients_team_id_livemode_rfc_created_at_id",
            "team_id",
            "livemode",
            "rfc",
            "created_at",
            "id",
        ),
        Index(
            "ix_clients_team_id_livemode_email_lower_created_at_id",
            "team_id",
            "livemode",
            "email_lower",
            "created_at",
            "id",
        ),
        # CFDI filters (migration 0004), in the default order like the others.
        Index(
            "ix_clients_team_id_livemode_tax_system_created_at_id",
            "team_id",
            "livemode",
            "tax_system",
            "created_at",
            "id",
        ),
        Index(
            "ix_clients_team_id_livemode_invoice_ready_created_at_id",
            "team_id",
            "livemode",
            "invoice_ready",
            "created_at",
            "id",
        ),
        # Name search: an FTS5 trigram table on SQLite, a GIN trigram index on PostgreSQL;
        # both made by migration 0002 (app/db/migrations/fts.py), outside the models.
    )

    id: Mapped[int] = mapped_column(IntPK, primary_key=True, autoincrement=True)
    public_id: Mapped[str] = mapped_column(String(33), unique=True)
    team_id: Mapped[int] = mapped_column(ForeignKey("teams.id", ondelete="RESTRICT"))
    livemode: Mapped[bool] = mapped_column(Boolean)
    name: Mapped[str] = mapped_column(String(300))
    legal_name: Mapped[str | None] = mapped_column(String(300), nullable=True)
    rfc: Mapped[str] = mapped_column(String(13))
    rfc_unique: Mapped[str | None] = mapped_column(String(13), nullable=True)
    rfc_check_digit_valid: Mapped[bool] = mapped_column(Boolean)
    email: Mapped[str | None] = mapped_column(String(254), nullable=True)
    email_lower: Mapped[str | None] = mapped_column(String(254), nullable=True)
    phone: Mapped[str | None] = mapped_column(String(40), nullable=True)
    street: Mapped[str | None] = mapped_column(String(200), nullable=True)
    city: Mapped[str | None] = mapped_column(String(200), nullable=True)
    state: Mapped[str | None] = mapped_column(String(200), nullable=True)
    zip_code: Mapped[str | None] = mapped_column(String(200), nullable=True)
    country: Mapped[str | None] = mapped_column(String(200), nullable=True)
    exterior: Mapped[str | None] = mapped_column(String(200), nullable=True)
    interior: Mapped[str | None] = mapped_column(String(200), nullable=True)
    neighborhood: Mapped[str | None] = mapped_column(String(200), nullable=True)
    municipality: Mapped[str | None] = mapped_column(String(200), nullable=True)
    # CFDI 4.0 receptor data: c_RegimenFiscal and c_UsoCFDI codes (app/clients/fiscal.py).
    tax_system: Mapped[str | None] = mapped_column(String(3), nullable=True)
    cfdi_use: Mapped[str | None] = mapped_column(String(4), nullable=True)
    # `metadata` of the APIs (the attribute name is SQLAlchemy's): an object of strings.
    metadata_json: Mapped[dict[str, str]] = mapped_column(JSON, server_default=text("'{}'"))
    # Whether an invoice can be made from this client alone, maintained by the service on
    # every write (the `invoiceReady` filter reads it from its index).
    invoice_ready: Mapped[bool] = mapped_column(Boolean, server_default=false())
    # name and legalName, NFKD, accents removed, case-folded, joined by a newline (which no
    # stored text contains, so a search never matches across the two).
    search_text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Invoice(Base):
    """Minimal: the invoices API is not part of this product; rows exist to guard deletes."""

    __tablename__ = "invoices"

    id: Mapped[int] = mapped_column(IntPK, primary_key=True, autoincrement=True)
    client_id: Mapped[int] = mapped_column(
        ForeignKey("clients.id", ondelete="RESTRICT"), index=True
    )
    total_cents: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Payment(Base):
    __tablename__ = "payments"

    id: Mapped[int] = mapped_column(IntPK, primary_key=True, autoincrement=True)
    client_id: Mapped[int] = mapped_column(
        ForeignKey("clients.id", ondelete="RESTRICT"), index=True
    )
    amount_cents: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ClientCounter(Base):
    """Exact number of clients per (team, mode), kept in the same transactions as the rows,
    so an unfiltered total is one primary-key read."""

    __tablename__ = "client_counters"

    team_id: Mapped[int] = mapped_column(
        ForeignKey("teams.id", ondelete="CASCADE"), primary_key=True
    )
    livemode: Mapped[bool] = mapped_column(Boolean, primary_key=True)
    count: Mapped[int] = mapped_column(BigInteger, default=0)


class RateLimitBucket(Base):
    """Token buckets per API key, shared by every worker (PostgreSQL deployments)."""

    __tablename__ = "rate_limit_buckets"

    key_id: Mapped[int] = mapped_column(
        ForeignKey("api_keys.id", ondelete="CASCADE"), primary_key=True
    )
    tokens: Mapped[float] = mapped_column(Float)
    # Seconds since the epoch, from the database clock (one clock for every worker).
    updated_at: Mapped[float] = mapped_column(Float)
    allowed: Mapped[bool] = mapped_column(Boolean, default=True)


class IdempotencyRecord(Base):
    """The first response to a request sent with an idempotency key, replayed to retries."""

    __tablename__ = "idempotency_keys"
    __table_args__ = (UniqueConstraint("team_id", "livemode", "key"),)

    id: Mapped[int] = mapped_column(IntPK, primary_key=True, autoincrement=True)
    team_id: Mapped[int] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"))
    livemode: Mapped[bool] = mapped_column(Boolean)
    key: Mapped[str] = mapped_column(String(255))
    # SHA-256 of what was asked (transport, operation, canonical body): a reuse of the key
    # for anything else is refused.
    fingerprint: Mapped[str] = mapped_column(String(64))
    # NULL while the first request is still running.
    status: Mapped[int | None] = mapped_column(Integer, nullable=True)
    response: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


# -- events and webhooks (app/events, app/webhooks) ---------------------------------------


class Event(Base):
    """The outbox: one row per change of a client, written in the changing transaction.

    `id` (AUTOINCREMENT on SQLite, so never reused after pruning) orders a team's events in
    commit order: SQLite has one writer at a time, and on PostgreSQL the writer holds a
    per-(team, mode) advisory lock from the event's insert to its commit
    (app/events/repository.py).
    """

    __tablename__ = "events"
    __table_args__ = (
        Index("ix_events_team_id_livemode_id", "team_id", "livemode", "id"),
        Index("ix_events_team_id_livemode_type_id", "team_id", "livemode", "type", "id"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(IntPK, primary_key=True, autoincrement=True)
    public_id: Mapped[str] = mapped_column(String(30), unique=True)
    team_id: Mapped[int] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"))
    livemode: Mapped[bool] = mapped_column(Boolean)
    type: Mapped[str] = mapped_column(String(40))
    # The client the event is about: one client's events reach an endpoint in order.
    subject_id: Mapped[str] = mapped_column(String(40))
    # JSON text: {"object": …} and, for updates, the changed fields' old values.
    data: Mapped[str] = mapped_column(Text)
    previous_attributes: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)


class WebhookEndpoint(Base):
    __tablename__ = "webhook_endpoints"
    __table_args__ = (
        Index("ix_webhook_endpoints_team_id_livemode_id", "team_id", "livemode", "id"),
    )

    id: Mapped[int] = mapped_column(IntPK, primary_key=True, autoincrement=True)
    public_id: Mapped[str] = mapped_column(String(30), unique=True)
    team_id: Mapped[int] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"))
    livemode: Mapped[bool] = mapped_column(Boolean)
    url: Mapped[str] = mapped_column(String(2048))
    # JSON list of event types, or ["*"].
    events: Mapped[str] = mapped_column(Text)
    description: Mapped[str | None] = mapped_column(String(500), nullable=True)
    # The signing secret (whsec_…): needed in clear to sign, shown to the user once.
    secret: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class WebhookDelivery(Base):
    """One event owed to one endpoint: pending until a 2xx, or failed after the last retry.

    A worker claims a due row by setting `lease_owner`/`lease_until` (FOR UPDATE SKIP LOCKED
    on PostgreSQL, the write lock on SQLite); a lease that expires (the worker died) makes the
    row claimable again.
    """

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        Index("ix_webhook_deliveries_status_next_attempt_at", "status", "next_attempt_at"),
        Index("ix_webhook_deliveries_endpoint_id_subject_id_id", "endpoint_id", "subject_id", "id"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(IntPK, primary_key=True, autoincrement=True)
    endpoint_id: Mapped[int] = mapped_column(ForeignKey("webhook_endpoints.id", ondelete="CASCADE"))
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"), index=True)
    subject_id: Mapped[str] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(10))  # pending | succeeded | failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime())
    lease_owner: Mapped[str | None] = mapped_column(String(40), nullable=True)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class WebhookAttempt(Base):
    """The log of every delivery attempt (GET /v2/webhooks/{id}/deliveries)."""

    __tablename__ = "webhook_attempts"
    __table_args__ = (Index("ix_webhook_attempts_endpoint_id_id", "endpoint_id", "id"),)

    id: Mapped[int] = mapped_column(IntPK, primary_key=True, autoincrement=True)
    endpoint_id: Mapped[int] = mapped_column(ForeignKey("webhook_endpoints.id", ondelete="CASCADE"))
    event_public_id: Mapped[str] = mapped_column(String(30))
    attempt: Mapped[int] = mapped_column(Integer)
    status_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    error: Mapped[str | None] = mapped_column(String(300), nullable=True)
    duration_ms: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
