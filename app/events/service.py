"""Every rule of reading events: tenancy (a team and mode see only their own), page bounds,
the type filter, signed `next` tokens and cursors (as for clients), and where a live stream
starts (`after` must name one of the caller's events)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

from app.auth.principal import Principal
from app.clients.pagination import InvalidToken, TokenSigner
from app.core.errors import EventNotFound, ValidationFailed
from app.db.database import Database
from app.events.hub import SubscriptionHub
from app.events.repository import EventRepository
from app.events.types import EVENT_TYPES, Event, EventPage, is_event_id

MAX_LIMIT = 100
_PRUNE_BATCH = 5000


def check_type(type_: str | None, *, field: str = "type") -> None:
    if type_ is not None and type_ not in EVENT_TYPES:
        raise ValidationFailed({field: f"Unknown event type; one of {', '.join(EVENT_TYPES)}"})


def check_types(types: list[str] | None, *, field: str = "types") -> frozenset[str] | None:
    if types is None:
        return None
    unknown = [t for t in types if t not in EVENT_TYPES]
    if unknown:
        raise ValidationFailed(
            {field: f"Unknown event type {unknown[0][:60]!r}; one of {', '.join(EVENT_TYPES)}"}
        )
    return frozenset(types)


class EventService:
    def __init__(self, db: Database, signer: TokenSigner, hub: SubscriptionHub) -> None:
        self.db = db
        self.signer = signer
        self.hub = hub
        self.repo = EventRepository(db.dialect)

    async def get(self, *, principal: Principal, event_id: str) -> Event:
        if not is_event_id(event_id):
            raise EventNotFound(event_id)
        async with self.db.read() as session:
            found = await self.repo.get(session, principal.team_id, principal.livemode, event_id)
        if found is None:
            raise EventNotFound(event_id)
        return found

    async def list_events(
        self,
        *,
        principal: Principal,
        type_: str | None,
        limit: int,
        before_seq: int | None = None,
        with_total: bool = False,
    ) -> EventPage:
        """A page of the caller's events, newest first; `with_total` also counts every
        event of the type, in the same transaction."""
        errors: dict[str, str] = {}
        if not 1 <= limit <= MAX_LIMIT:
            errors["limit"] = f"Must be between 1 and {MAX_LIMIT}"
        try:
            check_type(type_)
        except ValidationFailed as exc:
            errors.update(exc.fields)
        if errors:
            raise ValidationFailed(errors)
        async with self.db.read() as session:
            rows = await self.repo.newest_first(
                session,
                principal.team_id,
                principal.livemode,
                type_=type_,
                before_seq=before_seq,
                limit=limit + 1,
            )
            total = None
            if with_total:
                total = await self.repo.count(
                    session, principal.team_id, principal.livemode, type_=type_
                )
        return EventPage(items=rows[:limit], has_more=len(rows) > limit, total=total)

    # -- pagination tokens ----------------------------------------------------------------

    def next_token(self, principal: Principal, type_: str | None, limit: int, seq: int) -> str:
        """A REST `next` token: the whole query (type, limit) and the position."""
        return self.signer.dumps("events-next", principal, {"t": type_, "l": limit, "p": seq})

    def parse_next_token(self, principal: Principal, token: str) -> tuple[str | None, int, int]:
        try:
            payload = self.signer.loads("events-next", principal, token)
            type_, limit, seq = payload.get("t"), payload.get("l"), payload.get("p")
            if not (type_ is None or isinstance(type_, str)) or not _is_int(limit):
                raise InvalidToken
            if not _is_int(seq):
                raise InvalidToken
            return type_, int(limit), int(seq)  # type: ignore[arg-type]
        except InvalidToken:
            raise ValidationFailed({"next": "Invalid or tampered pagination token"}) from None

    def cursor(self, principal: Principal, seq: int) -> str:
        return self.signer.dumps("events-cursor", principal, {"p": seq})

    def parse_cursor(self, principal: Principal, token: str) -> int:
        try:
            seq = self.signer.loads("events-cursor", principal, token).get("p")
            if not _is_int(seq):
                raise InvalidToken
            return int(seq)  # type: ignore[arg-type]
        except InvalidToken:
            raise ValidationFailed({"after": "Invalid or expired cursor"}) from None

    # -- live streams ---------------------------------------------------------------------

    async def subscribe(
        self, *, principal: Principal, types: list[str] | None, after: str | None
    ) -> AsyncIterator[Event]:
        """The caller's events committed from now on (or after the event `after`, replayed
        first), of the given types, in commit order. Checks everything before the first
        event: bad types or an unknown `after` (ValidationFailed / EventNotFound), the
        per-key limit (TooManySubscriptions)."""
        wanted = check_types(types)
        after_seq = None
        if after is not None:
            if not is_event_id(after):
                raise EventNotFound(after)
            async with self.db.read() as session:
                after_seq = await self.repo.seq_of(
                    session, principal.team_id, principal.livemode, after
                )
            if after_seq is None:
                raise EventNotFound(after)
        self.hub.reserve(principal)
        return self._filtered(principal, after_seq, wanted)

    async def _filtered(
        self, principal: Principal, after_seq: int | None, wanted: frozenset[str] | None
    ) -> AsyncIterator[Event]:
        try:
            async for event in self.hub.stream(principal, after_seq):
                if wanted is None or event.type in wanted:
                    yield event
        finally:
            self.hub.release(principal)

    # -- retention ------------------------------------------------------------------------

    async def prune(self, *, retention_days: int, now: datetime | None = None) -> int:
        """Delete events older than the retention (with their deliveries); how many."""
        before = (now or datetime.now(UTC)) - timedelta(days=retention_days)
        total = 0
        while True:
            async with self.db.write() as session:
                deleted = await self.repo.prune(session, before, batch=_PRUNE_BATCH)
            total += deleted
            if deleted < _PRUNE_BATCH:
                return total


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
