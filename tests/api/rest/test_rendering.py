"""The REST client shape has one renderer, fed two ways: from a domain object (create, update,
the events outbox) and straight from a database record (list, get-by-id). Both must give the
same bytes for every kind of row: optional fields null, empty or set, CFDI fields valid or
not, metadata, partial addresses, unicode."""

from __future__ import annotations

import random
from collections import namedtuple
from datetime import UTC, datetime, timedelta
from itertools import cycle
from typing import Any

import orjson
from sqlalchemy import insert

from app.clients import repository, validation
from app.clients.ids import new_client_id
from app.clients.repository import row_to_client
from app.clients.service import ClientService, entity_tag, record_entity_tag
from app.clients.types import RECORD_FIELDS, ClientFilter
from app.db.database import Database
from app.db.tables import ClientRow
from app.rest.clients import client_json, client_record_json
from tests.support import Key, new_rfc

Record = namedtuple("Record", RECORD_FIELDS)  # type: ignore[misc]

TEXTS = (None, "", "Av. Reforma 1", "Ñandú — 東京 🙂", "  spaced  ", 'quo"te\\')
ZIPS = (None, "", "06600", "99999", "abc")
TAX_SYSTEMS = (None, "601", "612", "999")
CFDI_USES = (None, "G03", "S01", "XXX")
LEGAL_NAMES = (None, "", "ACME", "Café Pérez S.A. de C.V.", "Empresa SA DE CV")
METADATA: tuple[dict[str, str] | None, ...] = (None, {}, {"a": "1"}, {"ключ": "値", "z": ""})


def test_record_fields_are_the_repository_select_columns() -> None:
    assert tuple(c.name for c in repository.SELECT_COLUMNS) == RECORD_FIELDS


def varied_records(n: int) -> list[Any]:
    rnd = random.Random(13)
    base = datetime(2020, 1, 1, tzinfo=UTC)
    out = []
    for i in range(n):
        created = base + timedelta(milliseconds=rnd.randrange(10**12))
        values: dict[str, Any] = {
            name: rnd.choice(TEXTS)
            for name in ("street", "city", "state", "country", "exterior", "interior")
        }
        values.update(
            neighborhood=rnd.choice(TEXTS),
            municipality=rnd.choice(TEXTS),
            zip_code=rnd.choice(ZIPS),
            id=i,
            public_id=new_client_id(),
            name=rnd.choice(("Cliente", "José Ñ", "x" * 200)),
            legal_name=rnd.choice(LEGAL_NAMES),
            rfc=rnd.choice(("XAXX010101000", "GODE561231GR8", "ABC123", new_rfc())),
            rfc_check_digit_valid=rnd.random() < 0.5,
            email=rnd.choice((None, "a@b.mx", "ñ@ü.example")),
            phone=rnd.choice((None, "", "55 1234 5678")),
            tax_system=rnd.choice(TAX_SYSTEMS),
            cfdi_use=rnd.choice(CFDI_USES),
            metadata_json=rnd.choice(METADATA),
            livemode=rnd.random() < 0.5,
            created_at=created,
            updated_at=created + timedelta(milliseconds=rnd.randrange(10**9)),
        )
        if i % 3 == 0:  # no address at all, or one of only empty values
            address = ("street", "city", "state", "country", "exterior", "interior")
            address += ("neighborhood", "municipality", "zip_code")
            values.update({name: rnd.choice((None, "")) for name in address})
        out.append(Record(**values))
    return out


def test_record_and_domain_paths_give_identical_bytes() -> None:
    records = varied_records(3000)
    for record in records:
        client = row_to_client(record)
        assert orjson.dumps(client_record_json(record)) == orjson.dumps(client_json(client))
        assert record_entity_tag(record) == entity_tag(client)
    # The variety is real: both answers of the optional parts occur.
    shapes = [client_record_json(r) for r in records]
    assert {s["address"] is None for s in shapes} == {True, False}
    assert {s["invoiceReady"] for s in shapes} == {True, False}
    assert {bool(s["metadata"]) for s in shapes} == {True, False}


async def insert_rows(db: Database, who: Key, records: list[Any]) -> None:
    rows = []
    for r in records:
        values = r._asdict()
        del values["id"]
        rfc = new_rfc()  # unique per team and mode
        values.update(
            team_id=who.team_id,
            livemode=who.livemode,
            rfc=rfc,
            rfc_unique=rfc,
            email_lower=values["email"].lower() if values["email"] else None,
            search_text=validation.search_text(values["name"], values["legal_name"]),
        )
        rows.append(values)
    async with db.write() as session:
        await session.execute(insert(ClientRow), rows)


async def test_database_rows_render_as_their_domain_objects(
    app: Any, db: Database, key_a: Key
) -> None:
    service: ClientService = app.app.state.services.clients
    await insert_rows(db, key_a, varied_records(120))
    who = key_a.principal
    domain = await service.list(principal=who, filters=ClientFilter(), limit=100)
    rows = await service.list(principal=who, filters=ClientFilter(), limit=100, as_records=True)
    assert len(domain.items) == len(rows.records) == 100 and not rows.items
    for client, record in zip(domain.items, rows.records, strict=True):
        assert orjson.dumps(client_record_json(record)) == orjson.dumps(client_json(client))
    for client in domain.items[:20]:
        record = await service.get_record(principal=who, client_id=client.id)
        assert orjson.dumps(client_record_json(record)) == orjson.dumps(client_json(client))
        assert record_entity_tag(record) == entity_tag(client)


async def test_list_and_get_answer_what_create_answered(client: Any, key_a: Key) -> None:
    """Over HTTP: the created client (domain path) reads back byte for byte (record path)."""
    created = []
    for extra, name in zip(range(6), cycle(("Ñandú 🙂", "ACME"))):
        body = {
            "name": name,
            "rfc": new_rfc(),
            "legalName": None if extra % 2 else "Café Pérez S.A. de C.V.",
            "address": None if extra % 3 == 0 else {"zipCode": "06600", "street": "Reforma"},
            "taxSystem": "612" if extra % 2 == 0 else None,
            "cfdiUse": "G03",
            "metadata": {"n": str(extra)} if extra else {},
        }
        r = await client.post("/v2/clients", json=body, headers=key_a.headers)
        assert r.status_code == 201, r.text
        created.append(r.json()["data"])
    listed = await client.get("/v2/clients?limit=100", headers=key_a.headers)
    assert listed.json()["data"] == created[::-1]
    for data in created:
        got = await client.get(f"/v2/clients/{data['id']}", headers=key_a.headers)
        assert got.json()["data"] == data
        assert got.headers["etag"]
