"""The fan-out of an event, done by the database in the inserting statement: an AFTER INSERT
trigger on `events` queues one pending delivery per webhook endpoint of the event's team and
mode that wants its type (`events` holds a JSON list of types, or ["*"]), and on PostgreSQL
sends the NOTIFY that wakes every process (delivered at commit, in commit order).

A trigger rather than statements of the repository: the outbox then costs one statement per
change (on PostgreSQL the same statement takes the advisory lock: app/events/repository.py),
and whoever inserts an event cannot forget its deliveries. Payload of the NOTIFY:
"team_id:livemode(0|1):event row id".
"""

from __future__ import annotations

from alembic import op

_COLUMNS = (
    "endpoint_id, event_id, subject_id, status, attempts, next_attempt_at, created_at, updated_at"
)
_SELECT = (
    "SELECT w.id, NEW.id, NEW.subject_id, 'pending', 0, NEW.created_at, NEW.created_at, "
    "NEW.created_at FROM webhook_endpoints w "
    "WHERE w.team_id = NEW.team_id AND w.livemode = NEW.livemode "
    "AND (w.events LIKE '%\"*\"%' OR w.events LIKE '%\"' || NEW.type || '\"%')"
)

SQLITE = (
    "CREATE TRIGGER events_fan_out AFTER INSERT ON events BEGIN "
    f"INSERT INTO webhook_deliveries ({_COLUMNS}) {_SELECT}; END",
)

POSTGRESQL = (
    "CREATE FUNCTION events_fan_out() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
    f"INSERT INTO webhook_deliveries ({_COLUMNS}) {_SELECT}; "
    "PERFORM pg_notify('client_events', "
    "NEW.team_id || ':' || (CASE WHEN NEW.livemode THEN 1 ELSE 0 END) || ':' || NEW.id); "
    "RETURN NULL; END $$",
    "CREATE TRIGGER events_fan_out AFTER INSERT ON events "
    "FOR EACH ROW EXECUTE FUNCTION events_fan_out()",
)


def create_fan_out() -> None:
    statements = SQLITE if op.get_bind().dialect.name == "sqlite" else POSTGRESQL
    for statement in statements:
        op.execute(statement)


def drop_fan_out() -> None:
    op.execute("DROP TRIGGER IF EXISTS events_fan_out" + ("" if _sqlite() else " ON events"))
    if not _sqlite():
        op.execute("DROP FUNCTION IF EXISTS events_fan_out()")


def _sqlite() -> bool:
    return op.get_bind().dialect.name == "sqlite"
