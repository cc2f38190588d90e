"""What a request handler needs: the services built at start-up, and the caller."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request

from app.auth.service import ApiKeyService
from app.clients.pagination import TokenSigner
from app.clients.service import ClientService
from app.clients.types import Principal
from app.config import Settings
from app.db import Database


@dataclass
class Services:
    settings: Settings
    db: Database
    clients: ClientService
    keys: ApiKeyService

    @classmethod
    def build(cls, settings: Settings) -> Services:
        db = Database(settings)
        signer = TokenSigner(settings.resolved_secret_key())
        return cls(settings, db, ClientService(db, signer), ApiKeyService(db))


def services(request: Request) -> Services:
    svc: Services = request.app.state.services
    return svc


def client_service(request: Request) -> ClientService:
    return services(request).clients


async def authenticate(request: Request) -> Principal:
    who = await services(request).keys.authenticate(request.headers.get("authorization"))
    request.state.team_id = who.team_id
    return who


async def principal(request: Request) -> Principal:
    """FastAPI dependency: the authenticated caller (401 otherwise)."""
    return await authenticate(request)
