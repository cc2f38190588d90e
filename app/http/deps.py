"""What a request handler needs: the services built at start-up, and the caller."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request

from app.auth.principal import Principal
from app.auth.service import REVOKED_KEYS, ApiKeyService
from app.clients.pagination import TokenSigner
from app.clients.service import ClientService
from app.core.config import Settings
from app.core.errors import RateLimited
from app.db.database import Database
from app.events.hub import SubscriptionHub
from app.events.outbox import WROTE_EVENTS, Outbox
from app.events.service import EventService
from app.events.signals import EventSignals
from app.http import metrics
from app.platform.idempotency import IdempotencyService
from app.platform.ratelimit import RateLimiter, build_rate_limiter
from app.webhooks.service import WebhookService


@dataclass
class Services:
    settings: Settings
    db: Database
    clients: ClientService
    keys: ApiKeyService
    idempotency: IdempotencyService
    limiter: RateLimiter | None
    signals: EventSignals
    events: EventService
    webhooks: WebhookService

    @classmethod
    def build(cls, settings: Settings) -> Services:
        # The one REST rendering of a client is also the `data.object` of its events.
        from app.rest.clients import client_json

        db = Database(settings)
        signer = TokenSigner(settings.resolved_secret_key())
        idempotency = IdempotencyService(db)
        signals = EventSignals(settings)
        # This process's commits that wrote events wake its readers at once.
        db.after_commit.append(lambda info: signals.fire() if info.get(WROTE_EVENTS) else None)
        # A key revoked by this process ends its subscriptions here at once (other processes:
        # NOTIFY on PostgreSQL, the hub's periodic re-check on SQLite).
        db.after_commit.append(
            lambda info: signals.key_revoked() if info.get(REVOKED_KEYS) else None
        )
        hub = SubscriptionHub(
            db,
            signals,
            poll_interval=settings.events_poll_interval,
            per_key=settings.subscriptions_per_key,
        )
        return cls(
            settings=settings,
            db=db,
            clients=ClientService(db, signer, idempotency, Outbox(db.dialect, client_json)),
            keys=ApiKeyService(db),
            idempotency=idempotency,
            limiter=build_rate_limiter(settings, db),
            signals=signals,
            events=EventService(db, signer, hub),
            webhooks=WebhookService(db, settings),
        )


def services(request: Request) -> Services:
    svc: Services = request.app.state.services
    return svc


def client_service(request: Request) -> ClientService:
    return services(request).clients


async def authenticate(request: Request) -> Principal:
    """The caller of this request (401 otherwise), within its rate limit (429 otherwise)."""
    svc = services(request)
    who = await svc.keys.authenticate(request.headers.get("authorization"))
    request.state.team_id = who.team_id
    if svc.limiter is not None:
        decision = await svc.limiter.hit(who.key_id)
        request.state.ratelimit = decision  # the edge adds the RateLimit-* headers
        if not decision.allowed:
            metrics.rate_limited()
            raise RateLimited(decision.retry_after)
    return who


async def principal(request: Request) -> Principal:
    """FastAPI dependency: the authenticated caller (401 otherwise)."""
    return await authenticate(request)
