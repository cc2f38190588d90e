"""What every resolver can reach: the authenticated caller and the services."""

from __future__ import annotations

from dataclasses import dataclass

from app.auth.principal import Principal
from app.http.deps import Services


@dataclass(slots=True)
class Context:
    principal: Principal
    services: Services
