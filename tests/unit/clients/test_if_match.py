"""If-Match parsing (a pure function of the REST edge): the tags as sent, never an exception.
The service compares them with the client's entity tag as text (tests/api/rest/test_attacks.py
sends the odd ones: `"²"`, `"¹²³"`, `"0<etag>"`)."""

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
        ('"1705314600000"', ['"1705314600000"']),
        ('"01705314600000"', ['"01705314600000"']),  # as sent: it matches nothing of ours
        ('"²"', ['"²"']),
        ('"1", "¹²³" ,"x"', ['"1"', '"¹²³"', '"x"']),
        ('W/"1"', ['W/"1"']),  # a weak tag never equals ours (strong comparison)
    ],
)
def test_tags_are_kept_as_sent(header: str, tags: list[str]) -> None:
    assert if_match_tags(header) == tags


@given(st.text())
def test_any_header_parses(header: str) -> None:
    tags = if_match_tags(header)
    assert tags is None or all(isinstance(t, str) for t in tags)
