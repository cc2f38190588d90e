"""The field rules of contract §4, one function at a time."""

from __future__ import annotations

import unicodedata
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.clients import validation
from tests.support import new_rfc, rfc_with_check_digit

# -- text -----------------------------------------------------------------------------------


def test_text_is_trimmed_and_nfc_normalised() -> None:
    decomposed = "  Jose\u0301 Nin\u0303o  "
    cleaned = validation.clean_text(decomposed)
    assert cleaned == "José Niño"
    assert cleaned == unicodedata.normalize("NFC", cleaned)
    assert len(cleaned) == 9


@pytest.mark.parametrize("blank", ["", "   ", "\u3000", None])
def test_blank_text_is_unset(blank: str | None) -> None:
    assert validation.clean_text(blank) is None


@pytest.mark.parametrize(
    "value", ["a\x00b", "a\x07", "line\nbreak", "tab\there", "del\x7f", "\x9f c1 control"]
)
def test_control_characters_are_refused(value: str) -> None:
    with pytest.raises(validation.FieldInvalid, match="control characters"):
        validation.clean_text(value)


@pytest.mark.parametrize("value", ["a\ud800b", "\udfff", "x\udc00"])
def test_lone_surrogates_are_refused(value: str) -> None:
    with pytest.raises(validation.FieldInvalid, match="surrogate"):
        validation.clean_text(value)


def test_unicode_is_kept_as_given() -> None:
    text = "Café 🌮 ÑANDÚ & Cía. 北京"
    assert validation.clean_text(text) == text


def test_text_length_is_counted_after_cleaning() -> None:
    assert validation.clean_text("  " + "a" * 300 + "  ", max_length=300) == "a" * 300
    with pytest.raises(validation.FieldInvalid, match="at most 300"):
        validation.clean_text("a" * 301, max_length=300)


def test_non_string_is_refused() -> None:
    with pytest.raises(validation.FieldInvalid):
        validation.clean_text(5)  # type: ignore[arg-type]


def test_name_is_required_and_bounded() -> None:
    assert validation.check_name(" Ana ") == "Ana"
    for blank in (None, "", "  "):
        with pytest.raises(validation.FieldInvalid, match="Name is required"):
            validation.check_name(blank)
    assert validation.check_name("n" * 300) == "n" * 300
    with pytest.raises(validation.FieldInvalid):
        validation.check_name("n" * 301)


# -- RFC ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected", "check_ok"),
    [
        ("GODE561231GR8", "GODE561231GR8", True),  # persona física
        ("MAB9307148T4", "MAB9307148T4", True),  # persona moral
        ("VACE460910SX6", "VACE460910SX6", False),  # well formed, wrong check digit
        ("XAXX010101000", "XAXX010101000", False),  # generic: público en general
        ("XEXX010101000", "XEXX010101000", False),  # generic: foreign residents
        ("  gode-561231 gr8 ", "GODE561231GR8", True),  # case, spaces, hyphens
        ("mab-930714-8t4", "MAB9307148T4", True),
    ],
)
def test_valid_rfcs(raw: str, expected: str, check_ok: bool) -> None:
    assert validation.check_rfc(raw) == (expected, check_ok)


def test_rfc_allows_enye_and_ampersand() -> None:
    enye = rfc_with_check_digit("ÑAB930714AA")
    amp = rfc_with_check_digit("A&B930714AA")
    assert validation.check_rfc(enye) == (enye, True)
    assert validation.check_rfc(amp) == (amp, True)
    # A decomposed Ñ (N + combining tilde), lower case, is the same RFC once normalised.
    assert validation.check_rfc(unicodedata.normalize("NFD", enye.lower())) == (enye, True)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("GODE5612319GR8", "12 characters"),  # 14
        ("GODE561231G", "12 characters"),  # 11
        ("ABCDEFGHIJ", "12 characters"),
        ("GODE561331GR8", "real date"),  # month 13
        ("GODE560230GR8", "real date"),  # 30 February
        ("MAB930230AB1", "real date"),
        ("PUTO561231AB1", "SAT refuses"),  # inconvenient word
        ("CULO561231AB1", "SAT refuses"),
        ("GOD1561231GR8", "Invalid RFC format"),  # digit among the letters
        ("GODE56123AGR8", "Invalid RFC format"),  # letter among the digits
        ("GODE561231G_8", "Invalid RFC format"),
        ("GODÉ561231GR8", "Invalid RFC format"),  # accented letter
    ],
)
def test_invalid_rfcs(raw: str, message: str) -> None:
    with pytest.raises(validation.FieldInvalid, match=message):
        validation.check_rfc(raw)


@pytest.mark.parametrize("blank", [None, "", "   "])
def test_rfc_is_required(blank: str | None) -> None:
    with pytest.raises(validation.FieldInvalid, match="RFC is required"):
        validation.check_rfc(blank)


def test_rfc_with_control_character_is_refused() -> None:
    with pytest.raises(validation.FieldInvalid, match="control"):
        validation.check_rfc("GODE561231GR8\x00")


def test_generated_rfcs_are_valid_and_distinct() -> None:
    rfcs = [new_rfc() for _ in range(200)] + [new_rfc(moral=True) for _ in range(200)]
    assert len(set(rfcs)) == len(rfcs)
    for rfc in rfcs:
        assert validation.check_rfc(rfc) == (rfc, True)


# -- email, phone, zip ------------------------------------------------------------------------


@pytest.mark.parametrize("email", ["ana@example.com", "Ana.Pérez+CFDI@Example.MX", "x@b.co"])
def test_valid_emails_are_stored_as_given(email: str) -> None:
    assert validation.check_email(f"  {email} ") == email


@pytest.mark.parametrize(
    "email", ["no-at-sign", "a@", "@example.com", "a b@example.com", "a@localhost", "a@@b.com"]
)
def test_invalid_emails(email: str) -> None:
    with pytest.raises(validation.FieldInvalid, match="Invalid email format"):
        validation.check_email(email)


def test_email_length_limit() -> None:
    local = "a" * 64
    domain = ".".join(["b" * 60] * 3) + ".mx"  # 186 characters
    ok = f"{local}@{domain}"
    assert len(ok) <= 254
    assert validation.check_email(ok) == ok
    with pytest.raises(validation.FieldInvalid):
        validation.check_email("a" * 250 + "@b.co")


def test_blank_email_and_phone_are_unset() -> None:
    assert validation.check_email("  ") is None
    assert validation.check_phone("") is None


@pytest.mark.parametrize(
    "phone", ["+52 55 1234 5678", "55 1234 5678", "(55) 1234-5678", "+1 415 555 2671"]
)
def test_possible_phone_numbers(phone: str) -> None:
    assert validation.check_phone(phone) == phone


@pytest.mark.parametrize("phone", ["123", "abc", "+52 1", "55-12345678901234567890"])
def test_impossible_phone_numbers(phone: str) -> None:
    with pytest.raises(validation.FieldInvalid, match="Invalid phone number"):
        validation.check_phone(phone)


def test_phone_length_limit() -> None:
    with pytest.raises(validation.FieldInvalid, match="at most 40"):
        validation.check_phone("+52 55 1234 5678" + " " * 20 + "0000000")


@pytest.mark.parametrize(
    "country", [None, "México", "Mexico", "MX", "MEX", "mexico", "méxico", "MÉXICO", "mx", "Mex"]
)
def test_zip_is_five_digits_in_mexico(country: str | None) -> None:
    assert validation.check_zip("03100", country) == "03100"
    for bad in ("0310", "031000", "ABCDE", "03 100"):
        with pytest.raises(validation.FieldInvalid, match="five digits"):
            validation.check_zip(bad, country)


@pytest.mark.parametrize("country", ["USA", "United Kingdom", "Mexicali", "New Mexico"])
def test_zip_is_free_elsewhere(country: str) -> None:
    assert validation.check_zip("SW1A 1AA", country) == "SW1A 1AA"


def test_no_zip_is_fine() -> None:
    assert validation.check_zip(None, "México") is None


# -- search forms ---------------------------------------------------------------------------


def test_search_key_removes_accents_and_case() -> None:
    assert validation.search_key("México") == "mexico"
    assert validation.search_key("ÑANDÚ Ángel") == "nandu angel"
    assert validation.search_key("STRASSE") == validation.search_key("straße")
    assert validation.search_query("  MÉXICO ") == "mexico"
    assert validation.search_query("  ") is None


def test_search_text_never_matches_across_name_and_legal_name() -> None:
    text = validation.search_text("Acme", "Holding")
    assert "acme" in text
    assert "holding" in text
    assert "acmeholding" not in text
    assert "acme holding" not in text


def test_filter_forms() -> None:
    assert validation.rfc_query(" gode-561231 gr8 ") == "GODE561231GR8"
    assert validation.email_query(" Ana@Example.COM ") == "ana@example.com"
    assert validation.rfc_query("") is None


# -- date bounds ----------------------------------------------------------------------------


def test_date_only_bounds() -> None:
    assert validation.parse_date_bound("2024-01-15", end=False) == datetime(2024, 1, 15, tzinfo=UTC)
    assert validation.parse_date_bound("2024-01-15", end=True) == datetime(
        2024, 1, 15, 23, 59, 59, 999_000, tzinfo=UTC
    )


def test_compact_date_only_end_covers_the_day() -> None:
    assert validation.parse_date_bound("20240115", end=True) == datetime(
        2024, 1, 15, 23, 59, 59, 999_000, tzinfo=UTC
    )


def test_date_time_bounds_without_offset_are_utc() -> None:
    assert validation.parse_date_bound("2024-01-15T10:30:00", end=True) == datetime(
        2024, 1, 15, 10, 30, tzinfo=UTC
    )
    assert validation.parse_date_bound("2024-01-15T10:30:00-06:00", end=False) == datetime(
        2024, 1, 15, 16, 30, tzinfo=UTC
    )
    assert validation.parse_date_bound("2024-01-15T10:30:00Z", end=False) == datetime(
        2024, 1, 15, 10, 30, tzinfo=UTC
    )


def test_date_time_bounds_are_kept_to_the_millisecond() -> None:
    # Creation times are stored to the millisecond: an inclusive start rounds up, an
    # inclusive end rounds down, so the same rows match on every page of a `next` walk.
    assert validation.parse_date_bound("2024-01-15T10:30:00.123456Z", end=False) == datetime(
        2024, 1, 15, 10, 30, 0, 124_000, tzinfo=UTC
    )
    assert validation.parse_date_bound("2024-01-15T10:30:00.123456Z", end=True) == datetime(
        2024, 1, 15, 10, 30, 0, 123_000, tzinfo=UTC
    )
    assert validation.parse_date_bound("2024-01-15T10:30:00.123Z", end=False) == datetime(
        2024, 1, 15, 10, 30, 0, 123_000, tzinfo=UTC
    )


@pytest.mark.parametrize(
    "value",
    ["yesterday", "2024-13-01", "2024-02-30", "15/01/2024", "", "2024-01-15T25:00", "x" * 65],
)
def test_bad_dates(value: str) -> None:
    with pytest.raises(validation.FieldInvalid, match="Invalid date"):
        validation.parse_date_bound(value, end=False)


@pytest.mark.parametrize(
    ("value", "end"),
    [("0001-01-01T00:00:00+14:00", False), ("9999-12-31T23:59:59-12:00", True)],
)
def test_dates_at_the_edge_of_the_calendar_are_refused_not_crashing(value: str, end: bool) -> None:
    with pytest.raises(validation.FieldInvalid, match="Invalid date"):
        validation.parse_date_bound(value, end=end)


def test_last_day_of_the_calendar_is_a_valid_end() -> None:
    assert validation.parse_date_bound("9999-12-31", end=True) == datetime(
        9999, 12, 31, 23, 59, 59, 999_000, tzinfo=UTC
    )


# -- what an attacker found (issue 10, class 8) ---------------------------------------------


@pytest.mark.parametrize(
    "value", ["Mß9307148T4", "MAB930714ıT4", "MAB930714ſT4", "ﬀAB9307148T4", "MAB9307148Ｔ4"]
)
def test_rfc_characters_are_checked_before_case_mapping(value: str) -> None:
    # Each upper-cases into a valid-looking RFC ("ß" → "SS", "ı" → "I", "ſ" → "S", "ﬀ" → "FF").
    with pytest.raises(validation.FieldInvalid, match="Invalid RFC format"):
        validation.check_rfc(value)


@pytest.mark.parametrize(
    "value", ["mab9307148t4", "ñab9307148t4", "MAB-930714 8T4", "&AB9307148T4"]
)
def test_rfcs_in_lower_case_or_spaced_still_pass(value: str) -> None:
    rfc, _ = validation.check_rfc(value)
    assert rfc == validation.normalize_rfc(value)


@pytest.mark.parametrize(
    "value", ["\u200b", "\ufeff", "\u200b\ufeff\u2060 \u00ad", "\u3164", "\u0301\u0301", " \u2800 "]
)
def test_text_made_only_of_invisible_characters_is_blank(value: str) -> None:
    assert validation.clean_text(value) is None
    with pytest.raises(validation.FieldInvalid, match="Name is required"):
        validation.check_name(value)


def test_invisible_characters_inside_visible_text_are_kept() -> None:
    # Zero-width joiners and non-joiners are part of how some scripts are written.
    assert validation.clean_text("می\u200cخواهم") == "می\u200cخواهم"


@pytest.mark.parametrize("ch", list("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"))
def test_bidirectional_overrides_are_refused(ch: str) -> None:
    with pytest.raises(validation.FieldInvalid, match="bidirectional"):
        validation.clean_text(f"factura{ch}fdp.exe")


def test_bidirectional_marks_are_kept() -> None:
    assert validation.clean_text("abc \u200f שלום") == "abc \u200f שלום"


@pytest.mark.parametrize(
    "country",
    [
        "Estados Unidos Mexicanos",
        "ESTADOS UNIDOS MEXICANOS",
        "E.U.M.",
        "República Mexicana",
        "Méjico",
        "United Mexican States",
        " méxico ",
        "MX",
    ],
)
def test_every_name_of_mexico_gets_the_zip_rule(country: str) -> None:
    assert validation.is_mexico(country)
    with pytest.raises(validation.FieldInvalid, match="five digits"):
        validation.check_zip("ABC", country)


@pytest.mark.parametrize("country", ["Estados Unidos", "USA", "Nuevo México", "Guatemala"])
def test_other_countries_do_not(country: str) -> None:
    assert not validation.is_mexico(country)
    assert validation.check_zip("ABC", country) == "ABC"


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_search_key_is_nfkd_without_combining_marks_case_folded(text: str) -> None:
    decomposed = unicodedata.normalize("NFKD", text)
    expected = "".join(ch for ch in decomposed if not unicodedata.combining(ch)).casefold()
    assert validation.search_key(text) == expected
