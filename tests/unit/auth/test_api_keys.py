"""API keys and their repository on a real database (both engines): creation, lookup by
hash, revocation, authentication and last-use tracking."""

from __future__ import annotations

from datetime import timedelta

import pytest

from app.auth.service import ApiKeyService, hash_key
from app.core import clock
from app.core.errors import Unauthorized
from app.db.database import Database
from tests.support import unique_team


async def test_a_created_key_authenticates_as_its_team_and_mode(db: Database) -> None:
    keys = ApiKeyService(db)
    team = unique_team("auth")
    info, key = await keys.create(team=team, livemode=False)
    assert key.startswith("sk_test_") and info.prefix == key[:12] and info.mode == "test"
    who = await keys.authenticate(f"Bearer {key}")
    assert (who.team_id, who.livemode, who.key_id) == (await keys.team_id(team), False, info.id)


async def test_only_the_hash_is_stored(db: Database) -> None:
    keys = ApiKeyService(db)
    info, key = await keys.create(team=unique_team("hash"), livemode=True)
    async with db.read() as session:
        stored = await keys.repository.find_by_hash(session, hash_key(key))
        assert await keys.repository.find_by_hash(session, key) is None
    assert stored is not None and stored.id == info.id and stored.key_hash != key


@pytest.mark.parametrize(
    "header",
    [None, "", "Basic abc", "Bearer", "Bearer sk_live_short", "Bearer sk_prod_" + "a" * 32],
)
async def test_missing_and_malformed_keys_are_refused(db: Database, header: str | None) -> None:
    with pytest.raises(Unauthorized):
        await ApiKeyService(db).authenticate(header)


async def test_an_unknown_key_is_refused(db: Database) -> None:
    with pytest.raises(Unauthorized, match="Unknown or revoked"):
        await ApiKeyService(db).authenticate("Bearer sk_live_" + "A" * 32)


async def test_revocation_takes_effect_and_keeps_its_first_time(db: Database) -> None:
    keys = ApiKeyService(db)
    info, key = await keys.create(team=unique_team("revoke"), livemode=True)
    revoked = await keys.revoke(key)
    assert revoked is not None and revoked.revoked_at is not None
    with pytest.raises(Unauthorized):
        await keys.authenticate(f"Bearer {key}")
    again = await keys.revoke(str(info.id))
    assert again is not None and again.revoked_at == revoked.revoked_at
    assert await keys.revoke("999999999999") is None
    assert await keys.revoke("not a key") is None


async def test_teams_are_created_once_and_listed_by_name(db: Database) -> None:
    keys = ApiKeyService(db)
    team = unique_team("list")
    first, _ = await keys.create(team=team, livemode=True)
    second, _ = await keys.create(team=f"  {team} ", livemode=False)
    listed = await keys.list(team=team)
    assert [(k.id, k.team, k.mode) for k in listed] == [
        (first.id, team, "live"),
        (second.id, team, "test"),
    ]
    with pytest.raises(ValueError):
        await keys.create(team="   ", livemode=True)


async def test_last_use_is_written_at_most_once_a_minute(db: Database) -> None:
    keys = ApiKeyService(db)
    info, key = await keys.create(team=unique_team("touch"), livemode=True)
    await keys.authenticate(f"Bearer {key}")
    (first,) = await keys.list(team=info.team)
    assert first.last_used_at is not None
    await keys.authenticate(f"Bearer {key}")
    (second,) = await keys.list(team=info.team)
    assert second.last_used_at == first.last_used_at
    # The conditional write leaves a newer value alone.
    async with db.write() as session:
        await keys.repository.touch(
            session, info.id, clock.now(), not_since=first.last_used_at - timedelta(minutes=1)
        )
    (third,) = await keys.list(team=info.team)
    assert third.last_used_at == first.last_used_at
