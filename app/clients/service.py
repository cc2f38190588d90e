"""Every business rule of clients, once: validation, RFC uniqueness, tenancy, the delete rule,
optimistic concurrency and pagination. REST and GraphQL call this and nothing below it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime, timedelta
from functools import partial
from types import SimpleNamespace
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from app.clients import validation as v
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
    from_ms,
    row_position,
    row_to_client,
    to_ms,
)
from app.clients.types import (
    UNSET,
    Address,
    AddressPatch,
    Client,
    ClientFilter,
    ClientPage,
    ClientPatch,
    NewClient,
    Position,
    Principal,
)
from app.core.errors import (
    ClientInUse,
    ClientNotFound,
    DuplicateRfc,
    PreconditionFailed,
    ValidationFailed,
)
from app.db.database import Database

MAX_LIMIT = 100
MAX_OFFSET = 10_000
T = TypeVar("T")


def now_utc() -> datetime:
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


class _Errors:
    """Collects every field's error, so a caller learns all of them at once."""

    def __init__(self) -> None:
        self.fields: dict[str, str] = {}

    def run(self, field: str, fn: Callable[[], T], fallback: T) -> T:
        try:
            return fn()
        except v.FieldInvalid as exc:
            self.fields.setdefault(field, exc.message)
            return fallback

    def raise_if_any(self) -> None:
        if self.fields:
            raise ValidationFailed(dict(self.fields))


_ADDRESS_FIELDS = (
    ("street", "street"),
    ("city", "city"),
    ("state", "state"),
    ("zip_code", "zipCode"),
    ("country", "country"),
)


def _new_values(data: NewClient) -> dict[str, Any]:
    errors = _Errors()
    name = errors.run("name", lambda: v.check_name(data.name), "")
    rfc, check_ok = errors.run("rfc", lambda: v.check_rfc(data.rfc), ("", False))
    legal = errors.run(
        "legalName", lambda: v.clean_text(data.legal_name, max_length=v.LEGAL_NAME_MAX), None
    )
    email = errors.run("email", lambda: v.check_email(data.email), None)
    phone = errors.run("phone", lambda: v.check_phone(data.phone), None)
    addr = data.address or Address()
    parts: dict[str, str | None] = {}
    for attr, api in _ADDRESS_FIELDS:
        parts[attr] = errors.run(
            f"address.{api}", partial(_max(v.ADDRESS_FIELD_MAX), getattr(addr, attr)), None
        )
    if "address.zipCode" not in errors.fields:
        errors.run(
            "address.zipCode", lambda: v.check_zip(parts["zip_code"], parts["country"]), None
        )
    errors.raise_if_any()
    return {
        "name": name,
        "legal_name": legal,
        "rfc": rfc,
        "rfc_check_digit_valid": check_ok,
        "email": email,
        "phone": phone,
        **parts,
    }


def _derived(values: dict[str, Any]) -> dict[str, Any]:
    """Columns computed from others: kept in step by the one function that writes them."""
    out: dict[str, Any] = {}
    if "rfc" in values:
        out["rfc_unique"] = None if values["rfc"] in v.GENERIC_RFCS else values["rfc"]
    if "email" in values:
        out["email_lower"] = values["email"].lower() if values["email"] else None
    if "name" in values or "legal_name" in values:
        out["search_text"] = v.search_text(values["name"], values.get("legal_name"))
    return out


def _patch_values(current: Client, patch: ClientPatch) -> dict[str, Any]:
    """The columns a merge-patch changes. Only changed fields are validated (plus zipCode when
    country changes), so a stored client always stays editable."""
    errors = _Errors()
    changes: dict[str, Any] = {}

    def changed(field: str, raw: object, stored: Any, check: Callable[[Any], Any]) -> Any:
        """The new value of a field, or `stored` when it is absent, unchanged or invalid."""
        if raw is UNSET:
            return stored
        cleaned = errors.run(field, lambda: v.clean_text(raw), stored)  # type: ignore[arg-type]
        if field in errors.fields or cleaned == stored:
            return stored
        return errors.run(field, lambda: check(raw), stored)

    for field, column, check in (
        ("name", "name", v.check_name),
        ("legalName", "legal_name", _max(v.LEGAL_NAME_MAX)),
        ("email", "email", v.check_email),
        ("phone", "phone", v.check_phone),
    ):
        stored = getattr(current, column)
        new = changed(field, getattr(patch, column), stored, check)
        if new != stored:
            changes[column] = new

    if patch.rfc is not UNSET:
        raw_rfc = patch.rfc
        stored_rfc: str | None = current.rfc
        cleaned = errors.run("rfc", lambda: v.clean_text(raw_rfc), stored_rfc)
        if "rfc" not in errors.fields and (
            cleaned is None or v.normalize_rfc(cleaned) != current.rfc
        ):
            rfc, ok = errors.run("rfc", lambda: v.check_rfc(raw_rfc), (current.rfc, True))
            if "rfc" not in errors.fields:
                changes["rfc"] = rfc
                changes["rfc_check_digit_valid"] = ok

    if patch.address is not UNSET:
        stored_addr = current.address or Address()
        addr_patch = patch.address if patch.address is not None else _CLEAR_ADDRESS
        new_parts: dict[str, str | None] = {}
        for attr, api in _ADDRESS_FIELDS:
            stored = getattr(stored_addr, attr)
            new = changed(
                f"address.{api}", getattr(addr_patch, attr), stored, _max(v.ADDRESS_FIELD_MAX)
            )
            new_parts[attr] = new
            if new != stored:
                changes[attr] = new
        zip_or_country = "zip_code" in changes or "country" in changes
        if zip_or_country and "address.zipCode" not in errors.fields:
            errors.run(
                "address.zipCode",
                lambda: v.check_zip(new_parts["zip_code"], new_parts["country"]),
                None,
            )
    errors.raise_if_any()
    if "name" in changes or "legal_name" in changes:
        changes.setdefault("name", current.name)
        changes.setdefault("legal_name", current.legal_name)
    return changes


_CLEAR_ADDRESS = AddressPatch(street=None, city=None, state=None, zip_code=None, country=None)


def _max(limit: int) -> Callable[[Any], str | None]:
    return lambda raw: v.clean_text(raw, max_length=limit)


def _check_expected(current: Client, expected: datetime | None) -> None:
    if expected is None:
        return
    if to_ms(v.aware_utc(expected)) != to_ms(current.updated_at):
        raise PreconditionFailed(current.id, current.updated_at)


class ClientService:
    def __init__(self, db: Database, signer: TokenSigner) -> None:
        self.db = db
        self.signer = signer
        self.repo = ClientRepository(db.dialect)

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
        values = _new_values(data)
        values.update(_derived(values))
        for _attempt in range(3):
            now = now_utc()
            row = {
                **values,
                "public_id": new_client_id(to_ms(now)),
                "team_id": principal.team_id,
                "livemode": principal.livemode,
                "created_at": now,
                "updated_at": now,
            }
            async with self.db.write() as session:
                row_id = await self.repo.insert(session, row)
                if row_id is not None:
                    await self.repo.adjust_count(session, principal.team_id, principal.livemode, 1)
                    created = _client_from_values(row)
                    if on_created is not None:
                        await on_created(session, created)
                    return created
                owner = await self.repo.rfc_owner(
                    session, principal.team_id, principal.livemode, values["rfc"]
                )
            if owner is not None:
                raise DuplicateRfc(values["rfc"], owner)
            # The owner was deleted between our insert and the look-up: try again.
        raise DuplicateRfc(values["rfc"], "")

    async def update(
        self,
        *,
        principal: Principal,
        client_id: str,
        patch: ClientPatch,
        expected_updated_at: datetime | None = None,
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
            _check_expected(current, expected_updated_at)
            changes = _patch_values(current, patch)
            if not changes:
                return current
            changes.update(_derived(changes))
            # updatedAt strictly moves, so an ETag of it changes with every change.
            changes["updated_at"] = max(now_utc(), current.updated_at + timedelta(milliseconds=1))
            try:
                await self.repo.update(session, row.id, changes)
            except RfcTaken:
                owner = await self.repo.rfc_owner(
                    session, principal.team_id, principal.livemode, changes["rfc"]
                )
                raise DuplicateRfc(changes["rfc"], owner or "") from None
            updated = await self.repo.get(session, principal.team_id, principal.livemode, client_id)
            assert updated is not None
            return row_to_client(updated)

    async def delete(
        self,
        *,
        principal: Principal,
        client_id: str,
        expected_updated_at: datetime | None = None,
    ) -> str:
        if not is_client_id(client_id):
            raise ClientNotFound(client_id)
        async with self.db.write() as session:
            row = await self.repo.get(
                session, principal.team_id, principal.livemode, client_id, for_update=True
            )
            if row is None:
                raise ClientNotFound(client_id)
            _check_expected(row_to_client(row), expected_updated_at)
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

    async def list(
        self,
        *,
        principal: Principal,
        filters: ClientFilter,
        limit: int,
        offset: int = 0,
        after: Position | None = None,
        with_total: bool = False,
    ) -> ClientPage:
        """A page of clients, newest first; `with_total` also counts every match, in the same
        transaction (so the page and its total agree)."""
        check_page_args(limit=limit, offset=offset)
        search = normalize_filter(filters)
        async with self._read_unit(search) as session:
            prepared = await self.repo.prepare(
                session, principal.team_id, principal.livemode, search
            )
            rows, total = await self.repo.page(
                session,
                prepared,
                after=after,
                limit=limit + 1,
                offset=offset,
                with_total=with_total,
            )
        has_more = len(rows) > limit
        rows = rows[:limit]
        return ClientPage(
            items=[row_to_client(r) for r in rows],
            positions=[row_position(r) for r in rows],
            has_more=has_more,
            filters=filters,
            total=total,
        )

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
        if filters.created_from is not None:
            f["from"] = to_ms(filters.created_from)
        if filters.created_to is not None:
            f["to"] = to_ms(filters.created_to)
        payload = {"f": f, "l": limit, "p": position_to_json(position)}
        return self.signer.dumps("next", principal, payload)

    def parse_next_token(
        self, principal: Principal, token: str
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
            filters = ClientFilter(
                name=strings["name"],
                rfc=strings["rfc"],
                email=strings["email"],
                created_from=None if bounds["from"] is None else from_ms(bounds["from"]),
                created_to=None if bounds["to"] is None else from_ms(bounds["to"]),
            )
            return filters, limit, position_from_json(payload.get("p"))
        except InvalidToken:
            raise ValidationFailed({"next": "Invalid or tampered pagination token"}) from None


def check_page_args(*, limit: int, offset: int) -> None:
    errors: dict[str, str] = {}
    if not 1 <= limit <= MAX_LIMIT:
        errors["limit"] = f"Must be between 1 and {MAX_LIMIT}"
    if not 0 <= offset <= MAX_OFFSET:
        errors["offset"] = f"Must be between 0 and {MAX_OFFSET}"
    if errors:
        raise ValidationFailed(errors)


def normalize_filter(filters: ClientFilter) -> SearchFilter:
    errors = _Errors()
    name = errors.run("name", lambda: v.search_query(filters.name), None)
    rfc = errors.run("rfc", lambda: v.rfc_query(filters.rfc), None)
    email = errors.run("email", lambda: v.email_query(filters.email), None)
    created_from = v.aware_utc(filters.created_from) if filters.created_from else None
    created_to = v.aware_utc(filters.created_to) if filters.created_to else None
    if created_from and created_to and created_from > created_to:
        errors.fields["created_from"] = "Must not be after the end of the range"
    errors.raise_if_any()
    return SearchFilter(
        name=name, rfc=rfc, email=email, created_from=created_from, created_to=created_to
    )


def _client_from_values(row: dict[str, Any]) -> Client:
    """The client just inserted, from the values written (the repository's one mapping)."""
    return row_to_client(SimpleNamespace(**row))
