"""Every field rule of a client, in one place, used by the service for REST and GraphQL alike.

Functions return cleaned values or raise FieldInvalid; `validate_*` collect every field's
error at once into ValidationFailed.
"""

from __future__ import annotations

import re
import sys
import unicodedata
from datetime import UTC, date, datetime, time, timedelta
from functools import cache

import phonenumbers
from email_validator import EmailNotValidError, validate_email
from stdnum.exceptions import InvalidComponent, InvalidLength, ValidationError
from stdnum.mx import rfc as stdnum_rfc

NAME_MAX = 300
LEGAL_NAME_MAX = 300
EMAIL_MAX = 254
PHONE_MAX = 40
ADDRESS_FIELD_MAX = 200
SEARCH_MAX = 300

# Shared by many real clients (público en general; foreign residents): exempt from uniqueness.
GENERIC_RFCS = frozenset({"XAXX010101000", "XEXX010101000"})

# Names of Mexico as a country field may hold them, in search_key form with punctuation and
# spacing removed ("Estados Unidos Mexicanos", "E.U.M.", "República Mexicana", …).
_MEXICO_NAMES = frozenset(
    {
        "mexico",
        "mejico",
        "mx",
        "mex",
        "estadosunidosmexicanos",
        "eum",
        "eeuumm",
        "republicamexicana",
        "repmexicana",
        "unitedmexicanstates",
        "mexique",
        "mexiko",
        "messico",
    }
)
_ZIP_RE = re.compile(r"^[0-9]{5}$")
# What an RFC may hold before it is upper-cased: ASCII letters and digits, Ñ/ñ and &, and the
# spaces and hyphens normalize_rfc removes. Checked before case mapping, which would turn
# "ß" into "SS" and a dotless "ı" into "I".
_RFC_CHARACTERS = re.compile(r"^[A-Za-z0-9Ññ& \-]*$")
# Bidirectional embeddings, overrides and isolates (LRE…RLO, LRI…PDI): they reorder how text
# around them is displayed ("Trojan Source"); the plain marks (LRM, RLM, ALM) are kept.
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
# Letters that display as nothing (Hangul fillers, the Braille blank): with format characters
# (Cf), separators (Z*) and marks with nothing to sit on, a text made only of these is blank.
INVISIBLE = frozenset("\u115f\u1160\u3164\uffa0\u2800")
INVISIBLE_CATEGORIES = frozenset({"Cf", "Zs", "Zl", "Zp", "Mn", "Me"})

# Fast paths of clean_text (it runs on every field of every row of an import), exact:
# every Cc (U+0000-U+001F, U+007F-U+009F), Cs and bidirectional control is in this class, so
# a text it does not match needs no look at each character's category; and a printable ASCII
# character other than a space always shows, so a text holding one is not blank.
_MAYBE_REFUSED = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff\u202a-\u202e\u2066-\u2069]")
_VISIBLE_ASCII = re.compile("[!-~]")


class FieldInvalid(ValueError):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def clean_text(value: str | None, *, max_length: int | None = None) -> str | None:
    """NFC, trimmed; blank (nothing visible) is None; control characters, lone surrogates
    and bidirectional overrides refused."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise FieldInvalid("Must be a string")
    if _MAYBE_REFUSED.search(value):
        for ch in value:
            cat = unicodedata.category(ch)
            if cat == "Cc":
                raise FieldInvalid("Must not contain control characters")
            if cat == "Cs":
                raise FieldInvalid("Must not contain unpaired surrogate characters")
            if ch in _BIDI_CONTROLS:
                raise FieldInvalid("Must not contain bidirectional override characters")
    text = unicodedata.normalize("NFC", value).strip()
    if not _VISIBLE_ASCII.search(text) and _is_invisible(text):
        return None
    if max_length is not None and len(text) > max_length:
        raise FieldInvalid(f"Must be at most {max_length} characters")
    return text


def _is_invisible(text: str) -> bool:
    """Nothing in `text` would show: only format characters (U+200B, U+FEFF, …), spaces,
    combining marks and blank letters. Such a text counts as blank."""
    return all(ch in INVISIBLE or unicodedata.category(ch) in INVISIBLE_CATEGORIES for ch in text)


def search_key(text: str) -> str:
    """The form names are searched in: NFKD, accents removed, case-folded."""
    if text.isascii():  # NFKD leaves ASCII as it is, and it has no combining marks
        return text.casefold()
    decomposed = unicodedata.normalize("NFKD", text)
    return decomposed.translate(_combining_marks()).casefold()


@cache
def _combining_marks() -> dict[int, None]:
    """Every character with a combining class, mapped to nothing (for str.translate)."""
    return {cp: None for cp in range(sys.maxunicode + 1) if unicodedata.combining(chr(cp))}


def search_text(name: str, legal_name: str | None) -> str:
    # A newline joins the two: no stored text contains one, so no match spans both.
    return search_key(name) + "\n" + search_key(legal_name or "")


def normalize_rfc(value: str) -> str:
    return unicodedata.normalize("NFC", value).strip().upper().replace(" ", "").replace("-", "")


def check_rfc(value: str | None) -> tuple[str, bool]:
    """Return (normalised RFC, check digit valid) or raise FieldInvalid."""
    text = clean_text(value)
    if text is None:
        raise FieldInvalid("RFC is required")
    if not _RFC_CHARACTERS.match(text):
        raise FieldInvalid("Invalid RFC format: letters, digits, Ñ and & only")
    rfc = normalize_rfc(text)
    if len(rfc) not in (12, 13):
        raise FieldInvalid(
            "Invalid RFC format: 12 characters (persona moral) or 13 (persona física)"
        )
    if stdnum_rfc.compact(rfc) != rfc:
        raise FieldInvalid("Invalid RFC format")
    try:
        stdnum_rfc.validate(rfc)
    except InvalidLength:
        raise FieldInvalid("Invalid RFC format") from None
    except InvalidComponent:
        letters = rfc[:4] if len(rfc) == 13 else rfc[:3]
        if len(rfc) == 13 and letters in stdnum_rfc._name_blacklist:
            raise FieldInvalid("Invalid RFC format: SAT refuses this word") from None
        raise FieldInvalid("Invalid RFC format: the six digits must be a real date") from None
    except ValidationError:
        raise FieldInvalid("Invalid RFC format") from None
    return rfc, stdnum_rfc.is_valid(rfc, validate_check_digits=True)


def check_name(value: str | None) -> str:
    text = clean_text(value, max_length=NAME_MAX)
    if text is None:
        raise FieldInvalid("Name is required")
    return text


def check_email(value: str | None) -> str | None:
    text = clean_text(value, max_length=EMAIL_MAX)
    if text is None:
        return None
    try:
        validate_email(text, check_deliverability=False)
    except EmailNotValidError:
        raise FieldInvalid("Invalid email format") from None
    return text


def check_phone(value: str | None) -> str | None:
    text = clean_text(value, max_length=PHONE_MAX)
    if text is None:
        return None
    try:
        number = phonenumbers.parse(text, "MX")
    except phonenumbers.NumberParseException:
        raise FieldInvalid("Invalid phone number") from None
    if not phonenumbers.is_possible_number(number):
        raise FieldInvalid("Invalid phone number")
    return text


def is_mexico(country: str | None) -> bool:
    if country is None:
        return True
    key = "".join(ch for ch in search_key(country) if ch.isalnum())
    return key in _MEXICO_NAMES


def check_zip(zip_code: str | None, country: str | None) -> str | None:
    if zip_code is None:
        return None
    if is_mexico(country) and not _ZIP_RE.match(zip_code):
        raise FieldInvalid("Invalid zip code: five digits for an address in Mexico")
    return zip_code


def search_query(value: str | None) -> str | None:
    """A `name` filter in its searchable form (None when blank)."""
    text = clean_text(value, max_length=SEARCH_MAX)
    return None if text is None else search_key(text)


def email_query(value: str | None) -> str | None:
    text = clean_text(value, max_length=EMAIL_MAX)
    return None if text is None else text.lower()


def rfc_query(value: str | None) -> str | None:
    text = clean_text(value, max_length=64)
    return None if text is None else normalize_rfc(text)


def parse_date_bound(value: str, *, end: bool) -> datetime:
    """An ISO 8601 date or date-time; no offset means UTC; a date-only end covers the day.

    Kept to the millisecond, as creation times are (a start rounds up, an end down), so the
    bound means the same on every page of a `next` walk, whose token carries milliseconds.
    """
    text = value.strip()
    invalid = FieldInvalid("Invalid date: use ISO 8601, e.g. 2024-01-15 or 2024-01-15T10:30:00Z")
    if len(text) > 64:
        raise invalid
    try:
        d = date.fromisoformat(text)
    except ValueError:
        pass
    else:
        return datetime.combine(d, _END_OF_DAY if end else time.min, tzinfo=UTC)
    try:
        parsed = datetime.fromisoformat(text)
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        parsed = parsed.astimezone(UTC)
        sub_ms = parsed.microsecond % 1000
        parsed -= timedelta(microseconds=sub_ms)
        if sub_ms and not end:
            parsed += timedelta(milliseconds=1)
    except (ValueError, OverflowError):
        raise invalid from None
    return parsed


_END_OF_DAY = time(23, 59, 59, 999_000)


def aware_utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
