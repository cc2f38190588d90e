"""Input types. Update inputs tell an omitted field (unchanged) from an explicit null
(cleared) with `strawberry.Maybe[T | None]`."""

from __future__ import annotations

from datetime import datetime, timedelta

import strawberry
from strawberry.scalars import JSON

from app.clients import types as domain


@strawberry.input
class AddressInput:
    street: strawberry.Maybe[str | None]
    city: strawberry.Maybe[str | None]
    state: strawberry.Maybe[str | None]
    zip_code: strawberry.Maybe[str | None]
    country: strawberry.Maybe[str | None]
    exterior: strawberry.Maybe[str | None]
    interior: strawberry.Maybe[str | None]
    neighborhood: strawberry.Maybe[str | None]
    municipality: strawberry.Maybe[str | None]

    def to_address(self) -> domain.Address:
        return domain.Address(
            **{attr: _value(getattr(self, attr)) for attr in domain.ADDRESS_ATTRS}
        )

    def to_patch(self) -> domain.AddressPatch:
        return domain.AddressPatch(
            **{attr: _patch(getattr(self, attr)) for attr in domain.ADDRESS_ATTRS}
        )


@strawberry.input
class CreateClientInput:
    name: str
    rfc: str
    legal_name: str | None = None
    email: str | None = None
    phone: str | None = None
    address: AddressInput | None = None
    tax_system: str | None = strawberry.field(default=None, description="c_RegimenFiscal code")
    cfdi_use: str | None = strawberry.field(default=None, description="c_UsoCFDI code")
    metadata: JSON | None = strawberry.field(
        default=None, description="String values; at most 50 keys of 1..40 characters"
    )

    def to_domain(self) -> domain.NewClient:
        return domain.NewClient(
            name=self.name,
            rfc=self.rfc,
            legal_name=self.legal_name,
            email=self.email,
            phone=self.phone,
            address=None if self.address is None else self.address.to_address(),
            tax_system=self.tax_system,
            cfdi_use=self.cfdi_use,
            metadata=self.metadata,
        )


@strawberry.input(description="Omitted fields stay as they are; an explicit null clears one.")
class UpdateClientInput:
    name: strawberry.Maybe[str | None]
    rfc: strawberry.Maybe[str | None]
    legal_name: strawberry.Maybe[str | None]
    email: strawberry.Maybe[str | None]
    phone: strawberry.Maybe[str | None]
    address: strawberry.Maybe[AddressInput | None]
    tax_system: strawberry.Maybe[str | None]
    cfdi_use: strawberry.Maybe[str | None]
    metadata: strawberry.Maybe[JSON | None] = strawberry.field(
        description="Merged key by key: a key set to null is removed; null removes all"
    )

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
            tax_system=_patch(self.tax_system),
            cfdi_use=_patch(self.cfdi_use),
            metadata=domain.UNSET if self.metadata is None else self.metadata.value,
        )


@strawberry.input
class ClientFilter:
    name: str | None = strawberry.field(
        default=None, description="Partial match on name or legalName, case- and accent-insensitive"
    )
    rfc: str | None = strawberry.field(default=None, description="Exact, after normalisation")
    email: str | None = strawberry.field(default=None, description="Exact, case-insensitive")
    created_from: datetime | None = strawberry.field(default=None, description="Inclusive")
    created_to: datetime | None = strawberry.field(default=None, description="Inclusive")
    tax_system: str | None = strawberry.field(default=None, description="Exact c_RegimenFiscal")
    invoice_ready: bool | None = strawberry.field(
        default=None, description="true: invoice-ready clients; false: those that are not"
    )

    def to_domain(self) -> domain.ClientFilter:
        return domain.ClientFilter(
            name=self.name,
            rfc=self.rfc,
            email=self.email,
            created_from=None if self.created_from is None else _ceil_ms(self.created_from),
            created_to=self.created_to,
            tax_system=self.tax_system,
            invoice_ready=self.invoice_ready,
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
