"""The delivery loop: sends due deliveries to their endpoints, signed per Standard Webhooks.

Runs in every `serve` worker (WEBHOOK_DELIVERY=internal) or in `python -m app deliver`.
Each turn claims due deliveries (app/webhooks/repository.py: leases, SKIP LOCKED), at most
WEBHOOK_CONCURRENCY in flight per process and WEBHOOK_CONCURRENCY_PER_ENDPOINT per endpoint,
so a slow or failing endpoint uses its own slots and never delays the others. It wakes on
new events (app/events/signals.py), when an attempt finishes, and every
EVENTS_POLL_INTERVAL seconds (retries that came due).

An attempt: POST of the event JSON with `webhook-id` (the event id), `webhook-timestamp`
and `webhook-signature`; any 2xx within WEBHOOK_TIMEOUT seconds is success, redirects are
not followed; anything else is retried after the next delay of WEBHOOK_RETRY_SCHEDULE, and
after the last one the delivery is failed. Every attempt is logged. A process that dies
mid-attempt leaves a lease that expires: the attempt is made again (at least once; the
receiver de-duplicates by `webhook-id`). Attempts are recorded in batches, by the loop's next
turn, in the write unit of its claim (on SQLite one wait for the write lock per turn, not one
per attempt behind the creates): the delivery stays leased until then, so the next event of
the same client and endpoint waits for it as before.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy.ext.asyncio import AsyncSession
from standardwebhooks import Webhook as Signer

from app.core.config import Settings
from app.core.errors import ServiceUnavailable
from app.db.database import Database
from app.events.service import EventService
from app.events.signals import EventSignals
from app.webhooks.repository import WebhookRepository
from app.webhooks.types import Attempt, DueDelivery
from app.webhooks.urls import UrlRefused, parse_url, resolve_public

log = logging.getLogger("clients.webhooks")

USER_AGENT = "clients-gateway-webhooks/1"
_LEASE_MARGIN = timedelta(seconds=5)
_PRUNE_EVERY = 3600.0


def _now() -> datetime:
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def signed_headers(delivery: DueDelivery, now: datetime) -> dict[str, str]:
    signature = Signer(delivery.secret).sign(delivery.event_id, now, delivery.event_body)
    return {
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        "webhook-id": delivery.event_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": signature,
    }


@dataclass(frozen=True, slots=True)
class _Finished:
    job: DueDelivery
    outcome: Attempt
    next_at: datetime | None
    ok: bool


class Deliverer:
    def __init__(
        self,
        db: Database,
        settings: Settings,
        signals: EventSignals,
        events: EventService | None = None,
    ) -> None:
        self.db = db
        self.settings = settings
        self.signals = signals
        self.events = events
        self.repo = WebhookRepository(db.dialect)
        self.owner = f"{socket.gethostname()[:20]}:{os.getpid()}:{secrets.token_hex(4)}"
        self.schedule = settings.retry_schedule
        self.check_addresses = settings.is_production and not settings.webhook_allow_private
        self._in_flight: dict[int, int] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._finished: list[_Finished] = []  # attempts made, not yet recorded
        self._client = httpx.AsyncClient(
            follow_redirects=False,
            timeout=settings.webhook_timeout,
            trust_env=False,  # never through a proxy from the environment
            limits=httpx.Limits(max_connections=settings.webhook_concurrency),
        )
        self._waiter = signals.waiter()
        self._last_prune = float("-inf")

    async def run(self) -> None:
        """Deliver until cancelled."""
        try:
            while True:
                busy = False
                try:
                    busy = await self.turn()
                    await self._maybe_prune()
                except asyncio.CancelledError:
                    raise
                except ServiceUnavailable:  # the database is away (already logged)
                    log.warning("webhook delivery paused: database unavailable; retrying")
                except Exception:  # a fault: logged with its trace, then the next turn
                    log.exception("webhook delivery turn failed; retrying")
                if not busy:
                    await self._waiter.wait(self.settings.events_poll_interval)
                else:
                    await asyncio.sleep(0)
        finally:
            await self.close()

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        with contextlib.suppress(Exception):
            await asyncio.gather(*self._tasks, return_exceptions=True)
        finished, self._finished = self._finished, []
        await self._record(finished)  # what is not recorded is attempted again
        self.signals.drop(self._waiter)
        await self._client.aclose()

    async def turn(self) -> bool:
        """Record the attempts that finished, claim and start what is due and fits, in one
        write unit; True when it filled every free slot (more may be due at once)."""
        finished, self._finished = self._finished, []
        free = self.settings.webhook_concurrency - len(self._tasks)
        if free <= 0:
            await self._record(finished)
            await self._waiter.wait(self.settings.events_poll_interval)
            return False
        per_endpoint = self.settings.webhook_concurrency_per_endpoint
        full = {ep for ep, n in self._in_flight.items() if n >= per_endpoint}
        now = _now()
        if not finished:
            async with self.db.read() as session:
                if not await self.repo.any_due(session, now=now):
                    return False
        lease = now + timedelta(seconds=self.settings.webhook_timeout) + _LEASE_MARGIN
        async with self.db.write() as session:
            # Recorded first: a client's next event, waiting for this one, is claimable now.
            await self._record_in(session, finished)
            claimed = await self.repo.claim(
                session,
                owner=self.owner,
                now=now,
                lease_until=lease,
                limit=free,
                skip_endpoints=full,
            )
            overflow = []
            for job in claimed:
                if self._in_flight.get(job.endpoint_id, 0) >= per_endpoint:
                    overflow.append(job.id)
                    continue
                self._start(job)
            if overflow:
                await self.repo.release(session, ids=overflow, owner=self.owner)
        return len(claimed) >= free

    def _start(self, job: DueDelivery) -> None:
        self._in_flight[job.endpoint_id] = self._in_flight.get(job.endpoint_id, 0) + 1
        task = asyncio.create_task(self._deliver(job))
        self._tasks.add(task)

        def done(t: asyncio.Task[None]) -> None:
            self._tasks.discard(t)
            left = self._in_flight.get(job.endpoint_id, 1) - 1
            if left > 0:
                self._in_flight[job.endpoint_id] = left
            else:
                self._in_flight.pop(job.endpoint_id, None)
            self._waiter.set()  # a slot is free: look again

        task.add_done_callback(done)

    async def _deliver(self, job: DueDelivery) -> None:
        number = job.attempts + 1
        started = time.perf_counter()
        status_code, error = await self._send(job)
        duration = int((time.perf_counter() - started) * 1000)
        ok = status_code is not None and 200 <= status_code < 300
        finished = _now()
        next_at = None
        if not ok and number <= len(self.schedule):
            next_at = finished + timedelta(seconds=self.schedule[number - 1])
        outcome = Attempt(
            event_id=job.event_id,
            attempt=number,
            status_code=status_code,
            error=error,
            duration_ms=duration,
            created_at=finished,
        )
        # Recorded by the loop's next turn, with every other attempt finished by then (the
        # done callback wakes it); until then the delivery stays leased to this process.
        self._finished.append(_Finished(job, outcome, next_at, ok))

    async def _record(self, finished: list[_Finished]) -> None:
        """Record attempts in a write unit of their own."""
        if not finished:
            return
        try:
            async with self.db.write() as session:
                await self._record_in(session, finished)
        except Exception:  # their leases expire and the attempts are made again
            log.warning("could not record %d webhook attempts", len(finished), exc_info=True)

    async def _record_in(self, session: AsyncSession, finished: list[_Finished]) -> None:
        for done in finished:
            await self.repo.finish(
                session,
                delivery=done.job,
                owner=self.owner,
                outcome=done.outcome,
                next_attempt_at=done.next_at,
                succeeded=done.ok,
            )

    async def _send(self, job: DueDelivery) -> tuple[int | None, str | None]:
        """One POST; (status code, None) or (None, what went wrong)."""
        try:
            target = parse_url(job.url, allow_http=not self.settings.is_production)
            url, headers, extensions = job.url, signed_headers(job, _now()), {}
            if self.check_addresses:
                address = (await resolve_public(target))[0]
                # Connect to the address just checked; Host and TLS name stay the URL's.
                host = f"[{address}]" if ":" in address else address
                url = str(httpx.URL(job.url).copy_with(host=host.strip("[]")))
                headers["host"] = httpx.URL(job.url).netloc.decode("ascii")
                if target.scheme == "https":
                    extensions = {"sni_hostname": target.host}
            async with asyncio.timeout(self.settings.webhook_timeout):
                async with self._client.stream(
                    "POST",
                    url,
                    content=job.event_body.encode(),
                    headers=headers,
                    extensions=extensions,
                ) as response:
                    return response.status_code, None  # the body is not read
        except UrlRefused as exc:
            return None, exc.message
        except (TimeoutError, httpx.TimeoutException):
            return None, f"No answer within {self.settings.webhook_timeout:g} s"
        except httpx.HTTPError as exc:
            return None, f"{type(exc).__name__}: {str(exc)[:200]}"
        except OSError as exc:
            return None, f"{type(exc).__name__}"

    async def _maybe_prune(self) -> None:
        if self.events is None or time.monotonic() - self._last_prune < _PRUNE_EVERY:
            return
        self._last_prune = time.monotonic()
        days = self.settings.events_retention_days
        pruned = await self.events.prune(retention_days=days)
        before = _now() - timedelta(days=days)
        async with self.db.write() as session:
            await self.repo.prune_attempts(session, before, batch=50_000)
        if pruned:
            log.info("pruned %d events older than %d days", pruned, days)
