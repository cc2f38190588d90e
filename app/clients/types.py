"""Plain typed values that cross the service boundary (no ORM object escapes the service)."""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, Final, TypeAlias, TypeVar, Union

from app.clients import fiscal
from app.core.clock import to_ms


class _Unset(enum.Enum):
    UNSET = "UNSET"

    def __repr__(self) -> str:
        return "UNSET"

    def __bool__(self) -> bool:
        return False


UNSET: Final = _Unset.UNSET
T = TypeVar("T")
# Absent (UNSET), cleared (None) or set.
Patch: TypeAlias = Union[T, _Unset, None]  # noqa: UP007


@dataclass(frozen=True, slots=True)
class Address:
    street: str | None = None
    city: str | None = None
    state: str | None = None
    zip_code: str | None = None
    country: str | None = None
    exterior: str | None = None
    interior: str | None = None
    neighborhood: str | None = None
    municipality: str | None = None

    def is_empty(self) -> bool:
        return not any(getattr(self, name) for name in ADDRESS_ATTRS)


# Every attribute of an address, in the order the APIs list them.
ADDRESS_ATTRS = (
    "street",
    "exterior",
    "interior",
    "neighborhood",
    "city",
    "municipality",
    "state",
    "zip_code",
    "country",
)


@dataclass(frozen=True, slots=True)
class Client:
    id: str
    name: str
    legal_name: str | None
    rfc: str
    rfc_check_digit_valid: bool
    email: str | None
    phone: str | None
    address: Address | None
    livemode: bool
    created_at: datetime
    updated_at: datetime
    tax_system: str | None = None
    cfdi_use: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)

    @property
    def cfdi_name(self) -> str | None:
        """The receptor name of an invoice (computed, never stored)."""
        return fiscal.cfdi_name(self.legal_name)

    def invoice_issues(self) -> list[fiscal.Issue]:
        """What stops an invoice to this client now (empty: ready), by today's catalogs."""
        return fiscal.readiness(
            rfc=self.rfc,
            legal_name=self.legal_name,
            tax_system=self.tax_system,
            cfdi_use=self.cfdi_use,
            zip_code=self.address.zip_code if self.address else None,
        )


@dataclass(frozen=True, slots=True)
class NewClient:
    """Create input, as received (the service validates every field)."""

    name: str | None = None
    rfc: str | None = None
    legal_name: str | None = None
    email: str | None = None
    phone: str | None = None
    address: Address | None = None
    tax_system: str | None = None
    cfdi_use: str | None = None
    metadata: Any = None  # an object of strings, as received (checked by the service)


@dataclass(frozen=True, slots=True)
class AddressPatch:
    street: Patch[str] = UNSET
    city: Patch[str] = UNSET
    state: Patch[str] = UNSET
    zip_code: Patch[str] = UNSET
    country: Patch[str] = UNSET
    exterior: Patch[str] = UNSET
    interior: Patch[str] = UNSET
    neighborhood: Patch[str] = UNSET
    municipality: Patch[str] = UNSET


@dataclass(frozen=True, slots=True)
class ClientPatch:
    """Merge-patch input: UNSET keeps, None clears, a value sets."""

    name: Patch[str] = UNSET
    rfc: Patch[str] = UNSET
    legal_name: Patch[str] = UNSET
    email: Patch[str] = UNSET
    phone: Patch[str] = UNSET
    address: Patch[AddressPatch] = UNSET
    tax_system: Patch[str] = UNSET
    cfdi_use: Patch[str] = UNSET
    # Merged key by key (a key set to None is removed); None removes every key.
    metadata: Patch[Any] = UNSET


@dataclass(frozen=True, slots=True)
class ClientFilter:
    """Raw filter values; the service normalises and checks them. A creation-time bound is a
    date-time (GraphQL) or ISO 8601 text as REST's query has it (a date-only end covers the
    whole day)."""

    name: str | None = None
    rfc: str | None = None
    email: str | None = None
    created_from: datetime | str | None = None
    created_to: datetime | str | None = None
    tax_system: str | None = None
    invoice_ready: bool | None = None


@dataclass(frozen=True, slots=True)
class Position:
    """Where a page ends: the last row's creation time (ms) and internal id."""

    created_ms: int
    row_id: int


@dataclass(slots=True)
class ClientPage:
    items: list[Client]
    has_more: bool
    filters: ClientFilter = field(default_factory=ClientFilter)
    total: int | None = None  # only when asked for
    limit: int = 0  # the page size asked for (a REST `next` token carries it)
    # The page's rows as records (see ClientRecord), always; with `as_records` they are all
    # the caller gets (items then stays empty).
    records: Sequence[ClientRecord] = ()

    def position(self, index: int) -> Position:
        """Where the page's `index`-th row is (computed when a cursor or token needs it)."""
        return record_position(self.records[index])

    @property
    def positions(self) -> list[Position]:
        return [record_position(r) for r in self.records]


# A client as the values of one SELECT_COLUMNS row of the repository, in that order (the first,
# the internal row id, is None when the record comes from a domain object; a row may carry more
# columns after these, such as a list's total). The REST shim
# renders its client shape from these, straight from the database's rows on its read paths.
ClientRecord: TypeAlias = Sequence[Any]

# The names of a record's values, in order (a unit test checks them against SELECT_COLUMNS).
RECORD_FIELDS = (
    "id",
    "public_id",
    "name",
    "legal_name",
    "rfc",
    "rfc_check_digit_valid",
    "email",
    "phone",
    "street",
    "city",
    "state",
    "zip_code",
    "country",
    "exterior",
    "interior",
    "neighborhood",
    "municipality",
    "tax_system",
    "cfdi_use",
    "metadata_json",
    "livemode",
    "created_at",
    "updated_at",
)


def client_record(c: Client) -> ClientRecord:
    """A domain object as a record (see ClientRecord)."""
    a = c.address or _NO_ADDRESS
    return (
        None,
        c.id,
        c.name,
        c.legal_name,
        c.rfc,
        c.rfc_check_digit_valid,
        c.email,
        c.phone,
        a.street,
        a.city,
        a.state,
        a.zip_code,
        a.country,
        a.exterior,
        a.interior,
        a.neighborhood,
        a.municipality,
        c.tax_system,
        c.cfdi_use,
        c.metadata,
        c.livemode,
        c.created_at,
        c.updated_at,
    )


_NO_ADDRESS = Address()

# Where each value sits in a record.
_ROW_ID = RECORD_FIELDS.index("id")
_RFC = RECORD_FIELDS.index("rfc")
_LEGAL_NAME = RECORD_FIELDS.index("legal_name")
_ADDRESS = slice(RECORD_FIELDS.index("street"), RECORD_FIELDS.index("municipality") + 1)
_ZIP_CODE = RECORD_FIELDS.index("zip_code")
_TAX_SYSTEM = RECORD_FIELDS.index("tax_system")
_CFDI_USE = RECORD_FIELDS.index("cfdi_use")
_CREATED_AT = RECORD_FIELDS.index("created_at")
_RECORD_ADDRESS_ATTRS = RECORD_FIELDS[_ADDRESS]


def record_has_address(record: ClientRecord) -> bool:
    """As Address.is_empty: an address of only empty values is no address."""
    return any(record[_ADDRESS])


def record_address(record: ClientRecord) -> Address | None:
    if not record_has_address(record):
        return None
    return Address(**dict(zip(_RECORD_ADDRESS_ATTRS, record[_ADDRESS], strict=True)))


def record_issues(record: ClientRecord) -> list[fiscal.Issue]:
    """A record's `Client.invoice_issues()`, without building the client."""
    return fiscal.readiness(
        rfc=record[_RFC],
        legal_name=record[_LEGAL_NAME],
        tax_system=record[_TAX_SYSTEM],
        cfdi_use=record[_CFDI_USE],
        zip_code=record[_ZIP_CODE] if record_has_address(record) else None,
    )


def record_position(record: ClientRecord) -> Position:
    """Where a database row of the list sits (its record's internal id is set)."""
    return Position(created_ms=to_ms(record[_CREATED_AT]), row_id=record[_ROW_ID])


def client_to_json(c: Client) -> dict[str, object]:
    """A client as plain JSON values (stored idempotent outcomes)."""
    data = asdict(c)
    data["created_at"] = c.created_at.isoformat()
    data["updated_at"] = c.updated_at.isoformat()
    return data


def client_from_json(data: dict[str, Any]) -> Client:
    address = data.get("address")
    return Client(
        **{
            **data,
            "address": None if address is None else Address(**address),
            "metadata": data.get("metadata") or {},
            "created_at": datetime.fromisoformat(data["created_at"]),
            "updated_at": datetime.fromisoformat(data["updated_at"]),
        }
    )
