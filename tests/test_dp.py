"""DP count tables: OpenDP noise calibration, post-processing, margins of error."""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from scipy import stats
from typer.testing import CliRunner

from accord.cli.main import app
from accord.errors import ReleaseRefused
from accord.release.dp.ledger import current_budget, dp_summary
from accord.release.dp.mechanism import (
    calibrate,
    epsilon_from_rho,
    noise_pmf,
    rho_from_epsilon_delta,
)
from accord.release.dp.tables import (
    MISSING,
    TOTAL,
    TableSpec,
    count_table,
    measure,
    postprocess,
    round_preserving_total,
)
from accord.standard import load_standard
from accord.standard.arrow import record_schema
from accord.store import open_store
from accord.store.base import INSERT_BATCH_SQL

LEVELS = {
    "sex": ["female", "male", MISSING],
    "age_group": ["0-17", "18+", MISSING],
    "type_of_exploitation": ["forced_labour", "sexual_exploitation", "other", MISSING],
}


def _people(n: int, seed: int = 0) -> pa.Table:
    rng = np.random.default_rng(seed)
    kinds = [["forced_labour"], ["sexual_exploitation", "forced_labour"], [], None,
             ["other", "sexual_exploitation", "forced_labour"]]
    return pa.table({
        "sex": rng.choice(["female", "male"], n).tolist(),
        "age_group": rng.choice(["0-17", "18+"], n, p=[0.3, 0.7]).tolist(),
        "type_of_exploitation": pa.array([kinds[i] for i in rng.integers(0, 5, n)],
                                         pa.list_(pa.string())),
    })


def _chi_square_p(samples: np.ndarray, kind: str, scale: float) -> float:
    """Goodness of fit of integer samples to the discrete noise law, tails pooled to E >= 5."""
    support, pmf = noise_pmf(kind, scale)  # type: ignore[arg-type]
    expected = pmf * len(samples)
    observed = np.array([(samples == v).sum() for v in support], dtype=float)
    keep = expected >= 5
    lo, hi = np.argmax(keep), len(keep) - np.argmax(keep[::-1]) - 1
    obs = np.concatenate([[observed[: lo + 1].sum()], observed[lo + 1: hi], [observed[hi:].sum()]])
    exp = np.concatenate([[expected[: lo + 1].sum()], expected[lo + 1: hi], [expected[hi:].sum()]])
    return float(stats.chisquare(obs, exp * obs.sum() / exp.sum()).pvalue)


@pytest.mark.parametrize(("kind", "budget"), [("gaussian", 0.02), ("laplace", 0.3)])
def test_noise_matches_the_claimed_privacy_loss(kind: str, budget: float) -> None:
    # A tiny table released many times with OpenDP's real randomness: the noise actually added
    # must follow the law whose scale the claimed rho / epsilon implies, and the test must be able
    # to tell it apart from a law with 25 % less noise (which would over-state the privacy).
    table = count_table(_people(40), TableSpec("sex", ("sex",)), LEVELS)
    noise, scales = [], set()
    for _ in range(700):
        rel = measure([table], kind, budget)  # type: ignore[arg-type]
        finest = rel.tables[0].groups[-1]
        noise.append(finest.noisy - table.counts)
        scales.add(finest.noise.scale)
        assert rel.rho <= (budget if kind == "gaussian" else budget**2 / 2) + 1e-12
    samples = np.concatenate(noise)
    (scale,) = scales
    groups = len(table.spec.groups())
    if kind == "gaussian":  # each of the 2 groups gets rho/2; sensitivity 1: scale = 1/sqrt(rho)
        assert scale == pytest.approx(math.sqrt(1 / (2 * budget / groups)), rel=1e-6)
    else:
        assert scale == pytest.approx(1 / (budget / groups), rel=1e-6)
    # Unseeded on purpose (OpenDP's own sampler, not the tests' seeded one), so the thresholds leave
    # chance failures at about 1e-8 each: the fit's p-value was 0.25-0.6 in trials and the 25 %-less
    # noise law's 1e-24 to 1e-119, and the mean is checked at 6 standard errors.
    assert _chi_square_p(samples, kind, scale) > 1e-8
    assert _chi_square_p(samples, kind, scale * 0.75) < 1e-8
    assert abs(samples.mean()) < 6 * math.sqrt(np.var(samples) / len(samples))


def test_postprocessing_never_reads_the_records_again() -> None:
    exact = count_table(_people(300), TableSpec("sex_age", ("sex", "age_group")), LEVELS)
    rel = measure([exact], "gaussian", 0.5)
    first = postprocess(rel)
    exact.counts[...] = 10**6  # poison the real counts after measuring
    second = postprocess(rel)
    assert first[0].rows == second[0].rows


def test_published_tables_are_consistent_non_negative_integers() -> None:
    people = _people(500, seed=3)
    specs = [TableSpec("sex_age", ("sex", "age_group")),
             TableSpec("sex_age_exp", ("sex", "age_group", "type_of_exploitation"))]
    rel = measure([count_table(people, s, LEVELS) for s in specs], "gaussian", 0.05, test_seed=1)
    for pub in postprocess(rel):
        t = pub.to_arrow().to_pylist()
        dims = pub.spec.dims
        assert all(isinstance(r["count"], int) and r["count"] >= 0 for r in t)
        assert all(r["moe95"] > 0 for r in t)
        cells = {tuple(r[d] for d in dims): r["count"] for r in t}
        # Every published margin equals the sum of the cells under it.
        for key, value in cells.items():
            totals = [i for i, v in enumerate(key) if v == TOTAL]
            if not totals:
                continue
            i = totals[0]
            below = [c for k, c in cells.items()
                     if k[i] != TOTAL and all(k[j] == key[j] for j in range(len(key)) if j != i)]
            assert value == sum(below)


def test_margins_of_error_cover_the_truth() -> None:
    rng = np.random.default_rng(5)
    n = 4000
    people = pa.table({"sex": rng.choice(["female", "male"], n).tolist(),
                       "age_group": rng.choice(["0-17", "18+"], n).tolist()})
    exact = count_table(people, TableSpec("sex_age", ("sex", "age_group")), LEVELS)
    truth = exact.counts
    hits = total = 0
    for seed in range(150):
        (pub,) = postprocess(measure([exact], "gaussian", 0.01, test_seed=seed))
        for row in pub.rows:
            sex, age, count, moe = row
            if TOTAL in (sex, age) or MISSING in (sex, age):
                continue
            i, j = LEVELS["sex"].index(str(sex)), LEVELS["age_group"].index(str(age))
            hits += abs(count - truth[i, j]) <= float(moe)  # type: ignore[operator]
            total += 1
    assert 0.92 <= hits / total <= 0.995


def test_large_tables_do_not_pile_noise_into_sparse_rows() -> None:
    # 300 countries x 3 sexes (900 cells, the large-table path): nobody has sex "x", yet 300
    # cells of noise must not add up to a sizeable published total for it.
    rng = np.random.default_rng(2)
    countries = [f"c{i:03d}" for i in range(300)]
    people = pa.table({"country": rng.choice(countries[:40], 5000).tolist(),
                       "sex": rng.choice(["f", "m"], 5000).tolist()})
    levels = {"country": [*countries, MISSING], "sex": ["f", "m", "x"]}
    exact = count_table(people, TableSpec("c_by_sex", ("country", "sex")), levels)
    (pub,) = postprocess(measure([exact], "gaussian", 0.05, test_seed=4))
    totals = {r[1]: (r[2], r[3]) for r in pub.rows if r[0] == TOTAL}
    count, moe = totals["x"]
    assert count <= moe  # within its margin of error of the true 0
    assert abs(totals["f"][0] - int((people.column("sex").to_numpy() == "f").sum())) <= 2 * totals["f"][1]


def test_seed_only_in_tests_reproduces_and_default_noise_is_fresh() -> None:
    exact = count_table(_people(200), TableSpec("sex_age", ("sex", "age_group")), LEVELS)
    a = postprocess(measure([exact], "gaussian", 0.01, test_seed=7))
    b = postprocess(measure([exact], "gaussian", 0.01, test_seed=7))
    assert a[0].rows == b[0].rows
    c = measure([exact], "gaussian", 0.01)
    d = measure([exact], "gaussian", 0.01)
    assert not all(np.array_equal(x.noisy, y.noisy)
                   for x, y in zip(c.tables[0].groups, d.tables[0].groups, strict=True))


def test_contribution_bounding_on_multi_valued_fields() -> None:
    people = pa.table({
        "sex": ["female", "male"],
        "type_of_exploitation": pa.array(
            [["other", "sexual_exploitation", "forced_labour"], []], pa.list_(pa.string())),
    })
    t = count_table(people, TableSpec("x", ("sex", "type_of_exploitation")), LEVELS, max_values=2)
    # First two in code-list order: forced_labour, sexual_exploitation; the empty list is missing.
    assert t.counts[0].tolist() == [1, 1, 0, 0]
    assert t.counts[1].tolist() == [0, 0, 0, 1]
    rel = measure([t], "gaussian", 1.0)
    sens = {g.axes: (g.noise.l1, g.noise.l2_sq) for g in rel.tables[0].groups}
    assert sens[(0, 1)] == (2, 2) and sens[(0,)] == (2, 4) and sens[(1,)] == (2, 2)


def test_accounting_conversions() -> None:
    rho = rho_from_epsilon_delta(1.0, 1e-9)
    assert epsilon_from_rho(rho, 1e-9) == pytest.approx(1.0)
    spec = calibrate("gaussian", 1, 1, rho)
    assert spec.cost_rho() <= rho
    assert spec.moe95() == pytest.approx(1.96 * spec.scale, rel=0.05)


def test_rounding_keeps_the_total() -> None:
    x = np.array([0.4, 0.4, 0.4, 2.6, 0.0])
    r = round_preserving_total(x)
    assert r.sum() == round(x.sum()) and (np.abs(r - x) < 1).all() and (r >= 0).all()


# ---------------------------------------------------------------- the hub: ledger and releases

def _hub(path: Path, n: int = 400, seed: int = 0) -> Path:
    """A hub with ``n`` records of ``n - 20`` people (20 people registered twice)."""
    std = load_standard()
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        person = i if i < n - 20 else i - (n - 20)  # the last 20 repeat the first 20 people
        age = int(rng.integers(0, 80))
        date = dt.date(2020 + int(rng.integers(0, 4)), 1 + int(rng.integers(0, 12)), 1)

        def band(name: str, age: int = age) -> str | None:
            return std.derived_field(name).band_of(age)

        rows.append({
            "batch_id": "b0", "partner": "ngo_a", "record_key": f"r{i}",
            "person_pseudonym": f"p{person}",
            "case_type": str(rng.choice(["trafficking_victim", "gbv_survivor"])),
            "registration_date": date, "country_of_registration": "TH",
            "area_of_registration": None, "sex": str(rng.choice(["female", "male"])), "age": age,
            "dob_quality": "exact", "citizenship": [str(rng.choice(["VN", "KH"]))],
            "migration_status": "irregular", "unaccompanied_separated": None, "disability": "no",
            "country_of_exploitation": "TH",
            "type_of_exploitation": [str(rng.choice(["forced_labour", "sexual_exploitation"]))],
            "forced_labour_industry": None, "type_of_sexual_exploitation": [],
            "means_of_control": [], "recruiter_relationship": None, "gbv_incident_type": [],
            "rh_needs": [], "rh_services_received": [], "age_group": band("age_group"),
            "age_band_ctdc": band("age_band_ctdc"), "majority_status": band("majority_status"),
            "registration_year": date.year, "consent_statistics": "yes",
            "consent_linkage": "yes", "consent_research": "yes",
        })
    store = open_store(path)
    store.write_table("records", pa.Table.from_pylist(rows, schema=record_schema(std)),
                      mode="replace")
    store.ensure_meta()
    store.execute(INSERT_BATCH_SQL,
                  ["b0", "ngo_a", std.version, n, n, 0, 0, 0, "sha0", "k",
                   "2026-01-01T00:00:00", "2026-01-02T00:00:00"])
    store.close()
    return path


def test_release_tables_cli_spends_and_records(tmp_path: Path) -> None:
    hub = _hub(tmp_path / "hub.duckdb")
    out = tmp_path / "out"
    res = CliRunner().invoke(app, ["release", "tables", "--epsilon", "1", "--hub", str(hub),
                                   "--tables", "sex_by_age_band,case_type_by_sex", "--hxl",
                                   "--out", str(out), "--actor", "tester", "--json"])
    assert res.exit_code == 0, res.output
    payload = json.loads(res.output)
    assert payload["parameters"]["unit"] == "partner-scoped pseudonyms"
    rows = payload["tables"]["sex_by_age_band"]
    grand = next(r for r in rows if r["sex"] == TOTAL and r["age_band_ctdc"] == TOTAL)
    assert abs(grand["count"] - 380) <= 3 * grand["moe95"]  # 380 people, not 400 records
    assert (out / "sex_by_age_band.csv").exists() and (out / "case_type_by_sex.hxl.csv").exists()
    hxl_lines = (out / "sex_by_age_band.hxl.csv").read_text().splitlines()
    assert hxl_lines[1].startswith("#gender")
    budget = CliRunner().invoke(app, ["budget", "--hub", str(hub), "--json"])
    ledger = json.loads(budget.output)
    assert ledger["budget"]["spent_rho"] == pytest.approx(payload["parameters"]["rho"])
    assert ledger["spends"][0]["actor"] == "tester"
    assert ledger["spends"][0]["release_id"] == payload["release_id"]
    with open_store(hub) as store:
        rel = store.query("SELECT kind, parameters FROM releases").to_pylist()
    assert rel[0]["kind"] == "dp_tables" and '"epsilon": 1' in rel[0]["parameters"]
    with open_store(hub) as store:
        summary = dp_summary(store)
    assert summary["latest_tables"]["release_id"] == payload["release_id"]
    assert summary["latest_tables"]["results"]["sex_by_age_band"]["rows"] == [
        [r[c] for c in ("sex", "age_band_ctdc", "count", "moe95")] for r in rows]


def test_every_epsilon_states_its_delta_and_the_ledger_reads_at_one_delta(tmp_path: Path) -> None:
    from accord.research.report.stages import dp_html

    hub = _hub(tmp_path / "hub.duckdb")
    res = CliRunner().invoke(app, ["release", "tables", "--epsilon", "1", "--hub", str(hub),
                                   "--tables", "case_type_by_sex", "--out", str(tmp_path / "o"),
                                   "--json"])
    assert res.exit_code == 0, res.output
    spend = json.loads(res.output)["spend"]
    rho = rho_from_epsilon_delta(1.0, 1e-9)
    # one rho, read at the release's delta (as asked) and at the budget's delta (as the ledger)
    assert (spend["epsilon"], spend["delta"], spend["budget_delta"]) == (1.0, 1e-9, 1e-6)
    assert spend["rho"] == pytest.approx(rho)
    assert spend["epsilon_at_budget_delta"] == pytest.approx(epsilon_from_rho(rho, 1e-6))
    assert spend["epsilon_at_budget_delta"] == pytest.approx(0.819, abs=1e-3)
    ledger = json.loads(CliRunner().invoke(app, ["budget", "--hub", str(hub), "--json"]).output)
    budget, row = ledger["budget"], ledger["spends"][0]
    assert budget["accounting_unit"] == "rho (zCDP)" and budget["epsilon_delta"] == 1e-6
    assert row["budget_delta"] == budget["epsilon_delta"]
    assert row["epsilon_at_budget_delta"] == pytest.approx(budget["spent_epsilon"])
    assert (row["epsilon"], row["delta"]) == (1.0, 1e-9)
    assert budget["remaining_epsilon"] == pytest.approx(
        epsilon_from_rho(budget["total_rho"] - rho, 1e-6))
    text = CliRunner().invoke(app, ["budget", "--hub", str(hub)]).output
    assert "spent  rho 0.01178 = epsilon 0.819 at delta 1e-06" in text
    assert "budget rho 1.353 = epsilon 10 at delta 1e-06" in text
    with open_store(hub) as store:
        html = str(dp_html(store))
    assert "epsilon 1 at delta 1e-09" in html  # the spend as asked for, and the latest release
    assert html.count("epsilon 0.819 at delta 1e-06") >= 2  # spent, and the spend's row


def test_budget_cannot_be_overspent_or_lowered(tmp_path: Path) -> None:
    hub = _hub(tmp_path / "hub.duckdb")
    # Under zCDP two releases at epsilon 1 cost less than one at epsilon 2; set the total in rho.
    total = epsilon_from_rho(1.5 * rho_from_epsilon_delta(1.0, 1e-9), 1e-9)
    r = CliRunner().invoke(app, ["budget", "set", "--epsilon", str(total), "--delta", "1e-9",
                                 "--hub", str(hub)])
    assert r.exit_code == 0, r.output
    first = CliRunner().invoke(app, ["release", "tables", "--epsilon", "1", "--hub", str(hub),
                                     "--out", str(tmp_path / "a")])
    assert first.exit_code == 0, first.output
    second = CliRunner().invoke(app, ["release", "tables", "--epsilon", "1", "--hub", str(hub),
                                      "--out", str(tmp_path / "b")])
    assert second.exit_code == ReleaseRefused.exit_code and "budget" in second.output
    assert not (tmp_path / "b").exists()
    lower = CliRunner().invoke(app, ["budget", "set", "--epsilon", "0.5", "--delta", "1e-9",
                                     "--hub", str(hub)])
    assert lower.exit_code != 0
    with open_store(hub) as store:
        kinds = store.query("SELECT kind FROM releases").column(0).to_pylist()
    assert kinds == ["dp_tables"]  # the refused release left no record


@pytest.mark.slow
def test_concurrent_releases_never_overspend(tmp_path: Path) -> None:
    # Four processes race for a budget that pays for exactly two releases.
    hub = _hub(tmp_path / "hub.duckdb", n=120)
    one = rho_from_epsilon_delta(0.5, 1e-9)
    two = epsilon_from_rho(2.5 * one, 1e-9)
    assert CliRunner().invoke(app, ["budget", "set", "--epsilon", str(two), "--delta", "1e-9",
                                    "--hub", str(hub)]).exit_code == 0
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}
    cmd = [sys.executable, "-m", "accord.cli.main", "release", "tables", "--epsilon", "0.5",
           "--tables", "case_type_by_sex", "--hub", str(hub), "--wait", "120"]
    procs = [subprocess.Popen([*cmd, "--out", str(tmp_path / f"o{i}")], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) for i in range(4)]
    codes = [p.wait(timeout=300) for p in procs]
    for p in procs:
        assert p.stdout is not None and p.stderr is not None
        p.stdout.close()
        p.stderr.close()
    assert sorted(codes) == [0, 0, 3, 3]
    with open_store(hub) as store:
        budget = current_budget(store).to_dict()
        n_spends = store.scalar("SELECT count(*) FROM dp_ledger WHERE event = 'spend'")
        n_releases = store.scalar("SELECT count(*) FROM releases WHERE kind = 'dp_tables'")
    assert n_spends == n_releases == 2
    assert budget["spent_rho"] <= budget["total_rho"]


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -3.5, -7.25e-7, 98765.4321, "12abc"])
def test_parameter_checks_name_the_range_never_the_value(value: object) -> None:
    """A privacy parameter out of range is refused with its name and the range allowed; the value
    given is not repeated (it can be anything a client sent, so no caller has to trim it)."""
    from accord.errors import ParameterError
    from accord.release.dp.params import check_delta, check_epsilon, check_rho

    cases = [(check_epsilon, "--epsilon", value), (check_delta, "--delta", value), (check_rho, "rho", value),
             (check_delta, "--delta", 1e-200)]  # in (0, 1e-3] but below the smallest delta
    for check, name, given in cases:
        with pytest.raises(ParameterError) as caught:
            check(given)
        text = f"{caught.value.message} {caught.value.hint or ''}"
        assert name in text and "; got" not in text
        assert repr(given) not in text and str(given) not in text, text
