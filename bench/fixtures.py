"""Values the benchmark queries for, read from the benchmark database (DATABASE_URL):
an id, an RFC, an email, a creation-time window of 150 clients, and a `next` token about 9,000 pages deep, built
with the app's own signer and the shared SECRET_KEY. Prints one JSON line."""

from __future__ import annotations

import asyncio
import json
import sys

from sqlalchemy import select

from app.auth.principal import Principal
from app.clients.repository import SELECT_COLUMNS, columns, row_position
from app.clients.types import ClientFilter
from app.core.clock import format_timestamp
from app.core.config import Settings
from app.db.tables import Team
from app.http.deps import Services

PAGE = 100


async def main(rows: int) -> None:
    s = Services.build(Settings())
    try:
        async with s.db.read() as session:
            team = (await session.execute(select(Team.id).where(Team.name == "bench"))).scalar_one()
            ordered = (
                select(*SELECT_COLUMNS)
                .where(columns.team_id == team, columns.livemode.is_(True))
                .order_by(columns.created_at.desc(), columns.id.desc())
                .limit(1)
            )
            # A seeded client (the create scenario adds some without an email on top).
            seeded = ordered.where(columns.email.is_not(None))
            middle = (await session.execute(seeded.offset(rows // 2))).one()
            # A creation-time window holding 150 clients at any size: a full page either way.
            window_end = (await session.execute(ordered.offset(rows // 3))).one()
            window_start = (await session.execute(ordered.offset(rows // 3 + 149))).one()
            depth = max(0, min(9000 * PAGE, rows - 2 * PAGE))
            deep_row = (await session.execute(ordered.offset(depth))).one()
        who = Principal(team_id=team, livemode=True, key_id=0)
        deep = s.clients.next_token(who, ClientFilter(), PAGE, row_position(deep_row))
        print(
            json.dumps(
                {
                    "id": middle.public_id,
                    "rfc": middle.rfc,
                    "email": middle.email.upper(),
                    "from": format_timestamp(window_start.created_at),
                    "to": format_timestamp(window_end.created_at),
                    "deep": deep,
                    "depth": depth,
                }
            )
        )
    finally:
        await s.db.dispose()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
