"""Research consent in the hub's research releases (issue 15): records whose consent_research is
not "yes" never enter DP tables or DP synthetic data, and each release record counts them in
aggregate. Statistics (`accord stats`) still counts every shared record: the control that shows
the records are in the hub and the releases could have used them."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from accord.cli.main import app
from tests.hubs import hub_from_export

N = 240  # women with research consent; as many men without


def _hub(tmp_path: Path, runner: CliRunner) -> Path:
    lines = ["case,given,family,dob,sex,ctype,reg,share,research"]
    for i in range(2 * N):
        female = i % 2 == 0
        lines.append(f"C{i},G{i},F{i},{1970 + i % 40}-0{1 + i % 9}-1{i % 9},{'F' if female else 'M'},"
                     f"trafficking_victim,2024-0{1 + i % 9}-15,yes,{'yes' if female else 'no'}")
    export = tmp_path / "export.csv"
    export.write_text("\n".join(lines) + "\n", encoding="utf-8")
    mapping = tmp_path / "map.yaml"
    mapping.write_text(
        "fields:\n  case_id: {column: case}\n  given_name: {column: given}\n  family_name: {column: family}\n"
        "  date_of_birth: {column: dob}\n  sex: {column: sex, codes: {F: female, M: male}}\n"
        "  case_type: {column: ctype}\n  registration_date: {column: reg}\n"
        "  country_of_registration: {value: TH}\n  consent_statistics: {column: share}\n"
        "  consent_linkage: {column: share}\n  consent_research: {column: research}\n",
        encoding="utf-8")
    return hub_from_export(tmp_path, export, mapping)


@pytest.fixture()
def hub(tmp_path: Path, runner: CliRunner) -> Path:
    return _hub(tmp_path, runner)


def _sex_totals(rows: list[dict[str, object]]) -> dict[str, float]:
    return {str(r["sex"]): float(r["count"]) for r in rows  # type: ignore[arg-type]
            if r["case_type"] == "trafficking_victim"}


def test_dp_tables_leave_out_records_without_research_consent(hub: Path, tmp_path: Path,
                                                              runner: CliRunner) -> None:
    # Control: statistics count the men (they consented to share for statistics).
    res = runner.invoke(app, ["stats", "--hub", str(hub), "--json", "--privacy", "suppression"])
    assert res.exit_code == 0, res.output
    t = next(t for t in json.loads(res.output)["tables"] if t["id"] == "case_type_by_sex")
    male = t["dims"][1]["codes"].index("male")
    assert t["values"][-1][male] == N
    out = tmp_path / "dp"
    res = runner.invoke(app, ["release", "tables", "--hub", str(hub), "--out", str(out),
                              "--epsilon", "5", "--tables", "case_type_by_sex", "--json"])
    assert res.exit_code == 0, res.output
    body = json.loads(res.output)
    consent = body["parameters"]["consent"]
    assert consent == {**consent, "purpose": "research", "records": 2 * N, "records_used": N,
                       "records_withheld": N}
    totals = _sex_totals(body["tables"]["case_type_by_sex"])
    assert totals["female"] > N / 2 and totals["male"] < N / 4  # men never entered
    record = json.loads((out / "release.json").read_text())
    assert record["parameters"]["consent"]["records_withheld"] == N
    res = runner.invoke(app, ["release", "tables", "--hub", str(hub), "--out", str(tmp_path / "t"),
                              "--epsilon", "1", "--tables", "case_type_by_sex"])
    assert res.exit_code == 0 and f"{N:,} without research consent left out" in res.output


def test_synthetic_data_leave_out_records_without_research_consent(hub: Path, tmp_path: Path,
                                                                   runner: CliRunner) -> None:
    out = tmp_path / "syn"
    res = runner.invoke(app, ["release", "synthetic", "--hub", str(hub), "--out", str(out),
                              "--epsilon", "5", "--rows", "400", "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["consent"]["records_withheld"] == N
    with (out / "synthetic.csv").open(encoding="utf-8") as fh:
        sexes = [r["sex"] for r in csv.DictReader(fh)]
    assert len(sexes) == 400
    assert sexes.count("male") < 0.2 * len(sexes)  # half the hub is men; none entered
    record = json.loads((out / "release.json").read_text())
    assert record["parameters"]["consent"] == {**record["parameters"]["consent"],
                                               "records_used": N, "records_withheld": N}
