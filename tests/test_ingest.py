"""Ingest through the CLI and the API: every row accounted for, every bad file a clear error."""

from __future__ import annotations

import csv
import json
from datetime import date, datetime
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from openpyxl import Workbook
from typer.testing import CliRunner

from accord.cli.main import app
from accord.errors import InputFileError, MappingError
from accord.protect.job import build_contribution
from accord.protect.keys import PartnerKey
from tests.conftest import CASE_MAPPING, EXPECTED_ACCEPTED, EXPECTED_QUARANTINED, write_case_export


def _ingest(runner: CliRunner, export: Path, mapping: Path, key_file: Path, out: Path) -> dict:
    result = runner.invoke(app, ["ingest", str(export), "--mapping", str(mapping), "--partner", "ngo-b",
                                 "--out", str(out), "--key-file", str(key_file), "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_round_trip_counts_and_quarantine(runner: CliRunner, case_export: tuple[Path, Path],
                                          key_file: Path, tmp_path: Path) -> None:
    export, mapping = case_export
    out = tmp_path / "contrib"
    summary = _ingest(runner, export, mapping, key_file, out)
    assert summary["rows_in"] == summary["accepted"] + summary["quarantined"]
    assert (summary["accepted"], summary["quarantined"]) == (EXPECTED_ACCEPTED, EXPECTED_QUARANTINED)
    assert summary["blank_rows"] == 1
    q = list(csv.DictReader(Path(summary["quarantine_report"]).read_text(encoding="utf-8").splitlines()))
    reasons = {(r["line"], r["field"], r["reason"]) for r in q}
    assert ("4", "date_of_birth", "bad_date") in reasons
    assert ("4", "citizenship", "unknown_country") in reasons
    assert ("5", "sex", "unknown_code") in reasons
    assert ("6", "case_id", "duplicate_case") in reasons
    # The quarantine report stays outside the contribution.
    assert not Path(summary["quarantine_report"]).is_relative_to(out)
    records = pq.read_table(out / "records.parquet").to_pylist()
    by_country = sorted(r["citizenship"][0] for r in records)
    assert by_country == ["GT", "MX", "MX"]  # MEX (alpha-3) became MX
    a1 = next(r for r in records if r["registration_date"] == date(2022, 2, 1))
    assert a1["age"] == 31 and a1["age_band_ctdc"] == "30--38" and a1["dob_quality"] == "exact"
    assert a1["means_of_control"] == ["debt_bondage"]
    a5 = next(r for r in records if r["registration_date"] == date(2022, 2, 8))
    assert a5["dob_quality"] == "default_jan_1" and a5["means_of_control"] is None
    a2 = next(r for r in records if r["citizenship"] == ["GT"])
    assert a2["type_of_exploitation"] == ["sexual_exploitation", "forced_labour"]
    assert a2["age"] is None and a2["dob_quality"] == "unknown"


def test_formula_cells_are_neutralised_in_quarantine_report(runner: CliRunner, key_file: Path,
                                                            tmp_path: Path) -> None:
    rows = ["A9;Ana;Ruiz;01/01/1990;=HYPERLINK(1);MX;01/02/2022;TV;FL;0;0;",
            "A8;Ana;Ruiz;01/01/1990;F;@SUM(A1);01/02/2022;TV;FL;0;0;"]
    export = write_case_export(tmp_path / "e.csv", rows)
    mapping = tmp_path / "m.yaml"
    mapping.write_text(CASE_MAPPING)
    summary = _ingest(runner, export, mapping, key_file, tmp_path / "c")
    assert summary["quarantined"] == 2
    text = Path(summary["quarantine_report"]).read_text(encoding="utf-8")
    values = [r["value"] for r in csv.DictReader(text.splitlines())]
    assert sorted(values) == ["'=HYPERLINK(1)", "'@SUM(A1)"]


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "cp1252"])
def test_encodings(encoding: str, case_export: tuple[Path, Path], partner_key: PartnerKey,
                   tmp_path: Path) -> None:
    _, mapping = case_export
    export = write_case_export(tmp_path / f"e-{encoding}.csv", encoding=encoding)
    result = build_contribution(export, mapping, "p1", tmp_path / "out", partner_key)
    assert result.manifest.accepted == EXPECTED_ACCEPTED
    assert {f.kind for f in result.findings if f.field == "given_name"} == set()


def test_comma_delimited_is_sniffed(partner_key: PartnerKey, tmp_path: Path) -> None:
    mapping = tmp_path / "m.yaml"
    mapping.write_text(CASE_MAPPING.replace('source: {delimiter: ";"}\n', ""))
    export = tmp_path / "e.csv"
    export.write_text("CaseNo,First,Last,DOB,Sex,Nat,Reg,Type,Exp,Ctrl_Debt,Ctrl_Threat,Phone\n"
                      "B1,Ana,Ruiz,01/02/1990,F,MX,01/02/2022,TV,FL,0,0,\n", encoding="utf-8")
    assert build_contribution(export, mapping, "p1", tmp_path / "out", partner_key).manifest.accepted == 1


def test_xlsx_with_excel_dates(partner_key: PartnerKey, tmp_path: Path) -> None:
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.append(["CaseNo", "First", "Last", "DOB", "Sex", "Nat", "Reg", "Type", "Exp", "Ctrl_Debt",
               "Ctrl_Threat", "Phone"])
    ws.append(["X1", "Ana", "Ruiz", datetime(1990, 2, 1), "F", "MX", datetime(2022, 3, 4), "TV", "FL", 1, 0,
               "+52 1"])
    ws.append(["X2", "Bo", "Li", 32874, "M", "CN", "44621", "TV", "FL", 0, 0, None])  # serial numbers
    ws.append([None] * 12)
    ws.append([None] * 12)
    export = tmp_path / "e.xlsx"
    wb.save(export)
    mapping = tmp_path / "m.yaml"
    mapping.write_text(CASE_MAPPING.replace('source: {delimiter: ";"}\n', ""))
    result = build_contribution(export, mapping, "p1", tmp_path / "out", partner_key)
    assert result.manifest.accepted == 2, result.findings
    assert result.manifest.blank_rows == 2
    recs = pq.read_table(tmp_path / "out" / "records.parquet").to_pylist()
    assert {r["registration_date"] for r in recs} == {date(2022, 3, 4), date(2022, 3, 1)}
    assert next(r for r in recs if r["sex"] == "male")["age"] == 32  # serial 32874 = 1990-01-01


def test_kobo_json(partner_key: PartnerKey, tmp_path: Path) -> None:
    export = tmp_path / "kobo.json"
    export.write_text(json.dumps({"count": 2, "results": [
        {"_uuid": "u1", "grp/sex": "female", "grp/nat": "VN TH", "today": "2023-01-05",
         "grp/type": "trafficking_victim", "grp/exp": "forced_labour sexual_exploitation", "grp/given": "Lan"},
        {"_uuid": "u2", "grp/sex": "male", "grp/nat": "MM", "today": "2023-01-06",
         "grp/type": "vulnerable_migrant", "grp/given": "Aung"},
    ]}), encoding="utf-8")
    mapping = tmp_path / "m.yaml"
    mapping.write_text("""
fields:
  case_id: {column: _uuid}
  given_name: {column: grp/given}
  sex: {column: grp/sex}
  citizenship: {column: grp/nat, split: " "}
  registration_date: {column: today}
  case_type: {column: grp/type}
  type_of_exploitation: {column: grp/exp, split: " "}
  country_of_registration: {value: TH}
  consent_statistics: {value: "yes"}
  consent_linkage: {value: "yes"}
  consent_research: {value: "yes"}
""")
    result = build_contribution(export, mapping, "p1", tmp_path / "out", partner_key)
    assert result.manifest.accepted == 2
    recs = pq.read_table(tmp_path / "out" / "records.parquet").to_pylist()
    assert recs[0]["citizenship"] == ["VN", "TH"]
    assert recs[1]["type_of_exploitation"] is None


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "is empty"),
        (b"\n\n  \n", "is empty"),
        (b"%PDF-1.4\x00\x01\x02binary", "not a text table"),
        (b"CaseNo;First;CaseNo\nA;B;C\n", r"duplicate column names \(columns 1 and 3"),
    ],
)
def test_unreadable_files_are_rejected_whole(content: bytes, message: str, case_export: tuple[Path, Path],
                                             partner_key: PartnerKey, tmp_path: Path) -> None:
    _, mapping = case_export
    export = tmp_path / "bad.csv"
    export.write_bytes(content)
    out = tmp_path / "out"
    with pytest.raises(InputFileError, match=message) as err:
        build_contribution(export, mapping, "p1", out, partner_key)
    assert err.value.hint
    assert not out.exists()


def test_mapping_errors_before_any_row(runner: CliRunner, case_export: tuple[Path, Path], key_file: Path,
                                       tmp_path: Path) -> None:
    export, _ = case_export
    for text, message in [
        (CASE_MAPPING.replace("column: Nat", "column: Nationality"), "column(s) the export does not have: Nationality"),
        (CASE_MAPPING.replace("F: female", "F: woman"), "codes not in the standard: woman"),
        (CASE_MAPPING.replace("  sex:", "  gender:"), "'gender' is not a field of the standard"),
        (CASE_MAPPING.replace("  case_type:", "  # case_type:"), "required fields not mapped: case_type"),
        ("fields: [1, 2]", "not a valid mapping"),
    ]:
        mapping = tmp_path / "bad.yaml"
        mapping.write_text(text)
        result = runner.invoke(app, ["ingest", str(export), "--mapping", str(mapping), "--partner", "p",
                                     "--out", str(tmp_path / "never"), "--key-file", str(key_file)])
        assert result.exit_code == 2, result.output
        assert message in result.output.replace("\n", " ") or message in " ".join(result.output.split()), \
            result.output
        assert "Traceback" not in result.output
        assert not (tmp_path / "never").exists()


def test_mapping_error_api(case_export: tuple[Path, Path], partner_key: PartnerKey, tmp_path: Path) -> None:
    export, _ = case_export
    mapping = tmp_path / "m.yaml"
    mapping.write_text(CASE_MAPPING.replace("split: \" \", codes: {FL", "codes: {FL"))
    result = build_contribution(export, mapping, "p1", tmp_path / "o", partner_key)
    # without split, "SE FL" is one unknown code
    assert any(f.kind == "unknown_code" and f.field == "type_of_exploitation" for f in result.findings)
    with pytest.raises(MappingError):
        mapping.write_text(CASE_MAPPING.replace("  sex: {column: Sex,", "  sex: {column: Sex, split: ' ',"))
        build_contribution(export, mapping, "p1", tmp_path / "o2", partner_key)


def test_ragged_rows_are_quarantined_not_lost(case_export: tuple[Path, Path], partner_key: PartnerKey,
                                              tmp_path: Path) -> None:
    _, mapping = case_export
    rows = ["R1;Ana;Ruiz;01/02/1990;F;MX;01/02/2022;TV;FL;0;0;",
            "R2;too;many;01/02/1990;F;MX;01/02/2022;TV;FL;0;0;;extra",
            "R3;Bo;Li;01/02/1990;M;CN;01/02/2022;TV;FL;0;0;"]
    export = write_case_export(tmp_path / "e.csv", rows)
    result = build_contribution(export, mapping, "p1", tmp_path / "o", partner_key)
    m = result.manifest
    assert (m.rows_in, m.accepted, m.quarantined) == (3, 2, 1)
    structural = [f for f in result.findings if f.kind == "structure"]
    assert structural and structural[0].line == 3


def test_no_key_refuses_with_instructions(runner: CliRunner, case_export: tuple[Path, Path],
                                          tmp_path: Path) -> None:
    export, mapping = case_export
    result = runner.invoke(app, ["ingest", str(export), "--mapping", str(mapping), "--partner", "p",
                                 "--out", str(tmp_path / "o"), "--key-file", str(tmp_path / "none.key")])
    assert result.exit_code == 2
    assert "accord keys init" in result.output
    assert not (tmp_path / "o").exists()


_cell = st.text(alphabet=st.sampled_from(list("AF M-9;,\"'=+@é01/2\n")), max_size=12)
_junk_row = st.one_of(st.lists(_cell, min_size=12, max_size=12), st.lists(_cell, min_size=10, max_size=14))
def _date(first: int, last: int) -> st.SearchStrategy[str]:
    return st.builds(lambda d, m, y: f"{d:02d}/{m:02d}/{y}", st.integers(1, 28), st.integers(1, 12),
                     st.integers(first, last))



# A row the case mapping accepts (the case number is set per row below, unique, never from _cell's
# alphabet, which has no 'V').
_valid_row = st.tuples(st.sampled_from(["Ana", "José", "Lucía", "Maria"]), st.sampled_from(["Ruiz", "Pérez"]),
                       st.one_of(_date(1950, 2005), st.just("")), st.sampled_from(["F", "M"]),
                       st.sampled_from(["MX", "GT"]), _date(2015, 2024), st.sampled_from(["TV", "GBV"]),
                       st.sampled_from(["FL", "SE", "FL SE", ""]),
                       st.sampled_from(["0", "1"]), st.sampled_from(["0", "1"]),
                       st.sampled_from(["", "+5215551234", "555 1234"]))
_rows = st.lists(st.one_of(_valid_row.map(lambda r: ("valid", list(r))),
                           _junk_row.map(lambda r: ("junk", r))), min_size=1, max_size=12)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(tagged=_rows)
def test_every_row_is_accounted_for(tagged: list[tuple[str, list[str]]], partner_key: PartnerKey,
                                    tmp_path_factory: pytest.TempPathFactory) -> None:
    """Whatever the cells hold, rows in = accepted + quarantined, or the file is rejected whole; the
    strategy mixes valid rows in, so both paths are exercised, and every valid row is accepted."""
    rows = [[f"V{i}", *cells] if kind == "valid" else cells for i, (kind, cells) in enumerate(tagged)]
    valid = sum(1 for kind, _ in tagged if kind == "valid")
    tmp = tmp_path_factory.mktemp("prop")
    export = tmp / "e.csv"
    with export.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh, delimiter=";")
        w.writerow(["CaseNo", "First", "Last", "DOB", "Sex", "Nat", "Reg", "Type", "Exp", "Ctrl_Debt",
                    "Ctrl_Threat", "Phone"])
        w.writerows(rows)
    mapping = tmp / "m.yaml"
    mapping.write_text(CASE_MAPPING)
    try:
        result = build_contribution(export, mapping, "p1", tmp / "o", partner_key)
    except InputFileError:
        event("file rejected whole")
        assert not (tmp / "o").exists()
        assert valid < len(rows)  # a file of valid rows only is never rejected
        return
    m = result.manifest
    event(f"rows accepted: {'some' if m.accepted else 'none'}; "
          f"quarantined: {'some' if m.quarantined else 'none'}")
    assert m.rows_in == m.accepted + m.quarantined
    non_blank = sum(1 for r in rows if any(c.strip() for c in r))
    assert m.rows_in + m.blank_rows >= non_blank  # quoted newlines can merge lines, never lose rows
    assert m.accepted >= valid


def test_chunked_reading_gives_the_same_contribution(case_export: tuple[Path, Path], partner_key: PartnerKey,
                                                     tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Large exports are read in chunks: counts, duplicates across chunks and line numbers stay exact."""
    from accord.ingest import readers

    _, mapping = case_export
    rows = [f"N{i};Ana;Ruiz;01/02/1990;F;MX;01/02/2022;TV;FL;0;0;" for i in range(3000)]
    rows += ["N5;Dup;Dup;01/02/1990;F;MX;01/02/2022;TV;FL;0;0;", "N7;ragged;row"]
    export = write_case_export(tmp_path / "e.csv", rows)
    whole = build_contribution(export, mapping, "p", tmp_path / "whole", partner_key)
    monkeypatch.setattr(readers, "CHUNK_BYTES", 4096)
    chunked = build_contribution(export, mapping, "p", tmp_path / "chunked", partner_key)
    for result in (whole, chunked):
        assert (result.manifest.rows_in, result.manifest.accepted, result.manifest.quarantined) == (3002, 3000, 2)
    assert sorted((f.line, f.kind) for f in chunked.findings) == sorted((f.line, f.kind) for f in whole.findings)
    assert {f.line for f in chunked.findings} == {3002, 3003}
    assert pq.read_table(tmp_path / "chunked" / "records.parquet").num_rows == 3000


def test_header_only_export_is_rejected(case_export: tuple[Path, Path], partner_key: PartnerKey,
                                        tmp_path: Path) -> None:
    _, mapping = case_export
    export = write_case_export(tmp_path / "e.csv", [], trailer="")
    with pytest.raises(InputFileError, match="no data rows"):
        build_contribution(export, mapping, "p", tmp_path / "o", partner_key)
    assert not (tmp_path / "o").exists() and not list(tmp_path.glob(".o.*"))
