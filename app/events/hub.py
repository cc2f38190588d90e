"""Live event streams for GraphQL subscriptions, held by this process.

Subscribers of one team and mode form a group. One task reads each group's new events from
the events table (after the group's cursor, the id of the last event read) whenever a
wake-up arrives (app/events/signals.py) and hands them to every member's queue, so a
thousand subscribers of a team cost one query per wake-up, not a thousand.

No gap, no duplicate: a subscriber joins synchronously (no await between reading the group's
cursor and joining), so its queue receives exactly the events after that cursor; what lies
between its own starting point (`after`) and that cursor it reads itself from the table
first. A subscriber whose queue overflows (it reads too slowly) is marked lagging and stops
receiving; it catches up from the table the same way, then continues from its queue.
Events are in commit order because ids are, per team (app/events/repository.py).

A stream belongs to an API key and lasts no longer than it: a stream checks its key when it
starts, and the reader re-checks the keys of every open stream (one statement for all) every
EVENTS_POLL_INTERVAL, and at once when a revocation is heard of (this process's own, or
PostgreSQL NOTIFY from any process: app/events/signals.py). A revoked key's streams end with
KeyRevoked (schema/events.py closes the socket with 4403, as at connect).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from app.auth.principal import Principal
from app.auth.repository import ApiKeyRepository
from app.core.errors import ServiceUnavailable
from app.db.database import Database
from app.events.repository import EventRepository
from app.events.signals import EventSignals
from app.events.types import Event

log = logging.getLogger("clients.events")

QUEUE_SIZE = 1000
_PAGE = 500


class TooManySubscriptions(Exception):
    """The key already holds as many subscriptions as it may, in this process."""


class KeyRevoked(Exception):
    """The stream's API key is revoked (or gone): the stream ends."""


@dataclass(eq=False)
class _Member:
    key_id: int
    queue: asyncio.Queue[Event] = field(default_factory=lambda: asyncio.Queue(QUEUE_SIZE))
    lagging: bool = True  # until its first catch-up
    closed: bool = False
    revoked: bool = False
    woken: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass(eq=False)
class _Group:
    cursor: int
    members: set[_Member] = field(default_factory=set)


class SubscriptionHub:
    def __init__(
        self, db: Database, signals: EventSignals, *, poll_interval: float, per_key: int
    ) -> None:
        self.db = db
        self.repo = EventRepository(db.dialect)
        self.keys = ApiKeyRepository(db.dialect)
        self.signals = signals
        self.poll_interval = poll_interval
        self.per_key = per_key
        self._groups: dict[tuple[int, bool], _Group] = {}
        self._per_key: dict[int, int] = {}
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._keys_checked = 0.0

    @property
    def subscriber_count(self) -> int:
        return sum(len(g.members) for g in self._groups.values())

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="events-hub")

    async def stop(self) -> None:
        """End every stream (their GraphQL operations complete) and the reader."""
        self._closing = True
        for group in self._groups.values():
            for member in group.members:
                member.closed = True
                member.woken.set()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def reserve(self, principal: Principal) -> None:
        """Count a subscription against its key's limit (TooManySubscriptions when full);
        `release` gives it back."""
        if self._per_key.get(principal.key_id, 0) >= self.per_key:
            raise TooManySubscriptions()
        self._per_key[principal.key_id] = self._per_key.get(principal.key_id, 0) + 1

    def release(self, principal: Principal) -> None:
        left = self._per_key.get(principal.key_id, 1) - 1
        if left > 0:
            self._per_key[principal.key_id] = left
        else:
            self._per_key.pop(principal.key_id, None)

    async def stream(self, principal: Principal, after_seq: int | None) -> AsyncIterator[Event]:
        """Every event of the caller's team and mode committed after `after_seq` (or, when
        None, after this call), in commit order, until the hub stops; KeyRevoked once the
        caller's key is revoked."""
        if not await self._active({principal.key_id}):
            raise KeyRevoked()
        key = (principal.team_id, principal.livemode)
        group = self._groups.get(key)
        if group is None:
            async with self.db.read() as session:
                newest = await self.repo.newest_seq(session, *key)
            group = self._groups.setdefault(key, _Group(cursor=newest))
        member = _Member(key_id=principal.key_id)
        group.members.add(member)
        cursor = group.cursor if after_seq is None else after_seq
        try:
            while not member.closed and not self._closing:
                if member.revoked:
                    raise KeyRevoked()
                if member.lagging:
                    # Synchronously: from here on the queue holds what comes after `target`.
                    target = group.cursor
                    _drain(member.queue)
                    member.lagging = False
                    async for missed in self._read(principal, cursor, target):
                        cursor = missed.seq
                        yield missed
                    cursor = max(cursor, target)
                    continue
                live = await self._next(member)
                if live is not None and live.seq > cursor:
                    cursor = live.seq
                    yield live
        finally:
            group.members.discard(member)

    async def _next(self, member: _Member) -> Event | None:
        if member.queue.empty():
            member.woken.clear()
            getter = asyncio.ensure_future(member.queue.get())
            woken = asyncio.ensure_future(member.woken.wait())
            try:
                await asyncio.wait({getter, woken}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                woken.cancel()
                if not getter.done():
                    getter.cancel()
            return getter.result() if getter.done() and not getter.cancelled() else None
        return member.queue.get_nowait()

    async def _read(self, principal: Principal, after: int, upto: int) -> AsyncIterator[Event]:
        while after < upto:
            async with self.db.read() as session:
                page = await self.repo.after(
                    session,
                    principal.team_id,
                    principal.livemode,
                    after,
                    limit=_PAGE,
                    upto_seq=upto,
                )
            if not page:
                return
            for event in page:
                after = event.seq
                yield event

    async def _run(self) -> None:
        waiter = self.signals.waiter()
        try:
            while not self._closing:
                try:
                    await self._read_groups()
                except asyncio.CancelledError:
                    raise
                except ServiceUnavailable:  # the database is away (already logged)
                    log.warning("subscription reader paused: database unavailable; retrying")
                except Exception:  # a fault: logged with its trace, then the next wake-up
                    log.exception("subscription reader failed; retrying")
                try:
                    await self._check_keys()
                except asyncio.CancelledError:
                    raise
                except ServiceUnavailable:
                    log.warning("subscription key check paused: database unavailable; retrying")
                except Exception:
                    log.exception("subscription key check failed; retrying")
                await waiter.wait(self.poll_interval)
        finally:
            self.signals.drop(waiter)

    async def _check_keys(self) -> None:
        """End the streams of revoked keys: when a revocation was heard of, else at most
        every poll interval (wake-ups at every commit must not each cost a look-up)."""
        revoked_heard = self.signals.take_revoked()
        now = time.monotonic()
        if not revoked_heard and now - self._keys_checked < self.poll_interval:
            return
        self._keys_checked = now
        members = [m for group in self._groups.values() for m in group.members]
        held = {m.key_id for m in members}
        if not held:
            return
        active = await self._active(held)
        for member in members:
            if member.key_id not in active:
                member.revoked = True
                member.woken.set()

    async def _active(self, key_ids: set[int]) -> set[int]:
        async with self.db.statement() as conn:
            return await self.keys.active_among(conn, key_ids)

    async def _read_groups(self) -> None:
        for key, group in list(self._groups.items()):
            if not group.members:
                if self._groups.get(key) is group:
                    del self._groups[key]
                continue
            while True:
                async with self.db.read() as session:
                    page = await self.repo.after(session, *key, group.cursor, limit=_PAGE)
                for event in page:
                    for member in group.members:
                        _offer(member, event)
                    group.cursor = event.seq
                if len(page) < _PAGE:
                    break


def _offer(member: _Member, event: Event) -> None:
    if member.lagging:
        return
    try:
        member.queue.put_nowait(event)
    except asyncio.QueueFull:
        member.lagging = True
        member.woken.set()


def _drain(queue: asyncio.Queue[Event]) -> None:
    while not queue.empty():
        queue.get_nowait()
