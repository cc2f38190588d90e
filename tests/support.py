"""Helpers shared by the test suites (fixtures live in conftest.py files)."""

from __future__ import annotations

import itertools
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import insert, select
from stdnum.mx import rfc as stdnum_rfc

from app.auth.principal import Principal
from app.auth.service import ApiKeyService
from app.db.database import Database
from app.db.tables import Client as ClientRow
from app.db.tables import Invoice, Payment

TEST_SECRET = "test-secret-key-not-for-production"


# -- API keys -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Key:
    key: str
    key_id: int
    team: str
    team_id: int
    livemode: bool

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}

    @property
    def principal(self) -> Principal:
        return Principal(team_id=self.team_id, livemode=self.livemode, key_id=self.key_id)


async def create_key(db: Database, *, team: str, livemode: bool = True) -> Key:
    keys = ApiKeyService(db)
    info, key = await keys.create(team=team, livemode=livemode)
    return Key(key, info.id, team, await keys.team_id(team), livemode)


def unique_team(label: str) -> str:
    return f"team-{label}-{uuid.uuid4().hex[:12]}"


# -- RFCs -----------------------------------------------------------------------------------

_rfc_counter = itertools.count(1)
# Consonants only, so generated letters never spell a word SAT refuses.
_LETTERS = "BCDFGHJKLMNPQRSTVWZ"
_HOMOCLAVE = "123456789ABCDEFGHJKLMNPRSTUV"  # what SAT issues (stdnum checks it)


def rfc_with_check_digit(base: str) -> str:
    """`base` (11 or 12 characters) completed with its SAT check digit."""
    return base + stdnum_rfc.calc_check_digit(base)


def new_rfc(*, moral: bool = False) -> str:
    """A valid RFC (correct check digit), different from every other one of this run."""
    n = next(_rfc_counter)
    letters = ""
    for _ in range(3 if moral else 4):
        n, r = divmod(n, len(_LETTERS))
        letters += _LETTERS[r]
    # Letters repeat after 19**3 or 19**4 calls; the random date and homoclave keep the
    # RFCs of parallel runs (and of runs sharing a database) apart too.
    day = secrets.randbelow(28) + 1
    month = secrets.randbelow(12) + 1
    year = secrets.randbelow(100)
    homoclave = "".join(secrets.choice(_HOMOCLAVE) for _ in range(2))
    return rfc_with_check_digit(f"{letters}{year:02d}{month:02d}{day:02d}{homoclave}")


def client_body(**overrides: Any) -> dict[str, Any]:
    """A valid create body; `rfc` defaults to a new valid one."""
    body: dict[str, Any] = {"name": "Cliente Ejemplo", "rfc": new_rfc()}
    body.update(overrides)
    return body


# -- rows written directly ------------------------------------------------------------------


async def row_id(db: Database, public_id: str) -> int:
    async with db.read() as session:
        value = (
            await session.execute(select(ClientRow.id).where(ClientRow.public_id == public_id))
        ).scalar_one()
    return int(value)


async def add_invoice(db: Database, public_id: str) -> None:
    """An invoice of a client, inserted directly (the invoices API is not this product)."""
    client_row = await row_id(db, public_id)
    async with db.write() as session:
        await session.execute(
            insert(Invoice).values(
                client_id=client_row, total_cents=11_600, created_at=datetime.now(UTC)
            )
        )


async def add_payment(db: Database, public_id: str) -> None:
    """A payment of a client, inserted directly."""
    client_row = await row_id(db, public_id)
    async with db.write() as session:
        await session.execute(
            insert(Payment).values(
                client_id=client_row, amount_cents=11_600, created_at=datetime.now(UTC)
            )
        )
