"""The patterns /openapi.json documents (app/rest/patterns.py) are never looser than the
service's rules: every value they match is accepted by app/clients/validation.py."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.clients import validation as v
from app.rest import patterns as p

EXAMPLES = settings(max_examples=100, deadline=None)


@EXAMPLES
@given(st.from_regex(p.RFC, fullmatch=True))
def test_every_rfc_the_pattern_matches_is_valid(rfc: str) -> None:
    assert v.check_rfc(rfc)[0] == rfc


@pytest.mark.parametrize(
    "rfc", ["MAB9307148T4", "GODE561231GR8", "XAXX010101000", "XEXX010101000", "ABC000229AB1"]
)
def test_real_rfcs_match(rfc: str) -> None:
    assert re.fullmatch(p.RFC, rfc)


@pytest.mark.parametrize(
    "rfc", ["MAB930230AB1", "ABC010229AB1", "BUEI900101AB1", "mab9307148t4", "MAB9307148T", ""]
)
def test_invalid_rfcs_do_not_match(rfc: str) -> None:
    assert not re.fullmatch(p.RFC, rfc)


@EXAMPLES
@given(st.from_regex(p.non_blank_text(v.NAME_MAX), fullmatch=True))
def test_non_blank_text_is_a_name(text: str) -> None:
    assert v.check_name(text)


@EXAMPLES
@given(st.from_regex(p.bounded_text(v.ADDRESS_FIELD_MAX), fullmatch=True))
def test_bounded_text_is_clean(text: str) -> None:
    v.clean_text(text, max_length=v.ADDRESS_FIELD_MAX)


@pytest.mark.parametrize(
    ("text", "fits"),
    [("a" * 300, True), ("  " + "a" * 300 + "\u3000", True), ("a" * 301, False), ("", False)],
)
def test_a_name_is_counted_once_trimmed(text: str, fits: bool) -> None:
    assert bool(re.fullmatch(p.non_blank_text(v.NAME_MAX), text)) is fits


@EXAMPLES
@given(st.from_regex(p.PHONE_MX, fullmatch=True))
def test_mexican_phones_are_possible(phone: str) -> None:
    assert v.check_phone(phone) in (phone, None)  # blank is unset


@EXAMPLES
@given(st.from_regex(p.COUNTRY_MEXICO, fullmatch=True), st.from_regex(p.ZIP_MX, fullmatch=True))
def test_mexico_and_its_zip_codes(country: str, zip_code: str) -> None:
    assert v.is_mexico(v.clean_text(country))
    v.check_zip(v.clean_text(zip_code), v.clean_text(country))


@EXAMPLES
@given(st.from_regex(p.DATE_BOUND, fullmatch=True), st.booleans())
def test_date_bounds_parse(value: str, end: bool) -> None:
    v.parse_date_bound(value, end=end)


def test_metadata_text_pattern_refuses_exactly_what_the_service_refuses() -> None:
    """NO_CONTROL (metadata keys and values) against fiscal's check, character by character
    over the Basic Multilingual Plane (lone surrogates aside: JSON text cannot carry them)."""
    from app.clients import fiscal

    for cp in range(0x10000):
        if 0xD800 <= cp <= 0xDFFF:
            continue
        ch = chr(cp)
        try:
            fiscal.merge_metadata({}, {"k": ch}, replace=True)
            accepted = True
        except fiscal.MetadataInvalid:
            accepted = False
        assert bool(re.fullmatch(p.NO_CONTROL, ch)) == accepted, hex(cp)


def test_clean_text_fast_paths_agree_with_the_character_checks() -> None:
    """clean_text skips its per-character look when no character of the class can be
    refused: every refused character (Cc, Cs, bidirectional controls) is in the class."""
    import unicodedata

    for cp in range(0x110000):
        ch = chr(cp)
        refused = unicodedata.category(ch) in ("Cc", "Cs") or ch in v._BIDI_CONTROLS
        if refused:
            assert v._MAYBE_REFUSED.search(ch), hex(cp)
