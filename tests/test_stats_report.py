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
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from markupsafe import Markup
from typer.testing import CliRunner

from accord.cli.main import app
from accord.release.suppression import SuppressionRules
from accord.research.report import ReportSection, build_context, default_sections, render_report
from accord.research.stats import StatsError, StatTable, compute_tables
from accord.standard import load_standard
from accord.standard.arrow import record_schema
from accord.store import Store, open_store
from accord.store.base import INSERT_BATCH_SQL
from tests.hubs import hub_from_export

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
        "age_adolescent": band("age_adolescent"), "age_youth": band("age_youth"),
        "age_young_people": band("age_young_people"),
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
        store.execute(INSERT_BATCH_SQL,
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
    assert cit.dims[0].codes == ("KH", "VN", "_other")  # by name, never by hidden totals
    assert cit.dims[0].labels == ("Cambodia", "Viet Nam", "Other")  # primary = first listed
    assert cit.value("VN", None) == 100
    mig = result.table("migration_status_by_sex")
    assert mig.dims[0].labels[-1] == "Not recorded"
    assert mig.value("_missing", "female") == 20
    years = result.table("registrations_by_year")
    assert years.dims[0].codes == ("2021", "2022", "2023")  # gap year kept, as 0
    assert years.published == [128, 0, 20, 148]


def test_margin_hidden_as_complement_is_hidden_everywhere(tmp_path: Path) -> None:
    # case type x sex: trafficking F 5 / M 2, GBV F 0 / M 15. The male total (17) is hidden there
    # as a complement; sex x age band would publish it (all are 30-38) and give the cells away.
    rows = [record(i, sex="female") for i in range(5)]
    rows += [record(10 + i, sex="male") for i in range(2)]
    rows += [record(20 + i, sex="male", case_type="gbv_survivor") for i in range(15)]
    with make_store(tmp_path / "h.duckdb", rows) as store:
        result = compute_tables(store)
    case = result.table("case_type_by_sex")
    assert case.value(None, "male") is None
    grand = case.value(None, None)  # the cost method may keep it: then it is 22 everywhere
    assert grand in (None, 22)
    for tid in ("sex_by_age_band", "migration_status_by_sex", "citizenship_by_sex"):
        t = result.table(tid)
        sex_axis = [d.name for d in t.dims].index("sex")
        codes: list[str | None] = [None, None]
        codes[sex_axis] = "male"
        assert t.value(*codes) is None, tid
        assert t.value(None, None) == grand, tid
    assert result.table("registrations_by_year").value(None) == grand


def test_rare_sex_codes_merge_along_the_ctdc_crosswalk(tmp_path: Path) -> None:
    rows = [record(i, sex="female") for i in range(40)] + [record(50 + i, sex="male")
                                                          for i in range(30)]
    rows += [record(100 + i, sex="transgender_female") for i in range(3)]
    rows += [record(110 + i, sex="non_conforming") for i in range(8)]
    with make_store(tmp_path / "h.duckdb", rows) as store:
        result = compute_tables(store)
        bigger = compute_tables(store, SuppressionRules(threshold=3))
    case = result.table("case_type_by_sex")
    assert case.dims[1].codes == ("female", "male", "transgender_female+non_conforming")
    assert case.dims[1].labels[2] == "Transgender / Non-Conforming"
    assert case.value("trafficking_victim", "transgender_female+non_conforming") == 11
    # with threshold 3 no member is rare: the codes stay apart
    assert bigger.table("case_type_by_sex").dims[1].codes == (
        "female", "male", "transgender_female", "non_conforming")


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
    res = runner.invoke(app, ["stats", "--hub", str(hub), "--privacy", "suppression", "--json"])
    assert res.exit_code == 0, res.output
    payload = json.loads(res.stdout)
    assert payload["rules"] == {"threshold": 10, "protection": 5, "method": "cost",
                                "objective": "mass"}
    table = next(t for t in payload["tables"] if t["id"] == "sex_by_age_band")
    assert table["values"][-1][-1] == 148
    res = runner.invoke(app, ["stats", "--hub", str(hub), "--privacy", "suppression", "--threshold", "2", "--json"])
    payload = json.loads(res.stdout)
    table = next(t for t in payload["tables"] if t["id"] == "sex_by_age_band")
    male = table["dims"][0]["codes"].index("male")
    assert table["values"][male][0] == 3  # 3 is publishable at threshold 2
    res = runner.invoke(app, ["stats", "--hub", str(hub), "--privacy", "suppression", "--protection", "1"])
    assert res.exit_code == 0 and "People by sex and age band" in res.stdout
    # an option the method does not use is refused, not silently ignored (and nothing is recorded)
    for wrong in (["--protection", "1"], ["--privacy", "suppression", "--rho", "0.01"]):
        res = runner.invoke(app, ["stats", "--hub", str(hub), *wrong])
        assert res.exit_code == 2 and "applies to --privacy" in res.output, wrong
    with open_store(hub) as store:
        store_releases = store.releases()
    kinds = [r["kind"] for r in store_releases]
    params = json.loads(store_releases[0]["parameters"])
    assert kinds == ["tables", "tables", "tables"]
    assert params["rules"]["threshold"] == 10
    assert [json.loads(r["parameters"])["rules"]["protection"] for r in store_releases] == [5, 1, 1]


def test_cli_report(hub: Path, tmp_path: Path) -> None:
    out = tmp_path / "out" / "report.html"
    res = runner.invoke(app, ["report", "--hub", str(hub), "--privacy", "suppression", "--out", str(out)])
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


def test_pipeline_csv_to_report(tmp_path: Path) -> None:
    """Through the real ingest, protect and hub add: the report counts what was accepted and
    shows no identifier."""
    rng = np.random.default_rng(7)
    names = [f"Zyxname{i:03d}" for i in range(150)]
    lines = ["case,given,family,dob,sex,ctype,reg,expl"]
    for i, name in enumerate(names):
        sex = "F" if i % 3 else "M"
        year = 1980 + int(rng.integers(0, 25))
        expl = "forced_labour" if i % 2 else "forced_labour sexual_exploitation"
        lines.append(f"C{i},{name},Family{i},{year}-05-0{1 + i % 9},{sex},trafficking_victim,"
                     f"2024-0{1 + i % 9}-15,{expl}")
    lines.append("C999,Bad,Row,2000-01-01,Q,trafficking_victim,2024-01-01,forced_labour")
    export = tmp_path / "export.csv"
    export.write_text("\n".join(lines) + "\n", encoding="utf-8")
    mapping = tmp_path / "map.yaml"
    mapping.write_text(
        "mapping_version: 1\n"
        "fields:\n"
        "  case_id: {column: case}\n"
        "  given_name: {column: given}\n"
        "  family_name: {column: family}\n"
        "  date_of_birth: {column: dob}\n"
        "  sex: {column: sex, codes: {F: female, M: male}}\n"
        "  case_type: {column: ctype}\n"
        "  registration_date: {column: reg}\n"
        "  country_of_registration: {value: TH}\n"
        "  type_of_exploitation: {column: expl, split: ' '}\n"
        "  consent_statistics: {value: 'yes'}\n  consent_linkage: {value: 'yes'}\n"
        "  consent_research: {value: 'yes'}\n", encoding="utf-8")
    hub = hub_from_export(tmp_path, export, mapping)
    res = runner.invoke(app, ["stats", "--hub", str(hub), "--privacy", "suppression", "--json"])
    assert res.exit_code == 0, res.output
    tables = {t["id"]: t for t in json.loads(res.stdout)["tables"]}
    case = tables["case_type_by_sex"]
    assert case["values"][-1][-1] == 150  # the bad row stayed in quarantine
    assert case["dims"][1]["labels"] == ["Female", "Male"]
    assert case["values"][0] == [100, 50, 150]
    expl = tables["exploitation_by_sex_by_majority"]
    assert expl["dims"][0]["codes"] == ["forced_labour", "sexual_exploitation"]
    out = tmp_path / "report.html"
    res = runner.invoke(app, ["report", "--hub", str(hub), "--privacy", "suppression", "--out", str(out)])
    assert res.exit_code == 0, res.output
    html = out.read_text(encoding="utf-8")
    assert "ngo_a" in html and "<svg" in html
    assert "Zyxname" not in html and "Family1" not in html and "C10" not in html


def test_cells_that_moved_a_little_since_the_last_release_are_hidden(hub: Path) -> None:
    res = runner.invoke(app, ["stats", "--hub", str(hub), "--privacy", "suppression", "--json"])
    assert res.exit_code == 0, res.output
    first = {t["id"]: t for t in json.loads(res.stdout)["tables"]}["case_type_by_sex"]
    assert first["values"][-1][-1] == 148
    with open_store(hub) as store:  # three more women, in a new batch (a new data version)
        new = [record(900 + i, "ngo_a", sex="female") for i in range(3)]
        store.write_table("records", pa.Table.from_pylist(new, schema=record_schema(STANDARD)))
        store.execute(INSERT_BATCH_SQL,
                      ["b9", "ngo_a", STANDARD.version, 3, 3, 0, 0, 0, "sha9", "k",
                       "2026-02-01T00:00:00", "2026-02-02T00:00:00"])
        plain = compute_tables(store, history=False).table("case_type_by_sex")
    assert plain.value("trafficking_victim", "female") == 83
    # a suppressed release of new data is refused from the CLI (it could be differenced) ...
    res = runner.invoke(app, ["stats", "--hub", str(hub), "--privacy", "suppression"])
    assert res.exit_code == 3 and "--privacy dp" in res.output
    # ... and the guard of the API still hides what moved
    with open_store(hub) as store:
        second = {t.id: t.to_dict() for t in compute_tables(store).tables}
    case = second["case_type_by_sex"]
    female = case["dims"][1]["codes"].index("female")
    assert case["values"][0][female] is None  # 80 -> 83: the three newcomers would show
    assert case["values"][-1][-1] is None  # 148 -> 151
    assert any("changed by less than the threshold" in n for n in case["notes"])
    # cells that did not move stay published
    assert case["values"][1][female] == 25


def joint_bounds(raws: list[Any], results: list[Any]) -> list[tuple[str, float, float, int]]:
    """Attacker over all tables at once: a margin that several tables share is one unknown.
    Returns (table id, low, high, required width) for every primary cell."""
    from scipy.optimize import linprog

    from accord.release.suppression import table_equations
    from accord.research.stats import _margin_keys

    names: dict[tuple[Any, ...], int] = {}
    rows: list[tuple[dict[int, float], float]] = []
    for t, (raw, res) in enumerate(zip(raws, results, strict=True)):
        keys = _margin_keys(raw)
        shape, flat_v, flat_m = res.values.shape, res.values.ravel(), res.mask.ravel()

        def name(c: int, keys: Any = keys, shape: Any = shape, t: int = t) -> int:
            idx = tuple(int(i) for i in np.unravel_index(c, shape))
            key = ("m", *keys[idx]) if idx in keys else ("c", t, c)
            return names.setdefault(key, len(names))

        for parts, total in table_equations(raw.counts.shape):
            coef: dict[int, float] = {}
            b = 0.0
            for p in parts:
                if flat_m[p]:
                    coef[name(p)] = coef.get(name(p), 0.0) + 1.0
                else:
                    b -= float(flat_v[p])
            if flat_m[total]:
                coef[name(total)] = coef.get(name(total), 0.0) - 1.0
            else:
                b += float(flat_v[total])
            if coef:
                rows.append((coef, b))
    a = np.zeros((len(rows), len(names)))
    for i, (coef, _) in enumerate(rows):
        for j, v in coef.items():
            a[i, j] = v
    rhs = np.array([b for _, b in rows])
    out = []
    for t, (raw, res) in enumerate(zip(raws, results, strict=True)):
        keys = _margin_keys(raw)
        for idx in zip(*np.nonzero(res.reasons == "primary"), strict=True):
            idx = tuple(int(i) for i in idx)
            flat = int(np.ravel_multi_index(idx, res.values.shape))
            j = names[("m", *keys[idx]) if idx in keys else ("c", t, flat)]
            c = np.zeros(len(names))
            c[j] = 1.0
            bounds = [(1.0, None)] * len(names)
            lo = linprog(c, A_eq=a, b_eq=rhs, bounds=bounds, method="highs")
            hi = linprog(-c, A_eq=a, b_eq=rhs, bounds=bounds, method="highs")
            assert lo.status == 0
            high = -hi.fun if hi.status == 0 else np.inf
            out.append((raw.spec.id, lo.fun, high, res.rules.required_width))
    return out


@pytest.mark.slow
@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                HealthCheck.function_scoped_fixture])
@given(st.integers(0, 2**31))
def test_linked_tables_hold_up_to_a_joint_attack(tmp_path: Path, seed: int) -> None:
    from accord.research.specs import default_specs
    from accord.research.stats import _raw_table, protect_linked

    rng = np.random.default_rng(seed)
    sexes = ["female"] * 6 + ["male"] * 3 + ["transgender_female", "unknown"]
    statuses = [c.code for c in STANDARD.field("migration_status").codes or ()]
    rows = [record(i, sex=str(rng.choice(sexes)), age=int(rng.integers(0, 70)),
                   case_type=str(rng.choice(["trafficking_victim", "gbv_survivor"])),
                   migration_status=str(rng.choice(statuses[:4])),
                   citizenship=[str(rng.choice(["VN", "KH", "MM", "LA", "TH"]))])
            for i in range(int(rng.integers(15, 90)))]
    path = tmp_path / f"h{seed}.duckdb"
    rules = SuppressionRules()
    with make_store(path, rows) as store:
        allowed = set(STANDARD.field_names) | {d.name for d in STANDARD.derived}
        specs = [s for s in default_specs(STANDARD) if not any(d.kind == "multi" for d in s.dims)]
        raws = [_raw_table(store, STANDARD, s, "records", allowed, 10, 10) for s in specs]
    results = protect_linked(raws, rules)
    for res in results:
        small = (res.values >= 1) & (res.values < rules.threshold)
        assert not (small & ~res.mask).any()
    for table_id, lo, hi, need in joint_bounds(raws, results):
        assert hi - lo >= need - 1e-6, table_id


def test_an_identical_stats_run_is_audited_but_not_recorded_again(hub: Path) -> None:
    def run() -> None:
        res = runner.invoke(app, ["stats", "--hub", str(hub), "--actor", "analyst", "--json"])
        assert res.exit_code == 0, res.output

    def on_record() -> tuple[list[dict[str, Any]], list[dict[str, Any]], int]:
        with open_store(hub) as store:
            audit = store.query("SELECT * FROM audit WHERE action = 'tables.release' "
                                "ORDER BY occurred_at").to_pylist()
            cells = int(store.scalar("SELECT count(*) FROM published_cells"))
            return store.releases(), audit, cells

    run()
    run()
    releases, audit, cells = on_record()
    assert [r["kind"] for r in releases] == ["tables"]
    assert len(audit) == 2 and all(a["actor"] == "analyst" for a in audit)
    details = [json.loads(a["detail"]) for a in audit]
    assert {d["release_id"] for d in details} == {releases[0]["release_id"]}
    assert sorted(d["repeat"] for d in details) == [False, True]
    # other parameters are another release
    res = runner.invoke(app, ["stats", "--hub", str(hub), "--threshold", "5", "--json"])
    assert res.exit_code == 0, res.output
    assert len(on_record()[0]) == 2
    # new data: a new release, remembered for the differencing guard
    with open_store(hub) as store:
        new = [record(900 + i, "ngo_a", sex="male") for i in range(12)]
        store.write_table("records", pa.Table.from_pylist(new, schema=record_schema(STANDARD)))
        store.execute(INSERT_BATCH_SQL,
                      ["b9", "ngo_a", STANDARD.version, 12, 12, 0, 0, 0, "sha9", "k",
                       "2026-02-01T00:00:00", "2026-02-02T00:00:00"])
    run()
    releases, audit, after = on_record()
    assert len(releases) == 3 and len(releases[-1]["data_version"]) == 16
    assert len({r["data_version"] for r in releases}) == 2
    assert len(audit) == 4 and after > cells


def test_report_risk_shows_stored_and_publication_level(tmp_path: Path) -> None:
    from accord.research.report.stages import risk_html

    # 120 records, each unique on its full registration date and age in years, but only a few
    # classes once dates are years and ages are CTDC bands.
    rows = [record(i, registration_date=dt.date(2021, 1, 1) + dt.timedelta(days=i),
                   age=30 + i % 9, sex="female" if i % 2 else "male") for i in range(120)]
    with make_store(tmp_path / "h.duckdb", rows) as store:
        html = str(risk_html(store))
    cells = re.findall(r"<tr><th>global risk \(share of records\)</th>(.*?)</tr>", html)
    assert cells, html
    values = re.findall(r"<td>([\d.]+)%</td>", cells[0])
    assert values[0] == "100.0"  # as stored: every record unique
    assert values[1] == "1.7"  # year x CTDC band x sex x ...: two classes of 60
    assert len(values) == 3 and float(values[2]) <= 20.0  # as a k = 5 release
    assert "CTDC age band" in html and "<td>year</td>" in html
    assert "2021-01-05" not in html and ">34<" not in html  # no record value
