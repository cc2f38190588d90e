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


async def _events(client: httpx.AsyncClient, key: Key) -> list[dict[str, Any]]:
    r = await client.get("/v2/events?limit=100", headers=key.headers)
    assert r.status_code == 200, r.text
    events: list[dict[str, Any]] = r.json()["data"]
    return events


async def test_imports_write_events_and_readiness_as_creates_and_updates_do(
    app: Any, client: httpx.AsyncClient, key_a: Key, tmp_path: Path
) -> None:
    """Each created row is a client.created event, each changed row a client.updated one,
    with the client as REST shows it; the stored readiness (the invoiceReady filter) is
    the one a create or an update stores. A row that changes nothing writes no event."""
    ready, other = new_rfc(moral=True), new_rfc()
    path = tmp_path / "ready.csv"
    path.write_text(
        "name,rfc,legalName,taxSystem,cfdiUse,address.zipCode\n"
        f"Lista,{ready},Lista S.A. de C.V.,601,G03,06700\n"
        f"Sin régimen,{other},,,,\n"
    )
    report, errors = await _import(app, key_a, path)
    assert errors == [] and report.created == 2
    events = await _events(client, key_a)
    assert sorted(e["type"] for e in events) == ["client.created", "client.created"]
    by_rfc = {e["data"]["object"]["client"]["rfc"]: e["data"]["object"] for e in events}
    for rfc in (ready, other):
        stored = await _export(client, key_a, f"?rfc={rfc}")
        assert by_rfc[rfc] == stored[0]
    assert by_rfc[ready]["invoiceReady"] is True
    listed = await _export(client, key_a, "?invoiceReady=true")
    assert [c["client"]["rfc"] for c in listed] == [ready]

    again, _ = await _import(app, key_a, path)
    assert again.unchanged == 2 and len(await _events(client, key_a)) == 2

    path.write_text(f"name,rfc,taxSystem\nLista,{ready},\n")  # no régimen: no longer ready
    changed, _ = await _import(app, key_a, path)
    assert changed.updated == 1
    latest = (await _events(client, key_a))[0]
    assert latest["type"] == "client.updated"
    assert latest["previousAttributes"]["taxSystem"] == "601"
    assert latest["data"]["object"]["invoiceReady"] is False
    assert await _export(client, key_a, "?invoiceReady=true") == []


async def test_rows_repeating_an_rfc_update_what_the_batch_created(
    app: Any, client: httpx.AsyncClient, key_a: Key, tmp_path: Path
) -> None:
    rfc = new_rfc()
    path = tmp_path / "twice.jsonl"
    path.write_bytes(
        orjson.dumps({"name": "Primero", "rfc": rfc})
        + b"\n"
        + orjson.dumps({"name": "Segundo", "rfc": rfc.lower(), "email": "b@example.com"})
        + b"\n"
    )
    report, errors = await _import(app, key_a, path)
    assert errors == [] and (report.created, report.updated) == (1, 1)
    (stored,) = await _export(client, key_a)
    assert (stored["name"], stored["client"]["email"]) == ("Segundo", "b@example.com")
    assert [e["type"] for e in await _events(client, key_a)] == [
        "client.updated",
        "client.created",
    ]


async def test_rows_checked_in_a_worker_process_import_the_same(
    app: Any, client: httpx.AsyncClient, key_a: Key, key_b: Key, tmp_path: Path
) -> None:
    """The CLI's --jobs: rows are checked by worker processes (the same rules), and more
    than one batch is in flight; the outcome is the in-process one."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from app.clients import transfer

    lines = ["name,rfc,address.zipCode"]
    lines += [f"Cliente {i},{new_rfc()},06700" for i in range(2 * transfer.BATCH + 5)]
    lines[7] = "Sin RFC,,06700"
    lines[transfer.BATCH + 3] = f"Código malo,{new_rfc()},999"
    path = tmp_path / "many.csv"
    path.write_text("\n".join(lines) + "\n")
    outcomes = []
    for key, checker in ((key_a, None), (key_b, "pool")):
        errors: list[RowError] = []
        _source, rows = open_source(path)
        principal = Principal(team_id=key.team_id, livemode=key.livemode, key_id=key.key_id)
        services = app.app.state.services
        if checker is None:
            report = await ClientImporter(services.clients).run(principal, rows, errors.append)
        else:
            context = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(1, mp_context=context) as pool:
                importer = ClientImporter(services.clients, pool, in_flight=2)
                report = await importer.run(principal, rows, errors.append)
        outcomes.append((report, sorted((e.line, sorted(e.errors)) for e in errors)))
    assert outcomes[0] == outcomes[1]
    report, errors_by_line = outcomes[1]
    assert (report.created, report.failed) == (2 * transfer.BATCH + 3, 2)
    assert errors_by_line == [(8, ["rfc"]), (transfer.BATCH + 4, ["address.zipCode"])]


async def test_a_csv_export_imports_as_it_is(
    app: Any, client: httpx.AsyncClient, key_a: Key, key_b: Key, tmp_path: Path
) -> None:
    from app.clients.transfer import export_lines
    from app.rest.clients import client_record_json

    await _create(
        client,
        key_a,
        name='Comillas "dobles", comas',
        rfc=new_rfc(moral=True),
        legalName="Línea, S.A. de C.V.",
        taxSystem="601",
        cfdiUse="G03",
        metadata={"erp": "C-1", "nota": 'a "b", c'},
        address={"zipCode": "06700", "street": "Calle 1\u00a0#2"},
    )
    await _create(client, key_a, name="Sencillo", rfc=new_rfc())
    principal = Principal(team_id=key_a.team_id, livemode=key_a.livemode, key_id=key_a.key_id)
    service = app.app.state.services.clients
    path = tmp_path / "export.csv"
    lines = export_lines(service, principal, client_record_json, fmt="csv")
    path.write_bytes(b"".join([line async for line in lines]))
    assert path.read_text().count("\n") == 3  # the header and two clients
    report, errors = await _import(app, key_b, path)
    assert errors == [] and report.created == 2
    strip = ("id", "timestamp", "updatedAt", "livemode")

    def same(clients: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return sorted(
            ({k: v for k, v in c.items() if k not in strip} for c in clients),
            key=lambda c: c["name"],
        )

    assert same(await _export(client, key_b)) == same(await _export(client, key_a))
