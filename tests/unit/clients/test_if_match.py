"""If-Match parsing (a pure function of the REST edge): exact tag text, never an exception."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.rest.clients import if_match_tags


def test_absent_and_star_accept_anything() -> None:
    assert if_match_tags(None) is None
    assert if_match_tags(" * ") is None


@pytest.mark.parametrize(
    ("header", "tags"),
    [
        ('"1705314600000"', ["1705314600000"]),
        ('"01705314600000"', ["01705314600000"]),  # the text as sent: it matches nothing of ours
        ('"²"', ["²"]),
        ('"1", "¹²³" ,"x"', ["1", "¹²³", "x"]),
        ('W/"1", "2"', ["2"]),  # a weak tag never matches (strong comparison)
        ('1, ", ""', [""]),
    ],
)
def test_tags_are_the_exact_text_between_quotes(header: str, tags: list[str]) -> None:
    assert if_match_tags(header) == tags


@given(st.text())
def test_any_header_parses(header: str) -> None:
    tags = if_match_tags(header)
    assert tags is None or all(isinstance(t, str) for t in tags)
