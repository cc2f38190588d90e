"""Input types. Update inputs tell an omitted field (unchanged) from an explicit null
(cleared) with `strawberry.Maybe[T | None]`."""

from __future__ import annotations

from datetime import datetime, timedelta

import strawberry

from app.clients import types as domain


@strawberry.input
class AddressInput:
    street: strawberry.Maybe[str | None]
    city: strawberry.Maybe[str | None]
    state: strawberry.Maybe[str | None]
    zip_code: strawberry.Maybe[str | None]
    country: strawberry.Maybe[str | None]

    def to_address(self) -> domain.Address:
        return domain.Address(
            street=_value(self.street),
            city=_value(self.city),
            state=_value(self.state),
            zip_code=_value(self.zip_code),
            country=_value(self.country),
        )

    def to_patch(self) -> domain.AddressPatch:
        return domain.AddressPatch(
            street=_patch(self.street),
            city=_patch(self.city),
            state=_patch(self.state),
            zip_code=_patch(self.zip_code),
            country=_patch(self.country),
        )


@strawberry.input
class CreateClientInput:
    name: str
    rfc: str
    legal_name: str | None = None
    email: str | None = None
    phone: str | None = None
    address: AddressInput | None = None

    def to_domain(self) -> domain.NewClient:
        return domain.NewClient(
            name=self.name,
            rfc=self.rfc,
            legal_name=self.legal_name,
            email=self.email,
            phone=self.phone,
            address=None if self.address is None else self.address.to_address(),
        )


@strawberry.input(description="Omitted fields stay as they are; an explicit null clears one.")
class UpdateClientInput:
    name: strawberry.Maybe[str | None]
    rfc: strawberry.Maybe[str | None]
    legal_name: strawberry.Maybe[str | None]
    email: strawberry.Maybe[str | None]
    phone: strawberry.Maybe[str | None]
    address: strawberry.Maybe[AddressInput | None]

    def to_domain(self) -> domain.ClientPatch:
        address: domain.Patch[domain.AddressPatch] = domain.UNSET
        if self.address is not None:
            address = None if self.address.value is None else self.address.value.to_patch()
        return domain.ClientPatch(
            name=_patch(self.name),
            rfc=_patch(self.rfc),
            legal_name=_patch(self.legal_name),
            email=_patch(self.email),
            phone=_patch(self.phone),
            address=address,
        )


@strawberry.input(name="ClientFilter")
class ClientFilterInput:
    name: str | None = strawberry.field(
        default=None, description="Partial match on name or legalName, case- and accent-insensitive"
    )
    rfc: str | None = strawberry.field(default=None, description="Exact, after normalisation")
    email: str | None = strawberry.field(default=None, description="Exact, case-insensitive")
    created_from: datetime | None = strawberry.field(default=None, description="Inclusive")
    created_to: datetime | None = strawberry.field(default=None, description="Inclusive")

    def to_domain(self) -> domain.ClientFilter:
        return domain.ClientFilter(
            name=self.name,
            rfc=self.rfc,
            email=self.email,
            created_from=None if self.created_from is None else _ceil_ms(self.created_from),
            created_to=self.created_to,
        )


def _ceil_ms(value: datetime) -> datetime:
    """Creation times are kept to the millisecond and compared as stored (sub-millisecond
    digits dropped): an inclusive start in between two milliseconds begins at the later one."""
    sub_ms = value.microsecond % 1000
    try:
        return value + timedelta(microseconds=(1000 - sub_ms) % 1000)
    except OverflowError:  # the last microsecond of year 9999: no client is that late anyway
        return value


def _patch(value: strawberry.Maybe[str | None]) -> domain.Patch[str]:
    return domain.UNSET if value is None else value.value


def _value(value: strawberry.Maybe[str | None]) -> str | None:
    return None if value is None else value.value
