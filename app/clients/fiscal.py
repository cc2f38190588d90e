"""CFDI 4.0 receptor rules of a client (contract §6), read from SAT's catalogs.

Invariants:
- No code list is written here: régimenes, usos, their física/moral applicability, the
  uso ↔ régimen matrix and the zip codes all come from `app.catalogs` (SAT's data). The only
  codes below are the two generic RFCs and what SAT's rules give them (616, S01, CP01).
- Field checks raise `FieldInvalid` (the service collects them, all at once). Cross-field
  checks return the message for the field whose value is wrong for the others: `taxSystem`
  when the régimen does not apply to the RFC's person type, `cfdiUse` when the use is not
  allowed for the régimen (or, without one, for the person type).
- `readiness` never raises: it lists what stops an invoice, one issue per field.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from app.catalogs.store import catalogs
from app.clients.validation import FieldInvalid, clean_text, is_mexico

PUBLIC_RFC = "XAXX010101000"  # público en general
FOREIGN_RFC = "XEXX010101000"  # residente en el extranjero
# What SAT accepts for the generic RFCs (Anexo 20, CFDI 4.0 receptor rules).
_GENERIC_RECEPTORS: Mapping[str, tuple[frozenset[str], frozenset[str]]] = {
    PUBLIC_RFC: (frozenset({"616"}), frozenset({"S01"})),
    FOREIGN_RFC: (frozenset({"616"}), frozenset({"S01", "CP01"})),
}
GENERIC_RFCS = frozenset(_GENERIC_RECEPTORS)
# Any RFC of each person type, for the rules' sake (they read its length only): what
# /openapi.json asks the rules about to state them (app/rest/schemas.py).
SAMPLE_MORAL_RFC = "EKU9003173C9"
SAMPLE_FISICA_RFC = "GODE561231GR8"

METADATA_MAX_KEYS = 50
METADATA_KEY_MAX = 40
METADATA_VALUE_MAX = 500


def is_moral(rfc: str) -> bool:
    """Persona moral (12 characters) or física (13), as SAT's RFC lengths say."""
    return len(rfc) == 12


def _person(rfc: str) -> str:
    return "personas morales" if is_moral(rfc) else "personas físicas"


# -- single fields --------------------------------------------------------------------------


def check_tax_system(value: str | None) -> str | None:
    """A c_RegimenFiscal code in force, or None when unset."""
    code = clean_text(value, max_length=16)
    if code is None:
        return None
    c = catalogs()
    if code in c.tax_systems:
        return code
    if code in c.withdrawn_tax_systems:
        name = c.withdrawn_tax_systems[code]
        raise FieldInvalid(f"Tax system {code} ({name}) is not valid for CFDI 4.0")
    raise FieldInvalid("Unknown tax system: not a c_RegimenFiscal code")


def tax_system_query(value: str | None) -> str | None:
    """A `taxSystem` filter: any code SAT has had (a stored client may hold a withdrawn one)."""
    code = clean_text(value, max_length=16)
    if code is None:
        return None
    c = catalogs()
    if code not in c.tax_systems and code not in c.withdrawn_tax_systems:
        raise FieldInvalid("Unknown tax system: not a c_RegimenFiscal code")
    return code


def check_cfdi_use(value: str | None) -> str | None:
    """A c_UsoCFDI code in force (upper-cased), or None when unset; P01 is refused."""
    text = clean_text(value, max_length=16)
    if text is None:
        return None
    code = text.upper()
    c = catalogs()
    if code in c.cfdi_uses:
        return code
    if code in c.withdrawn_cfdi_uses:
        name = c.withdrawn_cfdi_uses[code]
        raise FieldInvalid(f"CFDI use {code} ({name}) is not valid for CFDI 4.0")
    raise FieldInvalid("Unknown CFDI use: not a c_UsoCFDI code")


def is_sat_zip(zip_code: str) -> bool:
    return zip_code in catalogs().postal_codes


def check_sat_zip(zip_code: str | None, country: str | None) -> None:
    """In Mexico, a five-digit zip must also be one of SAT's c_CodigoPostal codes."""
    if zip_code is not None and is_mexico(country) and not is_sat_zip(zip_code):
        raise FieldInvalid("Unknown zip code: not in SAT's c_CodigoPostal")


# -- cross-field rules ----------------------------------------------------------------------


def tax_system_conflict(rfc: str, tax_system: str) -> str | None:
    """Why `tax_system` (a known code) cannot go with `rfc`, or None."""
    generic = _GENERIC_RECEPTORS.get(rfc)
    if generic is not None:
        allowed = generic[0]
        if tax_system not in allowed:
            return f"With the generic RFC {rfc} the tax system can only be {_list(allowed)}"
        return None
    regimen = catalogs().tax_systems[tax_system]
    if not (regimen.moral if is_moral(rfc) else regimen.fisica):
        return f"Tax system {tax_system} does not apply to {_person(rfc)}"
    return None


def cfdi_use_conflict(rfc: str, tax_system: str | None, cfdi_use: str) -> str | None:
    """Why `cfdi_use` (a known code) cannot go with the RFC and régimen, or None.

    `tax_system` is None when unset or itself invalid: the use is then checked against the
    RFC's person type only."""
    generic = _GENERIC_RECEPTORS.get(rfc)
    if generic is not None:
        allowed = generic[1]
        if cfdi_use not in allowed:
            return f"With the generic RFC {rfc} the CFDI use can only be {_list(allowed)}"
        return None
    use = catalogs().cfdi_uses[cfdi_use]
    if tax_system is not None:
        if tax_system not in use.tax_systems:
            return f"CFDI use {cfdi_use} is not allowed for tax system {tax_system}"
        return None
    if not (use.moral if is_moral(rfc) else use.fisica):
        return f"CFDI use {cfdi_use} does not apply to {_person(rfc)}"
    return None


def _list(codes: frozenset[str]) -> str:
    return " or ".join(sorted(codes))


@dataclass(frozen=True, slots=True)
class Receptor:
    """The values the cross-field rules read (valid ones only: None for unset or invalid)."""

    rfc: str | None
    tax_system: str | None
    cfdi_use: str | None


def cross_field_errors(r: Receptor, *, of_tax_system: bool, of_use: bool) -> dict[str, str]:
    """`taxSystem` and/or `cfdiUse` errors of a receptor. A create checks both; an update the
    ones whose value, or whose dependency (rfc, taxSystem), changed. Stored codes that SAT
    has since withdrawn are reported like any other wrong value."""
    errors: dict[str, str] = {}
    if r.rfc is None:
        return errors
    c = catalogs()
    regimen = r.tax_system
    if regimen is not None:
        # A code in force (what nearly every stored value is) needs no check of its text.
        problem = None if regimen in c.tax_systems else _code_problem(check_tax_system, regimen)
        problem = problem or tax_system_conflict(r.rfc, regimen)
        if problem is not None:
            if of_tax_system:
                errors["taxSystem"] = problem
            regimen = None  # a régimen that does not apply says nothing about the use
    if of_use and r.cfdi_use is not None:
        use = r.cfdi_use
        problem = None if use in c.cfdi_uses else _code_problem(check_cfdi_use, use)
        problem = problem or cfdi_use_conflict(r.rfc, regimen, use)
        if problem is not None:
            errors["cfdiUse"] = problem
    return errors


def _code_problem(check: Any, code: str) -> str | None:
    try:
        check(code)
    except FieldInvalid as exc:
        return exc.message
    return None


# -- metadata -------------------------------------------------------------------------------


def _metadata_text(value: str) -> str:
    for ch in value:
        category = unicodedata.category(ch)
        if category == "Cc":
            raise FieldInvalid("Must not contain control characters")
        if category == "Cs":
            raise FieldInvalid("Must not contain unpaired surrogate characters")
    return unicodedata.normalize("NFC", value)


def merge_metadata(stored: Mapping[str, str], patch: Any, *, replace: bool) -> dict[str, str]:
    """The metadata after a create (`replace`) or a merge-patch (keys set to null removed).
    Raises MetadataInvalid naming every bad key (`metadata.<key>`) at once."""
    if not isinstance(patch, dict):
        raise MetadataInvalid({"metadata": "Must be an object of string values"})
    merged: dict[str, str] = {} if replace else dict(stored)
    errors: dict[str, str] = {}
    for raw_key, value in patch.items():
        field = f"metadata.{raw_key}"
        try:
            key = _metadata_text(raw_key)
            if not 1 <= len(key) <= METADATA_KEY_MAX:
                raise FieldInvalid(f"Keys must be 1 to {METADATA_KEY_MAX} characters")
            if value is None:
                merged.pop(key, None)
                continue
            if not isinstance(value, str):
                raise FieldInvalid("Must be a string")
            text = _metadata_text(value)
            if len(text) > METADATA_VALUE_MAX:
                raise FieldInvalid(f"Must be at most {METADATA_VALUE_MAX} characters")
        except FieldInvalid as exc:
            errors.setdefault(field, exc.message)
            continue
        merged[key] = text
    if not errors and len(merged) > METADATA_MAX_KEYS:
        errors["metadata"] = f"At most {METADATA_MAX_KEYS} keys"
    if errors:
        raise MetadataInvalid(errors)
    return merged


class MetadataInvalid(ValueError):
    def __init__(self, fields: dict[str, str]) -> None:
        super().__init__(fields)
        self.fields = fields


# -- computed fields ------------------------------------------------------------------------

# Corporate-regime abbreviations SAT wants left out of the receptor name, longest first.
# Each is words of letters ("S.A.P.I.": S, A, P, I) or whole words ("DE", "EN", "POR").
_SUFFIXES = (
    "S.A.P.I. DE C.V.",
    "S.A.B. DE C.V.",
    "S.A. DE C.V.",
    "S. DE R.L. DE C.V.",
    "S. DE R.L.",
    "S.C. DE R.L. DE C.V.",
    "S.C. DE R.L.",
    "S.C. DE C.V.",
    "S.P.R. DE R.L.",
    "S.P.R. DE R.I.",
    "S. EN C. POR A.",
    "S. EN C.",
    "S. EN N.C.",
    "S.A.S. DE C.V.",
    "S.A.P.I.",
    "S.A.B.",
    "S.A.S.",
    "S.A.",
    "S.C.P.",
    "S.C.L.",
    "S.C.",
    "S.N.C.",
    "A. EN P.",
    "A.B.P.",
    "I.A.P.",
    "A.C.",
    "SOCIEDAD ANONIMA DE CAPITAL VARIABLE",
    "SOCIEDAD ANÓNIMA DE CAPITAL VARIABLE",
    "SOCIEDAD DE RESPONSABILIDAD LIMITADA DE CAPITAL VARIABLE",
    "SOCIEDAD CIVIL",
    "ASOCIACION CIVIL",
    "ASOCIACIÓN CIVIL",
)


def _suffix_pattern(suffix: str) -> str:
    words = []
    for word in suffix.split():
        if "." in word:  # an abbreviation: each letter, optionally dotted and spaced
            letters = [part for part in word.split(".") if part]
            words.append(r"\s*".join(re.escape(p) + r"\.?" for p in letters))
        else:
            words.append(re.escape(word))
    return r"\s*".join(words)


_SUFFIX_RE = re.compile(
    r"(?:^|[\s,]+)(?:" + "|".join(_suffix_pattern(s) for s in _SUFFIXES) + r")\s*$"
)


def cfdi_name(legal_name: str | None) -> str | None:
    """The receptor name of an invoice: `legalName` upper-cased, without the corporate-regime
    suffix ("Cliente Example S.A. de C.V." → "CLIENTE EXAMPLE"); None without a legal name."""
    if legal_name is None:
        return None
    name = " ".join(legal_name.upper().split())
    stripped = _SUFFIX_RE.sub("", name).rstrip(" ,")
    return stripped or name


# -- readiness ------------------------------------------------------------------------------

# The cross-field verdict of a receptor depends on its RFC only through what the rules read
# of it (which generic RFC it is, or else its person type) and on the two codes; the
# catalogs are fixed for the life of the process. So it is computed once per combination
# (there are few: régimenes × usos × person types) instead of once per client read.
_CROSS_FIELD_VERDICTS: dict[tuple[Any, str | None, str | None], tuple[Issue, ...]] = {}
_CROSS_FIELD_VERDICTS_MAX = 4096


def _cross_field_issues(
    rfc: str | None, tax_system: str | None, cfdi_use: str | None
) -> tuple[Issue, ...]:
    if rfc is None:
        return ()
    key = (rfc if rfc in GENERIC_RFCS else is_moral(rfc), tax_system, cfdi_use)
    verdict = _CROSS_FIELD_VERDICTS.get(key)
    if verdict is None:
        receptor = Receptor(rfc, tax_system, cfdi_use)
        errors = cross_field_errors(receptor, of_tax_system=True, of_use=True)
        verdict = tuple(Issue(field, message) for field, message in errors.items())
        if len(_CROSS_FIELD_VERDICTS) < _CROSS_FIELD_VERDICTS_MAX:
            _CROSS_FIELD_VERDICTS[key] = verdict
    return verdict


@dataclass(frozen=True, slots=True)
class Issue:
    field: str
    message: str


def readiness(
    *,
    rfc: str | None,
    legal_name: str | None,
    tax_system: str | None,
    cfdi_use: str | None,
    zip_code: str | None,
) -> list[Issue]:
    """What stops an invoice to this client now, one issue per field (empty: ready).

    A generic RFC needs no legal name, régimen or zip (its régimen is 616, the zip is the
    issuer's); every other RFC needs all three, and every rule must hold for what is set.
    `rfc` is None when it is itself invalid (`validateClient`): no cross-field rule then."""
    issues: list[Issue] = []
    generic = rfc in GENERIC_RFCS
    if legal_name is None and not generic:
        issues.append(Issue("legalName", "A legal name is required to invoice"))
    if tax_system is None and not generic:
        issues.append(Issue("taxSystem", "A tax system is required to invoice"))
    issues.extend(_cross_field_issues(rfc, tax_system, cfdi_use))
    if not generic:
        if zip_code is None:
            issues.append(Issue("address.zipCode", "A zip code is required to invoice"))
        elif not is_sat_zip(zip_code):
            issues.append(Issue("address.zipCode", "The zip code is not in SAT's c_CodigoPostal"))
    return issues
