"""Pydantic models of the REST edge: they check JSON types and unknown fields, and document
the routes in /openapi.json. Every business rule (required fields included, so all field
errors are reported at once) lives in the service."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictStr

_FORBID = ConfigDict(extra="forbid")


def not_null(schema: dict[str, Any]) -> None:
    """Documents an optional field as never null: the model takes null only so that the 400
    names the field, which a request cannot usefully send."""
    variants = schema.pop("anyOf", None)
    if variants:
        schema.update(next(v for v in variants if v.get("type") != "null"))


class AddressBody(BaseModel):
    model_config = _FORBID

    street: StrictStr | None = Field(None, examples=["Av. Insurgentes Sur 123"])
    city: StrictStr | None = Field(None, examples=["Ciudad de México"])
    state: StrictStr | None = Field(None, examples=["CDMX"])
    zipCode: StrictStr | None = Field(
        None,
        description="Five digits for an address in Mexico",
        examples=["03100"],
    )
    country: StrictStr | None = Field(None, examples=["México"])


class ClientRefBody(BaseModel):
    """`client: {rfc, email}` as returned; accepted as an alias of the top-level fields."""

    model_config = _FORBID

    rfc: StrictStr | None = Field(None)
    email: StrictStr | None = Field(None)


class _ClientBody(BaseModel):
    # null is accepted by the model only so that the service names the field in its 400
    # ("Name is required"); the schema says what a request may send: a string.
    name: StrictStr | None = Field(
        None, description="Display name, 1..300", json_schema_extra=not_null
    )
    rfc: StrictStr | None = Field(
        None,
        description="RFC: 12 (persona moral) or 13 (persona física)",
        json_schema_extra=not_null,
    )
    legalName: StrictStr | None = Field(None, description="Up to 300")
    email: StrictStr | None = Field(None, description="Up to 254")
    phone: StrictStr | None = Field(None, description="A possible phone number; Mexico by default")
    address: AddressBody | None = None
    client: ClientRefBody | None = Field(
        None,
        description="Alias of the top-level rfc and email (null is a 400)",
        json_schema_extra=not_null,
    )
    # Read-only fields of a client as returned: accepted and ignored, so a GET can be sent back.
    id: Any = Field(None, description="Read-only; ignored")
    timestamp: Any = Field(None, description="Read-only; ignored")
    updatedAt: Any = Field(None, description="Read-only; ignored")
    livemode: Any = Field(None, description="Read-only; ignored")
    rfcCheckDigitValid: Any = Field(None, description="Read-only; ignored")


# The read-only fields above: ignored, so left out of what an idempotency key fingerprints
# (they may hold any JSON, nested deeper than a serialiser takes).
READ_ONLY_FIELDS = frozenset({"id", "timestamp", "updatedAt", "livemode", "rfcCheckDigitValid"})


class ClientCreateBody(_ClientBody):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "required": ["name", "rfc"],
            "examples": [
                {
                    "name": "Cliente Example",
                    "legalName": "Cliente Example S.A. de C.V.",
                    "rfc": "XAXX010101000",
                    "email": "cliente@example.com",
                    "phone": "+52 55 1234 5678",
                    "address": {
                        "street": "Av. Insurgentes Sur 123",
                        "city": "Ciudad de México",
                        "state": "CDMX",
                        "zipCode": "03100",
                        "country": "México",
                    },
                }
            ],
        },
    )


class ClientUpdateBody(_ClientBody):
    """JSON merge-patch (RFC 7396): absent keeps, null or blank clears, address merges."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"email": "nuevo-email@example.com"}]},
    )


# -- responses (documentation only: handlers return JSON directly) -----------------------


class AddressOut(BaseModel):
    street: str | None
    city: str | None
    state: str | None
    zipCode: str | None
    country: str | None


class ClientRefOut(BaseModel):
    rfc: str
    email: str | None


class ClientOut(BaseModel):
    id: str = Field(examples=["client_01JD0Q5Z8X3V2N7K4M6P9R1T2W"])
    name: str
    legalName: str | None
    client: ClientRefOut
    phone: str | None
    address: AddressOut | None
    timestamp: str = Field(description="Creation time, UTC, ISO 8601 with milliseconds")
    updatedAt: str
    livemode: bool
    rfcCheckDigitValid: bool


class ClientEnvelope(BaseModel):
    data: ClientOut
    message: str


class ClientListEnvelope(BaseModel):
    data: list[ClientOut]
    message: str
    totalResults: int
    hasMore: bool
    next: str | None = Field(description="Opaque token for the next page, or null")


class DeletedOut(BaseModel):
    id: str
    deleted: bool


class DeletedEnvelope(BaseModel):
    data: DeletedOut
    message: str


class ErrorDetail(BaseModel):
    code: str
    message: str
    details: dict[str, Any] | None = None
    requestId: str | None = None


class ErrorEnvelope(BaseModel):
    error: ErrorDetail
    message: str
