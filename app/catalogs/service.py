"""Reading the SAT catalogs: what `GET /v2/catalogs…` and the GraphQL catalog queries answer.

Pure functions over the process-wide `catalogs()`; no database. A catalog is paged with
`limit` (1..1,000, default 100) and `offset` (0..its size); `code` keeps the entries with that
code only (for c_Colonia, whose codes repeat across zips, every zip's entry with that code).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from app.catalogs.store import CfdiUse, Neighborhood, Place, PostalCode, TaxSystem, catalogs
from app.core.errors import CatalogNotFound, ValidationFailed

DEFAULT_LIMIT = 100
MAX_LIMIT = 1_000
# The catalogs a user can read, in the order `GET /v2/catalogs` lists them.
CATALOG_IDS = (
    "c_RegimenFiscal",
    "c_UsoCFDI",
    "c_CodigoPostal",
    "c_Estado",
    "c_Municipio",
    "c_Localidad",
    "c_Colonia",
)

Entry = TaxSystem | CfdiUse | PostalCode | Place | tuple[str, Neighborhood]


@dataclass(frozen=True, slots=True)
class CatalogInfo:
    id: str
    name: str
    source: str
    version: str
    count: int


@dataclass(frozen=True, slots=True)
class CatalogPage:
    info: CatalogInfo
    entries: Sequence[Entry]
    total: int  # entries matching `code` (or the whole catalog)
    has_more: bool


def _info(catalog_id: str) -> CatalogInfo:
    manifest = catalogs().manifest
    item = manifest["catalogs"][catalog_id]
    source = manifest["source"]
    return CatalogInfo(
        id=catalog_id,
        name=item["name"],
        source=f"SAT catCFDI via {source['package']} (PyPI)",
        version=str(source["version"]),
        count=int(item["count"]),
    )


def list_catalogs() -> list[CatalogInfo]:
    return [_info(catalog_id) for catalog_id in CATALOG_IDS]


def _check_page(limit: int | None, offset: int | None) -> tuple[int, int]:
    errors: dict[str, str] = {}
    limit = DEFAULT_LIMIT if limit is None else limit
    offset = 0 if offset is None else offset
    if not 1 <= limit <= MAX_LIMIT:
        errors["limit"] = f"Must be between 1 and {MAX_LIMIT}"
    if offset < 0:
        errors["offset"] = "Must be 0 or more"
    if errors:
        raise ValidationFailed(errors)
    return limit, offset


def _rows(catalog_id: str) -> tuple[int, Callable[[int, int], Sequence[Entry]]]:
    """The catalog's size and a function returning rows [offset, offset + limit)."""
    c = catalogs()
    if catalog_id == "c_CodigoPostal":
        return len(c.postal_codes), c.postal_codes.page
    if catalog_id == "c_Colonia":
        return c.postal_codes.neighborhood_count, c.postal_codes.neighborhood_rows
    tables: dict[str, Callable[[], Sequence[Any]]] = {
        "c_RegimenFiscal": lambda: list(c.tax_systems.values()),
        "c_UsoCFDI": lambda: list(c.cfdi_uses.values()),
        "c_Estado": lambda: list(c.states.values()),
        "c_Municipio": lambda: list(c.municipalities.values()),
        "c_Localidad": lambda: list(c.localities.values()),
    }
    table = tables[catalog_id]()
    return len(table), lambda offset, limit: table[offset : offset + limit]


def _by_code(catalog_id: str, code: str) -> list[Entry]:
    c = catalogs()
    if catalog_id == "c_CodigoPostal":
        found = c.postal_codes.get(code)
        return [] if found is None else [found]
    if catalog_id == "c_RegimenFiscal":
        return [c.tax_systems[code]] if code in c.tax_systems else []
    if catalog_id == "c_UsoCFDI":
        return [c.cfdi_uses[code]] if code in c.cfdi_uses else []
    if catalog_id == "c_Estado":
        return [c.states[code]] if code in c.states else []
    if catalog_id == "c_Colonia":
        return list(c.postal_codes.neighborhoods_with_code(code))
    size, rows = _rows(catalog_id)
    # c_Municipio and c_Localidad repeat codes across states: a scan of a few thousand.
    return [row for row in rows(0, size) if _code_of(row) == code]


def _code_of(row: Entry) -> str:
    return row[1].code if isinstance(row, tuple) else row.code


def get_catalog(
    catalog_id: str, *, code: str | None = None, limit: int | None = None, offset: int | None = None
) -> CatalogPage:
    if catalog_id not in CATALOG_IDS:
        raise CatalogNotFound(catalog_id)
    limit, offset = _check_page(limit, offset)
    info = _info(catalog_id)
    if code is not None:
        matches = _by_code(catalog_id, code)
        page = matches[offset : offset + limit]
        return CatalogPage(info, page, len(matches), offset + limit < len(matches))
    size, rows = _rows(catalog_id)
    return CatalogPage(info, rows(offset, limit), size, offset + limit < size)


def tax_systems() -> list[TaxSystem]:
    return list(catalogs().tax_systems.values())


def cfdi_uses(tax_system: str | None = None) -> list[CfdiUse]:
    """Every use, or those SAT allows for `tax_system` (none for a code it does not list)."""
    uses = catalogs().cfdi_uses.values()
    if tax_system is None:
        return list(uses)
    return [u for u in uses if tax_system in u.tax_systems]


def postal_code(code: str) -> PostalCode | None:
    return catalogs().postal_codes.get(code)
