"""SAT's catalogs as the server reads them: from `app/catalogs/data/`, once per process.

Invariants:
- Nothing here touches the network or the database; the files are the ones MANIFEST.json
  describes (a test checks their checksums and counts).
- The small catalogs (c_RegimenFiscal, c_UsoCFDI, c_Estado, c_Municipio, c_Localidad) are
  dicts keyed by code. The zip catalog (95,749 codes with their 145,366 neighbourhoods) is a
  direct-address table over the 100,000 possible five-digit codes plus packed arrays: a lookup
  is O(1), and the whole of it costs a few MB instead of hundreds of thousands of objects.
- Loading is lazy, on first use, under a lock (a thread of the event loop's executor or a test
  may race the first request); every later read is lock-free.
"""

from __future__ import annotations

import gzip
import json
import threading
from array import array
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

DATA_DIR = Path(__file__).resolve().parent / "data"


@dataclass(frozen=True, slots=True)
class TaxSystem:
    code: str
    description: str
    fisica: bool
    moral: bool


@dataclass(frozen=True, slots=True)
class CfdiUse:
    code: str
    description: str
    fisica: bool
    moral: bool
    tax_systems: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Place:
    """A c_Estado, c_Municipio or c_Localidad row."""

    code: str
    name: str
    state: str  # the c_Estado code (for a state: its own code)
    country: str = "MEX"  # c_Pais code (c_Estado also lists states of USA and Canada)


@dataclass(frozen=True, slots=True)
class Neighborhood:
    code: str
    name: str


@dataclass(frozen=True, slots=True)
class PostalCode:
    code: str
    state: str
    state_name: str | None
    municipality: str | None
    municipality_name: str | None
    locality: str | None
    locality_name: str | None
    neighborhoods: tuple[Neighborhood, ...]


def _read_json(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((DATA_DIR / name).read_text(encoding="utf-8"))
    return data


def _read_tsv(name: str) -> Iterator[list[str]]:
    """The file's rows after the header, streamed (never the whole text or a list of rows)."""
    with gzip.open(DATA_DIR / name, "rt", encoding="utf-8", newline="\n") as lines:
        next(lines)
        for line in lines:
            yield line.rstrip("\n").split("\t")


class PostalCodes:
    """c_CodigoPostal with its state, municipality, locality and neighbourhoods.

    Row i is the i-th code in ascending order. `_row_of[int(code)]` is that row or -1, so a
    lookup is one array index. The neighbourhoods of row i are the colonias `_first[i]` to
    `_first[i + 1] - 1`; colonia j's name is the UTF-8 bytes `_names[_name_at[j]:_name_at[j + 1]]`.
    """

    def __init__(self, states: dict[str, Place], municipalities: dict[tuple[str, str], Place],
                 localities: dict[tuple[str, str], Place]) -> None:  # fmt: skip
        self._states = states
        self._municipalities = municipalities
        self._localities = localities
        self._row_of = array("i", [-1]) * 100_000
        self._code = array("I")
        state_codes = sorted({key[0] for key in municipalities} | set(states))
        self._state_codes = state_codes
        state_index = {code: i for i, code in enumerate(state_codes)}
        self._state = array("B")
        self._municipality = array("H")  # 0 = none, else 1 + int(code)
        self._locality = array("H")
        for row, (code, state, municipality, locality) in enumerate(
            _read_tsv("c_CodigoPostal.tsv.gz")
        ):
            self._row_of[int(code)] = row
            self._code.append(int(code))
            self._state.append(state_index[state])
            self._municipality.append(1 + int(municipality) if municipality else 0)
            self._locality.append(1 + int(locality) if locality else 0)
        self._load_neighborhoods()

    def _load_neighborhoods(self) -> None:
        first = array("I", [0]) * (len(self._code) + 1)
        colonia_code = array("H")
        name_at = array("I")
        names = bytearray()  # UTF-8: one byte for most of SAT's names, no object per name
        for zip_code, code, name in _read_tsv("c_Colonia.tsv.gz"):
            # Rows come sorted by zip: count them per zip, prefix sums below.
            first[self._row_of[int(zip_code)] + 1] += 1
            colonia_code.append(int(code))
            name_at.append(len(names))
            names += name.encode("utf-8")
        for i in range(1, len(first)):
            first[i] += first[i - 1]
        name_at.append(len(names))
        self._first = first
        self._colonia_code = colonia_code
        self._name_at = name_at
        self._names = bytes(names)

    def __len__(self) -> int:
        return len(self._code)

    @property
    def neighborhood_count(self) -> int:
        return len(self._colonia_code)

    def row(self, code: str) -> int:
        """The row of a five-digit code, or -1 when SAT does not list it."""
        if len(code) != 5 or not code.isascii() or not code.isdigit():
            return -1
        return self._row_of[int(code)]

    def code_at(self, row: int) -> str:
        return f"{self._code[row]:05d}"

    def __contains__(self, code: str) -> bool:
        return self.row(code) >= 0

    def get(self, code: str) -> PostalCode | None:
        row = self.row(code)
        return None if row < 0 else self.at(row)

    def at(self, row: int) -> PostalCode:
        state = self._state_codes[self._state[row]]
        municipality = f"{self._municipality[row] - 1:03d}" if self._municipality[row] else None
        locality = f"{self._locality[row] - 1:02d}" if self._locality[row] else None
        place = self._municipalities.get((state, municipality)) if municipality else None
        town = self._localities.get((state, locality)) if locality else None
        state_place = self._states.get(state)
        return PostalCode(
            code=f"{self._code[row]:05d}",
            state=state,
            state_name=state_place.name if state_place else None,
            municipality=municipality,
            municipality_name=place.name if place else None,
            locality=locality,
            locality_name=town.name if town else None,
            neighborhoods=tuple(self._neighborhoods(row)),
        )

    def _neighborhoods(self, row: int) -> Iterator[Neighborhood]:
        for i in range(self._first[row], self._first[row + 1]):
            yield Neighborhood(code=f"{self._colonia_code[i]:04d}", name=self._name(i))

    def page(self, offset: int, limit: int) -> list[PostalCode]:
        return [self.at(row) for row in range(offset, min(offset + limit, len(self)))]

    def neighborhood_rows(self, offset: int, limit: int) -> list[tuple[str, Neighborhood]]:
        """c_Colonia rows in (zip, code) order, for the catalog route."""
        end = min(offset + limit, self.neighborhood_count)
        out: list[tuple[str, Neighborhood]] = []
        row = _bisect_right(self._first, offset) - 1
        for i in range(offset, end):
            while self._first[row + 1] <= i:
                row += 1
            colonia = Neighborhood(f"{self._colonia_code[i]:04d}", self._name(i))
            out.append((f"{self._code[row]:05d}", colonia))
        return out

    def neighborhoods_with_code(self, code: str) -> list[tuple[str, Neighborhood]]:
        """c_Colonia rows with this (four-digit) code, in every zip that has one."""
        if len(code) != 4 or not code.isascii() or not code.isdigit():
            return []
        wanted = int(code)
        out = []
        for i, value in enumerate(self._colonia_code):
            if value == wanted:
                row = _bisect_right(self._first, i) - 1
                out.append((self.code_at(row), Neighborhood(code, self._name(i))))
        return out

    def _name(self, i: int) -> str:
        return self._names[self._name_at[i] : self._name_at[i + 1]].decode("utf-8")


def _bisect_right(values: array[int], x: int) -> int:
    lo, hi = 0, len(values)
    while lo < hi:
        mid = (lo + hi) // 2
        if x < values[mid]:
            hi = mid
        else:
            lo = mid + 1
    return lo


class Catalogs:
    """Every shipped catalog; build one with `catalogs()` (the process-wide instance)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._postal: PostalCodes | None = None

    @cached_property
    def manifest(self) -> dict[str, Any]:
        return _read_json("MANIFEST.json")

    @cached_property
    def tax_systems(self) -> dict[str, TaxSystem]:
        return {
            e["code"]: TaxSystem(e["code"], e["description"], e["fisica"], e["moral"])
            for e in _read_json("c_RegimenFiscal.json")["entries"]
        }

    @cached_property
    def withdrawn_tax_systems(self) -> dict[str, str]:
        return {
            e["code"]: e["description"] for e in _read_json("c_RegimenFiscal.json")["withdrawn"]
        }

    @cached_property
    def cfdi_uses(self) -> dict[str, CfdiUse]:
        return {
            e["code"]: CfdiUse(
                e["code"], e["description"], e["fisica"], e["moral"], tuple(e["taxSystems"])
            )
            for e in _read_json("c_UsoCFDI.json")["entries"]
        }

    @cached_property
    def withdrawn_cfdi_uses(self) -> dict[str, str]:
        return {e["code"]: e["description"] for e in _read_json("c_UsoCFDI.json")["withdrawn"]}

    @cached_property
    def states(self) -> dict[str, Place]:
        rows = _read_json("c_Estado.json")["entries"]
        return {e["code"]: Place(e["code"], e["name"], e["code"], e["country"]) for e in rows}

    @cached_property
    def municipalities(self) -> dict[tuple[str, str], Place]:
        rows = _read_json("c_Municipio.json")["entries"]
        return {(e["state"], e["code"]): Place(e["code"], e["name"], e["state"]) for e in rows}

    @cached_property
    def localities(self) -> dict[tuple[str, str], Place]:
        rows = _read_json("c_Localidad.json")["entries"]
        return {(e["state"], e["code"]): Place(e["code"], e["name"], e["state"]) for e in rows}

    @property
    def postal_codes(self) -> PostalCodes:
        postal = self._postal
        if postal is None:
            with self._lock:
                if self._postal is None:
                    self._postal = PostalCodes(self.states, self.municipalities, self.localities)
                postal = self._postal
        return postal


_CATALOGS = Catalogs()


def catalogs() -> Catalogs:
    """The process-wide catalogs (loaded lazily, then shared by every request)."""
    return _CATALOGS


def warm_up() -> None:
    """Loads every catalog now (the server calls it off the event loop at start-up, so the
    first request that needs the zip codes rarely waits for them)."""
    c = catalogs()
    loaded = (c.manifest, c.tax_systems, c.cfdi_uses, c.withdrawn_tax_systems, c.postal_codes)
    assert all(loaded)
