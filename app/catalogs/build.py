"""Generates `app/catalogs/data/` from SAT's data as packaged by others (`scripts/update-catalogs`).

Sources, never retyped:
- the `satcfdi` wheel from PyPI (`satcfdi/catalogs/catalogs.db`, a SQLite file of pickled
  key/value rows): codes and descriptions of c_RegimenFiscal and c_UsoCFDI, and all of
  c_CodigoPostal, c_Estado, c_Municipio, c_Localidad and c_Colonia;
- SAT's catCFDI sheet columns that satcfdi does not carry (física/moral applicability,
  validity, the uso ↔ régimen matrix), from `sources/sat-sheet/` (see its SOURCE.md).

A code that satcfdi has and the CFDI 4.0 sheet does not (609 Consolidación, P01 Por definir,
and the régimenes 628-630 of other SAT schemas) is written under `withdrawn`, so the rules can
refuse it by name. Output files are deterministic (sorted, gzip without timestamps), so the
same inputs give the same checksums. Build-time only: nothing here runs in the server.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gzip
import hashlib
import json
import pickle
import sqlite3
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
DATA_DIR = HERE / "data"
SHEET_DIR = HERE / "sources" / "sat-sheet"
SATCFDI_VERSION = "26.10.1"
CATALOGS_DB = "satcfdi/catalogs/catalogs.db"
# satcfdi's table prefix for the CFDI 4.0 namespace's catalogs.
PREFIX = "C756_"


def _table(db: sqlite3.Connection, name: str) -> dict[Any, Any]:
    # pickle is how satcfdi stores its rows; the wheel comes from PyPI with a pinned version
    # and its sha256 is recorded in the MANIFEST.
    rows = db.execute(f"SELECT key, value FROM {PREFIX}{name}").fetchall()  # noqa: S608
    return {pickle.loads(k): pickle.loads(v) for k, v in rows}  # noqa: S301


def _sheet(sheet_dir: Path, table: str) -> list[sqlite3.Row]:
    db = sqlite3.connect(":memory:")
    db.row_factory = sqlite3.Row
    for kind in ("schemas", "data"):
        candidates = [sheet_dir / f"{kind}_{table}.sql", sheet_dir / kind / f"{table}.sql"]
        candidates.append(sheet_dir / "database" / kind / f"{table}.sql")
        path = next((p for p in candidates if p.exists()), None)
        if path is None:
            raise SystemExit(f"SAT sheet file for {table} ({kind}) not found under {sheet_dir}")
        db.executescript(path.read_text(encoding="utf-8"))
    return db.execute(f"SELECT * FROM {table} ORDER BY id").fetchall()  # noqa: S608


def _flag(value: object) -> bool:
    return str(value).strip() == "1"


def regimenes(db: sqlite3.Connection, sheet_dir: Path) -> dict[str, Any]:
    names = _table(db, "c_RegimenFiscal")
    sheet = {row["id"]: row for row in _sheet(sheet_dir, "cfdi_40_regimenes_fiscales")}
    missing = set(sheet) - set(names)
    if missing:
        raise SystemExit(f"c_RegimenFiscal codes in the SAT sheet but not in satcfdi: {missing}")
    entries, withdrawn = [], []
    for code in sorted(names):
        row = sheet.get(code)
        if row is None or row["vigencia_hasta"]:
            withdrawn.append({"code": code, "description": names[code]})
            continue
        entries.append(
            {
                "code": code,
                "description": names[code],
                "fisica": _flag(row["aplica_fisica"]),
                "moral": _flag(row["aplica_moral"]),
                "validFrom": row["vigencia_desde"],
            }
        )
    return {"entries": entries, "withdrawn": withdrawn}


def usos(db: sqlite3.Connection, sheet_dir: Path, tax_systems: set[str]) -> dict[str, Any]:
    names = _table(db, "c_UsoCFDI")
    sheet = {row["id"]: row for row in _sheet(sheet_dir, "cfdi_40_usos_cfdi")}
    missing = set(sheet) - set(names)
    if missing:
        raise SystemExit(f"c_UsoCFDI codes in the SAT sheet but not in satcfdi: {missing}")
    entries, withdrawn = [], []
    for code in sorted(names):
        row = sheet.get(code)
        if row is None or row["vigencia_hasta"]:
            withdrawn.append({"code": code, "description": names[code]})
            continue
        allowed = {c.strip() for c in row["regimenes_fiscales_receptores"].split(",") if c.strip()}
        unknown = allowed - tax_systems
        if unknown:
            raise SystemExit(f"c_UsoCFDI {code} names régimenes not in force: {unknown}")
        entries.append(
            {
                "code": code,
                "description": names[code],
                "fisica": _flag(row["aplica_fisica"]),
                "moral": _flag(row["aplica_moral"]),
                "taxSystems": sorted(allowed),
                "validFrom": row["vigencia_desde"],
            }
        )
    return {"entries": entries, "withdrawn": withdrawn}


def places(db: sqlite3.Connection) -> dict[str, list[dict[str, str]]]:
    estados = _table(db, "c_Estado")  # code -> [country, name]
    municipios = _table(db, "c_Municipio")  # (code, state) -> name
    localidades = _table(db, "c_Localidad")  # (code, state) -> name
    return {
        "c_Estado": [
            {"code": code, "country": country, "name": name}
            for code, (country, name) in sorted(estados.items())
        ],
        "c_Municipio": [
            {"state": state, "code": code, "name": name}
            for (code, state), name in sorted(municipios.items(), key=lambda kv: kv[0][::-1])
        ],
        "c_Localidad": [
            {"state": state, "code": code, "name": name}
            for (code, state), name in sorted(localidades.items(), key=lambda kv: kv[0][::-1])
        ],
    }


def _tsv_gz(header: list[str], rows: list[list[str]]) -> bytes:
    """Tab-separated, unquoted (the loader splits on tabs), one row per line, gzipped."""
    lines = []
    for row in [header, *rows]:
        if any(ch in value for value in row for ch in "\t\n\r"):
            raise SystemExit(f"a value holds a tab or a line break: {row!r}")
        lines.append("\t".join(row))
    # mtime=0 and no file name: the same rows always give the same bytes (and checksum).
    return gzip.compress(("\n".join(lines) + "\n").encode("utf-8"), compresslevel=9, mtime=0)


def postal_files(db: sqlite3.Connection) -> tuple[bytes, int, bytes, int]:
    codes = _table(db, "c_CodigoPostal")  # zip -> [state, municipio, localidad, franja, huso]
    colonias = _table(db, "c_Colonia")  # (code, zip) -> name
    zip_rows = [[z, v[0], v[1], v[2]] for z, v in sorted(codes.items())]
    colonia_rows = [
        [z, c, name] for (c, z), name in sorted(colonias.items(), key=lambda kv: kv[0][::-1])
    ]
    return (
        _tsv_gz(["code", "state", "municipality", "locality"], zip_rows),
        len(zip_rows),
        _tsv_gz(["zipCode", "code", "name"], colonia_rows),
        len(colonia_rows),
    )


def _json(value: dict[str, Any]) -> bytes:
    """One entry per line: readable diffs when SAT changes a row, and still plain JSON."""
    parts = []
    for key, item in value.items():
        if isinstance(item, list):
            rows = ",\n".join("  " + json.dumps(row, ensure_ascii=False) for row in item)
            parts.append(f" {json.dumps(key)}: [\n{rows}\n ]")
        else:
            parts.append(f" {json.dumps(key)}: {json.dumps(item, ensure_ascii=False)}")
    return ("{\n" + ",\n".join(parts) + "\n}\n").encode()


NAMES = {
    "c_RegimenFiscal": "Régimen fiscal",
    "c_UsoCFDI": "Uso del CFDI",
    "c_CodigoPostal": "Código postal",
    "c_Estado": "Estado",
    "c_Municipio": "Municipio",
    "c_Localidad": "Localidad",
    "c_Colonia": "Colonia",
}


def _download_wheel(version: str, into: Path) -> Path:
    """`pip download` of the pinned satcfdi wheel only (no dependencies: we want its data)."""
    subprocess.run(  # noqa: S603
        [
            *(sys.executable, "-m", "pip", "download", "--quiet", "--no-deps"),
            *("--only-binary=:all:", "--dest", str(into), f"satcfdi=={version}"),
        ],
        check=True,
    )
    return next(into.glob("satcfdi-*.whl"))


def _sheet_commit(sheet_dir: Path) -> str:
    if (sheet_dir / ".git").exists():
        out = subprocess.run(  # noqa: S603
            ["git", "-C", str(sheet_dir), "rev-parse", "HEAD"],  # noqa: S607
            check=True,
            capture_output=True,
            text=True,
        )
        return out.stdout.strip()
    source = (sheet_dir / "SOURCE.md").read_text(encoding="utf-8")
    return source.split("commit `", 1)[1].split("`", 1)[0]


def build(wheel: Path, sheet_dir: Path, out_dir: Path) -> dict[str, Any]:
    """Writes every catalog file and MANIFEST.json into `out_dir`; returns the manifest."""
    with tempfile.TemporaryDirectory() as tmp:
        with zipfile.ZipFile(wheel) as archive:
            archive.extract(CATALOGS_DB, tmp)
        db = sqlite3.connect(Path(tmp) / CATALOGS_DB)
        regimen = regimenes(db, sheet_dir)
        uso = usos(db, sheet_dir, {e["code"] for e in regimen["entries"]})
        place = places(db)
        zips, zip_count, colonias, colonia_count = postal_files(db)
        db.close()
    files: dict[str, tuple[str, bytes, int, int]] = {
        "c_RegimenFiscal": ("c_RegimenFiscal.json", _json(regimen), len(regimen["entries"]), 0),
        "c_UsoCFDI": ("c_UsoCFDI.json", _json(uso), len(uso["entries"]), 0),
        "c_CodigoPostal": ("c_CodigoPostal.tsv.gz", zips, zip_count, 0),
        "c_Colonia": ("c_Colonia.tsv.gz", colonias, colonia_count, 0),
    }
    for key in ("c_Estado", "c_Municipio", "c_Localidad"):
        files[key] = (f"{key}.json", _json({"entries": place[key]}), len(place[key]), 0)
    out_dir.mkdir(parents=True, exist_ok=True)
    catalogs: dict[str, Any] = {}
    for catalog_id, (name, payload, count, _) in files.items():
        (out_dir / name).write_bytes(payload)
        catalogs[catalog_id] = {
            "name": NAMES[catalog_id],
            "file": name,
            "count": count,
            "sha256": hashlib.sha256(payload).hexdigest(),
        }
    catalogs["c_RegimenFiscal"]["withdrawn"] = [e["code"] for e in regimen["withdrawn"]]
    catalogs["c_UsoCFDI"]["withdrawn"] = [e["code"] for e in uso["withdrawn"]]
    manifest = {
        "generated": dt.datetime.now(dt.UTC).date().isoformat(),
        "generator": "scripts/update-catalogs (app/catalogs/build.py)",
        "source": {
            "name": "SAT catCFDI (CFDI 4.0) as packaged by satcfdi",
            "package": "satcfdi",
            "version": wheel.name.split("-")[1],
            "wheel": wheel.name,
            "wheelSha256": hashlib.sha256(wheel.read_bytes()).hexdigest(),
            "file": CATALOGS_DB,
        },
        "satSheet": {
            "repository": "phpcfdi/resources-sat-catalogs",
            "commit": _sheet_commit(sheet_dir),
            "columns": "c_RegimenFiscal aplica_fisica/aplica_moral/vigencia; c_UsoCFDI "
            "aplica_fisica/aplica_moral/vigencia/regimenes_fiscales_receptores",
        },
        "derivations": [
            "Codes in satcfdi but absent from (or expired in) the CFDI 4.0 sheet are listed "
            "under 'withdrawn' in their catalog file and refused by the rules.",
            "c_UsoCFDI taxSystems: the sheet's comma-separated 'Régimen Fiscal Receptor' column, "
            "split, trimmed and sorted.",
        ],
        "catalogs": catalogs,
    }
    text = json.dumps(manifest, ensure_ascii=False, indent=1) + "\n"
    (out_dir / "MANIFEST.json").write_text(text, encoding="utf-8")
    return manifest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Regenerate app/catalogs/data from satcfdi.")
    parser.add_argument("--version", default=SATCFDI_VERSION, help="satcfdi version to download")
    parser.add_argument("--wheel", type=Path, help="a satcfdi wheel already downloaded")
    parser.add_argument("--sat-sheet", type=Path, default=SHEET_DIR, help="SAT sheet files")
    parser.add_argument("--out", type=Path, default=DATA_DIR)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        wheel = args.wheel or _download_wheel(args.version, Path(tmp))
        manifest = build(wheel, args.sat_sheet, args.out)
    for catalog_id, info in manifest["catalogs"].items():
        print(f"{catalog_id:16} {info['count']:>7}  {info['file']}")
    print(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
