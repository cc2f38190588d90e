"""CFDI 4.0 receptor rules with SAT's catalog data: every row of the contract's tables, the
generic RFCs, withdrawn and unknown codes, SAT zip codes, metadata limits, cfdiName and
readiness (contract §6)."""

from __future__ import annotations

import pytest

from app.clients import fiscal as f
from app.clients.validation import FieldInvalid
from tests.support import new_rfc

MORAL = new_rfc(moral=True)  # 12 characters
FISICA = new_rfc()  # 13 characters

MORAL_ONLY = ["601", "603", "620", "622", "623", "624"]
FISICA_ONLY = ["605", "606", "607", "608", "611", "612", "614", "615", "616", "621", "625"]
BOTH = ["610", "626"]
EVERY = MORAL_ONLY + FISICA_ONLY + BOTH
GENERAL = ["601", "603", "606", "612", "620", "621", "622", "623", "624", "625", "626"]
DEDUCTIONS = ["605", "606", "607", "608", "611", "612", "614", "615", "625"]
GENERAL_USES = ["G01", "G02", "G03", "I01", "I02", "I03", "I04", "I05", "I06", "I07", "I08"]
DEDUCTION_USES = [f"D{i:02d}" for i in range(1, 11)]


def errors(rfc: str, tax_system: str | None, use: str | None) -> dict[str, str]:
    receptor = f.Receptor(rfc, tax_system, use)
    return f.cross_field_errors(receptor, of_tax_system=True, of_use=True)


@pytest.mark.parametrize("code", EVERY)
def test_regimen_person_type(code: str) -> None:
    fisica_ok = code in FISICA_ONLY or code in BOTH
    moral_ok = code in MORAL_ONLY or code in BOTH
    assert ("taxSystem" not in errors(FISICA, code, None)) is fisica_ok
    assert ("taxSystem" not in errors(MORAL, code, None)) is moral_ok
    if not moral_ok:
        assert errors(MORAL, code, None)["taxSystem"] == (
            f"Tax system {code} does not apply to personas morales"
        )


@pytest.mark.parametrize("use", GENERAL_USES)
@pytest.mark.parametrize("code", EVERY)
def test_general_uses(use: str, code: str) -> None:
    rfc = FISICA if code in FISICA_ONLY or code in BOTH else MORAL
    # SAT's sheet also lists 616 for G02, beyond the contract's summary row.
    allowed = code in GENERAL or (use == "G02" and code == "616")
    found = errors(rfc, code, use)
    assert "taxSystem" not in found
    assert ("cfdiUse" not in found) is allowed, found
    if not allowed:
        assert found["cfdiUse"] == f"CFDI use {use} is not allowed for tax system {code}"


@pytest.mark.parametrize("use", DEDUCTION_USES)
@pytest.mark.parametrize("code", EVERY)
def test_deduction_uses_for_personas_fisicas_only(use: str, code: str) -> None:
    rfc = FISICA if code in FISICA_ONLY or code in BOTH else MORAL
    assert ("cfdiUse" not in errors(rfc, code, use)) is (code in DEDUCTIONS)
    # Without a régimen, the person type decides.
    assert "cfdiUse" not in errors(FISICA, None, use)
    assert (
        errors(MORAL, None, use)["cfdiUse"] == f"CFDI use {use} does not apply to personas morales"
    )


@pytest.mark.parametrize("use", ["S01", "CP01"])
@pytest.mark.parametrize("code", EVERY)
def test_s01_and_cp01_for_every_regimen(use: str, code: str) -> None:
    rfc = FISICA if code in FISICA_ONLY or code in BOTH else MORAL
    assert errors(rfc, code, use) == {}


@pytest.mark.parametrize("code", EVERY)
def test_cn01_only_with_605(code: str) -> None:
    rfc = FISICA if code in FISICA_ONLY or code in BOTH else MORAL
    assert ("cfdiUse" not in errors(rfc, code, "CN01")) is (code == "605")
    assert "cfdiUse" in errors(MORAL, None, "CN01")


def test_a_regimen_that_does_not_apply_leaves_the_use_to_the_person_type() -> None:
    # 601 is moral-only: the régimen is the error; G03 is fine for a física.
    assert errors(FISICA, "601", "G03") == {
        "taxSystem": "Tax system 601 does not apply to personas físicas"
    }
    assert set(errors(MORAL, "605", "D01")) == {"taxSystem", "cfdiUse"}


@pytest.mark.parametrize(
    ("rfc", "tax_system", "use", "bad"),
    [
        ("XAXX010101000", "616", "S01", set()),
        ("XAXX010101000", None, None, set()),
        ("XAXX010101000", "601", "S01", {"taxSystem"}),
        ("XAXX010101000", "605", None, {"taxSystem"}),  # física, but not 616
        ("XAXX010101000", "616", "CP01", {"cfdiUse"}),
        ("XAXX010101000", None, "G03", {"cfdiUse"}),
        ("XEXX010101000", "616", "S01", set()),
        ("XEXX010101000", "616", "CP01", set()),
        ("XEXX010101000", "610", None, {"taxSystem"}),
        ("XEXX010101000", None, "G01", {"cfdiUse"}),
    ],
)
def test_generic_rfcs(rfc: str, tax_system: str | None, use: str | None, bad: set[str]) -> None:
    found = errors(rfc, tax_system, use)
    assert set(found) == bad
    if "taxSystem" in bad:
        assert found["taxSystem"] == f"With the generic RFC {rfc} the tax system can only be 616"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("609", "Tax system 609 (Consolidación) is not valid for CFDI 4.0"),
        ("628", "Tax system 628 (Hidrocarburos) is not valid for CFDI 4.0"),
        ("999", "Unknown tax system: not a c_RegimenFiscal code"),
        ("60l", "Unknown tax system: not a c_RegimenFiscal code"),
        ("6" * 17, "Must be at most 16 characters"),
    ],
)
def test_bad_tax_systems(value: str, message: str) -> None:
    with pytest.raises(FieldInvalid) as caught:
        f.check_tax_system(value)
    assert caught.value.message == message


def test_tax_system_cleaned() -> None:
    assert f.check_tax_system(" 601 ") == "601"
    assert f.check_tax_system("  ") is None
    assert f.check_tax_system(None) is None


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("P01", "CFDI use P01 (Por definir) is not valid for CFDI 4.0"),
        ("p01", "CFDI use P01 (Por definir) is not valid for CFDI 4.0"),
        ("G99", "Unknown CFDI use: not a c_UsoCFDI code"),
        ("G03\x00", "Must not contain control characters"),
    ],
)
def test_bad_cfdi_uses(value: str, message: str) -> None:
    with pytest.raises(FieldInvalid) as caught:
        f.check_cfdi_use(value)
    assert caught.value.message == message


def test_cfdi_use_upper_cased() -> None:
    assert f.check_cfdi_use(" g03 ") == "G03"
    assert f.check_cfdi_use("cp01") == "CP01"


@pytest.mark.parametrize(
    ("zip_code", "country", "ok"),
    [
        ("06700", None, True),
        ("06700", "México", True),
        ("00001", None, False),  # five digits, but SAT does not list it
        ("00001", "mexico", False),
        ("00001", "MEX", False),
        ("00001", "USA", True),  # abroad: not SAT's business
        (None, None, True),
    ],
)
def test_sat_zip_codes(zip_code: str | None, country: str | None, ok: bool) -> None:
    if ok:
        f.check_sat_zip(zip_code, country)
    else:
        with pytest.raises(FieldInvalid, match="c_CodigoPostal"):
            f.check_sat_zip(zip_code, country)


# -- metadata ----------------------------------------------------------------------------------


def test_metadata_create_and_merge() -> None:
    created = f.merge_metadata({}, {"erp": "A-1", "tier": "gold"}, replace=True)
    assert created == {"erp": "A-1", "tier": "gold"}
    merged = f.merge_metadata(created, {"tier": None, "new": "x", "missing": None}, replace=False)
    assert merged == {"erp": "A-1", "new": "x"}
    assert f.merge_metadata(created, {}, replace=False) == created


@pytest.mark.parametrize(
    ("patch", "fields"),
    [
        ([], {"metadata"}),
        ("x", {"metadata"}),
        ({"n": 5}, {"metadata.n"}),
        ({"n": True, "o": {"a": "b"}, "ok": "fine"}, {"metadata.n", "metadata.o"}),
        ({"": "empty key"}, {"metadata."}),
        ({"k" * 41: "v"}, {"metadata." + "k" * 41}),
        ({"k": "v" * 501}, {"metadata.k"}),
        ({"k": "a\x00b"}, {"metadata.k"}),
        ({f"k{i}": "v" for i in range(51)}, {"metadata"}),
    ],
)
def test_metadata_limits(patch: object, fields: set[str]) -> None:
    with pytest.raises(f.MetadataInvalid) as caught:
        f.merge_metadata({}, patch, replace=True)
    assert set(caught.value.fields) == fields


def test_metadata_limits_at_their_edges() -> None:
    full = {f"k{i}": "v" * 500 for i in range(50)}
    assert f.merge_metadata({}, full, replace=True) == full
    assert f.merge_metadata({}, {"k" * 40: ""}, replace=True) == {"k" * 40: ""}
    # 50 stored keys: one more is refused, replacing one is fine.
    with pytest.raises(f.MetadataInvalid):
        f.merge_metadata(full, {"another": "x"}, replace=False)
    assert len(f.merge_metadata(full, {"k0": None, "another": "x"}, replace=False)) == 50


# -- cfdiName ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("legal_name", "expected"),
    [
        ("Cliente Example S.A. de C.V.", "CLIENTE EXAMPLE"),
        ("Cliente Example SA de CV", "CLIENTE EXAMPLE"),
        ("Cliente Example, S.A. de C.V.", "CLIENTE EXAMPLE"),
        ("Cliente Example,S.A. DE C.V.", "CLIENTE EXAMPLE"),
        ("Cliente Example S. A. de C. V.", "CLIENTE EXAMPLE"),
        ("Cliente Example S.A.", "CLIENTE EXAMPLE"),
        ("Cliente Example SA", "CLIENTE EXAMPLE"),
        ("Tecnología Fina S.A.P.I. de C.V.", "TECNOLOGÍA FINA"),
        ("Tecnología Fina SAPI de CV", "TECNOLOGÍA FINA"),
        ("Hermanos López S. de R.L. de C.V.", "HERMANOS LÓPEZ"),
        ("Hermanos López S de RL de CV", "HERMANOS LÓPEZ"),
        ("Hermanos López S. de R.L.", "HERMANOS LÓPEZ"),
        ("Despacho Contable S.C.", "DESPACHO CONTABLE"),
        ("Despacho Contable SC", "DESPACHO CONTABLE"),
        ("Fundación Ayuda A.C.", "FUNDACIÓN AYUDA"),
        ("Fundación Ayuda, AC", "FUNDACIÓN AYUDA"),
        ("Bolsa Grande S.A.B. de C.V.", "BOLSA GRANDE"),
        ("Cliente Example Sociedad Anónima de Capital Variable", "CLIENTE EXAMPLE"),
        ("Juan  Pérez   López", "JUAN PÉREZ LÓPEZ"),
        ("Casa Rosa", "CASA ROSA"),  # ends in "SA" inside a word: kept
        ("Mesa", "MESA"),
        ("S.A. de C.V.", "S.A. DE C.V."),  # nothing would be left: kept whole
        (None, None),
    ],
)
def test_cfdi_name(legal_name: str | None, expected: str | None) -> None:
    assert f.cfdi_name(legal_name) == expected


# -- readiness ---------------------------------------------------------------------------------


def ready(**values: str | None) -> dict[str, str]:
    defaults: dict[str, str | None] = {
        "rfc": MORAL,
        "legal_name": "Cliente Example S.A. de C.V.",
        "tax_system": "601",
        "cfdi_use": "G03",
        "zip_code": "06700",
    }
    defaults.update(values)
    return {i.field: i.message for i in f.readiness(**defaults)}  # type: ignore[arg-type]


def test_a_complete_client_is_ready() -> None:
    assert ready() == {}
    assert ready(cfdi_use=None) == {}  # the use is a default, not a requirement


def test_each_missing_field_is_one_issue() -> None:
    assert ready(legal_name=None, tax_system=None, zip_code=None) == {
        "legalName": "A legal name is required to invoice",
        "taxSystem": "A tax system is required to invoice",
        "address.zipCode": "A zip code is required to invoice",
    }


def test_inconsistent_fields_are_issues() -> None:
    assert set(ready(tax_system="605")) == {"taxSystem"}
    assert set(ready(cfdi_use="D01")) == {"cfdiUse"}
    assert set(ready(zip_code="00001")) == {"address.zipCode"}
    assert set(ready(tax_system="609")) == {"taxSystem"}
    assert set(ready(cfdi_use="P01")) == {"cfdiUse"}


def test_generic_rfcs_need_nothing_else() -> None:
    for rfc in ("XAXX010101000", "XEXX010101000"):
        assert ready(rfc=rfc, legal_name=None, tax_system=None, cfdi_use=None, zip_code=None) == {}
        assert ready(rfc=rfc, tax_system="616", cfdi_use="S01", zip_code="99999") == {}
        assert set(ready(rfc=rfc, tax_system="601", cfdi_use=None)) == {"taxSystem"}
