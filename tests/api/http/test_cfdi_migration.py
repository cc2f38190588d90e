"""Migration 0004 on a database with clients of the first version (contract §6): they stay
readable and editable, with no régimen, no use, `{}` metadata and their readiness computed
(only the generic RFCs are ready without more data). SQLite or PostgreSQL per TEST_DATABASE."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from alembic import command
from sqlalchemy.ext.asyncio import create_async_engine

from app.clients.ids import new_client_id
from app.core import clock
from app.db.database import Database
from app.db.migrate import alembic_config, upgrade
from app.main import create_app
from tests.conftest import ENGINE, make_settings, pg_admin, pg_url
from tests.support import create_key, new_rfc, unique_team

# The clients table as the first version (revision 0003) has it.
_V1_COLUMNS = (
    "public_id team_id livemode name legal_name rfc rfc_unique rfc_check_digit_valid email "
    "email_lower phone street city state zip_code country search_text created_at updated_at"
)
V1_CLIENTS = sa.table("clients", *(sa.column(name) for name in _V1_COLUMNS.split()))


@pytest.fixture
def empty_url(tmp_path: Path) -> Iterator[str]:
    if ENGINE == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'v1.db'}"
        return
    name = f"clients_test_v1_{secrets.token_hex(4)}"
    asyncio.run(pg_admin(f'CREATE DATABASE "{name}"'))
    try:
        yield pg_url(name)
    finally:
        asyncio.run(pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def v1_row(team_id: int, name: str, rfc: str, zip_code: str | None) -> dict[str, Any]:
    now = clock.now()
    return {
        "public_id": new_client_id(clock.to_ms(now)),
        "team_id": team_id,
        "livemode": True,
        "name": name,
        "legal_name": f"{name} S.A. de C.V.",
        "rfc": rfc,
        "rfc_unique": None if rfc.startswith("X") else rfc,
        "rfc_check_digit_valid": True,
        "email": None,
        "email_lower": None,
        "phone": None,
        "street": None,
        "city": None,
        "state": None,
        "zip_code": zip_code,
        "country": None,
        "search_text": name.lower() + "\n",
        "created_at": now if ENGINE == "postgres" else now.replace(tzinfo=None),
        "updated_at": now if ENGINE == "postgres" else now.replace(tzinfo=None),
    }


async def _insert_v1_clients(url: str, team: str) -> dict[str, str]:
    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            teams = sa.table("teams", sa.column("id"), sa.column("name"), sa.column("created_at"))
            created_at = clock.now() if ENGINE == "postgres" else clock.now().replace(tzinfo=None)
            result = await conn.execute(
                teams.insert().values(name=team, created_at=created_at).returning(teams.c.id)
            )
            team_id = result.scalar_one()
            rows = {
                # A zip of five digits that SAT does not list: valid in the first version.
                "legacy": v1_row(team_id, "Legado", new_rfc(moral=True), "00001"),
                "generic": v1_row(team_id, "Mostrador", "XAXX010101000", None),
            }
            for row in rows.values():
                await conn.execute(V1_CLIENTS.insert().values(**row))
        return {label: row["public_id"] for label, row in rows.items()}
    finally:
        await engine.dispose()


async def _use_upgraded(url: str, team: str, ids: dict[str, str]) -> None:
    app = create_app(make_settings(url))
    db: Database = app.app.state.services.db
    try:
        key = await create_key(db, team=team)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            await _check(http, key.headers, ids)
    finally:
        await db.dispose()


async def _check(http: httpx.AsyncClient, headers: dict[str, str], ids: dict[str, str]) -> None:
    legacy = (await http.get(f"/v2/clients/{ids['legacy']}", headers=headers)).json()["data"]
    assert (legacy["taxSystem"], legacy["cfdiUse"], legacy["metadata"]) == (None, None, {})
    assert legacy["cfdiName"] == "LEGADO"
    assert legacy["address"]["zipCode"] == "00001"
    assert legacy["invoiceReady"] is False
    generic = (await http.get(f"/v2/clients/{ids['generic']}", headers=headers)).json()["data"]
    assert generic["invoiceReady"] is True

    # Stored readiness, as 0004 computed it, serves the filter.
    r = await http.get("/v2/clients?invoiceReady=true", headers=headers)
    assert [c["id"] for c in r.json()["data"]] == [ids["generic"]]

    # Editable: only what changes is validated (the stored zip SAT does not list stays).
    url = f"/v2/clients/{ids['legacy']}"
    r = await http.patch(url, json={"name": "Legado Nuevo", "taxSystem": "601"}, headers=headers)
    assert r.status_code == 200, r.text
    assert r.json()["data"]["address"]["zipCode"] == "00001"
    r = await http.patch(url, json={"address": {"zipCode": "00002"}}, headers=headers)
    assert r.status_code == 400
    assert "address.zipCode" in r.json()["error"]["details"]
    r = await http.patch(url, json={"address": {"zipCode": "06700"}}, headers=headers)
    assert r.json()["data"]["invoiceReady"] is True
    r = await http.get("/v2/clients?invoiceReady=true", headers=headers)
    assert {c["id"] for c in r.json()["data"]} == set(ids.values())


def test_first_version_clients_survive_the_upgrade(empty_url: str) -> None:
    command.upgrade(alembic_config(empty_url), "0003")
    team = unique_team("v1")
    ids = asyncio.run(_insert_v1_clients(empty_url, team))
    upgrade(empty_url)
    asyncio.run(_use_upgraded(empty_url, team, ids))
