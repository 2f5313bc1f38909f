"""The gender and youth lens (issue 18): focus age bands, focus tables in stats (DP and
suppression), the report's focus-group section, the data dictionary and DP release tables."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from accord.cli.main import app
from accord.protect.job import build_contribution
from accord.protect.keys import PartnerKey
from accord.standard import load_standard
from tests.test_standard_v02 import _write

STANDARD = load_standard()
FOCUS_TABLES = ("gbv_incident_by_sex_by_adolescent_band", "rh_needs_by_sex_by_adolescent_band",
                "rh_services_by_sex_by_adolescent_band", "exploitation_by_sex_by_youth",
                "migration_status_by_sex_by_young_people",
                "gbv_services_referred_by_sex_by_adolescent_band",
                "gbv_services_received_by_sex_by_adolescent_band",
                "survivor_rh_needs_by_sex_by_adolescent_band")
FOCUS_TITLES = ("Women and girls", "Adolescents and youth", "Irregular and undocumented migrants",
                "Survivors of sexual violence", "People with reproductive-health needs")
runner = CliRunner()


def test_focus_bands_from_an_age_and_from_a_reported_band_only_when_inside(
        tmp_path: Path, partner_key: PartnerKey) -> None:
    rows = [
        "a1,Ana,female,2024-01-05,trafficking_victim,VN,yes,yes,yes,12-17,,",  # 12-17: 10-24 only
        "a2,Bo,male,2024-01-06,trafficking_victim,VN,yes,yes,yes,18-20,,",  # 15-24 and 10-24
        "a3,Cy,female,2024-01-07,trafficking_victim,VN,yes,yes,yes,9-17,,",  # straddles 0-9/10-24
        "a4,Di,female,2024-01-08,trafficking_victim,VN,yes,yes,yes,21-23,,",  # 20+ and youth
        "a5,Ed,male,2024-01-09,trafficking_victim,VN,yes,yes,yes,27-29,,",
    ]
    export, mapping = _write(tmp_path, rows)
    build_contribution(export, mapping, "p1", tmp_path / "c", partner_key)
    got = {r["age_band_reported"]: (r["age_adolescent"], r["age_youth"], r["age_young_people"])
           for r in pq.read_table(tmp_path / "c" / "records.parquet").to_pylist()}
    assert got["12-17"] == (None, None, "10-24")
    assert got["18-20"] == (None, "15-24", "10-24")
    assert got["9-17"] == (None, None, None)
    assert got["21-23"] == ("20+", "15-24", "10-24")
    assert got["27-29"] == ("20+", "25+", "25+")
    # from an exact age: every band holds each age exactly once
    for d in ("age_adolescent", "age_youth", "age_young_people"):
        bands = STANDARD.derived_field(d)
        assert [sum(lo <= a <= hi for lo, hi, _ in bands.bands or ()) for a in range(120)] == [1] * 120
    assert STANDARD.derived_field("age_youth").band_of(24) == "15-24"
    assert STANDARD.derived_field("age_adolescent").band_of(10) == "10-14"


def test_dictionary_gives_definitions_and_sources(tmp_path: Path) -> None:
    out = tmp_path / "dict.md"
    res = runner.invoke(app, ["standard", "dictionary", "--out", str(out)])
    text = out.read_text(encoding="utf-8") if out.exists() else res.output
    assert res.exit_code == 0, res.output
    for name, source in (("age_adolescent", "WHO"), ("age_youth", "A/36/215"),
                         ("age_young_people", "UNFPA")):
        line = next(x for x in text.splitlines() if x.startswith(f"| `{name}`"))
        assert source in line


def _shown(values: object) -> list[int]:
    return [int(v) for v in np.array(values, dtype=object).ravel() if v is not None]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from accord.demo import DemoConfig, run_demo

    return run_demo(DemoConfig(out=tmp_path_factory.mktemp("focus") / "demo", people=1500)).hub


@pytest.mark.slow
def test_stats_and_report_show_each_focus_group_protected(demo: Path, tmp_path: Path) -> None:
    res = runner.invoke(app, ["stats", "--hub", str(demo), "--json"])
    assert res.exit_code == 0, res.output
    dp = {t["id"]: t for t in json.loads(res.output)["tables"]}
    for tid in FOCUS_TABLES:
        t = dp[tid]
        assert all(v == 0 or v >= 10 for v in _shown(t["values"])), tid  # no 1-9 shown
        for d in t["dims"]:  # labels, not codes
            assert "female" not in d["labels"] and "sexual_exploitation" not in d["labels"]
    assert "Female" in dp["gbv_incident_by_sex_by_adolescent_band"]["dims"][1]["labels"]
    assert "15-24" in dp["exploitation_by_sex_by_youth"]["dims"][2]["codes"]
    # the same tables with suppression, audited by the LP check
    res = runner.invoke(app, ["stats", "--hub", str(demo), "--json", "--privacy", "suppression"])
    if res.exit_code == 0:
        sup = json.loads(res.output)
        assert any("linear-programming audit" in n for n in sup["notes"])
        for t in sup["tables"]:
            if t["id"] in FOCUS_TABLES:
                assert all(v == 0 or v >= 10 for v in _shown(t["values"])), t["id"]
    else:  # refused: tables of another data version were published (exit 3, said why)
        assert res.exit_code == 3, res.output
    out = tmp_path / "r.html"
    res = runner.invoke(app, ["report", "--hub", str(demo), "--out", str(out)])
    assert res.exit_code == 0, res.output
    html = out.read_text(encoding="utf-8")
    focus = html[html.index('id="focus-women_girls"'):]
    focus = focus[:focus.index("<h2")]  # this section only
    for title in FOCUS_TITLES:
        assert f">{title}</h3>" in focus, title
    cells = [int(v.replace(",", "")) for v in
             re.findall(r'<td class="n">([\d,]+)</td>', focus[:focus.index("Share met")])]
    assert cells and all(v == 0 or v >= 10 for v in cells), "a count from 1 to 9 is shown"
    assert '<td class="s">' in focus  # hidden figures are marked, not dropped
    sentences = re.findall(r'<p class="lead">(.*?)</p>', focus, re.S)
    assert len(sentences) == len(FOCUS_TITLES)
    for sentence in sentences:  # numbers in sentences: 0, >= 10, a share or an age band
        for v in re.findall(r"(?<![\d-])(\d[\d,]*)(?![\d,]*(?: %|-\d))", sentence):
            assert int(v.replace(",", "")) == 0 or int(v.replace(",", "")) >= 10, sentence
    assert "sexual_exploitation" not in focus and "clinical_management" not in focus


@pytest.mark.slow
def test_dp_release_tables_carry_the_focus_tables(demo: Path, tmp_path: Path) -> None:
    res = runner.invoke(app, ["release", "tables", "--help"])
    assert res.exit_code == 0
    out = tmp_path / "dp"
    res = runner.invoke(app, ["release", "tables", "--hub", str(demo), "--out", str(out), "--epsilon", "1"])
    assert res.exit_code == 0, res.output
    names = " ".join(p.name for p in out.rglob("*"))
    for tid in FOCUS_TABLES:
        assert tid in names, tid


@pytest.mark.slow
def test_sdmx_hxl_export_carries_the_focus_tables(demo: Path, tmp_path: Path) -> None:
    res = runner.invoke(app, ["stats", "--hub", str(demo), "--json"])
    published = tmp_path / "t.json"
    published.write_text(res.output, encoding="utf-8")
    res = runner.invoke(app, ["tables", "export", str(published), "--out", str(tmp_path / "x"),
                              "--period", "2024"])
    assert res.exit_code == 0, res.output
    sdmx = (tmp_path / "x" / "tables.sdmx.csv").read_text(encoding="utf-8")
    for tid in FOCUS_TABLES:
        assert f"TIP_{tid.upper()}" in sdmx, tid
    assert ",Y15T24," in sdmx and ",Y10T14," in sdmx
    # a table of GBV cases only says so in its key (CASE_TYPE), not as a total over everyone
    gbv_rows = [x for x in sdmx.splitlines() if "GBV_SERVICES_REFERRED" in x]
    assert gbv_rows and all(",GBV_SURVIVOR," in x for x in gbv_rows)
    assert all(",YES," in x for x in sdmx.splitlines() if "SURVIVOR_RH_NEEDS" in x)
    for line in sdmx.splitlines()[1:]:
        value, status = line.rsplit(",", 2)[-2:]
        assert (value == "" and status == "C") or int(value) == 0 or int(value) >= 10, line


@pytest.mark.slow
def test_simulated_survivors_are_referred_and_flagged(demo: Path) -> None:
    """The simulator refers GBV survivors to services and some receive them; ingest derives the
    survivor-of-sexual-violence flag from the GBV incident types and the types of exploitation."""
    import duckdb

    with duckdb.connect(str(demo), read_only=True) as con:
        rows = con.execute(
            "SELECT case_type, referred_to, services_received, gbv_incident_type, "
            "type_of_exploitation, sexual_violence_survivor FROM records").fetchall()
    gbv = [r for r in rows if r[0] == "gbv_survivor"]
    referred = [r for r in gbv if r[1]]
    assert len(referred) > 0.8 * len(gbv)  # most survivors have a referral recorded
    assert all(set(r[2] or ()) <= set(r[1] or ()) for r in rows)  # received only what was referred
    got = sum(len(r[2] or ()) for r in referred) / sum(len(r[1]) for r in referred)
    assert 0.4 < got < 0.9  # some needs met, not all
    assert sum("psychosocial" in r[1] for r in referred) > 0.5 * len(referred)
    for r in rows:
        sv = bool({"rape", "sexual_assault"} & set(r[3] or ())) or "sexual_exploitation" in (r[4] or ())
        recorded = bool(r[3]) or bool(r[4])
        assert r[5] == ("yes" if sv else "no" if recorded else None)


@pytest.mark.slow
def test_report_shows_gbv_services_met_and_survivors_needs(demo: Path, tmp_path: Path) -> None:
    out = tmp_path / "r.html"
    res = runner.invoke(app, ["report", "--hub", str(demo), "--out", str(out)])
    assert res.exit_code == 0, res.output
    html = out.read_text(encoding="utf-8")
    section = html[html.index('id="focus-sexual_violence"'):html.index('id="focus-rh_needs"')]
    assert "GBV services met" in section and "Share met" in section
    assert "who survived sexual violence, need: Clinical management of rape" in section
    for row in re.findall(r"<tr><th>(Female|Male), (.*?)</th>", section):
        assert row[1] in ("0-9", "10-14", "15-19", "20+", "Not recorded"), row


def test_dictionary_documents_the_survivor_flag() -> None:
    res = runner.invoke(app, ["standard", "dictionary"])
    assert res.exit_code == 0, res.output
    line = next(x for x in res.output.splitlines() if x.startswith("| `sexual_violence_survivor`"))
    assert "GBVIMS" in line and "WHO" in line and "yes (Survivor of sexual violence)" in line


def test_a_table_filter_must_name_codes_the_column_has() -> None:
    from accord.errors import StandardError
    from accord.standard.tables import parse_tables

    bad = ("tables:\n  - id: t\n    title: T\n    where: {case_type: [nobody]}\n"
           "    dims:\n      - {column: sex}\n")
    with pytest.raises(StandardError, match="codes it does not have"):
        parse_tables(bad, STANDARD)
    good = bad.replace("nobody", "gbv_survivor")
    (t,) = parse_tables(good, STANDARD)
    assert t.where == (("case_type", ("gbv_survivor",)),)


def test_a_table_of_gbv_cases_counts_only_gbv_cases_under_suppression(tmp_path: Path) -> None:
    """The table filter (tables.yaml ``where``) in the suppression path: victims of trafficking
    referred to services are not in the GBV-services tables; the same people's needs count in
    the table over everyone. The survivors' table is DP only and absent here."""
    from accord.research.stats import compute_tables
    from tests.test_stats_report import make_store, record

    rows = [record(i, case_type="gbv_survivor", age=16, referred_to=["psychosocial", "health"],
                   services_received=["psychosocial"]) for i in range(30)]
    rows += [record(100 + i, case_type="trafficking_victim", age=30,
                    referred_to=["psychosocial", "shelter"]) for i in range(40)]
    with make_store(tmp_path / "hub.duckdb", rows) as store:
        result = compute_tables(store, history=False)
    ref = result.table("gbv_services_referred_by_sex_by_adolescent_band")
    got = result.table("gbv_services_received_by_sex_by_adolescent_band")
    assert ref.value("psychosocial", "female", "15-19") == 30  # not 70: the victims are out
    assert "shelter" not in ref.dims[0].codes or ref.value("shelter", None, None) == 0
    assert got.value("psychosocial", None, None) == 30
    assert "20+" not in ref.dims[2].codes or ref.value(None, "female", "20+") == 0


def test_a_survivors_cell_is_hidden_when_its_complement_is_small(tmp_path: Path) -> None:
    """Survivors' RH needs beside the same table over everyone: where everyone minus survivors
    is 1..9, the survivors' cell is hidden, so the non-survivors' small count cannot be read as a
    difference of two published cells. Negative control: with a large complement it is shown."""
    from accord.research.stats import compute_tables
    from tests.test_stats_report import make_store, record

    def rows(non_survivors: int) -> list[dict[str, object]]:
        out = [record(i, case_type="gbv_survivor", age=16, gbv_incident_type=["rape"],
                      rh_needs=["sti_care"], sexual_violence_survivor="yes") for i in range(30)]
        out += [record(100 + i, age=16, rh_needs=["sti_care"], sexual_violence_survivor="no")
                for i in range(non_survivors)]
        return out

    for non_survivors, hidden in ((3, True), (25, False)):
        with make_store(tmp_path / f"hub{non_survivors}.duckdb", rows(non_survivors)) as store:
            result = compute_tables(store, history=False)
        everyone = result.table("rh_needs_by_sex_by_adolescent_band")
        survivors = result.table("survivor_rh_needs_by_sex_by_adolescent_band")
        assert everyone.value("sti_care", "female", "15-19") == 30 + non_survivors
        shown = survivors.value("sti_care", "female", "15-19")
        assert (shown is None) == hidden, (non_survivors, shown)
        if hidden:  # and no published margin gives it back
            assert survivors.value(None, "female", "15-19") is None
            assert survivors.value("sti_care", None, None) is None
