"""Every business rule of clients, once: validation, RFC uniqueness, tenancy, the delete rule,
optimistic concurrency and pagination. REST and GraphQL call this and nothing below it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from functools import partial
from types import SimpleNamespace
from typing import Any, TypeVar, cast

from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.principal import Principal
from app.clients import fiscal, validation
from app.clients.ids import is_client_id, new_client_id
from app.clients.pagination import (
    InvalidToken,
    TokenSigner,
    position_from_json,
    position_to_json,
)
from app.clients.repository import (
    ClientRepository,
    Executor,
    RfcTaken,
    SearchFilter,
    StillReferenced,
    row_to_client,
)
from app.clients.types import (
    ADDRESS_ATTRS,
    RECORD_FIELDS,
    UNSET,
    Address,
    AddressPatch,
    Client,
    ClientFilter,
    ClientPage,
    ClientPatch,
    ClientRecord,
    NewClient,
    Patch,
    Position,
)
from app.core import clock
from app.core.clock import from_ms, to_ms
from app.core.errors import (
    ClientInUse,
    ClientNotFound,
    DuplicateRfc,
    PreconditionFailed,
    ValidationFailed,
)
from app.db.database import Database
from app.events.outbox import Outbox
from app.platform.idempotency import DoNotStore, IdempotencyService, Outcome, Recorder

DEFAULT_LIMIT = 20
MAX_LIMIT = 100
MAX_OFFSET = 10_000
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class ListFields:
    """What each list argument is called where the caller wrote it, so that every error names
    it as sent: REST's query parameters (the default); GraphQL names its own arguments."""

    limit: str = "limit"
    offset: str = "offset"
    after: str = "after"
    next: str = "next"
    name: str = "name"
    rfc: str = "rfc"
    email: str = "email"
    created_from: str = "from"
    created_to: str = "to"
    tax_system: str = "taxSystem"
    invoice_ready: str = "invoiceReady"


REST_LIST_FIELDS = ListFields()


@dataclass(frozen=True, slots=True)
class PageQuery:
    """A list's arguments once checked: the filter (bounds parsed), what the repository runs,
    and where the page starts."""

    filters: ClientFilter
    search: SearchFilter
    limit: int
    offset: int
    after: Position | None


class _Errors:
    """Collects every field's error, so a caller learns all of them at once."""

    def __init__(self) -> None:
        self.fields: dict[str, str] = {}

    def run(self, field: str, fn: Callable[[], T], fallback: T) -> T:
        try:
            return fn()
        except validation.FieldInvalid as exc:
            self.fields.setdefault(field, exc.message)
            return fallback

    def raise_if_any(self) -> None:
        if self.fields:
            raise ValidationFailed(dict(self.fields))


_ADDRESS_FIELDS = (
    ("street", "street"),
    ("exterior", "exterior"),
    ("interior", "interior"),
    ("neighborhood", "neighborhood"),
    ("city", "city"),
    ("municipality", "municipality"),
    ("state", "state"),
    ("zip_code", "zipCode"),
    ("country", "country"),
)


def _new_values(data: NewClient) -> dict[str, Any]:
    values, errors = _clean_new(data)
    errors.raise_if_any()
    return values


def _clean_new(data: NewClient) -> tuple[dict[str, Any], _Errors]:
    """Every field of a create, cleaned (an invalid one: its fallback), and every error."""
    errors = _Errors()
    name = errors.run("name", lambda: validation.check_name(data.name), "")
    rfc, check_ok = errors.run("rfc", lambda: validation.check_rfc(data.rfc), ("", False))
    legal = errors.run(
        "legalName",
        lambda: validation.clean_text(data.legal_name, max_length=validation.LEGAL_NAME_MAX),
        None,
    )
    email = errors.run("email", lambda: validation.check_email(data.email), None)
    phone = errors.run("phone", lambda: validation.check_phone(data.phone), None)
    addr = data.address or Address()
    parts: dict[str, str | None] = {}
    for attr, api in _ADDRESS_FIELDS:
        parts[attr] = errors.run(
            f"address.{api}", partial(_max(validation.ADDRESS_FIELD_MAX), getattr(addr, attr)), None
        )
    if "address.zipCode" not in errors.fields:
        errors.run("address.zipCode", lambda: _check_zip(parts["zip_code"], parts["country"]), None)
    receptor = _new_receptor(data, None if "rfc" in errors.fields else rfc, errors)
    values = {
        "name": name,
        "legal_name": legal,
        "rfc": rfc,
        "rfc_check_digit_valid": check_ok,
        "email": email,
        "phone": phone,
        **parts,
        **receptor,
    }
    return values, errors


def _check_zip(zip_code: str | None, country: str | None) -> None:
    validation.check_zip(zip_code, country)
    fiscal.check_sat_zip(zip_code, country)


def _new_receptor(data: NewClient, rfc: str | None, errors: _Errors) -> dict[str, Any]:
    """taxSystem, cfdiUse and metadata of a create, with the cross-field rules."""
    tax_system = errors.run("taxSystem", lambda: fiscal.check_tax_system(data.tax_system), None)
    cfdi_use = errors.run("cfdiUse", lambda: fiscal.check_cfdi_use(data.cfdi_use), None)
    metadata: dict[str, str] = {}
    if data.metadata is not None:
        try:
            metadata = fiscal.merge_metadata({}, data.metadata, replace=True)
        except fiscal.MetadataInvalid as exc:
            for field, message in exc.fields.items():
                errors.fields.setdefault(field, message)
    receptor = fiscal.Receptor(rfc, tax_system, cfdi_use)
    for field, message in fiscal.cross_field_errors(
        receptor, of_tax_system=True, of_use=True
    ).items():
        errors.fields.setdefault(field, message)
    return {"tax_system": tax_system, "cfdi_use": cfdi_use, "metadata_json": metadata}


def _invoice_ready(client: Client) -> bool:
    return not client.invoice_issues()


def _issues_of_values(values: dict[str, Any], *, rfc_valid: bool = True) -> list[fiscal.Issue]:
    return fiscal.readiness(
        rfc=values["rfc"] if rfc_valid else None,
        legal_name=values["legal_name"],
        tax_system=values["tax_system"],
        cfdi_use=values["cfdi_use"],
        zip_code=values["zip_code"],
    )


@dataclass(frozen=True, slots=True)
class Validation:
    """What a create would answer, without saving: its field errors (a VALIDATION_ERROR),
    else the client that has the RFC (a DUPLICATE_RFC), else success; and the readiness of
    the client it would make."""

    errors: dict[str, str]
    duplicate_of: str | None
    rfc: str
    issues: list[fiscal.Issue]
    cfdi_name: str | None

    @property
    def valid(self) -> bool:
        return not self.errors and self.duplicate_of is None

    def raise_refusal(self) -> None:
        """Raises what create would raise (ValidationFailed or DuplicateRfc), if anything."""
        if self.errors:
            raise ValidationFailed(dict(self.errors))
        if self.duplicate_of is not None:
            raise DuplicateRfc(self.rfc, self.duplicate_of)


def new_values(data: NewClient) -> dict[str, Any]:
    """The columns of a new client, every rule checked (ValidationFailed with all fields),
    with those computed from them (derived columns, the stored readiness): what `create`
    inserts, and what an import checks its rows with (in worker processes too)."""
    values = _new_values(data)
    values.update(_derived(values))
    values["invoice_ready"] = not _issues_of_values(values)
    return values


def _derived(values: dict[str, Any]) -> dict[str, Any]:
    """Columns computed from others: kept in step by the one function that writes them."""
    out: dict[str, Any] = {}
    if "rfc" in values:
        out["rfc_unique"] = None if values["rfc"] in validation.GENERIC_RFCS else values["rfc"]
    if "email" in values:
        out["email_lower"] = values["email"].lower() if values["email"] else None
    if "name" in values or "legal_name" in values:
        out["search_text"] = validation.search_text(values["name"], values.get("legal_name"))
    return out


def _patch_values(current: Client, patch: ClientPatch) -> dict[str, Any]:
    """The columns a merge-patch changes. Only changed fields are validated (plus zipCode when
    country changes), so a stored client always stays editable."""
    errors = _Errors()
    changes: dict[str, Any] = {}
    for field, column, check in (
        ("name", "name", validation.check_name),
        ("legalName", "legal_name", _max(validation.LEGAL_NAME_MAX)),
        ("email", "email", validation.check_email),
        ("phone", "phone", validation.check_phone),
    ):
        stored = getattr(current, column)
        new = _changed(errors, field, getattr(patch, column), stored, check)
        if new != stored:
            changes[column] = new
    changes.update(_rfc_changes(errors, current, patch.rfc))
    if patch.address is not UNSET:
        changes.update(_address_changes(errors, current.address, patch.address))
    _patch_receptor(current, patch, changes, errors)
    errors.raise_if_any()
    if "name" in changes or "legal_name" in changes:
        changes.setdefault("name", current.name)
        changes.setdefault("legal_name", current.legal_name)
    return changes


def _changed(
    errors: _Errors, field: str, raw: object, stored: Any, check: Callable[[Any], Any]
) -> Any:
    """The new value of a field, or `stored` when it is absent, unchanged or invalid."""
    if raw is UNSET:
        return stored
    cleaned = errors.run(field, lambda: validation.clean_text(raw), stored)  # type: ignore[arg-type]
    if field in errors.fields or cleaned == stored:
        return stored
    return errors.run(field, lambda: check(raw), stored)


def _rfc_changes(errors: _Errors, current: Client, raw_rfc: Patch[str]) -> dict[str, Any]:
    """The RFC columns a patch changes: an RFC equal to the stored one once normalized is no
    change (and is not checked again)."""
    if raw_rfc is UNSET:
        return {}
    stored_rfc: str | None = current.rfc
    cleaned = errors.run("rfc", lambda: validation.clean_text(raw_rfc), stored_rfc)
    if "rfc" in errors.fields or (
        cleaned is not None and validation.normalize_rfc(cleaned) == current.rfc
    ):
        return {}
    rfc, ok = errors.run("rfc", lambda: validation.check_rfc(raw_rfc), (current.rfc, True))
    if "rfc" in errors.fields:
        return {}
    return {"rfc": rfc, "rfc_check_digit_valid": ok}


def _address_changes(
    errors: _Errors, stored_address: Address | None, address: AddressPatch | None
) -> dict[str, Any]:
    """The address columns a patch changes (null clears them all); the zip code is checked
    against the country whenever either changes."""
    stored_parts = stored_address or Address()
    parts_patch = address if address is not None else _CLEAR_ADDRESS
    changes: dict[str, Any] = {}
    new_parts: dict[str, str | None] = {}
    for attr, api in _ADDRESS_FIELDS:
        stored = getattr(stored_parts, attr)
        new = _changed(
            errors,
            f"address.{api}",
            getattr(parts_patch, attr),
            stored,
            _max(validation.ADDRESS_FIELD_MAX),
        )
        new_parts[attr] = new
        if new != stored:
            changes[attr] = new
    zip_or_country = "zip_code" in changes or "country" in changes
    if zip_or_country and "address.zipCode" not in errors.fields:
        errors.run(
            "address.zipCode",
            lambda: _check_zip(new_parts["zip_code"], new_parts["country"]),
            None,
        )
    return changes


_CLEAR_ADDRESS = AddressPatch(**dict.fromkeys(ADDRESS_ATTRS))


def _patch_receptor(
    current: Client,
    patch: ClientPatch,
    changes: dict[str, Any],
    errors: _Errors,
) -> None:
    """taxSystem, cfdiUse and metadata of a merge-patch. The cross-field rules run again for
    what changed and what depends on it: a new rfc re-checks the stored régimen and use, a
    new régimen the stored use."""
    for field, column, check in (
        ("taxSystem", "tax_system", fiscal.check_tax_system),
        ("cfdiUse", "cfdi_use", fiscal.check_cfdi_use),
    ):
        stored = getattr(current, column)
        new = _changed(errors, field, getattr(patch, column), stored, check)
        if new != stored:
            changes[column] = new
    if patch.metadata is not UNSET:
        try:
            metadata = (
                {}
                if patch.metadata is None
                else fiscal.merge_metadata(current.metadata, patch.metadata, replace=False)
            )
        except fiscal.MetadataInvalid as exc:
            errors.fields.update(exc.fields)
        else:
            if metadata != current.metadata:
                changes["metadata_json"] = metadata
    if "rfc" in errors.fields or "taxSystem" in errors.fields:
        return
    new_rfc = "rfc" in changes
    receptor = fiscal.Receptor(
        changes.get("rfc", current.rfc),
        changes.get("tax_system", current.tax_system),
        changes.get("cfdi_use", current.cfdi_use) if "cfdiUse" not in errors.fields else None,
    )
    found = fiscal.cross_field_errors(
        receptor,
        of_tax_system=new_rfc or "tax_system" in changes,
        of_use=new_rfc or "tax_system" in changes or "cfdi_use" in changes,
    )
    for field, message in found.items():
        errors.fields.setdefault(field, message)


def _after(current: Client, changes: dict[str, Any]) -> Client:
    """The client as `changes` (columns) leave it."""
    address = current.address or Address()
    new_address = replace(address, **{a: changes[a] for a in ADDRESS_ATTRS if a in changes})
    columns = ("name", "legal_name", "rfc", "email", "phone", "tax_system", "cfdi_use")
    return replace(
        current,
        **{k: changes[k] for k in columns if k in changes},
        address=None if new_address.is_empty() else new_address,
        metadata=changes.get("metadata_json", current.metadata),
    )


def _max(limit: int) -> Callable[[Any], str | None]:
    return lambda raw: validation.clean_text(raw, max_length=limit)


def entity_tag(client: Client) -> str:
    """The client's version as an HTTP entity tag (its updatedAt in milliseconds, quoted)."""
    return f'"{to_ms(client.updated_at)}"'


def record_entity_tag(record: ClientRecord) -> str:
    """`entity_tag` of a client's record."""
    return f'"{to_ms(record[RECORD_FIELDS.index("updated_at")])}"'


def _check_precondition(
    current: Client, expected: datetime | None, if_match: Sequence[str] | None
) -> None:
    """Optimistic concurrency, checked under the row lock. `expected` is GraphQL's
    `expectedUpdatedAt`; `if_match` the entity tags of an If-Match header, compared strongly
    and as text (RFC 9110 §13.1.1): a weak or malformed tag matches nothing."""
    if expected is not None and to_ms(validation.aware_utc(expected)) != to_ms(current.updated_at):
        raise PreconditionFailed(current.id, current.updated_at)
    if if_match is not None and entity_tag(current) not in if_match:
        raise PreconditionFailed(current.id, current.updated_at)


# Renders the result of an idempotent create (the client made, or the duplicate-RFC refusal)
# as the caller's transport answers it: what is stored and replayed to retries.
CreateAnswer = Callable[[Client | DuplicateRfc], Outcome]


class ClientService:
    def __init__(
        self, db: Database, signer: TokenSigner, idempotency: IdempotencyService, outbox: Outbox
    ) -> None:
        self.db = db
        self.signer = signer
        self.idempotency = idempotency
        self.repo = ClientRepository(db.dialect)
        # Every change writes its event in its own transaction (app/events/outbox.py).
        self.outbox = outbox

    # -- commands -------------------------------------------------------------------------

    async def create(
        self,
        *,
        principal: Principal,
        data: NewClient,
        on_created: Callable[[AsyncSession, Client], Awaitable[None]] | None = None,
    ) -> Client:
        """Create a client. `on_created` runs inside the creating transaction (idempotency
        records its answer there, so the two commit together or not at all)."""
        values = new_values(data)
        for _attempt in range(3):
            now = clock.now()
            row = {
                **values,
                "public_id": new_client_id(to_ms(now)),
                "team_id": principal.team_id,
                "livemode": principal.livemode,
                "created_at": now,
                "updated_at": now,
            }
            created = _client_from_values(row)
            # Its event is rendered before the write unit: on SQLite the write lock is then
            # held for the statements only. Written below only if the client is.
            event = self.outbox.created_event(principal, created)
            async with self.db.write() as session:
                row_id = await self.repo.insert(session, row)
                if row_id is not None:
                    await self.repo.adjust_count(session, principal.team_id, principal.livemode, 1)
                    if on_created is not None:
                        await on_created(session, created)
                    await self.outbox.write(session, event)
                    return created
                owner = await self.repo.rfc_owner(
                    session, principal.team_id, principal.livemode, values["rfc"]
                )
            if owner is not None:
                raise DuplicateRfc(values["rfc"], owner)
            # The owner was deleted between our insert and the look-up: try again.
        raise DuplicateRfc(values["rfc"], "")

    async def validate(self, *, principal: Principal, data: NewClient) -> Validation:
        """What `create` would answer for `data`, without writing anything: its field errors,
        the client whose RFC it would find taken, and the readiness of what it would make."""
        values, errors = _clean_new(data)
        rfc_valid = "rfc" not in errors.fields
        duplicate_of = None
        if rfc_valid and values["rfc"] not in fiscal.GENERIC_RFCS:
            async with self.db.read() as session:
                duplicate_of = await self.repo.rfc_owner(
                    session, principal.team_id, principal.livemode, values["rfc"]
                )
        issues = {i.field: i for i in _issues_of_values(values, rfc_valid=rfc_valid)}
        # An invalid field stops the invoice too, with the reason the create would give.
        issues.update({f: fiscal.Issue(f, m) for f, m in errors.fields.items()})
        return Validation(
            errors=dict(errors.fields),
            duplicate_of=duplicate_of,
            rfc=values["rfc"],
            issues=list(issues.values()),
            cfdi_name=fiscal.cfdi_name(values["legal_name"]),
        )

    async def create_idempotent(
        self,
        *,
        principal: Principal,
        data: NewClient,
        key: str,
        key_field: str,
        request_fingerprint: str,
        answer: CreateAnswer,
    ) -> Outcome:
        """Create a client under an Idempotency-Key (app/platform/idempotency.py): the answer
        to the first request with `key`, or to this one, stored for the retries to come.

        The answer to a created client is recorded in the creating transaction (the client and
        its answer commit together); a duplicate-RFC refusal is an answer, kept like a
        success; a validation refusal is not kept, so a corrected retry may use the key."""

        async def work(recorder: Recorder) -> Outcome:
            kept: list[Outcome] = []

            async def keep(session: AsyncSession, client: Client) -> None:
                kept.append(answer(client))
                await recorder.record(session, kept[-1])

            try:
                await self.create(principal=principal, data=data, on_created=keep)
            except DuplicateRfc as exc:
                return answer(exc)
            except ValidationFailed as exc:
                raise DoNotStore(exc) from None
            return kept[-1]

        return await self.idempotency.run(
            principal=principal,
            key=key,
            key_field=key_field,
            fingerprint=request_fingerprint,
            work=work,
        )

    async def update(
        self,
        *,
        principal: Principal,
        client_id: str,
        patch: ClientPatch,
        expected_updated_at: datetime | None = None,
        if_match: Sequence[str] | None = None,
    ) -> Client:
        if not is_client_id(client_id):
            raise ClientNotFound(client_id)
        async with self.db.write() as session:
            row = await self.repo.get(
                session, principal.team_id, principal.livemode, client_id, for_update=True
            )
            if row is None:
                raise ClientNotFound(client_id)
            current = row_to_client(row)
            _check_precondition(current, expected_updated_at, if_match)
            changes = _patch_values(current, patch)
            if not changes:
                return current
            changes.update(_derived(changes))
            # Stored so the invoiceReady filter reads an index; every write refreshes it.
            changes["invoice_ready"] = _invoice_ready(_after(current, changes))
            # updatedAt strictly moves, so an ETag of it changes with every change.
            changes["updated_at"] = max(clock.now(), current.updated_at + timedelta(milliseconds=1))
            try:
                await self.repo.update(session, row.id, changes)
            except RfcTaken:
                owner = await self.repo.rfc_owner(
                    session, principal.team_id, principal.livemode, changes["rfc"]
                )
                raise DuplicateRfc(changes["rfc"], owner or "") from None
            row = await self.repo.get(session, principal.team_id, principal.livemode, client_id)
            assert row is not None
            updated = row_to_client(row)
            await self.outbox.client_updated(session, principal, current, updated)
            return updated

    # -- bulk import (app/clients/transfer.py), inside the caller's transaction --------------

    async def insert_many(
        self, session: AsyncSession, principal: Principal, rows: list[dict[str, Any]]
    ) -> list[tuple[int, Client] | None]:
        """Insert clients from `new_values(...)` as `create` does (the team's counter, a
        client.created event each), in the caller's transaction and a few statements
        whatever their number; per row, its row id and client, or None when its RFC is
        taken."""
        now = clock.now()
        full = [
            {
                **values,
                "public_id": new_client_id(to_ms(now)),
                "team_id": principal.team_id,
                "livemode": principal.livemode,
                "created_at": now,
                "updated_at": now,
            }
            for values in rows
        ]
        ids = await self.repo.insert_many(session, full)
        out: list[tuple[int, Client] | None] = []
        created: list[Client] = []
        for row in full:
            row_id = ids.get(row["public_id"])
            if row_id is None:
                out.append(None)
                continue
            client = _client_from_values(row)
            created.append(client)
            out.append((row_id, client))
        if created:
            await self.repo.adjust_count(
                session, principal.team_id, principal.livemode, len(created)
            )
            await self.outbox.clients_created(session, principal, created)
        return out

    async def apply_patch(
        self,
        session: AsyncSession,
        principal: Principal,
        row_id: int,
        current: Client,
        patch: ClientPatch,
    ) -> Client | None:
        """Apply a merge-patch to a stored client (the rules of `update`, its stored
        readiness and its client.updated event); None when it changes nothing, and then
        nothing is written. RfcTaken when a new RFC is taken."""
        changes = _patch_values(current, patch)
        if not changes:
            return None
        changes.update(_derived(changes))
        changes["invoice_ready"] = _invoice_ready(_after(current, changes))
        changes["updated_at"] = max(clock.now(), current.updated_at + timedelta(milliseconds=1))
        await self.repo.update(session, row_id, changes)
        row = await self.repo.get(session, principal.team_id, principal.livemode, current.id)
        assert row is not None
        updated = row_to_client(row)
        await self.outbox.client_updated(session, principal, current, updated)
        return updated

    async def delete(
        self,
        *,
        principal: Principal,
        client_id: str,
        expected_updated_at: datetime | None = None,
        if_match: Sequence[str] | None = None,
    ) -> str:
        if not is_client_id(client_id):
            raise ClientNotFound(client_id)
        async with self.db.write() as session:
            row = await self.repo.get(
                session, principal.team_id, principal.livemode, client_id, for_update=True
            )
            if row is None:
                raise ClientNotFound(client_id)
            _check_precondition(row_to_client(row), expected_updated_at, if_match)
            invoices, payments = await self.repo.usage(session, row.id)
            if invoices or payments:
                raise ClientInUse(invoices, payments)
            try:
                await self.repo.delete(session, row.id)
            except StillReferenced:
                # An invoice or payment arrived after the count (PostgreSQL): count again.
                invoices, payments = await self.repo.usage(session, row.id)
                raise ClientInUse(invoices, payments) from None
            await self.repo.adjust_count(session, principal.team_id, principal.livemode, -1)
            await self.outbox.client_deleted(session, principal, client_id, clock.now())
        return client_id

    # -- queries --------------------------------------------------------------------------

    async def get(self, *, principal: Principal, client_id: str) -> Client:
        if not is_client_id(client_id):
            raise ClientNotFound(client_id)
        async with self.db.statement() as conn:  # one statement: no transaction needed
            row = await self.repo.get(conn, principal.team_id, principal.livemode, client_id)
        if row is None:
            raise ClientNotFound(client_id)
        return row_to_client(row)

    async def get_record(self, *, principal: Principal, client_id: str) -> ClientRecord:
        """As `get`, the client as its database record (see ClientRecord): no domain object
        for a caller that only renders it."""
        if not is_client_id(client_id):
            raise ClientNotFound(client_id)
        async with self.db.statement() as conn:
            row = await self.repo.get(conn, principal.team_id, principal.livemode, client_id)
        if row is None:
            raise ClientNotFound(client_id)
        return cast(ClientRecord, row)

    async def list(
        self,
        *,
        principal: Principal,
        filters: ClientFilter | None = None,
        limit: int | None = None,
        offset: int | None = None,
        after: str | None = None,
        next_token: str | None = None,
        with_total: bool = False,
        fields: ListFields = REST_LIST_FIELDS,
        as_records: bool = False,
    ) -> ClientPage:
        """A page of clients, newest first, from the arguments as the caller sent them: a
        GraphQL cursor (`after`, the filter sent again) or a REST `next` token (which carries
        the filter and the limit). `with_total` also counts every match, in the same
        statement or transaction (so the page and its total agree). `as_records` hands the
        rows over as records (see ClientRecord) instead of domain objects."""
        query = self._page_query(principal, filters, limit, offset, after, next_token, fields)
        async with self._read_unit(query.search) as session:
            prepared = await self.repo.prepare(
                session, principal.team_id, principal.livemode, query.search
            )
            rows, total = await self.repo.page(
                session,
                prepared,
                after=query.after,
                limit=query.limit + 1,
                offset=query.offset,
                with_total=with_total,
            )
        has_more = len(rows) > query.limit
        rows = rows[: query.limit]
        return ClientPage(
            items=[] if as_records else [row_to_client(r) for r in rows],
            records=rows,
            has_more=has_more,
            filters=query.filters,
            total=total,
            limit=query.limit,
        )

    def _page_query(
        self,
        principal: Principal,
        filters: ClientFilter | None,
        limit: int | None,
        offset: int | None,
        after: str | None,
        next_token: str | None,
        fields: ListFields,
    ) -> PageQuery:
        """Defaults, bounds, tokens and filters of a list: every bad argument at once."""
        errors = _Errors()
        position = None
        token_limit = DEFAULT_LIMIT
        filters = filters or ClientFilter()
        try:
            if after is not None:
                position = self.parse_cursor(principal, after, field=fields.after)
            if next_token is not None:
                filters, token_limit, position = self.parse_next_token(
                    principal, next_token, field=fields.next
                )
        except ValidationFailed as exc:
            errors.fields.update(exc.fields)
        limit = token_limit if limit is None else limit
        offset = offset or 0
        if not 1 <= limit <= MAX_LIMIT:
            errors.fields[fields.limit] = f"Must be between 1 and {MAX_LIMIT}"
        if not 0 <= offset <= MAX_OFFSET:
            errors.fields[fields.offset] = f"Must be between 0 and {MAX_OFFSET}"
        search = _search_filter(filters, fields, errors)
        errors.raise_if_any()
        checked = replace(filters, created_from=search.created_from, created_to=search.created_to)
        return PageQuery(checked, search, limit, offset, position)

    async def count(self, *, principal: Principal, filters: ClientFilter) -> int:
        search = normalize_filter(filters)
        async with self._read_unit(search) as session:
            prepared = await self.repo.prepare(
                session, principal.team_id, principal.livemode, search
            )
            return await self.repo.count(session, prepared)

    def _read_unit(self, search: SearchFilter) -> AbstractAsyncContextManager[Executor]:
        """Where a list or count reads: one statement (the page with its total) needs no
        transaction; a name search that probes the full-text index first (SQLite) runs its
        two statements in one, so they see the same snapshot."""
        if self.repo.probes(search):
            return self.db.read()
        return self.db.statement()

    # -- pagination tokens ----------------------------------------------------------------

    def cursor(self, principal: Principal, position: Position) -> str:
        """A GraphQL cursor: a position only (the caller sends the same filter again)."""
        return self.signer.dumps("cursor", principal, {"p": position_to_json(position)})

    def parse_cursor(self, principal: Principal, token: str, *, field: str = "after") -> Position:
        try:
            payload = self.signer.loads("cursor", principal, token)
            return position_from_json(payload.get("p"))
        except InvalidToken:
            raise ValidationFailed({field: "Invalid or expired cursor"}) from None

    def next_token(
        self, principal: Principal, filters: ClientFilter, limit: int, position: Position
    ) -> str:
        """A REST `next` token: carries the whole query (filters, position, limit)."""
        f: dict[str, Any] = {}
        for key in ("name", "rfc", "email"):
            if getattr(filters, key) is not None:
                f[key] = getattr(filters, key)
        for key, bound in (
            ("from", _date_bound(filters.created_from, end=False)),
            ("to", _date_bound(filters.created_to, end=True)),
        ):
            if bound is not None:
                f[key] = to_ms(bound)
        if filters.tax_system is not None:
            f["taxSystem"] = filters.tax_system
        if filters.invoice_ready is not None:
            f["invoiceReady"] = filters.invoice_ready
        payload = {"f": f, "l": limit, "p": position_to_json(position)}
        return self.signer.dumps("next", principal, payload)

    def next_page_token(self, principal: Principal, page: ClientPage) -> str | None:
        """The REST `next` token of the page after `page`, if there is one."""
        if not page.has_more:
            return None
        return self.next_token(principal, page.filters, page.limit, page.position(-1))

    def parse_next_token(
        self, principal: Principal, token: str, *, field: str = "next"
    ) -> tuple[ClientFilter, int, Position]:
        try:
            payload = self.signer.loads("next", principal, token)
            f = payload.get("f")
            limit = payload.get("l")
            if not isinstance(f, dict) or not isinstance(limit, int):
                raise InvalidToken
            strings = {k: f.get(k) for k in ("name", "rfc", "email")}
            if not all(s is None or isinstance(s, str) for s in strings.values()):
                raise InvalidToken
            bounds = {k: f.get(k) for k in ("from", "to")}
            if not all(b is None or isinstance(b, int) for b in bounds.values()):
                raise InvalidToken
            tax_system, ready = f.get("taxSystem"), f.get("invoiceReady")
            if not (tax_system is None or isinstance(tax_system, str)):
                raise InvalidToken
            if not (ready is None or isinstance(ready, bool)):
                raise InvalidToken
            filters = ClientFilter(
                name=strings["name"],
                rfc=strings["rfc"],
                email=strings["email"],
                created_from=None if bounds["from"] is None else from_ms(bounds["from"]),
                created_to=None if bounds["to"] is None else from_ms(bounds["to"]),
                tax_system=tax_system,
                invoice_ready=ready,
            )
            return filters, limit, position_from_json(payload.get("p"))
        except InvalidToken:
            raise ValidationFailed({field: "Invalid or tampered pagination token"}) from None


def normalize_filter(filters: ClientFilter, fields: ListFields = REST_LIST_FIELDS) -> SearchFilter:
    errors = _Errors()
    search = _search_filter(filters, fields, errors)
    errors.raise_if_any()
    return search


def _search_filter(filters: ClientFilter, fields: ListFields, errors: _Errors) -> SearchFilter:
    """The filter the repository runs; each bad value's error goes to `errors`."""
    name = errors.run(fields.name, lambda: validation.search_query(filters.name), None)
    rfc = errors.run(fields.rfc, lambda: validation.rfc_query(filters.rfc), None)
    email = errors.run(fields.email, lambda: validation.email_query(filters.email), None)
    created_from = errors.run(
        fields.created_from, lambda: _date_bound(filters.created_from, end=False), None
    )
    created_to = errors.run(
        fields.created_to, lambda: _date_bound(filters.created_to, end=True), None
    )
    if created_from and created_to and created_from > created_to:
        errors.fields[fields.created_from] = "Must not be after the end of the range"
    tax_system = errors.run(
        fields.tax_system, lambda: fiscal.tax_system_query(filters.tax_system), None
    )
    return SearchFilter(
        name=name,
        rfc=rfc,
        email=email,
        created_from=created_from,
        created_to=created_to,
        tax_system=tax_system,
        invoice_ready=filters.invoice_ready,
    )


def _date_bound(value: datetime | str | None, *, end: bool) -> datetime | None:
    """A creation-time bound: a date-time (GraphQL), or ISO 8601 text (REST's query)."""
    if value is None:
        return None
    if isinstance(value, str):
        return validation.parse_date_bound(value, end=end)
    return validation.aware_utc(value)


def _client_from_values(row: dict[str, Any]) -> Client:
    """The client just inserted, from the values written (the repository's one mapping)."""
    return row_to_client(SimpleNamespace(**row))
