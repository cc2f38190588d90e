"""Wake-ups for whoever waits on new events (webhook delivery, subscriptions) in this process.

Three sources, any of which is enough: this process's own commits (the after-commit hook of
the database, immediate), PostgreSQL NOTIFY from every process (one LISTEN connection per
process, reconnected when lost), and the waiter's own timeout (EVENTS_POLL_INTERVAL), which
covers other processes on SQLite and a notification lost while reconnecting. A wake-up only
says "look again": readers always read the events table, so none can be missed.

Revoked API keys travel the same ways (this process's commits, NOTIFY on REVOKED_CHANNEL):
they raise a flag the subscription hub takes to re-check its keys at once rather than at its
next periodic check.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from sqlalchemy.engine import make_url

from app.auth.repository import REVOKED_CHANNEL
from app.core.config import Settings
from app.events.repository import NOTIFY_CHANNEL

log = logging.getLogger("clients.events")


class Waiter:
    """One consumer's wake-up flag."""

    def __init__(self) -> None:
        self._flag = asyncio.Event()

    def set(self) -> None:
        self._flag.set()

    async def wait(self, seconds: float) -> None:
        """Return when woken or after `seconds`; clears the flag either way."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._flag.wait(), seconds)
        self._flag.clear()


class EventSignals:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._waiters: list[Waiter] = []
        self._listener: asyncio.Task[None] | None = None
        self._revoked = False

    def waiter(self) -> Waiter:
        waiter = Waiter()
        self._waiters.append(waiter)
        return waiter

    def drop(self, waiter: Waiter) -> None:
        with contextlib.suppress(ValueError):
            self._waiters.remove(waiter)

    def fire(self) -> None:
        for waiter in self._waiters:
            waiter.set()

    def key_revoked(self) -> None:
        """A key was revoked (here or in another process): wake everyone, flag it."""
        self._revoked = True
        self.fire()

    def take_revoked(self) -> bool:
        """Whether a key was revoked since the last call (which clears the flag)."""
        revoked, self._revoked = self._revoked, False
        return revoked

    def start(self) -> None:
        if not self.settings.is_sqlite and self._listener is None:
            self._listener = asyncio.create_task(self._listen(), name="events-listen")

    async def stop(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
            self._listener = None

    async def _listen(self) -> None:
        import asyncpg

        url = make_url(self.settings.database_url).set(drivername="postgresql")
        dsn = url.render_as_string(hide_password=False)

        def on_notify(*_args: Any) -> None:
            self.fire()

        def on_revoked(*_args: Any) -> None:
            self.key_revoked()

        while True:
            conn = None
            try:
                conn = await asyncpg.connect(dsn, timeout=self.settings.db_connect_timeout)
                await conn.add_listener(NOTIFY_CHANNEL, on_notify)
                await conn.add_listener(REVOKED_CHANNEL, on_revoked)
                self.key_revoked()  # anything committed while not listening
                while True:
                    await asyncio.sleep(5)
                    await conn.execute("SELECT 1")  # notices a lost connection
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # reconnect; the poll covers the gap
                log.warning("events listener lost its connection: %s", type(exc).__name__)
                await asyncio.sleep(1)
            finally:
                if conn is not None:
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(conn.close(), timeout=2)
