from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from accord.cli.main import app
from accord.errors import StandardError
from accord.standard import FieldRole, load_standard
from accord.standard.arrow import record_schema
from accord.standard.model import parse_standard


def test_packaged_standard_covers_the_issue() -> None:
    s = load_standard()
    names = set(s.field_names)
    for needed in ("case_type", "registration_date", "sex", "date_of_birth", "age", "citizenship",
                   "country_of_registration", "area_of_registration", "country_of_exploitation",
                   "migration_status", "unaccompanied_separated", "type_of_exploitation",
                   "forced_labour_industry", "type_of_sexual_exploitation", "means_of_control",
                   "recruiter_relationship", "gbv_incident_type", "rh_needs", "rh_services_received",
                   "disability", "given_name", "family_name", "phone", "document_number"):
        assert needed in names, needed
    assert {f.name for f in s.identifiers} >= {"given_name", "family_name", "date_of_birth", "phone",
                                               "document_number"}
    assert len(s.field("gbv_incident_type").codes or ()) == 6
    assert "forced_criminality" in s.field("type_of_exploitation").code_values
    assert s.derived_field("age_band_ctdc").band_of(19) == "18--20"
    assert s.derived_field("age_group").band_of(60) == "60+"
    assert s.field("sex").codes and {c.ctdc for c in s.field("sex").codes} >= {"Female", "Male"}


def test_record_schema_has_no_identifiers() -> None:
    s = load_standard()
    schema = record_schema(s)
    assert not {f.name for f in s.by_role(FieldRole.IDENTIFIER)} & set(schema.names)
    assert "person_pseudonym" in schema.names and "age_group" in schema.names


def _mutated(mutate: object) -> str:
    raw = yaml.safe_load((Path(__file__).parents[1] / "src/accord/standard/standard.yaml").read_text())
    assert callable(mutate)
    mutate(raw)
    return yaml.safe_dump(raw)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda r: r["fields"][0].update(role="secret"), "role"),
        (lambda r: next(f for f in r["fields"] if f["name"] == "sex")["codes"].append(
            {"code": "male", "label": "again"}), "duplicate code 'male'"),
        (lambda r: next(f for f in r["fields"] if f["name"] == "sex").update(codes=[]), "empty code list"),
        (lambda r: r["fields"].append(dict(r["fields"][0])), "duplicate field names"),
    ],
)
def test_invalid_standard_is_a_clear_error(mutate: object, message: str) -> None:
    with pytest.raises(StandardError) as err:
        parse_standard(_mutated(mutate), "custom.yaml")
    assert message in str(err.value)
    assert "custom.yaml" in str(err.value)


def test_dictionary_cli(runner: CliRunner) -> None:
    result = runner.invoke(app, ["standard", "dictionary"])
    assert result.exit_code == 0
    assert "| `sex` | code | quasi_identifier |" in result.stdout
    assert "TransgenderFeminine" in result.stdout


def test_validate_cli_rejects_bad_file(runner: CliRunner, tmp_path: Path) -> None:
    bad = tmp_path / "s.yaml"
    bad.write_text(_mutated(lambda r: r["fields"][0].update(role="secret")))
    result = runner.invoke(app, ["standard", "validate", str(bad)])
    assert result.exit_code == 2
    assert "Traceback" not in result.output


def test_xlsform_and_its_mapping_round_trip(runner: CliRunner, tmp_path: Path) -> None:
    """The generated form passes pyxform, and an export of it ingests with the generated mapping."""
    from openpyxl import load_workbook

    from accord.protect.job import build_contribution
    from accord.protect.keys import create_partner_key

    form, mapping = tmp_path / "form.xlsx", tmp_path / "form.mapping.yaml"
    result = runner.invoke(app, ["standard", "xlsform", "--out", str(form), "--mapping-out", str(mapping)])
    assert result.exit_code == 0, result.output
    survey = load_workbook(form)["survey"]
    names = [row[1] for row in survey.iter_rows(min_row=2, values_only=True)]
    assert "type_of_exploitation" in names and "rh_needs" in names
    columns = [c["column"] for c in yaml.safe_load(mapping.read_text())["fields"].values()]
    row = {c: "" for c in columns}
    row.update({"grp_person/case_id": "k1", "grp_person/sex": "female", "grp_person/citizenship": "VN KH",
                "grp_case/case_type": "trafficking_victim", "grp_case/registration_date": "2024-05-01",
                "grp_case/country_of_registration": "TH", "grp_person/age": "17",
                "grp_exploitation/type_of_exploitation": "forced_labour forced_criminality",
                "grp_consent/consent_statistics": "yes", "grp_consent/consent_linkage": "no",
                "grp_consent/consent_research": "yes"})
    export = tmp_path / "export.csv"
    export.write_text(",".join(columns) + "\n" + ",".join(row[c] for c in columns) + "\n", encoding="utf-8")
    out = build_contribution(export, mapping, "p", tmp_path / "c", create_partner_key(tmp_path / "k"))
    assert out.manifest.accepted == 1, out.findings
