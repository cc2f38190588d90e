"""`python -m app seed`: fast synthetic clients for demos and benchmarks.

Rows are generated in Python (valid RFCs with correct check digits, accented names, creation
times spread over two years) and written in large batches, with the per-team counter kept in
the same transactions.
"""

from __future__ import annotations

import random
import string
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import insert, select
from stdnum.mx import rfc as stdnum_rfc
from tqdm import tqdm

from app.clients import validation as v
from app.clients.ids import new_client_id
from app.clients.repository import ClientRepository, to_ms
from app.clients.repository import clients as clients_table
from app.config import Settings
from app.db import Database

FIRST = [
    "María",
    "José",
    "Ángel",
    "Sofía",
    "Iñaki",
    "Lucía",
    "Andrés",
    "Renée",
    "Jesús",
    "Mónica",
    "Raúl",
    "Begoña",
    "Óscar",
    "Citlali",
    "Xóchitl",
    "Héctor",
    "Nuño",
    "Inés",
]
LAST = [
    "Hernández",
    "García",
    "Martínez",
    "López",
    "González",
    "Pérez",
    "Rodríguez",
    "Sánchez",
    "Ramírez",
    "Cruz",
    "Gómez",
    "Núñez",
    "Peña",
    "Ibáñez",
    "Muñoz",
    "Ortíz",
]
COMPANY = [
    "Comercializadora",
    "Servicios",
    "Grupo",
    "Distribuidora",
    "Constructora",
    "Tecnología",
    "Alimentos",
    "Logística",
    "Diseño",
    "Farmacéutica",
    "Papelería",
]
PLACE = [
    "del Bajío",
    "de México",
    "Peñasco",
    "Azteca",
    "Nórdica",
    "del Pacífico",
    "Querétaro",
    "Yucatán",
    "Michoacán",
    "San Andrés",
    "Tláloc",
]
CITIES = [
    ("Ciudad de México", "CDMX"),
    ("Guadalajara", "Jalisco"),
    ("Monterrey", "Nuevo León"),
    ("Mérida", "Yucatán"),
    ("Querétaro", "Querétaro"),
    ("León", "Guanajuato"),
]
SUFFIX = ["S.A. de C.V.", "S. de R.L. de C.V.", "S.C.", "S.A.P.I. de C.V."]
_LETTERS = "ABCDEFGHIJKLMNOPRSTUVXYZ"
_HOMOCLAVE = string.digits[1:] + string.ascii_uppercase
BATCH = 5000


def make_rfc(rng: random.Random, moral: bool) -> str:
    while True:
        letters = "".join(rng.choice(_LETTERS) for _ in range(3 if moral else 4))
        if moral or letters not in stdnum_rfc._name_blacklist:
            break
    born = datetime(1950, 1, 1) + timedelta(days=rng.randrange(0, 20000))
    base = letters + born.strftime("%y%m%d") + rng.choice(_HOMOCLAVE) + rng.choice(_HOMOCLAVE)
    return base + stdnum_rfc.calc_check_digit(base)


@dataclass
class Generator:
    team_id: int
    livemode: bool
    total: int
    rng: random.Random
    start: datetime
    span_ms: int

    def row(self, i: int) -> dict[str, Any]:
        rng = self.rng
        created = self.start + timedelta(milliseconds=self.span_ms * i // max(1, self.total))
        moral = rng.random() < 0.45
        legal: str | None
        if moral:
            name = f"{rng.choice(COMPANY)} {rng.choice(PLACE)}"
            legal = f"{name} {rng.choice(SUFFIX)}"
        else:
            name = f"{rng.choice(FIRST)} {rng.choice(LAST)} {rng.choice(LAST)}"
            legal = None if rng.random() < 0.5 else name
        rfc = make_rfc(rng, moral)
        city, state = rng.choice(CITIES)
        email = f"contacto{i}@{'empresa' if moral else 'correo'}{i % 97}.mx"
        return {
            "public_id": new_client_id(to_ms(created)),
            "team_id": self.team_id,
            "livemode": self.livemode,
            "name": name,
            "legal_name": legal,
            "rfc": rfc,
            "rfc_unique": rfc,
            "rfc_check_digit_valid": True,
            "email": email,
            "email_lower": email.lower(),
            "phone": f"+52 55 {rng.randrange(1000, 9999)} {rng.randrange(1000, 9999)}",
            "street": f"Calle {rng.randrange(1, 300)} #{rng.randrange(1, 999)}",
            "city": city,
            "state": state,
            "zip_code": f"{rng.randrange(1000, 99999):05d}",
            "country": "México",
            "search_text": v.search_text(name, legal),
            "created_at": created,
            "updated_at": created,
        }


async def seed(settings: Settings, *, clients: int, team: str, livemode: bool) -> int:
    from app.auth.service import ApiKeyService
    from app.migrate import upgrade_async

    await upgrade_async(settings.database_url)
    db = Database(settings)
    repo = ClientRepository(db.dialect)
    try:
        team_id = await ApiKeyService(db).team_id(team)
        c = clients_table.c
        async with db.read() as session:
            taken = await session.execute(
                select(c.rfc_unique).where(c.team_id == team_id, c.livemode == livemode)
            )
            seen = {r for (r,) in taken if r}
        now = datetime.now(UTC)
        gen = Generator(
            team_id=team_id,
            livemode=livemode,
            total=clients,
            rng=random.Random(f"{team}/{livemode}/{clients}/{len(seen)}"),
            start=now - timedelta(days=730),
            span_ms=730 * 86_400_000,
        )
        done = 0
        with tqdm(total=clients, unit="clients", desc="seeding") as bar:
            while done < clients:
                n = min(BATCH, clients - done)
                rows = []
                for i in range(done, done + n):
                    row = gen.row(i)
                    while row["rfc_unique"] in seen:
                        row = gen.row(i)
                    seen.add(row["rfc_unique"])
                    rows.append(row)
                async with db.write() as session:
                    await session.execute(insert(clients_table), rows)
                    await repo.adjust_count(session, team_id, livemode, n)
                done += n
                bar.update(n)
        mode = "live" if livemode else "test"
        print(f"seeded {clients} clients for team {team!r} ({mode})")
        return 0
    finally:
        await db.dispose()
