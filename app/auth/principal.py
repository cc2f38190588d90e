"""Who is calling: what authentication yields and every service scopes its work by."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: a team in one mode (live or test), via one API key."""

    team_id: int
    livemode: bool
    key_id: int
