"""Client ids and signed pagination tokens."""

from __future__ import annotations

import base64
import json

import pytest

from app.auth.principal import Principal
from app.clients.ids import PREFIX, is_client_id, new_client_id
from app.clients.pagination import (
    InvalidToken,
    TokenSigner,
    position_from_json,
    position_to_json,
)
from app.clients.types import Position

CROCKFORD = set("0123456789ABCDEFGHJKMNPQRSTVWXYZ")

# -- ids ------------------------------------------------------------------------------------


def test_id_shape() -> None:
    cid = new_client_id()
    assert cid.startswith(PREFIX)
    body = cid[len(PREFIX) :]
    assert len(body) == 26
    assert set(body) <= CROCKFORD
    assert is_client_id(cid)


def test_ids_are_time_ordered_and_random() -> None:
    earlier = [new_client_id(1_700_000_000_000) for _ in range(50)]
    later = new_client_id(1_700_000_000_001)
    assert len(set(earlier)) == 50  # 80 random bits
    assert all(e < later for e in earlier)
    # The first ten characters are the millisecond time.
    assert len({e[: len(PREFIX) + 10] for e in earlier}) == 1


@pytest.mark.parametrize(
    "value",
    [
        "",
        "client_",
        "client_01JD0Q5Z8X3V2N7K4M6P9R1T2",  # 25
        "client_01JD0Q5Z8X3V2N7K4M6P9R1T2WX",  # 27
        "cliente_01JD0Q5Z8X3V2N7K4M6P9R1T2W",
        "CLIENT_01JD0Q5Z8X3V2N7K4M6P9R1T2W",
        "client_01JD0Q5Z8X3V2N7K4M6P9R1T2I",  # I is not Crockford
        "client_01JD0Q5Z8X3V2N7K4M6P9R1T2U",  # nor U
        "client_81JD0Q5Z8X3V2N7K4M6P9R1T2W",  # over 48 bits of time
        "client_01jd0q5z8x3v2n7k4m6p9r1t2w",
        "client_01JD0Q5Z8X3V2N7K4M6P9R1T2W\n",
        "1",
        "x" * 500,
    ],
)
def test_impossible_ids(value: str) -> None:
    assert not is_client_id(value)


def test_documented_example_id_is_possible() -> None:
    assert is_client_id("client_01JD0Q5Z8X3V2N7K4M6P9R1T2W")


# -- tokens ---------------------------------------------------------------------------------

A_LIVE = Principal(team_id=1, livemode=True, key_id=1)
A_TEST = Principal(team_id=1, livemode=False, key_id=2)
B_LIVE = Principal(team_id=2, livemode=True, key_id=3)


def _signer() -> TokenSigner:
    return TokenSigner("unit-test-secret")


def test_token_round_trip_with_another_key_of_the_same_team() -> None:
    payload = {"f": {"name": "méxico"}, "l": 5, "p": [1_700_000_000_000, 42]}
    token = _signer().dumps("next", A_LIVE, payload)
    same_team_other_key = Principal(team_id=1, livemode=True, key_id=99)
    # Another signer built from the same secret: another worker, or after a restart.
    assert _signer().loads("next", same_team_other_key, token) == payload


@pytest.mark.parametrize("other", [A_TEST, B_LIVE])
def test_token_is_bound_to_team_and_mode(other: Principal) -> None:
    token = _signer().dumps("next", A_LIVE, {"p": [1, 2]})
    with pytest.raises(InvalidToken):
        _signer().loads("next", other, token)


def test_token_is_bound_to_its_kind() -> None:
    token = _signer().dumps("cursor", A_LIVE, {"p": [1, 2]})
    with pytest.raises(InvalidToken):
        _signer().loads("next", A_LIVE, token)


def test_token_from_another_secret_is_refused() -> None:
    token = TokenSigner("another-secret").dumps("next", A_LIVE, {"p": [1, 2]})
    with pytest.raises(InvalidToken):
        _signer().loads("next", A_LIVE, token)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def test_tampered_payload_is_refused() -> None:
    signer = _signer()
    token = signer.dumps("next", A_LIVE, {"l": 5, "p": [1, 2]})
    _body, mac = token.split(".")
    forged = _b64(json.dumps({"l": 100, "p": [1, 2]}).encode())
    with pytest.raises(InvalidToken):
        signer.loads("next", A_LIVE, f"{forged}.{mac}")


def test_tampered_signature_is_refused() -> None:
    signer = _signer()
    token = signer.dumps("next", A_LIVE, {"p": [1, 2]})
    last = token[-1]
    flipped = token[:-1] + ("A" if last != "A" else "B")
    with pytest.raises(InvalidToken):
        signer.loads("next", A_LIVE, flipped)


@pytest.mark.parametrize(
    "token", ["", ".", "abc", "a.b.c", "é.é", "x" * 3000, "%%%.***", "eyJ9.AAAA"]
)
def test_malformed_tokens_are_refused(token: str) -> None:
    with pytest.raises(InvalidToken):
        _signer().loads("next", A_LIVE, token)


def test_signed_payload_that_is_not_an_object_is_refused() -> None:
    # Even a correctly signed token must carry an object (defence in depth).
    signer = _signer()
    body = _b64(b"[1, 2]")
    mac = signer._mac("next", A_LIVE, body)
    with pytest.raises(InvalidToken):
        signer.loads("next", A_LIVE, f"{body}.{mac}")


def test_positions() -> None:
    pos = Position(created_ms=1_700_000_000_123, row_id=7)
    assert position_from_json(position_to_json(pos)) == pos
    for bad in (None, [1], [1, 2, 3], ["1", 2], [1.5, 2], [True, 2], {"a": 1}):
        with pytest.raises(InvalidToken):
            position_from_json(bad)
