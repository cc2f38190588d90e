"""What /openapi.json says a value must look like: JSON Schema patterns (ECMA-262 syntax that
Python's `re` reads the same way) for the rules of app/clients/validation.py.

Invariant: a value that matches is accepted by the service (a documented pattern is never
looser than the rule), so a generated client or a form builder that follows the document
sends nothing the server refuses. Where a rule can accept more than a pattern can say (an
RFC in lower case or with hyphens, a phone number of another country), the description of
the field says so. These are documentation only: the service checks every rule, and reports
all bad fields at once in its own words.
"""

from __future__ import annotations

import sys
import unicodedata

from app.clients.validation import INVISIBLE, INVISIBLE_CATEGORIES

# Characters the service refuses in any text: Unicode category Cc. (Lone surrogates are
# refused too, but no regex dialect of JSON Schema tools can name them: JSON text that is
# well-formed Unicode has none.)
_FORBIDDEN = r"\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069"  # and bidi overrides
_ALLOWED = f"[^{_FORBIDDEN}]"
# Whitespace that `str.strip()` removes and that is not a control character.
_SPACE = r"[ \u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"

# Any text without control characters (query parameters, bounded by maxLength as sent).
TEXT = f"^{_ALLOWED}*$"
# Metadata keys and values: control characters (Cc) refused; other characters kept as sent.
NO_CONTROL = r"^[^\x00-\x1f\x7f-\x9f]*$"


def _invisible_class() -> str:
    """The characters the service counts as showing nothing (app/clients/validation.py: its
    invisible letters, and every character of the categories it names), as ranges of a
    regular-expression class, generated from Python's Unicode database: those of the Basic
    Multilingual Plane as \\uXXXX escapes, the others as the characters themselves (no escape
    of theirs reads the same in Python and in ECMA-262)."""
    points = sorted(
        {ord(ch) for ch in INVISIBLE}
        | {
            cp
            for cp in range(sys.maxunicode + 1)
            if not 0xD800 <= cp <= 0xDFFF and unicodedata.category(chr(cp)) in INVISIBLE_CATEGORIES
        }
    )
    ranges: list[list[int]] = []
    for cp in points:
        if ranges and cp == ranges[-1][1] + 1:
            ranges[-1][1] = cp
        else:
            ranges.append([cp, cp])

    def one(cp: int) -> str:
        return f"\\u{cp:04x}" if cp <= 0xFFFF else chr(cp)

    return "".join(one(a) if a == b else f"{one(a)}-{one(b)}" for a, b in ranges)


# Neither a control character, whitespace, nor what displays as nothing (a text made only
# of invisible letters, format characters, separators or lone combining marks counts as
# blank: every such character, so that a one-character name the pattern accepts is one the
# service accepts).
_SOLID = rf"[^\s{_FORBIDDEN}{_invisible_class()}]"


def bounded_text(max_length: int) -> str:
    """An optional text of at most `max_length` characters once trimmed (the service trims
    before it counts, so a `maxLength`, which counts as sent, would say less than the truth);
    blank means unset. The middle run may hold any allowed character, and the spaces around
    it are not counted."""
    return f"^{_SPACE}*{_ALLOWED}{{0,{max_length}}}{_SPACE}*$"


def non_blank_text(max_length: int) -> str:
    """A required text: 1..`max_length` characters once trimmed."""
    return f"^{_SPACE}*{_SOLID}(?:{_ALLOWED}{{0,{max_length - 2}}}{_SOLID})?{_SPACE}*$"


# SAT's RFC: 3 (persona moral) or 4 (persona física) letters, a real date YYMMDD (read as
# 20YY, as python-stdnum does, so YY divisible by 4 is a leap year), three characters of
# homoclave; the four letters of a persona física never one of SAT's inconvenient words.
_MONTH_DAY = (
    "(?:(?:0[13578]|1[02])(?:0[1-9]|[12][0-9]|3[01])"
    "|(?:0[469]|11)(?:0[1-9]|[12][0-9]|30)"
    "|02(?:0[1-9]|1[0-9]|2[0-8]))"
)
_LEAP_DAY = "(?:[02468][048]|[13579][26])0229"
RFC_DATE = f"(?:[0-9]{{2}}{_MONTH_DAY}|{_LEAP_DAY})"


def _inconvenient_words() -> list[str]:
    from stdnum.mx import rfc as stdnum_rfc

    return sorted(stdnum_rfc._name_blacklist)


def rfc_pattern() -> str:
    words = "|".join(_inconvenient_words())
    return f"^(?!(?:{words})[0-9])[A-ZÑ&]{{3,4}}{RFC_DATE}[0-9A-Z]{{3}}$"


RFC = rfc_pattern()

# A Mexican phone number, ten digits, optionally after +52; the service accepts any number
# that is possible for its country (international form) as well.
# Blank, as for every optional text, means unset.
PHONE_MX = (
    rf"^(?:{_SPACE}*|(?:\+52[ -]?)?"
    r"(?:[1-9][0-9][ -]?[0-9]{4}|[1-9][0-9]{2}[ -]?[0-9]{3})[ -]?[0-9]{4})$"
)
# Blank: an optional field's "unset".
BLANK = f"^{_SPACE}*$"

ZIP_MX = f"^{_SPACE}*(?:[0-9]{{5}})?{_SPACE}*$"


def _letter(*variants: str) -> str:
    return "[" + "".join(variants) + "]"


# `country` values that mean Mexico: absent, blank, or México / Mexico / MX / MEX in any case
# and with or without accents (app/clients/validation.py `is_mexico`).
_M, _E, _X = _letter("Mm"), _letter("EeÉéÈèÊêËë"), _letter("Xx")
_I, _C, _O = _letter("IiÍíÌìÎîÏï"), _letter("CcÇç"), _letter("OoÓóÒòÔôÖö")
COUNTRY_MEXICO = f"^{_SPACE}*(?:{_M}{_E}{_X}{_I}{_C}{_O}|{_M}{_X}|{_M}{_E}{_X})?{_SPACE}*$"

# ISO 8601 bounds of the list's `from`/`to`: a date, or a date-time with an optional offset.
# Years 0001 and 9999 are left out: an offset could carry them out of range in UTC.
_YEAR = "[0-9]{4}"
_DATE_BODY = (
    f"{_YEAR}-(?:(?:0[13578]|1[02])-(?:0[1-9]|[12][0-9]|3[01])"
    "|(?:0[469]|11)-(?:0[1-9]|[12][0-9]|30)"
    "|02-(?:0[1-9]|1[0-9]|2[0-8]))"
    "|(?:[0-9]{2}(?:0[48]|[2468][048]|[13579][26])|(?:[02468][048]|[13579][26])00)-02-29"
)
_TIME = r"T(?:[01][0-9]|2[0-3]):[0-5][0-9](?::[0-5][0-9](?:\.[0-9]{3}(?:[0-9]{3})?)?)?"
_OFFSET = "(?:Z|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])"
DATE_BOUND = f"^(?!0000|0001|9999)(?:{_DATE_BODY})(?:{_TIME}{_OFFSET}?)?$"
