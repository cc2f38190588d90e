"""The background work of events in one process: the wake-up listener, the subscription
reader, and (unless WEBHOOK_DELIVERY=external) the webhook delivery loop. `serve` runs it in
every worker's lifespan; `python -m app deliver` runs the delivery part alone."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING

from app.webhooks.delivery import Deliverer

if TYPE_CHECKING:
    from app.http.deps import Services

log = logging.getLogger("clients.events")


class EventsRuntime:
    def __init__(self, services: Services, *, deliver: bool, subscriptions: bool = True) -> None:
        self.services = services
        self.deliver = deliver
        self.subscriptions = subscriptions
        self._delivery: asyncio.Task[None] | None = None

    def start(self) -> None:
        svc = self.services
        svc.signals.start()
        if self.subscriptions:
            svc.events.hub.start()
        if self.deliver:
            deliverer = Deliverer(svc.db, svc.settings, svc.signals, svc.events)
            self._delivery = asyncio.create_task(deliverer.run(), name="webhook-delivery")

    async def stop(self) -> None:
        """Open subscriptions complete, attempts in flight are abandoned (their leases
        expire and they are made again), the listener closes."""
        await self.services.events.hub.stop()
        if self._delivery is not None:
            self._delivery.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._delivery
        await self.services.signals.stop()

    async def run_forever(self) -> None:
        self.start()
        try:
            if self._delivery is not None:
                await self._delivery
        finally:
            await self.stop()
