"""The shipped catalog files: checksums and counts as MANIFEST.json records them, the contract's
applicability and uso ↔ régimen tables, and the lookups the server makes."""

from __future__ import annotations

import gzip
import hashlib
import json

import pytest

from app.catalogs.store import DATA_DIR, Catalogs, catalogs

MANIFEST = json.loads((DATA_DIR / "MANIFEST.json").read_text(encoding="utf-8"))


def _entries(name: str) -> int:
    raw = (DATA_DIR / name).read_bytes()
    if name.endswith(".gz"):
        lines = gzip.decompress(raw).decode("utf-8").splitlines()
        return len(lines) - 1  # header
    return len(json.loads(raw)["entries"])


@pytest.mark.parametrize("catalog_id", sorted(MANIFEST["catalogs"]))
def test_shipped_file_matches_manifest(catalog_id: str) -> None:
    info = MANIFEST["catalogs"][catalog_id]
    raw = (DATA_DIR / info["file"]).read_bytes()
    assert hashlib.sha256(raw).hexdigest() == info["sha256"]
    assert _entries(info["file"]) == info["count"]


def test_manifest_records_source_and_every_file() -> None:
    assert MANIFEST["source"]["package"] == "satcfdi"
    assert MANIFEST["source"]["version"]
    assert len(MANIFEST["source"]["wheelSha256"]) == 64
    assert len(MANIFEST["satSheet"]["commit"]) == 40
    shipped = {p.name for p in DATA_DIR.iterdir()} - {"MANIFEST.json"}
    assert shipped == {info["file"] for info in MANIFEST["catalogs"].values()}


def test_counts_of_sat() -> None:
    c = Catalogs()
    assert len(c.postal_codes) == 95_749  # SAT's c_CodigoPostal, not SEPOMEX's
    assert c.postal_codes.neighborhood_count == MANIFEST["catalogs"]["c_Colonia"]["count"]
    assert len(c.tax_systems) == 19
    assert "P01" not in c.cfdi_uses and "P01" in c.withdrawn_cfdi_uses
    assert "609" not in c.tax_systems and "609" in c.withdrawn_tax_systems


MORAL_ONLY = ["601", "603", "620", "622", "623", "624"]
FISICA_ONLY = ["605", "606", "607", "608", "611", "612", "614", "615", "616", "621", "625"]
BOTH = ["610", "626"]


@pytest.mark.parametrize(
    ("code", "fisica", "moral"),
    [(c, False, True) for c in MORAL_ONLY]
    + [(c, True, False) for c in FISICA_ONLY]
    + [(c, True, True) for c in BOTH],
)
def test_regimen_applicability_as_in_the_contract(code: str, fisica: bool, moral: bool) -> None:
    t = catalogs().tax_systems[code]
    assert (t.fisica, t.moral) == (fisica, moral)


GENERAL = ["601", "603", "606", "612", "620", "621", "622", "623", "624", "625", "626"]
DEDUCTIONS = ["605", "606", "607", "608", "611", "612", "614", "615", "625"]
GENERAL_USES = ["G01", "G02", "G03", *(f"I0{i}" for i in range(1, 9))]
DEDUCTION_USES = [f"D{i:02d}" for i in range(1, 11)]


@pytest.mark.parametrize("use", GENERAL_USES)
def test_general_uses_allow_the_contract_regimenes(use: str) -> None:
    allowed = set(catalogs().cfdi_uses[use].tax_systems)
    assert set(GENERAL) <= allowed
    # SAT's sheet also allows 616 for G02 (devoluciones), beyond the contract's summary row.
    assert allowed - set(GENERAL) == ({"616"} if use == "G02" else set())


@pytest.mark.parametrize("use", DEDUCTION_USES)
def test_deductions_are_for_personas_fisicas(use: str) -> None:
    u = catalogs().cfdi_uses[use]
    assert set(u.tax_systems) == set(DEDUCTIONS)
    assert (u.fisica, u.moral) == (True, False)


def test_s01_cp01_every_regimen_and_cn01_only_605() -> None:
    c = catalogs()
    for use in ("S01", "CP01"):
        assert set(c.cfdi_uses[use].tax_systems) == set(c.tax_systems)
    assert c.cfdi_uses["CN01"].tax_systems == ("605",)
    assert set(c.cfdi_uses) == {*GENERAL_USES, *DEDUCTION_USES, "S01", "CP01", "CN01"}


def test_postal_code_lookup_gives_names() -> None:
    p = catalogs().postal_codes.get("06700")
    assert p is not None
    assert (p.state, p.state_name) == ("CMX", "Ciudad de México")
    assert p.municipality_name == "Cuauhtémoc"
    assert [n.name for n in p.neighborhoods] == ["Roma Norte"]


@pytest.mark.parametrize("code", ["", "0670", "067000", "6700 ", "١٢٣٤٥", "abcde", "-0670"])
def test_postal_code_lookup_refuses_what_is_not_five_ascii_digits(code: str) -> None:
    assert catalogs().postal_codes.get(code) is None
    assert code not in catalogs().postal_codes


def test_every_zip_round_trips_and_pages_cover_the_catalog() -> None:
    postal = catalogs().postal_codes
    rows = postal.page(0, len(postal))
    assert len(rows) == 95_749
    assert [r.code for r in rows] == sorted(r.code for r in rows)
    assert all(postal.get(r.code) == r for r in rows[::997])
    assert sum(len(r.neighborhoods) for r in rows) == postal.neighborhood_count
    colonias = postal.neighborhood_rows(0, postal.neighborhood_count)
    assert colonias[:1] == [("01000", rows[1].neighborhoods[0])]
    assert postal.neighborhood_rows(postal.neighborhood_count - 1, 5) == colonias[-1:]
