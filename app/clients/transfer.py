"""Export of a team's clients (one mode), in pages, so memory stays flat whatever the size.

Invariants: every client of the principal's team and mode that matches the filters is
yielded once, newest first; pages are read one at a time (each in its own read transaction)
and seek from the last row seen (the REST `next` token's position), so clients created while
an export runs never shift it. The row shapes are the REST ones: JSON Lines carry a client as
`GET /v2/clients/{id}` shows it; CSV flattens it to `CSV_COLUMNS` (dotted address fields).
"""

from __future__ import annotations

import asyncio
import csv
import io
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from concurrent.futures import Executor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from app.auth.principal import Principal
from app.clients.repository import row_to_client
from app.clients.service import MAX_LIMIT, ClientService, new_values
from app.clients.types import (
    ADDRESS_ATTRS,
    UNSET,
    Address,
    AddressPatch,
    ClientFilter,
    ClientPatch,
    ClientRecord,
    NewClient,
)
from app.clients.validation import GENERIC_RFCS
from app.core.errors import ValidationFailed

# The columns (CSV) or keys (JSON Lines) a row may set, by their REST names; `client.rfc` and
# `client.email` (JSON Lines, as exported) are aliases of `rfc` and `email`.
WRITABLE = (
    "name",
    "legalName",
    "rfc",
    "email",
    "phone",
    "address.street",
    "address.city",
    "address.state",
    "address.zipCode",
    "address.country",
    "address.exterior",
    "address.interior",
    "address.neighborhood",
    "address.municipality",
    "taxSystem",
    "cfdiUse",
    "metadata",  # an object (JSON Lines), or its JSON text (CSV)
)
# The columns of a CSV export: the writable ones between the id and the read-only ones.
CSV_COLUMNS = ("id", *WRITABLE, "timestamp", "updatedAt", "livemode", "rfcCheckDigitValid")


async def iter_records(
    service: ClientService, principal: Principal, filters: ClientFilter | None = None
) -> AsyncIterator[ClientRecord]:
    """Every matching client as its record (see ClientRecord), newest first, a page at a
    time."""
    page = await service.list(
        principal=principal, filters=filters, limit=MAX_LIMIT, as_records=True
    )
    while True:
        for record in page.records:
            yield record
        token = service.next_page_token(principal, page)
        if token is None:
            return
        page = await service.list(principal=principal, next_token=token, as_records=True)


def jsonl_line(rest_client: dict[str, Any]) -> bytes:
    return orjson.dumps(rest_client) + b"\n"


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return orjson.dumps(value).decode()
    return str(value)


def csv_row(rest_client: dict[str, Any]) -> list[str]:
    address = rest_client.get("address") or {}
    flat = {
        **{k: v for k, v in rest_client.items() if k not in ("client", "address")},
        "rfc": rest_client["client"]["rfc"],
        "email": rest_client["client"]["email"],
        **{f"address.{k}": v for k, v in address.items()},
    }
    return [_cell(flat.get(column)) for column in CSV_COLUMNS]


class CsvLines:
    """CSV records (RFC 4180 quoting), each newline-terminated, through one writer."""

    def __init__(self) -> None:
        self.buffer = io.StringIO()
        self.writer = csv.writer(self.buffer, lineterminator="\n")

    def line(self, row: Iterable[str]) -> str:
        self.buffer.seek(0)
        self.buffer.truncate()
        self.writer.writerow(row)
        return self.buffer.getvalue()


async def export_lines(
    service: ClientService,
    principal: Principal,
    to_rest: Callable[[ClientRecord], dict[str, Any]],
    *,
    fmt: str = "jsonl",
    filters: ClientFilter | None = None,
) -> AsyncIterator[bytes]:
    """The export as encoded lines: JSON Lines, or CSV with a header line. `to_rest` renders
    a record in the REST shape."""
    records = iter_records(service, principal, filters)
    if fmt != "csv":
        async for record in records:
            yield jsonl_line(to_rest(record))
        return
    csv_lines = CsvLines()
    yield csv_lines.line(CSV_COLUMNS).encode()
    async for record in records:
        yield csv_lines.line(csv_row(to_rest(record))).encode()


# -- import -------------------------------------------------------------------------------

# Read-only fields of a client as exported: accepted and ignored, so an export re-imports.
READ_ONLY = frozenset(
    {
        "id",
        "timestamp",
        "updatedAt",
        "livemode",
        "rfcCheckDigitValid",
        "cfdiName",
        "invoiceReady",
        "invoiceIssues",
    }
)
BATCH = 1000


class ImportFileError(Exception):
    """The file cannot be read at all (missing, unreadable, unknown format)."""


@dataclass
class SourceRow:
    """One row as read: its first line in the file and the fields it sets (REST names)."""

    line: int
    fields: dict[str, Any]


@dataclass
class RowError:
    line: int
    errors: dict[str, str]


@dataclass
class ImportReport:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    failed: int = 0

    @property
    def rows(self) -> int:
        return self.created + self.updated + self.unchanged + self.failed


class LineSource:
    """The file's lines as text, decoded one by one (a line that is not UTF-8 is reported
    under its number and read as empty, so the rest of the file is still imported), with a
    count of the bytes read (for a progress bar)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.bytes_read = 0
        self.line = 0
        self.errors: list[RowError] = []

    def __iter__(self) -> Iterator[str]:
        with self.path.open("rb") as handle:
            for raw in handle:
                self.line += 1
                self.bytes_read += len(raw)
                try:
                    text = raw.decode("utf-8-sig" if self.line == 1 else "utf-8")
                except UnicodeDecodeError as exc:
                    self.errors.append(
                        RowError(
                            self.line,
                            {
                                "line": f"Not UTF-8: byte 0x{raw[exc.start]:02x} at column "
                                f"{exc.start + 1}"
                            },
                        )
                    )
                    text = "\n"
                yield text


def open_source(path: Path) -> tuple[LineSource, Iterator[SourceRow | RowError]]:
    """The rows of a .csv or .jsonl (.ndjson) file, and the source that tracks progress."""
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".jsonl", ".ndjson"):
        raise ImportFileError(f"{path}: unknown format {suffix or '(none)'}: use .csv or .jsonl")
    if not path.is_file():
        raise ImportFileError(f"{path}: no such file")
    source = LineSource(path)
    rows = _csv_rows(source) if suffix == ".csv" else _jsonl_rows(source)
    return source, rows


def _drain(source: LineSource) -> Iterator[RowError]:
    while source.errors:
        yield source.errors.pop(0)


def _csv_rows(source: LineSource) -> Iterator[SourceRow | RowError]:
    reader = csv.reader(iter(source), strict=True)
    columns: list[str] | None = None
    ignored: set[int] = set()
    last_line = 0
    while True:
        try:
            record = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            # Reported where the bad record starts (an unclosed quote runs to the end).
            yield from _drain(source)
            yield RowError(last_line + 1, {"line": f"Malformed CSV from this line on: {exc}"})
            last_line = reader.line_num
            continue
        yield from _drain(source)
        first_line, last_line = last_line + 1, reader.line_num
        if not record or record == [""]:
            continue
        if columns is None:
            columns, ignored, problems = _header(record)
            if problems:
                yield RowError(first_line, problems)
            continue
        if len(record) != len(columns):
            yield RowError(
                first_line,
                {"line": f"Expected {len(columns)} fields (the header's), found {len(record)}"},
            )
            continue
        fields = {
            name: (value if value != "" else None)
            for i, (name, value) in enumerate(zip(columns, record, strict=True))
            if i not in ignored
        }
        yield SourceRow(first_line, fields)
    yield from _drain(source)


def _header(record: list[str]) -> tuple[list[str], set[int], dict[str, str]]:
    """The columns, the indexes to ignore (read-only or unknown) and the header's problems."""
    columns = [c.strip() for c in record]
    ignored = {i for i, c in enumerate(columns) if c not in WRITABLE}
    problems = {
        f"column {c!r}": "Unknown column (ignored); known: " + ", ".join(WRITABLE)
        for c in columns
        if c not in WRITABLE and c not in READ_ONLY
    }
    for c in {c for c in columns if columns.count(c) > 1}:
        problems[f"column {c!r}"] = "Repeated column"
    return columns, ignored, problems


def _jsonl_rows(source: LineSource) -> Iterator[SourceRow | RowError]:
    for text in source:
        yield from _drain(source)
        line = source.line
        if not text.strip():
            continue
        try:
            value = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            yield RowError(line, {"line": f"Malformed JSON: {exc}"})
            continue
        if not isinstance(value, dict):
            yield RowError(line, {"line": "Each line must be a JSON object"})
            continue
        fields, problems = _flatten(value)
        yield RowError(line, problems) if problems else SourceRow(line, fields)
    yield from _drain(source)


def _flatten(value: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    fields: dict[str, Any] = {}
    problems: dict[str, str] = {}
    for key, item in value.items():
        if key in ("address", "client") and isinstance(item, dict):
            for sub, sub_value in item.items():
                name = f"address.{sub}" if key == "address" else sub
                if name not in WRITABLE or (key == "client" and sub not in ("rfc", "email")):
                    problems[f"{key}.{sub}"] = "Unknown field"
                elif key == "client" and name in value and value[name] != sub_value:
                    problems[f"client.{sub}"] = f"Differs from {sub}"
                else:
                    fields[name] = sub_value
        elif key == "address" and item is None:
            fields.update({f: None for f in WRITABLE if f.startswith("address.")})
        elif key in WRITABLE:
            fields[key] = item
        elif key not in READ_ONLY:
            problems[key] = "Unknown field"
    return fields, problems


class ClientImporter:
    """Creates or updates clients by RFC, in batches (one transaction each), with every rule
    of the service: each row is validated as a create would be, then inserted, or applied to
    the client with its RFC as a merge-patch (fields absent from the row are kept; an empty
    CSV cell or a JSON null clears). A row that changes nothing writes nothing, so importing
    the same file twice changes nothing the second time. Generic RFCs (XAXX010101000,
    XEXX010101000), which many clients share, match on RFC and name together."""

    def __init__(
        self, service: ClientService, checker: Executor | None = None, *, in_flight: int = 2
    ) -> None:
        self.service = service
        # Where rows are checked: in this process (None), or by an executor of worker
        # processes (the CLI's --jobs) while this one writes the batches checked before,
        # with at most `in_flight` batches read ahead.
        self.checker = checker
        self.in_flight = max(1, in_flight) if checker is not None else 1

    async def run(
        self,
        principal: Principal,
        rows: Iterable[SourceRow | RowError],
        on_error: Callable[[RowError], None],
        on_batch: Callable[[ImportReport], None] | None = None,
    ) -> ImportReport:
        report = ImportReport()
        # Batches being checked, oldest first: a bounded number, so memory stays flat.
        checking: deque[tuple[list[SourceRow], asyncio.Future[list[Checked]]]] = deque()

        async def write_oldest() -> None:
            batch, checked = checking.popleft()
            await self._batch(principal, batch, await checked, report, on_error)
            if on_batch:
                on_batch(report)

        for batch in self._batches(rows, report, on_error):
            checking.append((batch, self._check(batch)))
            while len(checking) > self.in_flight:
                await write_oldest()
        while checking:
            await write_oldest()
        if on_batch:
            on_batch(report)
        return report

    def _batches(
        self,
        rows: Iterable[SourceRow | RowError],
        report: ImportReport,
        on_error: Callable[[RowError], None],
    ) -> Iterator[list[SourceRow]]:
        """Rows of well-typed values in batches; the others reported as they are read."""
        batch: list[SourceRow] = []
        for row in rows:
            problems = row.errors if isinstance(row, RowError) else _types(row.fields)
            if problems:
                report.failed += 1
                on_error(RowError(row.line, problems))
                continue
            assert isinstance(row, SourceRow)
            batch.append(row)
            if len(batch) >= BATCH:
                yield batch
                batch = []
        if batch:
            yield batch

    def _check(self, batch: list[SourceRow]) -> asyncio.Future[list[Checked]]:
        fields = [row.fields for row in batch]
        loop = asyncio.get_running_loop()
        if self.checker is None:
            done: asyncio.Future[list[Checked]] = loop.create_future()
            done.set_result(check_rows(fields))
            return done
        return loop.run_in_executor(self.checker, check_rows, fields)

    async def _batch(
        self,
        principal: Principal,
        rows: list[SourceRow],
        checked: list[Checked],
        report: ImportReport,
        on_error: Callable[[RowError], None],
    ) -> None:
        valid: list[tuple[SourceRow, dict[str, Any]]] = []
        for row, (ok, values) in zip(rows, checked, strict=True):
            if ok:
                valid.append((row, values))
            else:
                report.failed += 1
                on_error(RowError(row.line, values))
        if valid:
            await self._write(principal, valid, report, on_error)

    async def _write(
        self,
        principal: Principal,
        valid: list[tuple[SourceRow, dict[str, Any]]],
        report: ImportReport,
        on_error: Callable[[RowError], None],
    ) -> None:
        """One transaction: new clients are inserted together (`insert_many`), rows of
        clients that exist are applied to them one by one. A row whose RFC an earlier row of
        the batch is still waiting to create first sends those inserts, then applies to it."""
        service = self.service
        async with service.db.write() as session:
            found = await service.repo.by_rfcs(
                session, principal.team_id, principal.livemode, {v["rfc"] for _, v in valid}
            )
            existing = {_match_key(r.rfc, r.name): (r.id, row_to_client(r)) for r in found}
            pending: dict[tuple[str, str], tuple[SourceRow, dict[str, Any]]] = {}

            async def insert_pending() -> None:
                results = await service.insert_many(
                    session, principal, [values for _, values in pending.values()]
                )
                for (key, (row, _)), inserted in zip(pending.items(), results, strict=True):
                    if inserted is None:
                        report.failed += 1
                        on_error(RowError(row.line, {"rfc": "Taken by a client created meanwhile"}))
                    else:
                        report.created += 1
                        existing[key] = inserted
                pending.clear()

            for row, values in valid:
                key = _match_key(values["rfc"], values["name"])
                if key in pending:
                    await insert_pending()
                stored = existing.get(key)
                if stored is None:
                    pending[key] = (row, values)
                    continue
                row_id, current = stored
                updated = await service.apply_patch(
                    session, principal, row_id, current, _patch(row.fields)
                )
                if updated is None:
                    report.unchanged += 1
                else:
                    report.updated += 1
                    existing[key] = (row_id, updated)
            if pending:
                await insert_pending()


# A row as checked: (True, the columns of the new client) or (False, its field errors).
Checked = tuple[bool, dict[str, Any]]


def check_rows(rows: list[dict[str, Any]]) -> list[Checked]:
    """Every rule of a create, for each row's fields (well-typed: `_types` ran): the same
    `new_values` as the service's create, in whichever process runs it."""
    out: list[Checked] = []
    for fields in rows:
        try:
            out.append((True, new_values(_new_client(fields))))
        except ValidationFailed as exc:
            out.append((False, dict(exc.fields)))
    return out


def _match_key(rfc: str, name: str) -> tuple[str, str]:
    return (rfc, name if rfc in GENERIC_RFCS else "")


def _types(fields: dict[str, Any]) -> dict[str, str]:
    """Values must be strings (metadata: an object, or its JSON text in a CSV cell)."""
    problems: dict[str, str] = {}
    metadata = fields.get("metadata")
    if isinstance(metadata, str):
        try:
            fields["metadata"] = orjson.loads(metadata)
        except orjson.JSONDecodeError:
            problems["metadata"] = "Must be a JSON object"
    for key, value in fields.items():
        if key != "metadata" and value is not None and not isinstance(value, str):
            problems[key] = "Must be a string"
    return problems


def _address(fields: dict[str, Any], absent: Any) -> dict[str, Any]:
    return {
        attr: fields.get("address." + ("zipCode" if attr == "zip_code" else attr), absent)
        for attr in ADDRESS_ATTRS
    }


def _new_client(fields: dict[str, Any]) -> NewClient:
    return NewClient(
        name=fields.get("name"),
        rfc=fields.get("rfc"),
        legal_name=fields.get("legalName"),
        email=fields.get("email"),
        phone=fields.get("phone"),
        address=Address(**_address(fields, None)),
        tax_system=fields.get("taxSystem"),
        cfdi_use=fields.get("cfdiUse"),
        metadata=fields.get("metadata"),
    )


def _patch(fields: dict[str, Any]) -> ClientPatch:
    address = _address(fields, UNSET)
    return ClientPatch(
        name=fields.get("name", UNSET),
        rfc=fields.get("rfc", UNSET),
        legal_name=fields.get("legalName", UNSET),
        email=fields.get("email", UNSET),
        phone=fields.get("phone", UNSET),
        tax_system=fields.get("taxSystem", UNSET),
        cfdi_use=fields.get("cfdiUse", UNSET),
        metadata=fields.get("metadata", UNSET),
        address=AddressPatch(**address) if any(v is not UNSET for v in address.values()) else UNSET,
    )
