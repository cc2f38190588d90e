"""Service-level rules (contract §4 and the update semantics of §3), on a real database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import insert, update

from app.auth.principal import Principal
from app.clients import validation as v
from app.clients.ids import new_client_id
from app.clients.service import ClientService, ListFields, entity_tag
from app.clients.types import (
    UNSET,
    Address,
    AddressPatch,
    ClientFilter,
    ClientPatch,
    NewClient,
)
from app.core.clock import to_ms
from app.core.errors import (
    ClientInUse,
    ClientNotFound,
    DuplicateRfc,
    PreconditionFailed,
    ValidationFailed,
)
from app.db.database import Database
from app.db.tables import Client as ClientRow
from tests.support import Key, add_invoice, add_payment, new_rfc


@pytest.fixture(scope="module")
def service(app: Any) -> ClientService:
    svc: ClientService = app.app.state.services.clients
    return svc


def new_client(**overrides: Any) -> NewClient:
    values: dict[str, Any] = {"name": "Cliente", "rfc": new_rfc()}
    values.update(overrides)
    return NewClient(**values)


async def insert_raw(db: Database, who: Principal, **columns: Any) -> str:
    """A row written directly, bypassing validation (as old or imported data may be)."""
    now = datetime.now(UTC).replace(microsecond=0)
    rfc = columns.pop("rfc", new_rfc())
    name = columns.pop("name", "Raw")
    public_id = new_client_id()
    values = {
        "public_id": public_id,
        "team_id": who.team_id,
        "livemode": who.livemode,
        "name": name,
        "legal_name": None,
        "rfc": rfc,
        "rfc_unique": rfc,
        "rfc_check_digit_valid": False,
        "email": None,
        "email_lower": None,
        "phone": None,
        "street": None,
        "city": None,
        "state": None,
        "zip_code": None,
        "country": None,
        "search_text": v.search_text(name, None),
        "created_at": now,
        "updated_at": now,
        **columns,
    }
    async with db.write() as session:
        await session.execute(insert(ClientRow).values(**values))
    return public_id


# -- create ---------------------------------------------------------------------------------


async def test_create_cleans_and_returns_every_field(service: ClientService, key_a: Key) -> None:
    data = NewClient(
        name="  Jose\u0301 Pérez ",
        rfc=" gode-561231 gr8",
        legal_name="   ",
        email="Jose@Example.com",
        phone="55 1234 5678",
        address=Address(street="Av. Reforma 1", zip_code="03100", country="méxico"),
    )
    c = await service.create(principal=key_a.principal, data=data)
    assert c.name == "José Pérez"
    assert c.rfc == "GODE561231GR8"
    assert c.rfc_check_digit_valid is True
    assert c.legal_name is None
    assert c.email == "Jose@Example.com"
    assert c.address == Address(street="Av. Reforma 1", zip_code="03100", country="méxico")
    assert c.livemode is True
    assert c.created_at == c.updated_at
    assert c.created_at.tzinfo is not None
    assert c.created_at.microsecond % 1000 == 0
    assert await service.get(principal=key_a.principal, client_id=c.id) == c


async def test_create_reports_every_bad_field_at_once(service: ClientService, key_a: Key) -> None:
    data = NewClient(
        name=" ",
        rfc="NOPE",
        legal_name="x" * 301,
        email="no-at",
        phone="1",
        address=Address(city="c" * 201, zip_code="12"),
    )
    with pytest.raises(ValidationFailed) as info:
        await service.create(principal=key_a.principal, data=data)
    assert set(info.value.fields) == {
        "name",
        "rfc",
        "legalName",
        "email",
        "phone",
        "address.city",
        "address.zipCode",
    }
    assert info.value.fields["name"] == "Name is required"
    assert info.value.fields["email"] == "Invalid email format"
    assert await service.count(principal=key_a.principal, filters=ClientFilter()) == 0


async def test_empty_address_is_no_address(service: ClientService, key_a: Key) -> None:
    c = await service.create(
        principal=key_a.principal, data=new_client(address=Address(street="  ", city=""))
    )
    assert c.address is None


async def test_duplicate_rfc_names_the_existing_client(service: ClientService, key_a: Key) -> None:
    rfc = new_rfc()
    first = await service.create(principal=key_a.principal, data=new_client(rfc=rfc))
    with pytest.raises(DuplicateRfc) as info:
        await service.create(principal=key_a.principal, data=new_client(rfc=rfc.lower()))
    assert info.value.existing_client_id == first.id
    assert info.value.rfc == rfc
    assert await service.count(principal=key_a.principal, filters=ClientFilter()) == 1


@pytest.mark.parametrize("generic", ["XAXX010101000", "XEXX010101000"])
async def test_generic_rfcs_are_exempt_from_uniqueness(
    service: ClientService, key_a: Key, generic: str
) -> None:
    ids = {
        (await service.create(principal=key_a.principal, data=new_client(rfc=generic))).id
        for _ in range(3)
    }
    assert len(ids) == 3
    found = await service.list(
        principal=key_a.principal, filters=ClientFilter(rfc=generic), limit=10
    )
    assert {c.id for c in found.items} == ids


async def test_rfc_is_unique_per_team_and_mode(
    service: ClientService, key_a: Key, key_a_test: Key, key_b: Key
) -> None:
    rfc = new_rfc()
    for key in (key_a, key_a_test, key_b):
        c = await service.create(principal=key.principal, data=new_client(rfc=rfc))
        assert c.livemode is key.livemode


async def test_other_team_and_mode_cannot_reach_a_client(
    service: ClientService, key_a: Key, key_a_test: Key, key_b: Key
) -> None:
    c = await service.create(principal=key_a.principal, data=new_client())
    for other in (key_a_test, key_b):
        with pytest.raises(ClientNotFound):
            await service.get(principal=other.principal, client_id=c.id)
        with pytest.raises(ClientNotFound):
            await service.update(
                principal=other.principal, client_id=c.id, patch=ClientPatch(name="x")
            )
        with pytest.raises(ClientNotFound):
            await service.delete(principal=other.principal, client_id=c.id)
    assert (await service.get(principal=key_a.principal, client_id=c.id)).name == c.name


# -- update: merge-patch --------------------------------------------------------------------


async def _full(service: ClientService, key: Key) -> Any:
    return await service.create(
        principal=key.principal,
        data=new_client(
            legal_name="Cliente S.A.",
            email="a@example.com",
            phone="55 1234 5678",
            address=Address(street="Calle 1", city="CDMX", state="CDMX", zip_code="03100"),
        ),
    )


async def test_absent_fields_stay(service: ClientService, key_a: Key) -> None:
    c = await _full(service, key_a)
    updated = await service.update(
        principal=key_a.principal, client_id=c.id, patch=ClientPatch(name="Nuevo")
    )
    assert updated.name == "Nuevo"
    assert (updated.legal_name, updated.rfc, updated.email, updated.phone, updated.address) == (
        c.legal_name,
        c.rfc,
        c.email,
        c.phone,
        c.address,
    )


async def test_null_and_blank_clear_optional_fields(service: ClientService, key_a: Key) -> None:
    c = await _full(service, key_a)
    updated = await service.update(
        principal=key_a.principal,
        client_id=c.id,
        patch=ClientPatch(legal_name=None, email="  ", phone=""),
    )
    assert (updated.legal_name, updated.email, updated.phone) == (None, None, None)
    # The cleared email no longer matches a filter on it.
    page = await service.list(
        principal=key_a.principal, filters=ClientFilter(email="a@example.com"), limit=5
    )
    assert page.items == []


async def test_address_merges_field_by_field(service: ClientService, key_a: Key) -> None:
    c = await _full(service, key_a)
    updated = await service.update(
        principal=key_a.principal,
        client_id=c.id,
        patch=ClientPatch(address=AddressPatch(city="Guadalajara", state=None)),
    )
    assert updated.address == Address(
        street="Calle 1", city="Guadalajara", state=None, zip_code="03100", country=None
    )


async def test_null_address_clears_it(service: ClientService, key_a: Key) -> None:
    c = await _full(service, key_a)
    updated = await service.update(
        principal=key_a.principal, client_id=c.id, patch=ClientPatch(address=None)
    )
    assert updated.address is None


async def test_address_on_a_client_without_one(service: ClientService, key_a: Key) -> None:
    c = await service.create(principal=key_a.principal, data=new_client())
    updated = await service.update(
        principal=key_a.principal,
        client_id=c.id,
        patch=ClientPatch(address=AddressPatch(zip_code="44100")),
    )
    assert updated.address == Address(zip_code="44100")


@pytest.mark.parametrize(
    ("patch", "field", "message"),
    [
        (ClientPatch(name=None), "name", "Name is required"),
        (ClientPatch(name="   "), "name", "Name is required"),
        (ClientPatch(rfc=None), "rfc", "RFC is required"),
        (ClientPatch(rfc=""), "rfc", "RFC is required"),
        (ClientPatch(rfc="PUTO561231AB1"), "rfc", "SAT refuses"),
        (ClientPatch(email="nope"), "email", "Invalid email format"),
        (ClientPatch(name="bad\x00"), "name", "control characters"),
        (ClientPatch(address=AddressPatch(zip_code="123")), "address.zipCode", "five digits"),
    ],
)
async def test_clearing_or_invalidating_is_refused(
    service: ClientService, key_a: Key, patch: ClientPatch, field: str, message: str
) -> None:
    c = await _full(service, key_a)
    with pytest.raises(ValidationFailed) as info:
        await service.update(principal=key_a.principal, client_id=c.id, patch=patch)
    assert list(info.value.fields) == [field]
    assert message in info.value.fields[field]
    assert await service.get(principal=key_a.principal, client_id=c.id) == c


async def test_update_reports_every_bad_field_at_once(service: ClientService, key_a: Key) -> None:
    c = await _full(service, key_a)
    with pytest.raises(ValidationFailed) as info:
        await service.update(
            principal=key_a.principal,
            client_id=c.id,
            patch=ClientPatch(name=None, email="x", phone="1", rfc="BAD"),
        )
    assert set(info.value.fields) == {"name", "email", "phone", "rfc"}


async def test_changing_rfc_rechecks_uniqueness(service: ClientService, key_a: Key) -> None:
    one = await service.create(principal=key_a.principal, data=new_client())
    two = await service.create(principal=key_a.principal, data=new_client())
    with pytest.raises(DuplicateRfc) as info:
        await service.update(
            principal=key_a.principal, client_id=two.id, patch=ClientPatch(rfc=one.rfc.lower())
        )
    assert info.value.existing_client_id == one.id
    assert (await service.get(principal=key_a.principal, client_id=two.id)).rfc == two.rfc
    # The transaction is still usable after the refused UPDATE: a valid change goes through.
    fresh = new_rfc()
    moved = await service.update(
        principal=key_a.principal, client_id=two.id, patch=ClientPatch(rfc=fresh)
    )
    assert moved.rfc == fresh
    # The old RFC is free again.
    again = await service.create(principal=key_a.principal, data=new_client(rfc=two.rfc))
    assert again.rfc == two.rfc


async def test_changing_rfc_updates_the_check_digit_flag(
    service: ClientService, key_a: Key
) -> None:
    c = await service.create(principal=key_a.principal, data=new_client())
    assert c.rfc_check_digit_valid is True
    updated = await service.update(
        principal=key_a.principal, client_id=c.id, patch=ClientPatch(rfc="VACE460910SX6")
    )
    assert (updated.rfc, updated.rfc_check_digit_valid) == ("VACE460910SX6", False)


async def test_name_change_updates_search(service: ClientService, key_a: Key) -> None:
    c = await service.create(principal=key_a.principal, data=new_client(name="Zapatería Ñandú"))
    await service.update(principal=key_a.principal, client_id=c.id, patch=ClientPatch(name="Otro"))
    by_old = await service.list(
        principal=key_a.principal, filters=ClientFilter(name="nandu"), limit=5
    )
    by_new = await service.list(
        principal=key_a.principal, filters=ClientFilter(name="OTRO"), limit=5
    )
    assert by_old.items == []
    assert [x.id for x in by_new.items] == [c.id]


# -- update: only changed fields are validated ----------------------------------------------


async def test_stored_invalid_values_do_not_block_other_changes(
    service: ClientService, db: Database, key_a: Key
) -> None:
    cid = await insert_raw(
        db,
        key_a.principal,
        phone="123",
        email="not an email",
        zip_code="ABC",
        street="Calle",
        rfc="VACE460910SX6",
    )
    updated = await service.update(
        principal=key_a.principal, client_id=cid, patch=ClientPatch(name="Renamed")
    )
    assert updated.name == "Renamed"
    assert updated.phone == "123"
    # Sending the stored (invalid) values back unchanged is not a change either.
    again = await service.update(
        principal=key_a.principal,
        client_id=cid,
        patch=ClientPatch(
            name="Renamed twice",
            phone="123",
            email="not an email",
            rfc="vace460910sx6",
            address=AddressPatch(street="Otra calle", zip_code="ABC"),
        ),
    )
    assert again.name == "Renamed twice"
    assert again.address is not None
    assert (again.address.street, again.address.zip_code) == ("Otra calle", "ABC")


async def test_changing_country_revalidates_the_stored_zip(
    service: ClientService, db: Database, key_a: Key
) -> None:
    cid = await insert_raw(db, key_a.principal, zip_code="SW1A 1AA", country="United Kingdom")
    with pytest.raises(ValidationFailed) as info:
        await service.update(
            principal=key_a.principal,
            client_id=cid,
            patch=ClientPatch(address=AddressPatch(country="MX")),
        )
    assert list(info.value.fields) == ["address.zipCode"]
    # Changing both together is fine.
    updated = await service.update(
        principal=key_a.principal,
        client_id=cid,
        patch=ClientPatch(address=AddressPatch(country="MX", zip_code="64000")),
    )
    assert updated.address == Address(zip_code="64000", country="MX")


async def test_changing_a_bad_stored_value_to_another_bad_one_is_refused(
    service: ClientService, db: Database, key_a: Key
) -> None:
    cid = await insert_raw(db, key_a.principal, phone="123")
    with pytest.raises(ValidationFailed) as info:
        await service.update(
            principal=key_a.principal, client_id=cid, patch=ClientPatch(phone="456")
        )
    assert list(info.value.fields) == ["phone"]


# -- update: timestamps and preconditions ---------------------------------------------------


async def test_updated_at_moves_and_timestamp_does_not(
    service: ClientService, db: Database, key_a: Key
) -> None:
    c = await service.create(principal=key_a.principal, data=new_client())
    one = await service.update(
        principal=key_a.principal, client_id=c.id, patch=ClientPatch(name="1")
    )
    two = await service.update(
        principal=key_a.principal, client_id=c.id, patch=ClientPatch(name="2")
    )
    assert c.created_at == one.created_at == two.created_at
    assert c.updated_at < one.updated_at < two.updated_at


async def test_updated_at_moves_strictly_even_when_the_clock_is_behind(
    service: ClientService, db: Database, key_a: Key
) -> None:
    """A stored updatedAt ahead of this clock (another worker's) still moves forward."""
    c = await service.create(principal=key_a.principal, data=new_client())
    ahead = c.updated_at + timedelta(hours=1)
    async with db.write() as session:
        await session.execute(
            update(ClientRow).where(ClientRow.public_id == c.id).values(updated_at=ahead)
        )
    updated = await service.update(
        principal=key_a.principal, client_id=c.id, patch=ClientPatch(name="later")
    )
    assert updated.updated_at == ahead + timedelta(milliseconds=1)
    assert updated.created_at == c.created_at


async def test_an_update_that_changes_nothing_keeps_updated_at(
    service: ClientService, key_a: Key
) -> None:
    c = await _full(service, key_a)
    same = await service.update(
        principal=key_a.principal,
        client_id=c.id,
        patch=ClientPatch(name=f"  {c.name} ", email=c.email, rfc=c.rfc.lower(), address=UNSET),
    )
    assert same == c


async def test_stale_expected_updated_at_is_refused(service: ClientService, key_a: Key) -> None:
    c = await service.create(principal=key_a.principal, data=new_client())
    one = await service.update(
        principal=key_a.principal,
        client_id=c.id,
        patch=ClientPatch(name="1"),
        expected_updated_at=c.updated_at,
    )
    with pytest.raises(PreconditionFailed):
        await service.update(
            principal=key_a.principal,
            client_id=c.id,
            patch=ClientPatch(name="2"),
            expected_updated_at=c.updated_at,
        )
    with pytest.raises(PreconditionFailed):
        await service.delete(
            principal=key_a.principal, client_id=c.id, expected_updated_at=c.updated_at
        )
    assert (await service.get(principal=key_a.principal, client_id=c.id)).name == "1"
    assert await service.delete(
        principal=key_a.principal, client_id=c.id, expected_updated_at=one.updated_at
    )


async def test_if_match_tags_are_compared_as_text_under_the_lock(
    service: ClientService, key_a: Key
) -> None:
    c = await service.create(principal=key_a.principal, data=new_client())
    current = entity_tag(c)
    weak, padded = f"W/{current}", f'"0{current[1:]}'
    for refused in ([weak], [padded], ['"²"'], [""], []):
        with pytest.raises(PreconditionFailed):
            await service.update(
                principal=key_a.principal,
                client_id=c.id,
                patch=ClientPatch(name="x"),
                if_match=refused,
            )
    one = await service.update(
        principal=key_a.principal,
        client_id=c.id,
        patch=ClientPatch(name="1"),
        if_match=[weak, current],
    )
    with pytest.raises(PreconditionFailed):
        await service.delete(principal=key_a.principal, client_id=c.id, if_match=[current])
    assert await service.delete(
        principal=key_a.principal, client_id=c.id, if_match=['"1"', entity_tag(one)]
    )


# -- delete ---------------------------------------------------------------------------------


async def test_delete_is_refused_while_invoices_or_payments_exist(
    service: ClientService, db: Database, key_a: Key
) -> None:
    c = await service.create(principal=key_a.principal, data=new_client())
    await add_invoice(db, c.id)
    await add_invoice(db, c.id)
    await add_payment(db, c.id)
    with pytest.raises(ClientInUse) as info:
        await service.delete(principal=key_a.principal, client_id=c.id)
    assert (info.value.invoice_count, info.value.payment_count) == (2, 1)
    assert await service.get(principal=key_a.principal, client_id=c.id) == c
    assert await service.count(principal=key_a.principal, filters=ClientFilter()) == 1


async def test_delete_frees_the_rfc_and_the_count(service: ClientService, key_a: Key) -> None:
    c = await service.create(principal=key_a.principal, data=new_client())
    assert await service.delete(principal=key_a.principal, client_id=c.id) == c.id
    with pytest.raises(ClientNotFound):
        await service.get(principal=key_a.principal, client_id=c.id)
    with pytest.raises(ClientNotFound):
        await service.delete(principal=key_a.principal, client_id=c.id)
    assert await service.count(principal=key_a.principal, filters=ClientFilter()) == 0
    again = await service.create(principal=key_a.principal, data=new_client(rfc=c.rfc))
    assert again.id != c.id


async def test_impossible_ids_are_not_found(service: ClientService, key_a: Key) -> None:
    for bad in ("nope", "client_" + "Z" * 26, "x" * 1000):
        with pytest.raises(ClientNotFound):
            await service.get(principal=key_a.principal, client_id=bad)
        with pytest.raises(ClientNotFound):
            await service.update(principal=key_a.principal, client_id=bad, patch=ClientPatch())
        with pytest.raises(ClientNotFound):
            await service.delete(principal=key_a.principal, client_id=bad)


# -- list and count -------------------------------------------------------------------------


async def test_count_is_exact_with_and_without_filters(service: ClientService, key_a: Key) -> None:
    who = key_a.principal
    made = [
        await service.create(principal=who, data=new_client(name=f"Cliente {i}")) for i in range(5)
    ]
    await service.delete(principal=who, client_id=made[0].id)
    assert await service.count(principal=who, filters=ClientFilter()) == 4
    assert await service.count(principal=who, filters=ClientFilter(name="cliente")) == 4
    assert await service.count(principal=who, filters=ClientFilter(name="Cliente 3")) == 1


async def test_page_arguments_are_bounded(service: ClientService, key_a: Key) -> None:
    for limit, offset, bad in ((0, 0, "limit"), (101, 0, "limit"), (5, -1, "offset")):
        with pytest.raises(ValidationFailed) as info:
            await service.list(
                principal=key_a.principal, filters=ClientFilter(), limit=limit, offset=offset
            )
        assert list(info.value.fields) == [bad]
    with pytest.raises(ValidationFailed):
        await service.list(
            principal=key_a.principal, filters=ClientFilter(), limit=5, offset=10_001
        )


async def test_list_reports_every_bad_argument_under_the_callers_names(
    service: ClientService, key_a: Key
) -> None:
    fields = ListFields(limit="first", created_from="filter.createdFrom")
    now = datetime.now(UTC)
    with pytest.raises(ValidationFailed) as info:
        await service.list(
            principal=key_a.principal,
            filters=ClientFilter(created_from=now, created_to=now - timedelta(seconds=1)),
            limit=0,
            offset=-1,
            after="not a cursor",
            fields=fields,
        )
    assert set(info.value.fields) == {"after", "first", "offset", "filter.createdFrom"}
    page = await service.list(principal=key_a.principal, filters=None, fields=fields)
    assert page.limit == 20


async def test_filter_range_must_be_ordered(service: ClientService, key_a: Key) -> None:
    now = datetime.now(UTC)
    with pytest.raises(ValidationFailed):
        await service.count(
            principal=key_a.principal,
            filters=ClientFilter(created_from=now, created_to=now - timedelta(seconds=1)),
        )
    assert (
        await service.count(
            principal=key_a.principal, filters=ClientFilter(created_from=now, created_to=now)
        )
        == 0
    )


async def test_next_token_round_trip(service: ClientService, key_a: Key, key_b: Key) -> None:
    who = key_a.principal
    filters = ClientFilter(
        name="méxico",
        rfc="GODE561231GR8",
        email="A@B.CO",
        created_from=datetime(2024, 1, 1, tzinfo=UTC),
        created_to=datetime(2024, 12, 31, 23, 59, 59, 999_000, tzinfo=UTC),
    )
    from app.clients.types import Position

    pos = Position(created_ms=to_ms(datetime(2024, 6, 1, tzinfo=UTC)), row_id=12)
    token = service.next_token(who, filters, 7, pos)
    assert service.parse_next_token(who, token) == (filters, 7, pos)
    with pytest.raises(ValidationFailed) as info:
        service.parse_next_token(key_b.principal, token)
    assert list(info.value.fields) == ["next"]
    # A GraphQL cursor is not a REST token, and the other way round.
    cursor = service.cursor(who, pos)
    assert service.parse_cursor(who, cursor) == pos
    with pytest.raises(ValidationFailed):
        service.parse_next_token(who, cursor)
    with pytest.raises(ValidationFailed):
        service.parse_cursor(who, token)
