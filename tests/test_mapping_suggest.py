"""`accord mapping suggest`: CTDC's public file and Accord's own XLSForm, with generated mappings."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml
from typer.testing import CliRunner

from accord.cli.main import app
from accord.ingest.suggest import suggest_mapping
from accord.protect.job import build_contribution
from accord.protect.keys import PartnerKey
from accord.standard import load_standard
from tests.conftest import planted_in
from tests.data_paths import SHARED_DATA

CTDC = SHARED_DATA / "ctdc" / "ctdc_2020_derived.csv"


@pytest.mark.slow
@pytest.mark.skipif(not CTDC.exists(), reason=f"CTDC's public file is not at {CTDC}")
def test_ctdc_public_file_loads_with_a_generated_mapping(tmp_path: Path, runner: CliRunner,
                                                         partner_key: PartnerKey) -> None:
    mapping = tmp_path / "ctdc.mapping.yaml"
    result = runner.invoke(app, [
        "mapping", "suggest", str(CTDC), "--out", str(mapping), "--set", "case_type=trafficking_victim",
        "--set", "country_of_registration=ZZ", "--set", "consent_statistics=yes",
        "--set", "consent_linkage=no", "--set", "consent_research=yes"])
    assert result.exit_code == 0, result.output
    text = mapping.read_text(encoding="utf-8")
    fields = yaml.safe_load(text)["fields"]
    assert fields["registration_date"] == {"column": "yearOfRegistration"}  # no "%Y.0" format needed
    assert fields["age_band_reported"]["column"] == "ageBroad"
    assert fields["type_of_exploitation"] == {"flags": {"isForcedLabour": "forced_labour"}}
    assert "GUESS" in text and "IDENTIFIER case_id <- '_unnamed_1'" in text  # called out, not silent
    out = tmp_path / "contrib"
    got = build_contribution(CTDC, mapping, "ctdc", out, partner_key)
    rows = sum(1 for _ in CTDC.open(encoding="utf-8")) - 1
    assert (got.manifest.rows_in, got.manifest.accepted, got.manifest.quarantined) == (rows, rows, 0)
    recs = pq.read_table(out / "records.parquet", columns=["majority_status", "registration_date_quality",
                                                             "age_quality", "age_band_ctdc"])
    assert set(recs["registration_date_quality"].to_pylist()) == {"year_only"}
    minors = recs["majority_status"].to_pylist().count("minor")
    # Minors are the 0--8 and 9--17 bands of the file: derived from the band, no age needed.
    with CTDC.open(encoding="utf-8") as fh:
        expected = sum(1 for line in fh if ",0--8," in line or ",9--17," in line)
    assert minors == expected
    assert recs["age_band_ctdc"].to_pylist().count("48+") > 0


def test_suggest_never_puts_an_identifier_into_a_shared_field(tmp_path: Path) -> None:
    export = tmp_path / "e.csv"
    export.write_text("Case Number,Phone,Sex,nationality,contact,Notes\n"
                      "A1,+66 81 234 5678,F,TH,someone@example.org,hello\n"
                      "A2,+66 81 234 9999,M,VN,other@example.org,\n", encoding="utf-8")
    s = suggest_mapping(export, load_standard())
    assert s.fields["phone"] == {"column": "Phone"}
    assert s.fields["sex"]["column"] == "Sex"
    assert all(spec.get("column") != "contact" for spec in s.fields.values())
    assert any("'contact' not mapped (looks like a email" in n for n in s.notes)
    assert any(n.startswith("IDENTIFIER phone") for n in s.notes)
    assert any("REQUIRED and not found" in n and "consent_statistics" in n for n in s.notes)


def test_xlsform_labelled_export_round_trips_with_a_suggested_mapping(tmp_path: Path, runner: CliRunner,
                                                                      partner_key: PartnerKey) -> None:
    """Form -> a Kobo export with *label* headers -> suggest (reading the form's labels) -> ingest."""
    form = tmp_path / "form.xlsx"
    assert runner.invoke(app, ["standard", "xlsform", "--out", str(form)]).exit_code == 0
    std = load_standard()
    answers = {"case_id": "k1", "sex": "female", "citizenship": "VN KH", "case_type": "trafficking_victim",
               "registration_date": "2024-05", "country_of_registration": "TH", "age": "17",
               "type_of_exploitation": "forced_labour forced_criminality", "consent_statistics": "yes",
               "consent_linkage": "yes", "consent_research": "no", "trafficking_status": "actual",
               "perpetrator_count": "2", "wg_seeing": "cannot_do", "countries_of_transit": "LA MM",
               "referred_to": "shelter legal"}
    # Kobo's "labels" export: headers are the questions' labels, values the choices' names.
    headers = [std.field(n).label for n in answers]
    export = tmp_path / "export.csv"
    quote = lambda v: '"' + v.replace('"', '""') + '"'  # noqa: E731
    export.write_text(",".join(quote(h) for h in headers) + "\n"
                      + ",".join(quote(v) for v in answers.values()) + "\n", encoding="utf-8")
    mapping = tmp_path / "m.yaml"
    result = runner.invoke(app, ["mapping", "suggest", str(export), "--form", str(form), "--out", str(mapping)])
    assert result.exit_code == 0, result.output
    fields = yaml.safe_load(mapping.read_text(encoding="utf-8"))["fields"]
    assert set(fields) == set(answers), sorted(set(answers) ^ set(fields))
    out = build_contribution(export, mapping, "p", tmp_path / "c", partner_key)
    assert out.manifest.accepted == 1, out.findings
    rec = pq.read_table(tmp_path / "c" / "records.parquet").to_pylist()[0]
    assert rec["trafficking_status"] == "actual" and rec["perpetrator_count"] == 2
    assert rec["countries_of_transit"] == ["LA", "MM"] and rec["referred_to"] == ["shelter", "legal"]
    assert rec["registration_date_quality"] == "month_only" and rec["disability_wg"] == "yes"
    assert rec["consent_research"] == "no" and out.manifest.consent["no_research_consent"] == 1


@pytest.mark.parametrize("form", [False, True])
def test_an_export_nothing_in_which_matches_is_said_so(tmp_path: Path, runner: CliRunner,
                                                        form: bool) -> None:
    """It printed `fields: {}` and exited 0 (a mapping that maps nothing): now exit 2, no file,
    and what to try next; a constant given with --set does not make it a mapping of the export.
    No cell value in the message."""
    export = tmp_path / "e.csv"
    export.write_text("foo,bar\nqq1,zz9\nqq1,zz9\n", encoding="utf-8")  # no column unique: no case_id guess
    extra = []
    if form:
        extra = ["--form", str(tmp_path / "intake.xlsx")]
        assert runner.invoke(app, ["standard", "xlsform", "--out", extra[1]]).exit_code == 0
    out = tmp_path / "m.yaml"
    result = runner.invoke(app, ["mapping", "suggest", str(export), "--out", str(out),
                                 "--set", "country_of_registration=TH", *extra])
    assert result.exit_code == 2, result.output
    said = " ".join(result.output.split())
    assert "no column of" in said and "matched a field of the standard" in said
    assert "(2 columns read); no mapping written" in said
    assert "write the mapping by hand (docs/mapping.md" in said
    assert ("give --form" in said) is not form  # not suggested when it was given
    assert "qq1" not in said and "zz9" not in said
    assert not out.exists()


def test_notes_on_an_unmapped_column_give_counts_not_values(tmp_path: Path, runner: CliRunner) -> None:
    """A column named like a field whose values do not fit was noted with up to six of its values
    quoted (names typed into a date column went to the terminal and the mapping file). The note
    now says how many values fail and which code lists take them, and quotes none."""
    export = tmp_path / "e.csv"
    export.write_text("Case Number,Sex,Registration date,Type of exploitation\n"
                      "A1,trafficking_victim,Maria,forced_labour Lopez\n"
                      "A2,gbv_survivor,José,forced_labour\n"
                      "A3,gbv_survivor,2024-01-02,Pérez sexual_exploitation\n", encoding="utf-8")
    result = runner.invoke(app, ["mapping", "suggest", str(export)])
    assert result.exit_code == 0, result.output
    said = " ".join(result.output.split())
    assert planted_in(said) == [], said
    assert ("sex: 'Sex' matches by name but 2 of the 2 distinct values sampled are not a code of sex "
            "(every value is a code of case_type); not mapped") in said
    assert ("registration_date: 'Registration date' matches by name but 2 of the 3 distinct values sampled "
            "are not a date YYYY-MM-DD, YYYY-MM or YYYY; not mapped (map the column by hand with a "
            "`date_format`)") in said
    assert ("type_of_exploitation: 'Type of exploitation' matches by name but 2 list items (in the 3 distinct "
            "values sampled) are not a code of type_of_exploitation (nor a code of any other field)") in said
