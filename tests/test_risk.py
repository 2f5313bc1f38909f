"""Disclosure-risk measures, checked against sdcMicro's own test expectations."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pcsv
import pytest
from typer.testing import CliRunner

from accord.cli.main import app
from accord.release.risk import RiskInputError, assess_risk, individual_risk
from tests.conftest import planted_in
from tests.data_paths import SHARED_DATA

SDC = SHARED_DATA / "sdcmicro"
needs_sdc = pytest.mark.skipif(not (SDC / "testdata.csv").is_file(),
                               reason="sdcMicro example data not found (set ACCORD_SHARED_DATA)")

# sdcMicro tests/testthat/test_indivRisk.R: the 8-record example with weights.
SDC_SAMPLE = pa.table({
    "A": [2, 3, 2, 2, 3, 3, 1, 2], "B": [3, 3, 3, 3, 3, 3, 4, 3], "C": [1, 3, 1, 2, 1, 1, 1, 1],
    "weight": [18.0, 45.5, 39.0, 17.0, 92.0, 8.0, 123.5, 51.0]})
SDC_APPROX_RK = [0.01369863, 0.08579129, 0.01369863, 0.17707583, 0.01877883, 0.01877883,
                 0.03931625, 0.01369863]


def test_weighted_individual_risk_matches_sdcmicro() -> None:
    rep = assess_risk(SDC_SAMPLE, ["A", "B", "C"], weight="weight")
    np.testing.assert_allclose(rep.individual_risk, SDC_APPROX_RK, atol=5e-9)
    assert rep.expected_reidentifications == pytest.approx(sum(SDC_APPROX_RK), abs=1e-7)
    assert rep.global_risk == pytest.approx(sum(SDC_APPROX_RK) / 8, abs=1e-8)


def test_unweighted_risk_is_inverse_class_size() -> None:
    rep = assess_risk(SDC_SAMPLE, ["A", "B", "C"])
    np.testing.assert_allclose(np.round(rep.individual_risk, 5),
                               [0.33333, 1, 0.33333, 1, 0.5, 0.5, 1, 0.33333])
    assert rep.classes == 5 and rep.smallest_class == 1
    assert rep.k_violations == {2: 3, 3: 5, 5: 8, 10: 8}
    assert rep.expected_reidentifications == pytest.approx(5.0)


def test_sdcmicro_offset_lowers_the_risk_slightly() -> None:
    plain = individual_risk(np.array([1.0, 2.0, 3.0]), np.array([40.0, 80.0, 90.0]))
    offset = individual_risk(np.array([1.0, 2.0, 3.0]), np.array([40.0, 80.0, 90.0]), 1e-4)
    assert np.all(offset < plain) and np.allclose(offset, plain, rtol=0.02)


def test_weights_equal_to_one_mean_a_census() -> None:
    rep = assess_risk(SDC_SAMPLE.set_column(3, "weight", pa.array([1.0] * 8)),
                      ["A", "B", "C"], weight="weight")
    np.testing.assert_allclose(rep.individual_risk, assess_risk(SDC_SAMPLE,
                                                                ["A", "B", "C"]).individual_risk)


def test_l_diversity_and_lists() -> None:
    table = pa.table({
        "sex": ["f", "f", "f", "m", "m"],
        "needs": pa.array([["a", "b"], ["b", "a"], ["c"], None, ["a"]],
                          type=pa.list_(pa.string())),
        "diag": ["x", "x", "y", "x", "x"]})
    rep = assess_risk(table, ["sex", "needs"], ["diag"])
    # ["a","b"] and ["b","a"] are the same set: one class of two.
    assert rep.classes == 4
    ld = assess_risk(table, ["sex"], ["diag"]).l_diversity[0]
    assert ld.distinct_min == 1 and ld.records_below_2 == 2
    assert ld.entropy_min == pytest.approx(1.0)


def test_riskiest_combinations_come_first() -> None:
    rep = assess_risk(SDC_SAMPLE, ["A", "B", "C"], top=2)
    assert [c.size for c in rep.riskiest] == [1, 1]
    assert rep.riskiest[0].risk == 1.0


def test_unknown_field_is_a_user_error() -> None:
    with pytest.raises(RiskInputError):
        assess_risk(SDC_SAMPLE, ["A", "nope"])


def test_cli_shows_bracketed_names_and_values_as_written(tmp_path: Path) -> None:
    """Column names and values are the user's text, not console markup: before, a '[/b]' ended
    the command as an unexpected error (exit 70) and a '[age]' vanished from the output."""
    data = tmp_path / "in.csv"
    data.write_text("[/b],[age]\n[/x],x\n2,y\n[/x],y\n[/x],x\n", encoding="utf-8")
    res = CliRunner().invoke(app, ["risk", "--data", str(data), "--qi", "[/b],[age]",
                                   "--sensitive", "[age]", "--show-values"])
    assert res.exit_code == 0, res.output
    assert "quasi-identifiers used (2): [/b], [age]" in res.output
    assert "l-diversity of [age]" in res.output and "│ [/x] │ x" in res.output
    # An error naming the user's column, and a hint with brackets, are shown as written too.
    res = CliRunner().invoke(app, ["risk", "--data", str(data), "--qi", "[/c],[age]"])
    assert res.exit_code == 2, res.output
    assert "not in the data: [/c]" in res.output
    assert "columns present: [/b], [age]" in res.output  # the file's, not the standard's



def test_cli_risk_shows_no_quasi_identifier_value_unless_asked(tmp_path: Path) -> None:
    """The riskiest classes were listed with their quasi-identifier values: in a terminal's
    scrollback or a CI log, that points at the people most at risk. By default (terminal and
    --json) they are now described by size, risk and their rarest fields, with what each
    quasi-identifier adds to the risk; --show-values lists the values, with a warning."""
    data = tmp_path / "in.csv"
    data.write_text("age,sex,region\n30,f,Maria\n30,f,Maria\n31,m,Lopez\n30,f,Lopez\n40,m,Maria\n"
                    "40,m,Maria\n", encoding="utf-8")
    args = ["risk", "--data", str(data), "--qi", "age,sex,region", "--top", "3"]
    res = CliRunner().invoke(app, args)
    said = " ".join(res.output.split())
    assert res.exit_code == 0, said
    assert planted_in(said) == [] and "--show-values" in said
    # Without region, (30, f) holds 3 records, (31, m) 1 and (40, m) 2: 3 expected
    # re-identifications instead of 4; age or sex alone changes nothing.
    assert "│ region │ 3.00 │ 6 │" in said and "│ age │ 4.00 │ 6 │" in said
    # The unique record (31, m, Lopez): its age is held by 1 record, its region by 2, its sex by 3.
    assert "age (1), region (2), sex (3) │ 1 │ 1.000" in said
    out = json.loads(CliRunner().invoke(app, [*args, "--json"]).stdout)
    assert planted_in(json.dumps(out)) == [] and all("values" not in c for c in out["riskiest"])
    assert out["riskiest"][1]["rarest"][0] == {"qi": "age", "records_with_value": 1}
    assert {d["qi"]: d["expected_reidentifications_without"] for d in out["drivers"]} == {
        "age": 4.0, "sex": 4.0, "region": 3.0}
    shown = CliRunner().invoke(app, [*args, "--show-values"])
    assert shown.exit_code == 0 and planted_in(shown.stdout) == ["Maria", "Lopez"]
    assert "warning: --show-values" in " ".join(shown.stderr.split())
    out = json.loads(CliRunner().invoke(app, [*args, "--json", "--show-values"]).stdout)
    assert out["riskiest"][1]["values"] == {"age": "31", "sex": "m", "region": "Lopez"}


def test_cli_risk_of_a_file_without_rows_says_so(tmp_path: Path) -> None:
    (tmp_path / "in.csv").write_text("a,b\n", encoding="utf-8")
    res = CliRunner().invoke(app, ["risk", "--data", str(tmp_path / "in.csv"), "--qi", "a"])
    assert res.exit_code == 2, res.output
    said = " ".join(res.output.split())
    assert "no records" in said and "a file with data rows under its header (--data)" in said


@needs_sdc
def test_cli_risk_on_sdcmicro_testdata() -> None:
    res = CliRunner().invoke(app, ["risk", "--data", str(SDC / "testdata.csv"),
                                   "--qi", "urbrur,water,sex,age",
                                   "--weight", "sampling_weight", "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out["records"] == 4580 and out["weighted"]
    table = pcsv.read_csv(SDC / "testdata.csv")
    rep = assess_risk(table, ["urbrur", "water", "sex", "age"], weight="sampling_weight")
    assert out["expected_reidentifications"] == pytest.approx(rep.expected_reidentifications)
    assert out["global_risk"] == pytest.approx(rep.expected_reidentifications / 4580)
    assert 0 < out["global_risk"] < 0.05


@needs_sdc
def test_francdat_classes() -> None:
    table = pcsv.read_csv(SDC / "francdat.csv")
    rep = assess_risk(table, ["Key1", "Key2", "Key3", "Key4"], weight="w")
    # Key combinations of the textbook example: records 1 and 8 share one, 2 and 3 another.
    assert rep.classes == 6
    assert rep.k_violations[2] == 4
