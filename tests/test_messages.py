"""Messages never name record values: failing CLI paths run with planted identifiers.

Every failing in-process CLI call in the whole suite is already checked by the autouse fixture in
``conftest.py`` against the identifiers planted in the test exports. This module adds the paths
most likely to echo a value, each fed data whose every cell is a planted identifier, and the
control that shows the check can fail.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from accord.cli.main import app
from tests.conftest import CASE_CSV_HEADER, CASE_MAPPING, PLANTED_IDENTIFIERS, planted_in
from tests.test_anonymise import _write_hierarchies

runner = CliRunner()
COLUMNS = CASE_CSV_HEADER.strip().split(";")


def _hostile_export(path: Path) -> Path:
    """Rows whose cells are planted identifiers, each identifier in every column in turn."""
    rows = []
    for shift in range(len(COLUMNS)):
        row = [PLANTED_IDENTIFIERS[(shift + j) % len(PLANTED_IDENTIFIERS)] for j in range(len(COLUMNS))]
        row[0] = f"H{shift}"  # a case number, so rows are told apart
        rows.append(row)
    with path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh, delimiter=";")
        w.writerow(COLUMNS)
        w.writerows(rows)
    return path


@pytest.mark.prints_planted
def test_control_the_check_sees_a_planted_value(tmp_path: Path,
                                                _failing_cli_messages_name_no_record_value: list) -> None:
    # A path is not a record value, but a failing command that prints one shows the check works.
    res = runner.invoke(app, ["synthesize", str(tmp_path / "Maria.csv"), "--epsilon", "1",
                              "--out", str(tmp_path / "o.csv")])
    assert res.exit_code == 2
    (args, output), = _failing_cli_messages_name_no_record_value
    assert args[0] == "synthesize" and planted_in(output) == ["Maria"]


@pytest.mark.parametrize("as_json", [False, True])
def test_ingest_of_planted_values_names_none(tmp_path: Path, key_file: Path, as_json: bool) -> None:
    export = _hostile_export(tmp_path / "hostile.csv")
    mapping = tmp_path / "m.yaml"
    mapping.write_text(CASE_MAPPING)
    res = runner.invoke(app, ["ingest", str(export), "--mapping", str(mapping), "--partner", "p",
                              "--out", str(tmp_path / "c"), "--key-file", str(key_file),
                              *(["--json"] if as_json else [])])
    assert res.exit_code in (0, 2), res.output
    if res.exit_code == 0 and as_json:
        summary = json.loads(res.stdout)
        assert summary["quarantined"] == len(COLUMNS)  # every row has bad codes and dates
    assert planted_in(res.output) == []


def test_synthesize_failures_name_no_value(tmp_path: Path) -> None:
    names = tmp_path / "names.csv"
    names.write_text("age,sex\n" + "".join(f"{v},f\n" for v in PLANTED_IDENTIFIERS))
    res = runner.invoke(app, ["synthesize", str(names), "--epsilon", "1", "--bin", "age=0:100:10",
                              "--out", str(tmp_path / "o.csv")])
    assert res.exit_code == 2 and "cannot be binned" in res.output
    wide = tmp_path / "wide.csv"
    wide.write_text("who,sex\n" + "".join(f"{PLANTED_IDENTIFIERS[i % 8]}{i},f\n"
                                          for i in range(10_050)))
    res = runner.invoke(app, ["synthesize", str(wide), "--epsilon", "1",
                              "--out", str(tmp_path / "o.csv")])
    assert res.exit_code == 3 and "who" in res.output
    for out in (res.output,):
        assert planted_in(out) == []


def test_anonymise_failure_names_no_value(tmp_path: Path) -> None:
    data = tmp_path / "in.csv"
    data.write_text("age,sex,region\n" + "".join(f"30,f,{v}\n" for v in PLANTED_IDENTIFIERS))
    _write_hierarchies(tmp_path / "h")
    res = runner.invoke(app, ["anonymise", str(data), "--qi", "age,sex,region", "--hierarchies",
                              str(tmp_path / "h"), "--k", "2", "--out", str(tmp_path / "o.csv")])
    assert res.exit_code != 0
    assert planted_in(res.output) == []


def test_hub_add_of_a_tampered_contribution_names_no_value(tmp_path: Path, key_file: Path) -> None:
    export = tmp_path / "ok.csv"
    export.write_text(CASE_CSV_HEADER + "A1;Ana;Ruiz;03/04/1990;F;MX;01/02/2022;TV;FL;1;0;\n"
                      "A2;Ana;Ruiz;03/04/1991;M;MX;01/02/2022;TV;FL;1;0;\n", encoding="utf-8")
    mapping = tmp_path / "m.yaml"
    mapping.write_text(CASE_MAPPING)
    contribution = tmp_path / "c"
    ok = runner.invoke(app, ["ingest", str(export), "--mapping", str(mapping), "--partner", "p",
                             "--out", str(contribution), "--key-file", str(key_file)])
    assert ok.exit_code == 0, ok.output
    # The accepted-record file swapped for one whose every cell is a planted identifier.
    import pyarrow as pa
    import pyarrow.parquet as pq

    records = pq.read_table(contribution / "records.parquet")
    planted = pa.table({name: pa.array([PLANTED_IDENTIFIERS[i % 14] for i in range(records.num_rows)])
                        for i, name in enumerate(records.column_names)})
    pq.write_table(planted, contribution / "records.parquet")
    res = runner.invoke(app, ["hub", "add", str(contribution), "--hub", str(tmp_path / "h.duckdb")])
    assert res.exit_code != 0
    assert planted_in(res.output) == [], res.output
