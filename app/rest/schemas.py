"""Pydantic models of the REST edge: they check JSON types and unknown fields, and document
the routes in /openapi.json. Every business rule (required fields included, so all field
errors are reported at once) lives in the service."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import email_validator
from pydantic import BaseModel, ConfigDict, Field, StrictStr

from app.catalogs.store import catalogs
from app.clients import fiscal
from app.clients import validation as v
from app.rest import patterns

_FORBID = ConfigDict(extra="forbid")
Schema = dict[str, Any]


def not_null(schema: Schema) -> None:
    """Documents an optional field as never null: the model takes null only so that the 400
    names the field, which a request cannot usefully send."""
    variants = schema.pop("anyOf", None)
    if variants:
        schema.update(next(v for v in variants if v.get("type") != "null"))


def documented(*, nullable: bool = True, **constraints: Any) -> Callable[[Schema], None]:
    """JSON Schema constraints of a string field, for /openapi.json only: pydantic does not
    enforce them (the service checks every rule and reports all bad fields at once).
    `nullable=False` documents the field as never null (see `not_null`)."""

    def apply(schema: Schema) -> None:
        variants = schema.get("anyOf")
        target = next(x for x in variants if x.get("type") != "null") if variants else schema
        target.update(constraints)
        if not nullable:
            not_null(schema)

    return apply


def text(max_length: int, **more: Any) -> Callable[[Schema], None]:
    """An optional text: no control characters, at most `max_length` once trimmed; null or
    blank clears."""
    return documented(pattern=patterns.bounded_text(max_length), **more)


_RFC: Schema = {"minLength": 12, "maxLength": 13, "pattern": patterns.RFC}
# An address, or blank (unset).
# email-validator refuses addresses at special-use names (RFC 6761: `.test`, `localhost`…),
# which JSON Schema's `email` format allows: the document says so, from the library's list.
_SPECIAL_USE = "|".join(email_validator.SPECIAL_USE_DOMAIN_NAMES)
_EMAIL: Schema = {
    "anyOf": [
        {
            "format": "email",
            "maxLength": v.EMAIL_MAX,
            "not": {"pattern": f"(?i)[@.](?:{_SPECIAL_USE})\\.?[ \\t]*$"},
        },
        {"pattern": patterns.BLANK},
    ]
}
# The read-only fields of a client as returned: accepted and ignored (`readOnly`), so that a
# client read with GET can be sent back.
_READ_ONLY: Schema = {"readOnly": True}


class AddressBody(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            # zipCode is five digits when country is absent, blank or names Mexico.
            "if": {
                "properties": {
                    "country": {
                        "anyOf": [
                            {"type": "null"},
                            {"type": "string", "pattern": patterns.COUNTRY_MEXICO},
                        ]
                    }
                }
            },
            "then": {
                "properties": {
                    "zipCode": {
                        "anyOf": [{"type": "null"}, {"type": "string", "pattern": patterns.ZIP_MX}]
                    }
                }
            },
        },
    )

    street: StrictStr | None = Field(
        None, examples=["Av. Insurgentes Sur 123"], json_schema_extra=text(v.ADDRESS_FIELD_MAX)
    )
    city: StrictStr | None = Field(
        None, examples=["Ciudad de México"], json_schema_extra=text(v.ADDRESS_FIELD_MAX)
    )
    state: StrictStr | None = Field(
        None, examples=["CDMX"], json_schema_extra=text(v.ADDRESS_FIELD_MAX)
    )
    zipCode: StrictStr | None = Field(
        None,
        description="Five digits for an address in Mexico (country absent or México, Mexico, "
        "MX, MEX in any case, with or without accents)",
        examples=["03100"],
        json_schema_extra=text(v.ADDRESS_FIELD_MAX),
    )
    country: StrictStr | None = Field(
        None, examples=["México"], json_schema_extra=text(v.ADDRESS_FIELD_MAX)
    )
    exterior: StrictStr | None = Field(
        None,
        description="Exterior number",
        examples=["123"],
        json_schema_extra=text(v.ADDRESS_FIELD_MAX),
    )
    interior: StrictStr | None = Field(
        None,
        description="Interior number",
        examples=["4B"],
        json_schema_extra=text(v.ADDRESS_FIELD_MAX),
    )
    neighborhood: StrictStr | None = Field(
        None,
        description="Colonia",
        examples=["Roma Norte"],
        json_schema_extra=text(v.ADDRESS_FIELD_MAX),
    )
    municipality: StrictStr | None = Field(
        None,
        description="Municipio or alcaldía",
        examples=["Cuauhtémoc"],
        json_schema_extra=text(v.ADDRESS_FIELD_MAX),
    )


def _metadata_schema(schema: dict[str, Any]) -> None:
    schema.pop("anyOf", None)
    schema.update(
        type=["object", "null"],  # null removes every key
        maxProperties=fiscal.METADATA_MAX_KEYS,
        propertyNames={
            "minLength": 1,
            "maxLength": fiscal.METADATA_KEY_MAX,
            "pattern": patterns.NO_CONTROL,
        },
        additionalProperties={
            "type": ["string", "null"],  # null removes the key
            "maxLength": fiscal.METADATA_VALUE_MAX,
            "pattern": patterns.NO_CONTROL,
        },
    )


# -- CFDI receptor rules, from SAT's catalogs through the service's own rule functions ------

_UNSET: Schema = {"anyOf": [{"type": "null"}, {"type": "string", "pattern": patterns.BLANK}]}


def _code_or_unset(codes: list[str]) -> Schema:
    """One of `codes`, or unset (null or blank)."""
    variants = [{"type": "string", "enum": codes}] if codes else []
    return {"anyOf": [*variants, *_UNSET["anyOf"]]}


def _tax_system_schema(schema: Schema) -> None:
    schema.pop("anyOf", None)
    schema.update(_code_or_unset(sorted(catalogs().tax_systems)))


def _cfdi_use_schema(schema: Schema) -> None:
    schema.pop("anyOf", None)
    schema.update(_code_or_unset(sorted(catalogs().cfdi_uses)))


def tax_system_filter_schema(schema: Schema) -> None:
    """The list's `taxSystem` filter: any code SAT has had (fiscal.tax_system_query)."""
    c = catalogs()
    schema.pop("anyOf", None)
    codes = sorted({*c.tax_systems, *c.withdrawn_tax_systems})
    schema["anyOf"] = [
        {"type": "string", "enum": codes},
        {"type": "string", "pattern": patterns.BLANK},
    ]


def _receptor_rule() -> Schema:
    """The régimen ↔ person type and uso ↔ régimen rules over the body's RFC (top-level `rfc`
    or `client.rfc`), `taxSystem` and `cfdiUse`: a branch per kind of RFC (persona moral: 12
    characters; persona física: 13; each generic RFC), and in each a branch per set of
    régimenes that allow the same usos, plus one without a régimen. Computed by asking the
    service's own rule functions (app/clients/fiscal.py) about every code of SAT's catalogs,
    so no code is written here. Without an RFC in the body (an update) the RFC conditions
    hold vacuously and what remains is the régimen ↔ uso pairing; what the stored client
    adds there is the service's to check (described on the update body)."""
    c = catalogs()
    generic = sorted(fiscal.GENERIC_RFCS)
    kinds: list[tuple[Schema, str]] = [
        ({"maxLength": 12}, fiscal.SAMPLE_MORAL_RFC),
        ({"minLength": 13, "not": {"enum": generic}}, fiscal.SAMPLE_FISICA_RFC),
        *(({"const": rfc}, rfc) for rfc in generic),
    ]
    branches = []
    for rfc_schema, rfc in kinds:
        by_uses: dict[tuple[str, ...], list[str]] = {}
        for code in sorted(c.tax_systems):
            if fiscal.tax_system_conflict(rfc, code) is None:
                uses = _uses(rfc, code)
                by_uses.setdefault(uses, []).append(code)
        options: list[Schema] = [
            {
                "required": ["taxSystem"],
                "properties": {
                    "taxSystem": {"type": "string", "enum": codes},
                    "cfdiUse": _code_or_unset(list(uses)),
                },
            }
            for uses, codes in by_uses.items()
        ]
        options.append(
            {"properties": {"taxSystem": _UNSET, "cfdiUse": _code_or_unset(list(_uses(rfc, None)))}}
        )
        branches.append(
            {
                "properties": {"rfc": rfc_schema, "client": {"properties": {"rfc": rfc_schema}}},
                "anyOf": options,
            }
        )
    return {"anyOf": branches}


def _uses(rfc: str, tax_system: str | None) -> tuple[str, ...]:
    return tuple(
        use
        for use in sorted(catalogs().cfdi_uses)
        if fiscal.cfdi_use_conflict(rfc, tax_system, use) is None
    )


class ClientRefBody(BaseModel):
    """`client: {rfc, email}` as returned; accepted as an alias of the top-level fields."""

    model_config = _FORBID

    rfc: StrictStr | None = Field(None, json_schema_extra=documented(nullable=False, **_RFC))
    email: StrictStr | None = Field(None, json_schema_extra=documented(**_EMAIL))


def _given_once(field: str) -> Schema:
    """`field` at the top level or in `client`, not both (both are accepted when equal, which
    no schema can say)."""
    return {"not": {"required": [field, "client"], "properties": {"client": {"required": [field]}}}}


class _ClientBody(BaseModel):
    # null is accepted by the model only so that the service names the field in its 400
    # ("Name is required"); the schema says what a request may send: a string.
    name: StrictStr | None = Field(
        None,
        description="Display name, 1..300 characters once trimmed",
        examples=["Cliente Example"],
        json_schema_extra=documented(nullable=False, pattern=patterns.non_blank_text(v.NAME_MAX)),
    )
    rfc: StrictStr | None = Field(
        None,
        description="RFC as SAT defines it: 12 characters (persona moral) or 13 (persona "
        "física), the six digits a real date. Lower case, spaces and hyphens are accepted too "
        "and normalised away. The check digit is reported as rfcCheckDigitValid, not required.",
        examples=["MAB9307148T4"],
        json_schema_extra=documented(nullable=False, **_RFC),
    )
    legalName: StrictStr | None = Field(
        None,
        description="Up to 300 characters once trimmed",
        examples=["Cliente Example S.A. de C.V."],
        json_schema_extra=text(v.LEGAL_NAME_MAX),
    )
    email: StrictStr | None = Field(
        None,
        description="An address by syntax (no DNS look-up), up to 254 characters",
        examples=["cliente@example.com"],
        json_schema_extra=documented(**_EMAIL),
    )
    phone: StrictStr | None = Field(
        None,
        description="A Mexican number (ten digits, optionally after +52); any number possible "
        "for its country, in international form, is accepted too (up to 40 characters).",
        examples=["+52 55 1234 5678"],
        json_schema_extra=documented(pattern=patterns.PHONE_MX),
    )
    address: AddressBody | None = None
    taxSystem: StrictStr | None = Field(
        None,
        description="c_RegimenFiscal code, applicable to the RFC's person type (GET "
        "/v2/catalogs/c_RegimenFiscal)",
        examples=["601"],
        json_schema_extra=_tax_system_schema,
    )
    cfdiUse: StrictStr | None = Field(
        None,
        description="Default c_UsoCFDI of this client's invoices, allowed for its taxSystem",
        examples=["G03"],
        json_schema_extra=_cfdi_use_schema,
    )
    metadata: dict[str, Any] | None = Field(
        None,
        description="String values, at most 50 keys of 1..40 characters, values up to 500. "
        "On update it merges key by key: a key set to null is removed; null removes all.",
        examples=[{"erpId": "C-1042"}],
        json_schema_extra=_metadata_schema,
    )
    client: ClientRefBody | None = Field(
        None,
        description="Alias of the top-level rfc and email (null is a 400)",
        json_schema_extra=not_null,
    )
    # Read-only fields of a client as returned: accepted and ignored, so a GET can be sent back.
    id: Any = Field(None, description="Read-only; ignored", json_schema_extra=_READ_ONLY)
    timestamp: Any = Field(None, description="Read-only; ignored", json_schema_extra=_READ_ONLY)
    updatedAt: Any = Field(None, description="Read-only; ignored", json_schema_extra=_READ_ONLY)
    livemode: Any = Field(None, description="Read-only; ignored", json_schema_extra=_READ_ONLY)
    rfcCheckDigitValid: Any = Field(
        None, description="Read-only; ignored", json_schema_extra=_READ_ONLY
    )
    cfdiName: Any = Field(None, description="Read-only; ignored", json_schema_extra=_READ_ONLY)
    invoiceReady: Any = Field(None, description="Read-only; ignored", json_schema_extra=_READ_ONLY)
    invoiceIssues: Any = Field(None, description="Read-only; ignored", json_schema_extra=_READ_ONLY)


# The read-only fields above: ignored, so left out of what an idempotency key fingerprints
# (they may hold any JSON, nested deeper than a serialiser takes).
READ_ONLY_FIELDS = frozenset({"id", "timestamp", "updatedAt", "livemode", "rfcCheckDigitValid"})


def _create_rules(schema: Schema) -> None:
    schema["required"] = ["name"]
    schema["allOf"] = [
        # rfc is required, at the top level or as client.rfc.
        {
            "anyOf": [
                {"required": ["rfc"]},
                {"required": ["client"], "properties": {"client": {"required": ["rfc"]}}},
            ]
        },
        _given_once("rfc"),
        _given_once("email"),
        _receptor_rule(),
    ]
    schema["examples"] = _CREATE_EXAMPLES


def _update_rules(schema: Schema) -> None:
    schema["allOf"] = [_given_once("rfc"), _given_once("email"), _receptor_rule()]
    schema["examples"] = [{"email": "nuevo-email@example.com"}]


class ClientCreateBody(_ClientBody):
    model_config = ConfigDict(extra="forbid", json_schema_extra=_create_rules)


_CREATE_EXAMPLES: list[Schema] = [
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
]


class ClientUpdateBody(_ClientBody):
    """JSON merge-patch (RFC 7396): absent keeps, null or blank clears, address merges. The
    receptor rules read the stored client for what the body leaves out: a new `rfc` must fit
    the stored régimen and use, a new `taxSystem` the stored RFC and use, a new `cfdiUse` the
    stored RFC or régimen (a 400 names the field)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_update_rules)


# -- responses (documentation only: handlers return JSON directly) -----------------------


class AddressOut(BaseModel):
    street: str | None
    exterior: str | None
    interior: str | None
    neighborhood: str | None
    city: str | None
    municipality: str | None
    state: str | None
    zipCode: str | None
    country: str | None


class InvoiceIssueOut(BaseModel):
    field: str = Field(examples=["taxSystem"])
    message: str


class ClientRefOut(BaseModel):
    rfc: str
    email: str | None


_TIMESTAMP = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z$"


class ClientOut(BaseModel):
    id: str = Field(
        examples=["client_01JD0Q5Z8X3V2N7K4M6P9R1T2W"],
        json_schema_extra={"pattern": r"^client_[0-7][0-9A-HJKMNP-TV-Z]{25}$"},
    )
    name: str
    legalName: str | None
    client: ClientRefOut
    phone: str | None
    address: AddressOut | None
    timestamp: str = Field(
        description="Creation time, UTC, ISO 8601 with milliseconds",
        examples=["2024-01-15T10:30:00.000Z"],
        json_schema_extra={"format": "date-time", "pattern": _TIMESTAMP},
    )
    updatedAt: str = Field(
        description="Last change, UTC, ISO 8601 with milliseconds (the ETag's time)",
        examples=["2024-01-15T10:30:00.000Z"],
        json_schema_extra={"format": "date-time", "pattern": _TIMESTAMP},
    )
    livemode: bool
    rfcCheckDigitValid: bool
    taxSystem: str | None = Field(description="c_RegimenFiscal code")
    cfdiUse: str | None = Field(description="c_UsoCFDI code")
    metadata: dict[str, str]
    cfdiName: str | None = Field(
        description="Receptor name for an invoice: legalName upper-cased, corporate suffix removed"
    )
    invoiceReady: bool = Field(description="An invoice can be made from this client alone")
    invoiceIssues: list[InvoiceIssueOut] = Field(description="Why not, one entry per field")


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


class ValidationOut(BaseModel):
    valid: bool = Field(description="Always true in a 200: a create would succeed")
    errors: dict[str, str] = Field(description="Always empty in a 200 (a 400 names them)")
    cfdiName: str | None
    invoiceReady: bool
    invoiceIssues: list[InvoiceIssueOut]


class ValidationEnvelope(BaseModel):
    data: ValidationOut
    message: str
