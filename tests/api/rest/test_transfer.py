"""Import and export (app/clients/transfer.py): GET /v2/clients/export streams JSON Lines;
files import by RFC with the service's rules, every bad row reported under its line number,
and importing the same file again changes nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import orjson

from app.auth.principal import Principal
from app.clients.transfer import ClientImporter, RowError, open_source
from tests.support import Key, new_rfc


async def _create(client: httpx.AsyncClient, key: Key, **body: Any) -> dict[str, Any]:
    r = await client.post("/v2/clients", json=body, headers=key.headers)
    assert r.status_code == 201, r.text
    data: dict[str, Any] = r.json()["data"]
    return data


async def _export(client: httpx.AsyncClient, key: Key, query: str = "") -> list[dict[str, Any]]:
    r = await client.get(f"/v2/clients/export{query}", headers=key.headers)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/x-ndjson"
    return [orjson.loads(line) for line in r.content.splitlines()]


async def test_export_streams_every_client_of_the_team_and_mode(
    client: httpx.AsyncClient, key_a: Key, key_b: Key
) -> None:
    mine = [await _create(client, key_a, name=f"Exportado {i}", rfc=new_rfc()) for i in range(3)]
    await _create(client, key_b, name="Ajeno", rfc=new_rfc())
    lines = await _export(client, key_a)
    assert lines == [
        (await client.get(f"/v2/clients/{c['id']}", headers=key_a.headers)).json()["data"]
        for c in reversed(mine)
    ]
    assert [c["name"] for c in await _export(client, key_a, "?name=exportado%202")] == [
        "Exportado 2"
    ]


async def test_export_refuses_bad_parameters(client: httpx.AsyncClient, key_a: Key) -> None:
    for query in ("?limit=5", "?from=yesterday", "?name=a&name=b"):
        r = await client.get(f"/v2/clients/export{query}", headers=key_a.headers)
        assert r.status_code == 400, query
        assert r.json()["error"]["code"] == "VALIDATION_ERROR"
    assert (await client.get("/v2/clients/export")).status_code == 401


async def _import(app: Any, key: Key, path: Path) -> tuple[Any, list[RowError]]:
    errors: list[RowError] = []
    _source, rows = open_source(path)
    importer = ClientImporter(app.app.state.services.clients)
    principal = Principal(team_id=key.team_id, livemode=key.livemode, key_id=key.key_id)
    report = await importer.run(principal, rows, errors.append)
    return report, errors


async def test_csv_import_creates_then_changes_nothing(
    app: Any, client: httpx.AsyncClient, key_a: Key, tmp_path: Path
) -> None:
    rfc = new_rfc()
    path = tmp_path / "clients.csv"
    path.write_bytes(
        "\ufeffname,rfc,email,address.zipCode,address.country,id\n"
        f"Importado Uno,{rfc},uno@example.com,03100,México,client_ignored\n"
        f'"Importado, Dos",{new_rfc()},,,,\n'
        "Sin RFC,,,,,\n"
        f"Código malo,{new_rfc()},,ABC,,\n".encode()
    )
    report, errors = await _import(app, key_a, path)
    assert (report.created, report.updated, report.unchanged, report.failed) == (2, 0, 0, 2)
    assert {e.line: sorted(e.errors) for e in errors} == {4: ["rfc"], 5: ["address.zipCode"]}
    names = {c["name"] for c in await _export(client, key_a)}
    assert names == {"Importado Uno", "Importado, Dos"}

    again, _ = await _import(app, key_a, path)
    assert (again.created, again.updated, again.unchanged) == (0, 0, 2)

    path.write_text(f"name,rfc,email\nImportado Uno,{rfc.lower()},nuevo@example.com\n")
    changed, _ = await _import(app, key_a, path)
    assert (changed.created, changed.updated) == (0, 1)
    (one,) = [c for c in await _export(client, key_a) if c["name"] == "Importado Uno"]
    assert one["client"]["email"] == "nuevo@example.com"
    assert one["address"]["zipCode"] == "03100"  # absent columns are kept


async def test_an_export_imports_as_it_is(
    app: Any, client: httpx.AsyncClient, key_a: Key, key_b: Key, tmp_path: Path
) -> None:
    for i in range(3):
        await _create(
            client, key_a, name=f"Viajero {i}", rfc=new_rfc(), address={"zipCode": "06700"}
        )
    await _create(client, key_a, name="Público", rfc="XAXX010101000")
    await _create(client, key_a, name="Otro público", rfc="XAXX010101000")
    exported = await _export(client, key_a)
    path = tmp_path / "export.jsonl"
    path.write_bytes(b"".join(orjson.dumps(c) + b"\n" for c in exported))
    report, errors = await _import(app, key_b, path)
    assert errors == [] and report.created == len(exported)
    strip = ("id", "timestamp", "updatedAt", "livemode")

    def same(clients: list[dict[str, Any]]) -> list[dict[str, Any]]:
        # The copy is created in the file's order, so it lists in the opposite one.
        kept = [{k: v for k, v in c.items() if k not in strip} for c in clients]
        return sorted(kept, key=lambda c: c["name"])

    assert same(await _export(client, key_b)) == same(exported)
    again, _ = await _import(app, key_b, path)
    assert again.unchanged == len(exported) and again.created == 0  # generic RFCs by name


async def test_bad_lines_are_reported_and_the_rest_imported(
    app: Any, client: httpx.AsyncClient, key_a: Key, tmp_path: Path
) -> None:
    path = tmp_path / "mixed.jsonl"
    good = new_rfc()
    path.write_bytes(
        b'{"name": "Bueno", "rfc": "' + good.encode() + b'"}\n'
        b"{not json\n"
        b"[1, 2]\n"
        b'{"name": "Raro", "rfc": "' + new_rfc().encode() + b'", "color": "azul"}\n'
        b'{"name": 5, "rfc": "' + new_rfc().encode() + b'"}\n'
        b'{"name": "Latin1 \xe9", "rfc": "' + new_rfc().encode() + b'"}\n'
    )
    report, errors = await _import(app, key_a, path)
    assert report.created == 1 and report.failed == 5
    assert {e.line: sorted(e.errors) for e in errors} == {
        2: ["line"],
        3: ["line"],
        4: ["color"],
        5: ["name"],
        6: ["line"],
    }
    by_line = {e.line: e.errors for e in errors}
    assert by_line[6]["line"].startswith("Not UTF-8")
    assert by_line[2]["line"].startswith("Malformed JSON")
    assert [c["client"]["rfc"] for c in await _export(client, key_a, f"?rfc={good}")] == [good]
