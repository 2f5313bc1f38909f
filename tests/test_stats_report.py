"""Protected tables over a hub store, the HTML report, and the stats/report CLI."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from markupsafe import Markup
from typer.testing import CliRunner

from accord.cli.main import app
from accord.release.suppression import SuppressionRules
from accord.research.report import ReportSection, build_context, default_sections, render_report
from accord.research.stats import StatsError, StatTable, compute_tables
from accord.standard import load_standard
from accord.standard.arrow import record_schema
from accord.store import Store, open_store

STANDARD = load_standard()
runner = CliRunner()


def record(i: int, partner: str = "ngo_a", **over: Any) -> dict[str, Any]:
    age = over.pop("age", 30)
    date = over.pop("registration_date", dt.date(2021, 3, 1))

    def band(name: str) -> str | None:
        return STANDARD.derived_field(name).band_of(age)

    row: dict[str, Any] = {
        "batch_id": f"batch-{partner}", "partner": partner, "record_key": f"{partner}-{i:05d}",
        "person_pseudonym": f"p{i}", "case_type": "trafficking_victim",
        "registration_date": date, "country_of_registration": "TH",
        "area_of_registration": None, "sex": "female", "age": age, "dob_quality": "exact",
        "citizenship": ["VN"], "migration_status": "irregular",
        "unaccompanied_separated": None, "disability": "no", "country_of_exploitation": "TH",
        "type_of_exploitation": ["forced_labour"], "forced_labour_industry": None,
        "type_of_sexual_exploitation": [], "means_of_control": [],
        "recruiter_relationship": None, "gbv_incident_type": [], "rh_needs": [],
        "rh_services_received": [], "age_group": band("age_group"),
        "age_band_ctdc": band("age_band_ctdc"), "majority_status": band("majority_status"),
        "registration_year": date.year if date else None,
    }
    row.update(over)
    return row


def known_records() -> list[dict[str, Any]]:
    """Counts chosen so that the expected tables are known exactly."""
    rows: list[dict[str, Any]] = []

    def add(n: int, partner: str = "ngo_a", **over: Any) -> None:
        for _ in range(n):
            rows.append(record(len(rows), partner, **over))

    add(60, sex="female", age=30)                                    # 30--38
    add(40, sex="male", age=30, type_of_exploitation=["forced_labour", "sexual_exploitation"])
    add(25, "agency_b", sex="female", age=5, citizenship=["KH", "VN"],  # 0--8, minors
        case_type="gbv_survivor", type_of_exploitation=[], rh_needs=["clinical_management_of_rape"])
    add(3, "agency_b", sex="male", age=5, citizenship=["MM"])        # small: must be hidden
    add(20, "agency_b", sex="female", age=50, citizenship=["LA"], migration_status=None,
        registration_date=dt.date(2023, 6, 1))
    return rows


def make_store(path: Path, rows: list[dict[str, Any]], partner_names: tuple[str, ...] = ()) -> Store:
    store = open_store(path)
    store.write_table("records", pa.Table.from_pylist(rows, schema=record_schema(STANDARD)),
                      mode="replace")
    store.ensure_meta()
    by_partner: dict[str, int] = {}
    for r in rows:
        by_partner[r["partner"]] = by_partner.get(r["partner"], 0) + 1
    for p in partner_names:
        by_partner.setdefault(p, 0)
    for i, (partner, n) in enumerate(sorted(by_partner.items())):
        store.execute("INSERT INTO batches VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                      [f"b{i}", partner, STANDARD.version, n + 2, n, 2, 0, 0, f"sha{i}", "k",
                       "2026-01-01T00:00:00", "2026-01-02T00:00:00"])
    return store


@pytest.fixture
def hub(tmp_path: Path) -> Path:
    path = tmp_path / "hub.duckdb"
    make_store(path, known_records()).close()
    return path


def all_published(table: StatTable) -> list[int]:
    return [int(v) for v in np.array(table.published, dtype=object).ravel() if v is not None]


def test_tables_totals_labels_and_suppression(hub: Path) -> None:
    with open_store(hub) as store:
        result = compute_tables(store, top_citizenships=2)
    assert result.unit == "records"
    sex_age = result.table("sex_by_age_band")
    assert sex_age.dims[0].labels[:2] == ("Female", "Male")
    assert "0\u20138" in sex_age.dims[1].labels  # CTDC "0--8" shown with a dash
    assert sex_age.value(None, None) == 148
    assert sex_age.value("male", "0--8") is None  # 3 people
    # the complement is the cheapest rectangle of non-zero cells; margins stay published
    assert sex_age.suppressed == 4
    assert sex_age.value("female", "30--38") is None
    assert sex_age.value("female", "48+") == 20
    assert sex_age.value("male", None) == 43 and sex_age.value(None, "0--8") == 28
    case = result.table("case_type_by_sex")
    assert case.dims[0].labels == ("Victim of trafficking", "Survivor of gender-based violence")
    assert case.value("gbv_survivor", "female") == 25
    # no published count anywhere from 1 to 9
    for table in result.tables:
        assert not [v for v in all_published(table) if 1 <= v < 10], table.id


def test_multi_valued_and_grouped_dimensions(hub: Path) -> None:
    with open_store(hub) as store:
        result = compute_tables(store, top_citizenships=2)
    expl = result.table("exploitation_by_sex_by_majority")
    assert expl.value("sexual_exploitation", "male", "adult") == 40
    assert expl.value("forced_labour", "female", "adult") == 80
    assert expl.value("forced_labour", "male", "minor") is None  # 3 boys
    assert expl.value("forced_labour", "male", "adult") is None  # its complement
    assert expl.value("forced_labour", "male", None) == 43
    assert expl.value(None, None, None) == 60 + 80 + 3 + 20  # once per type; none-recorded left out
    assert "once under each type" in " ".join(expl.notes)
    cit = result.table("citizenship_by_sex")
    assert cit.dims[0].codes == ("VN", "KH", "_other")
    assert cit.dims[0].labels == ("Viet Nam", "Cambodia", "Other")  # primary = first listed
    assert cit.value("VN", None) == 100
    mig = result.table("migration_status_by_sex")
    assert mig.dims[0].labels[-1] == "Not recorded"
    assert mig.value("_missing", "female") == 20
    years = result.table("registrations_by_year")
    assert years.dims[0].codes == ("2021", "2022", "2023")  # gap year kept, as 0
    assert years.published == [128, 0, 20, 148]


def test_linked_margins_hidden_in_every_table(hub: Path) -> None:
    with open_store(hub) as store:
        result = compute_tables(store)
    by_sex = {}
    for tid in ("sex_by_age_band", "case_type_by_sex", "migration_status_by_sex",
                "citizenship_by_sex"):
        t = result.table(tid)
        codes = [None] * len(t.dims)
        sex_axis = [d.name for d in t.dims].index("sex")
        for sex in ("female", "male"):
            codes[sex_axis] = sex
            by_sex.setdefault(sex, set()).add(t.value(*codes))
    assert all(len(v) == 1 for v in by_sex.values()), by_sex


def test_persons_and_overlap(tmp_path: Path) -> None:
    rows = [record(i, "ngo_a", sex="female") for i in range(40)]
    rows += [record(i, "agency_b", sex="female") for i in range(30)]
    with make_store(tmp_path / "h.duckdb", rows) as store:
        persons = [{"person_id": f"P{i}", "batch_id": "x", "partner": "ngo_a",
                    "record_key": f"ngo_a-{i:05d}", "match_score": 1.0} for i in range(40)]
        # the first 20 agency_b records are people ngo_a also saw
        persons += [{"person_id": f"P{i}" if i < 20 else f"Q{i}", "batch_id": "y",
                     "partner": "agency_b", "record_key": f"agency_b-{i:05d}",
                     "match_score": 0.9} for i in range(30)]
        store.write_table("persons", pa.Table.from_pylist(persons), mode="replace")
        result = compute_tables(store)
        by_record = compute_tables(store, unit="records")
    with pytest.raises(KeyError):
        by_record.table("partner_overlap")
    assert by_record.table("case_type_by_sex").value(None, None) == 70
    assert result.unit == "persons"
    assert result.table("case_type_by_sex").value(None, None) == 50
    overlap = result.table("partner_overlap")
    assert overlap.dims[0].codes == ("agency_b", "ngo_a", "agency_b+ngo_a")
    assert overlap.published == [10, 20, 20, 50]
    assert ("People served by both agency_b and ngo_a", 20) in overlap.extra_rows
    assert ("All people served by ngo_a", 40) in overlap.extra_rows


def test_unit_persons_needs_linkage(hub: Path) -> None:
    with open_store(hub) as store, pytest.raises(StatsError, match="no linked persons"):
        compute_tables(store, unit="persons")


def test_empty_hub_is_a_clear_error(tmp_path: Path) -> None:
    with open_store(tmp_path / "empty.duckdb") as store, pytest.raises(StatsError):
        compute_tables(store)


def test_report_is_self_contained_and_escaped(tmp_path: Path) -> None:
    rows = [*known_records(), record(999, "<b>x</b>", sex="female")]
    with make_store(tmp_path / "h.duckdb", rows) as store:
        ctx = build_context(store, SuppressionRules())
        extra = ReportSection("extra", "Added by a later stage",
                              lambda c: Markup("<p id='later'>later stage</p>"))
        html = render_report(ctx, [*default_sections(), extra])
    assert "<svg" in html and "<rect" in html
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", html, re.I)
    assert "<script" not in html.lower() and "@import" not in html
    assert "&lt;b&gt;x&lt;/b&gt;" in html and "<b>x</b>" not in html
    assert "How this was protected" in html and ctx.stats.data_version in html
    assert "Family name(s)" in html  # identifiers dropped are listed
    assert "<p id='later'>later stage</p>" in html
    assert '<td class="s">s</td>' in html  # the small male 0-8 cell


def test_cli_stats_json_and_threshold(hub: Path) -> None:
    res = runner.invoke(app, ["stats", "--hub", str(hub), "--json"])
    assert res.exit_code == 0, res.output
    payload = json.loads(res.stdout)
    assert payload["rules"] == {"threshold": 10, "protection": 5}
    table = next(t for t in payload["tables"] if t["id"] == "sex_by_age_band")
    assert table["values"][-1][-1] == 148
    res = runner.invoke(app, ["stats", "--hub", str(hub), "--threshold", "2", "--json"])
    payload = json.loads(res.stdout)
    table = next(t for t in payload["tables"] if t["id"] == "sex_by_age_band")
    male = table["dims"][0]["codes"].index("male")
    assert table["values"][male][0] == 3  # 3 is publishable at threshold 2
    res = runner.invoke(app, ["stats", "--hub", str(hub)])
    assert res.exit_code == 0 and "People by sex and age band" in res.stdout
    with open_store(hub) as store:
        kinds = [r["kind"] for r in store.releases()]
        params = json.loads(store.releases()[0]["parameters"])
    assert kinds == ["tables", "tables", "tables"]
    assert params["rules"]["threshold"] == 10


def test_cli_report(hub: Path, tmp_path: Path) -> None:
    out = tmp_path / "out" / "report.html"
    res = runner.invoke(app, ["report", "--hub", str(hub), "--out", str(out)])
    assert res.exit_code == 0, res.output
    html = out.read_text(encoding="utf-8")
    assert "<svg" in html and "Population pyramid" in html
    with open_store(hub) as store:
        release = store.releases()[-1]
    assert release["kind"] == "report" and release["release_id"] in html


def test_cli_missing_hub(tmp_path: Path) -> None:
    missing = tmp_path / "nope.duckdb"
    for args in (["stats"], ["report", "--out", str(tmp_path / "r.html")]):
        res = runner.invoke(app, [*args, "--hub", str(missing)])
        assert res.exit_code == 2
        assert "no hub at" in res.output and "accord hub add" in res.output
    assert not missing.exists()
