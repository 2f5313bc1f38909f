"""Aggregate tables in (GLOTIP-shaped) and rates per 100,000 population out."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from typer.testing import CliRunner

from accord.cli.main import app
from accord.research.rates import population
from tests.data_paths import SHARED_DATA

GLOTIP = SHARED_DATA / "glotip" / "data_glotip.csv"
HEADER = "country,year,sex,age_group,form_of_exploitation,count\n"
GOOD = [
    "THA,2020,Total,Total,Total,210",
    "THA,2020,Female,0 to 17 years,Sexual exploitation,<5",
    "TH,2020,female,adult,forced_labour,\"1,204\"",
    "VNM,2021,Male,Total,Other forms of exploitation,0",
]


def _table(tmp_path: Path, rows: list[str]) -> Path:
    p = tmp_path / "agg.csv"
    p.write_text(HEADER + "\n".join(rows) + "\n", encoding="utf-8")
    return p


def test_aggregates_keep_marks_and_give_rates(tmp_path: Path, runner: CliRunner) -> None:
    hub = tmp_path / "hub.duckdb"
    result = runner.invoke(app, ["tables", "ingest", str(_table(tmp_path, GOOD)), "--source", "nr", "--hub", str(hub)])
    assert result.exit_code == 0, result.output
    assert "4 counts stored (1 kept as suppression marks)" in result.output
    result = runner.invoke(app, ["tables", "rates", "--hub", str(hub)])
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.output)))
    th = next(r for r in rows if r["country"] == "TH")
    assert float(th["rate_per_100k"]) == pytest.approx(210 / population()[("TH", 2020)] * 100_000, abs=1e-3)
    # Rates are for country-year totals only; the <5 cell stays a mark and gives no number.
    assert [r["country"] for r in rows] == ["TH"]


@pytest.mark.parametrize("bad, where", [
    ("THA,2020,Femme,Total,Total,12", "row 2, column sex: not a sex code"),
    ("THA,2020,Total,Total,Total,-3", "row 2, column count: a negative count"),
    ("XYZ,2020,Total,Total,Total,3", "row 2, column country: not an ISO 3166 country"),
    ("THA,2020,Total,Total,Organ trade,3", "row 2, column form_of_exploitation"),
    ("THA,2020,Total,0-12,Total,3", "row 2, column age_group"),
    ("THA,20x0,Total,Total,Total,3", "row 2, column year: not a year"),
])
def test_bad_aggregates_are_refused_naming_row_and_column(tmp_path: Path, runner: CliRunner,
                                                          bad: str, where: str) -> None:
    hub = tmp_path / "hub.duckdb"
    result = runner.invoke(app, ["tables", "ingest", str(_table(tmp_path, [bad, *GOOD])), "--source", "nr",
                                 "--hub", str(hub)])
    assert result.exit_code == 2, result.output
    assert where in " ".join(result.output.split()), result.output
    # No cell is echoed, the count nor the category (a table given by mistake may hold records):
    # the row and column say where to look.
    assert not [v for v in ("-3", "Femme", "Organ trade", "0-12", "20x0", "XYZ") if v in result.output]
    assert not hub.exists()  # nothing stored


@pytest.mark.parametrize("sep", [";", "\t"])
def test_a_table_not_separated_by_commas_is_said_so(tmp_path: Path, runner: CliRunner, sep: str) -> None:
    """A spreadsheet saved with ';' was 'not an aggregate table: it needs the columns ...' (which
    it has) with a hint naming a page that does not exist."""
    src = tmp_path / "semi.csv"
    src.write_text(sep.join(["country", "year", "sex", "age_group", "form_of_exploitation", "count"]) + "\n"
                   + sep.join(["THA", "2020", "Total", "Total", "Total", "210"]) + "\n", encoding="utf-8")
    hub = tmp_path / "hub.duckdb"
    result = runner.invoke(app, ["tables", "ingest", str(src), "--source", "nr", "--hub", str(hub)])
    said = " ".join(result.output.split())
    assert result.exit_code == 2, said
    assert f"its header is one column holding {sep!r}: it is not comma-separated" in said
    assert "what to do: save it as CSV with commas between the columns; docs/interop.md" in said
    assert "210" not in said and not hub.exists()


@pytest.mark.slow
@pytest.mark.skipif(not GLOTIP.exists(), reason=f"UNODC's GLOTIP export is not at {GLOTIP}")
def test_glotip_export_loads_and_every_row_is_accounted_for(tmp_path: Path, runner: CliRunner) -> None:
    hub = tmp_path / "hub.duckdb"
    refused = runner.invoke(app, ["tables", "ingest", str(GLOTIP), "--source", "glotip", "--hub", str(hub)])
    assert refused.exit_code == 2 and "column Iso3_code" in refused.output and "Sark" in refused.output
    result = runner.invoke(app, ["tables", "ingest", str(GLOTIP), "--source", "glotip", "--hub", str(hub),
                                 "--country", "Sark=GG"])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    with GLOTIP.open(encoding="utf-8") as fh:
        rows = sum(1 for _ in csv.reader(fh)) - 1
    import re

    m = re.search(r"([\d,]+) rows = ([\d,]+) counts stored \(([\d,]+) kept as suppression marks\) \+ ([\d,]+) "
                  r"out of scope \+ ([\d,]+) exact repeats \+ ([\d,]+) left out", text)
    assert m, text
    n = [int(g.replace(",", "")) for g in m.groups()]
    assert n[0] == rows and n[1] + n[3] + n[4] + n[5] == rows and n[2] > 0
    rates = runner.invoke(app, ["tables", "rates", "--hub", str(hub), "--out", str(tmp_path / "r.csv")])
    assert rates.exit_code == 0, rates.output
    got = list(csv.DictReader((tmp_path / "r.csv").open(encoding="utf-8")))
    assert any(r["rate_per_100k"] for r in got) and any(r["upper_bound_per_100k"] for r in got)


def test_combined_indicators_take_each_country_year_from_one_source(tmp_path: Path,
                                                                    runner: CliRunner) -> None:
    """Hub records (TH 2024) and aggregate tables combine when they cover different
    country-years; a country-year covered twice is refused (exit 3) rather than added twice;
    small counts are hidden as in every published table."""
    import json

    from tests.test_consent_releases import N, _hub

    hub = _hub(tmp_path, runner)  # 2N records registered in TH in 2024
    result = runner.invoke(app, ["tables", "ingest", str(_table(tmp_path, [*GOOD, "KHM,2022,Total,Total,Total,3"])),
                                 "--source", "nr", "--hub", str(hub)])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["tables", "combine", "--hub", str(hub), "--json"])
    assert result.exit_code == 0, result.output
    body = json.loads(result.output)
    cells = {(c["country"], c["year"]): c for c in body["cells"]}
    assert cells["TH", 2024]["source"] == "hub" and cells["TH", 2024]["count"] == 2 * N
    assert cells["TH", 2020]["source"] == "nr" and cells["TH", 2020]["count"] == 210
    assert cells["KH", 2022]["count"] == "" and cells["KH", 2022]["mark"] == "<10"  # 3: hidden
    assert float(cells["TH", 2024]["rate_per_100k"]) == pytest.approx(
        2 * N / population()[("TH", 2024)] * 100_000, abs=1e-3)
    assert body["parameters"]["rule"].startswith("each country-year from exactly one source")
    # A second table that also counts Thailand in 2024: the same victims may be in both.
    other = tmp_path / "other"
    other.mkdir()
    result = runner.invoke(app, ["tables", "ingest", str(_table(other, ["THA,2024,Total,Total,Total,900"])),
                                 "--source", "national", "--hub", str(hub)])
    assert result.exit_code == 0, result.output
    refused = runner.invoke(app, ["tables", "combine", "--hub", str(hub)])
    assert refused.exit_code == 3, refused.output
    assert "hub and national" in refused.output and "TH 2024" in refused.output
    assert "900" not in refused.output  # no count in the message
    for args in (["--source", "nr"], ["--no-hub"]):
        ok = runner.invoke(app, ["tables", "combine", "--hub", str(hub), "--json", *args])
        assert ok.exit_code == 0, (args, ok.output)
    ok = json.loads(runner.invoke(app, ["tables", "combine", "--hub", str(hub), "--json", "--no-hub"]).output)
    assert {(c["country"], c["year"]): c["count"] for c in ok["cells"]}[("TH", 2024)] == 900
