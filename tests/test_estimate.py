"""Multiple systems estimation: published figures, sparse-data checks, intervals, CLI, hub."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from accord.cli.main import app
from accord.research.estimate import (
    CaptureTableError,
    EstimateOptions,
    Status,
    check_all_models,
    estimate,
    from_memberships,
    from_rows,
    merge_small_lists,
    parse_model,
    read_counts_csv,
    select,
)
from accord.research.estimate.batch import fit_batch
from accord.research.estimate.bootstrap import draw_replicates
from accord.research.estimate.design import design, layout, model_name
from accord.research.estimate.fit import fit_model
from accord.research.estimate.table import histories
from tests.data_paths import SHARED_DATA

runner = CliRunner()


def _data_dir() -> Path:
    if (SHARED_DATA / "mse" / "UKdat.csv").is_file():
        return SHARED_DATA / "mse"
    pytest.skip("shared MSE data (../shared/data/mse) not present")


@pytest.fixture(scope="module")
def mse_dir() -> Path:
    return _data_dir()


# ---- published results -----------------------------------------------------------------------

def test_uk_2013_within_published_range(mse_dir: Path) -> None:
    res = estimate(read_counts_csv(mse_dir / "UKdat.csv"), EstimateOptions(method="stepwise"))
    assert res.ok and res.observed == 2744
    assert res.total is not None and 10_000 <= res.total <= 13_000
    lo, hi = res.profile_interval or (0, 0)
    # The Home Office range is 10,000-13,000: our interval, to the nearest thousand, is that.
    assert (round(lo, -3), round(hi, -3)) == (10_000, 13_000)
    assert lo < res.total < hi


def test_uk_five_lists_reproduces_home_office_estimate(mse_dir: Path) -> None:
    # Silverman (2014) fitted UKdat_5 (PF and NCA merged) stepwise: 11,313 people.
    res = estimate(read_counts_csv(mse_dir / "UKdat_5.csv"), EstimateOptions(method="stepwise"))
    assert res.total is not None and round(res.total) == 11_313
    lo, hi = res.profile_interval or (0, 0)
    assert (round(lo, -3), round(hi, -3)) == (10_000, 13_000)


@pytest.mark.parametrize("method", ["main", "aic", "bic"])
def test_uk_other_methods_plausible(mse_dir: Path, method: str) -> None:
    res = estimate(read_counts_csv(mse_dir / "UKdat.csv"), EstimateOptions(method=method))
    assert res.ok and res.total is not None and 10_000 <= res.total <= 13_000


def test_artificial_3_non_existent_estimates_detected(mse_dir: Path) -> None:
    table = read_counts_csv(mse_dir / "Artificial_3.csv")
    got = {model_name(table.lists, m): s for m, s in check_all_models(table).items()}
    # Chan, Silverman & Vincent (2019), Table 2 / SparseMSE's documentation of Artificial_3.
    assert got == {
        "main effects": Status.OK,
        "main effects + A:B": Status.NOT_EXIST,
        "main effects + A:C": Status.OK,
        "main effects + B:C": Status.OK,
        "main effects + A:B + A:C": Status.NOT_EXIST,
        "main effects + A:B + B:C": Status.NOT_EXIST,
        "main effects + A:C + B:C": Status.OK,
        "main effects + A:B + A:C + B:C": Status.NOT_IDENTIFIABLE,
    }
    res = estimate(table, EstimateOptions(model=parse_model(table.lists, "A:B")))
    assert not res.ok and res.total is None and res.interval is None
    assert "does not exist" in res.reason
    # Searches never settle on a model whose estimate does not exist.
    for method in ("stepwise", "aic", "bic"):
        r = estimate(table, EstimateOptions(method=method))
        assert r.ok and r.total is not None and np.isfinite(r.total)


# ---- the vectorised fitter agrees with statsmodels and the exact checks ----------------------

def test_batched_fit_matches_statsmodels(mse_dir: Path) -> None:
    table = read_counts_csv(mse_dir / "UKdat.csv")
    rng = np.random.default_rng(3)
    models = [tuple(sorted(rng.choice(15, size=k, replace=False).tolist())) for k in (0, 2, 4, 7)]
    models.append(parse_model(table.lists, "LA:GP,NG:PF"))  # LA:GP has an empty overlap
    x = design(table.n_lists)
    for m in models:
        lay = layout(table, m)
        fit = fit_batch(x, table.counts[None].astype(float), lay.cell_mask[None],
                        lay.param_mask[None])
        ref = fit_model(table, m)
        assert fit.converged[0]
        assert np.exp(fit.beta[0, 0]) == pytest.approx(ref.dark, rel=1e-6)
        assert fit.deviance[0] == pytest.approx(ref.deviance, rel=1e-6, abs=1e-6)


def test_fast_existence_screen_agrees_with_linear_programme(mse_dir: Path) -> None:
    table = read_counts_csv(mse_dir / "UKdat.csv")
    y = draw_replicates(table, 12, np.random.default_rng(11))
    fast = select(6, y, "stepwise")
    exact = select(6, y, "stepwise", exact=True)
    assert (fast.models == exact.models).all() and (fast.valid == exact.valid).all()
    assert np.allclose(fast.dark, exact.dark, rtol=1e-6)


def test_bootstrap_repeats_selection_and_is_reproducible(mse_dir: Path) -> None:
    table = read_counts_csv(mse_dir / "UKdat_5.csv")
    opts = EstimateOptions(method="stepwise", bootstrap=60, seed=5)
    a, b = estimate(table, opts), estimate(table, opts)
    assert a.boot is not None and b.boot is not None
    assert a.boot.interval == b.boot.interval
    lo, hi = a.boot.interval
    assert a.total is not None and lo < a.total < hi and lo > 8_000
    # model uncertainty: replicates do not all choose the same model
    assert a.boot.top_models[0][1] < 1.0
    main = estimate(table, EstimateOptions(method="main", bootstrap=60, seed=5))
    assert main.boot is not None and main.boot.top_models == (("main effects", 1.0),)


def test_parametric_bootstrap_runs(mse_dir: Path) -> None:
    table = read_counts_csv(mse_dir / "UKdat_5.csv")
    res = estimate(table, EstimateOptions(method="bic", bootstrap=60, resample="parametric"))
    assert res.boot is not None and res.boot.failed == 0
    assert res.boot.interval[0] < (res.total or 0) < res.boot.interval[1]


# ---- tables --------------------------------------------------------------------------------

@settings(max_examples=60, deadline=None)
@given(
    t=st.integers(2, 5),
    data=st.data(),
)
def test_from_rows_keeps_every_person(t: int, data: st.DataObject) -> None:
    n_rows = data.draw(st.integers(1, 12))
    pats = data.draw(st.lists(st.lists(st.integers(0, 1), min_size=t, max_size=t)
                              .filter(any), min_size=n_rows, max_size=n_rows))
    counts = data.draw(st.lists(st.integers(0, 50), min_size=n_rows, max_size=n_rows)
                       .filter(lambda c: sum(c) > 0))
    table = from_rows([f"L{i}" for i in range(t)], pats, counts)
    assert table.observed == sum(counts)
    assert len(table.counts) == 2**t - 1
    for i, name in enumerate(table.lists):
        assert table.list_sizes()[name] == sum(c for p, c in zip(pats, counts, strict=True) if p[i])


def test_memberships_and_merging() -> None:
    people = [{"a"}] * 30 + [{"b"}] * 20 + [{"a", "b"}] * 10 + [{"c"}] * 2 + [{"d", "a"}] * 3
    table = from_memberships(["a", "b", "c", "d"], people)
    assert table.list_sizes() == {"a": 43, "b": 30, "c": 2, "d": 3}
    merged, info = merge_small_lists(table, 5)
    assert info.merged == ("c", "d") and merged.lists == ("a", "b", "other lists")
    assert merged.observed == table.observed
    assert merged.list_sizes()["other lists"] == 5 and info.flagged == ()
    assert histories(3).shape == (7, 3)


# ---- CLI -----------------------------------------------------------------------------------

def test_cli_mse_json(mse_dir: Path) -> None:
    out = runner.invoke(app, ["estimate", "mse", str(mse_dir / "UKdat_5.csv"), "--json"])
    assert out.exit_code == 0, out.output
    d = json.loads(out.stdout)
    assert d["status"] == "ok" and round(d["total"]) == 11_313 and d["observed"] == 2744
    assert "stepwise" in d["reason"] and len(d["caveats"]) >= 3


def test_cli_mse_table_and_bootstrap(mse_dir: Path) -> None:
    out = runner.invoke(app, ["estimate", "mse", str(mse_dir / "UKdat_5.csv"), "--method", "bic",
                              "--bootstrap", "30"])
    assert out.exit_code == 0, out.output
    assert "Estimated number of people" in out.stdout and "bootstrap interval" in out.stdout


def test_cli_mse_non_existent_model(mse_dir: Path) -> None:
    out = runner.invoke(app, ["estimate", "mse", str(mse_dir / "Artificial_3.csv"),
                              "--model", "A:B,A:C"])
    assert out.exit_code == 3
    assert "does not exist" in out.stdout
    out = runner.invoke(app, ["estimate", "mse", str(mse_dir / "Artificial_3.csv"),
                              "--check-models", "--json"])
    rows = json.loads(out.stdout)
    assert sum(r["status"] != "ok" for r in rows) == 4


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("A,B,n\n1,0,5\n2,1,3\n", "other than 0 or 1"),
        ("A,B,n\n1,0,5\n1,1,-3\n", "negative"),
        ("A,n\n1,5\n", "at least 2"),
        ("A,B,n\n1,0,5\n1,x,3\n", "non-numeric"),
        ("A,B,n\n0,0,5\n1,1,3\n", "no list marked"),
        # Was added up into 10 people seen only on A: a pasted duplicate counted twice, unsaid.
        ("A,B,n\n1,0,5\n0,1,4\n1,1,3\n1,0,5\n", "data rows 1 and 4 have the same capture history"),
    ],
)
def test_cli_mse_bad_input(tmp_path: Path, content: str, message: str) -> None:
    f = tmp_path / "bad.csv"
    f.write_text(content)
    out = runner.invoke(app, ["estimate", "mse", str(f)])
    assert out.exit_code == 2
    assert message in out.output
    assert "what to do" in out.output


def test_cli_mse_unreadable_file(tmp_path: Path) -> None:
    f = tmp_path / "bad.csv"
    f.write_bytes(b"A,B,n\n1,0,\xff\xfe\n")
    out = runner.invoke(app, ["estimate", "mse", str(f)])
    assert out.exit_code == 2 and "UTF-8" in out.output
    out = runner.invoke(app, ["estimate", "mse", str(tmp_path / "missing.csv")])
    assert out.exit_code == 2 and "no such file" in out.output


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(0, 60), min_size=7, max_size=7).filter(lambda c: sum(c[3:]) > 0))
def test_batched_main_effects_match_statsmodels_on_random_tables(counts: list[int]) -> None:
    table = from_rows(["A", "B", "C"], histories(3), counts)
    sel = select(3, table.counts[None].astype(float), "main", exact=True)
    status = check_all_models(table)[()]
    assert sel.valid[0] == (status is Status.OK)
    if status is Status.OK:
        assert sel.dark[0] == pytest.approx(fit_model(table, ()).dark, rel=1e-5)


def test_cli_mse_bad_method(mse_dir: Path) -> None:
    out = runner.invoke(app, ["estimate", "mse", str(mse_dir / "UKdat.csv"), "--method", "x"])
    assert out.exit_code != 0


def test_cli_mse_count_beyond_any_population_is_an_input_error(tmp_path: Path) -> None:
    """1e300 people was taken as a whole number, wrapped to a negative int64 and failed in the
    model fit (exit 70); the largest count allowed still estimates."""
    for count, code in (("1e300", 2), ("10000000001", 2), ("10000000000", 0)):
        (tmp_path / "t.csv").write_text(f"A,B,count\n1,0,50\n0,1,{count}\n1,1,20\n",
                                        encoding="utf-8")
        out = runner.invoke(app, ["estimate", "mse", str(tmp_path / "t.csv"), "--json"])
        assert out.exit_code == code, out.output
        if code:
            assert "a value above 10,000,000,000 (data row 2)" in out.output


def test_cli_mse_shows_bracketed_list_names_as_written(tmp_path: Path) -> None:
    """List names are the user's headers, not console markup ('[/a]' was exit 70)."""
    (tmp_path / "t.csv").write_text("[/a],[b],count\n1,0,50\n0,1,40\n1,1,20\n", encoding="utf-8")
    for extra in ([], ["--check-models"]):
        out = runner.invoke(app, ["estimate", "mse", str(tmp_path / "t.csv"), *extra])
        assert out.exit_code == 0, out.output
        assert ("[/a]:[b]" if extra else "lists: [/a], [b]") in out.output


def test_empty_list_is_left_out() -> None:
    table = from_rows(["A", "B", "C"], [[1, 0, 0], [0, 1, 0], [1, 1, 0]], [40, 30, 10])
    res = estimate(table, EstimateOptions(method="main"))
    assert res.lists == ("A", "B") and any("nobody" in n for n in res.notes)
    # Lincoln-Petersen: 40+10 on A, 30+10 on B, 10 on both: N = 50 * 40 / 10 = 200
    assert res.total == pytest.approx(200.0, rel=1e-6)
    with pytest.raises(CaptureTableError):
        estimate(from_rows(["A", "B"], [[1, 0]], [5]))


# ---- coverage on simulated data with known total and dependence ----------------------------

def _simulate_tables(n_sim: int, seed: int) -> tuple[int, list[np.ndarray]]:
    t, total = 4, 2000
    p = np.array([0.15, 0.2, 0.1, 0.25])
    h = np.vstack([np.zeros((1, t), int), histories(t)])
    logw = (h * np.log(p) + (1 - h) * np.log(1 - p)).sum(axis=1) + 1.0 * h[:, 0] * h[:, 1]
    w = np.exp(logw) / np.exp(logw).sum()
    rng = np.random.default_rng(seed)
    return total, [rng.multinomial(total, w)[1:] for _ in range(n_sim)]


@pytest.mark.slow
def test_bootstrap_interval_coverage_close_to_nominal() -> None:
    total, tables = _simulate_tables(120, seed=2024)
    cells = histories(4)
    covered = 0
    for i, y in enumerate(tables):
        res = estimate(from_rows(["A", "B", "C", "D"], cells, y),
                       EstimateOptions(method="stepwise", bootstrap=150, seed=i))
        assert res.ok and res.boot is not None
        covered += res.boot.interval[0] <= total <= res.boot.interval[1]
    # 95 % nominal; with 120 simulations the binomial s.d. is 2 points
    assert 0.88 <= covered / len(tables) <= 0.995


@pytest.mark.slow
def test_profile_interval_coverage_for_the_true_model() -> None:
    total, tables = _simulate_tables(60, seed=99)
    cells = histories(4)
    true_model = parse_model(("A", "B", "C", "D"), "A:B")
    covered = 0
    for y in tables:
        res = estimate(from_rows(["A", "B", "C", "D"], cells, y),
                       EstimateOptions(model=true_model))
        assert res.profile_interval is not None
        covered += res.profile_interval[0] <= total <= res.profile_interval[1]
    assert covered / len(tables) >= 0.85


# ---- hub pipeline ----------------------------------------------------------------------------

def _hub(tmp_path: Path, with_persons: bool = True) -> Path:
    from accord.store import open_store

    rng = np.random.default_rng(1)
    n, partners, p = 3000, ["ngo", "police", "shelter"], [0.3, 0.2, 0.25]
    rows, persons = [], []
    for i in range(n):
        sex = "female" if i % 3 else "male"
        for j, partner in enumerate(partners):
            if rng.random() < p[j]:
                key = f"{partner}-{i}"
                rows.append({"batch_id": f"b-{partner}", "partner": partner, "record_key": key,
                             "sex": sex, "age_group": "adult"})
                persons.append({"person_id": i, "batch_id": f"b-{partner}", "partner": partner,
                                "record_key": key, "match_score": 1.0})
    rows.append({"batch_id": "b-tiny", "partner": "tiny", "record_key": "tiny-1",
                 "sex": "male", "age_group": "child"})
    persons.append({"person_id": n + 1, "batch_id": "b-tiny", "partner": "tiny",
                    "record_key": "tiny-1", "match_score": 1.0})
    path = tmp_path / "hub.duckdb"
    with open_store(path) as store:
        store.write_table("records", pa.Table.from_pylist(rows), mode="replace")
        if with_persons:
            store.write_table("persons", pa.Table.from_pylist(persons), mode="replace")
    return path


def test_hub_estimate_by_stratum(tmp_path: Path) -> None:
    from accord.research.estimate.pipeline import (
        PipelineOptions,
        estimate_section,
        report_section,
    )
    from accord.store import open_store

    hub = _hub(tmp_path)
    out = runner.invoke(app, ["estimate", "--hub", str(hub), "--by", "sex,age_group", "--privacy",
                                    "suppression", "--json"])
    assert out.exit_code == 0, out.output
    d = json.loads(out.stdout)
    est = d["overall"]["estimate"]
    # 3,000 people, lists independent: the main-effects truth, within the interval
    assert est["interval"][0] <= 3000 <= est["interval"][1]
    assert d["overall"]["seen"] > 1500
    assert any("merged" in n or "fewer than" in n for n in est["notes"])  # the 1-person partner
    strata = {(s["stratum"]["sex"], s["stratum"]["age_group"]): s for s in d["strata"]}
    assert strata[("male", "child")]["seen"] is None  # 1 person: suppressed
    assert strata[("male", "child")]["withheld"]
    assert strata[("female", "adult")]["estimate"]["total"] > strata[("female", "adult")]["seen"]
    shown = {r["lists"]: r["people"] for r in d["capture_histories"]["rows"]}
    assert shown["tiny only"] is None  # 1 person: suppressed under the small-cell rule
    assert all(v is None or v == 0 or v >= 10 for v in shown.values())
    with open_store(hub) as store:
        assert [r["kind"] for r in store.releases()] == ["estimate"]
        sec = estimate_section(store, PipelineOptions(by=("sex",), method="suppression"))
        rs = report_section(store)
    assert "Estimated total" in sec["title"] and "Closed population" in str(sec["html"])
    assert sec["summary"]["strata"][0]["stratum"]["sex"] in ("female", "male")
    assert "Estimated total, seen and unseen" in str(rs.render(None))  # type: ignore[arg-type]


def test_hub_without_linkage_says_run_link(tmp_path: Path) -> None:
    hub = _hub(tmp_path, with_persons=False)
    out = runner.invoke(app, ["estimate", "--hub", str(hub)])
    assert out.exit_code == 2
    assert "accord link" in out.output
    from accord.research.estimate.pipeline import estimate_section
    from accord.store import open_store

    with open_store(hub) as store:
        sec = estimate_section(store)
    assert sec["summary"] is None and "accord link" in str(sec["html"])


def test_hub_without_overlap_gives_no_number(tmp_path: Path) -> None:
    from accord.store import open_store

    rows = [{"batch_id": "b", "partner": f"p{i % 3}", "record_key": f"k{i}", "sex": "female"}
            for i in range(300)]
    persons = [{"person_id": i, "batch_id": "b", "partner": f"p{i % 3}", "record_key": f"k{i}",
                "match_score": None} for i in range(300)]
    hub = tmp_path / "hub.duckdb"
    with open_store(hub) as store:
        store.write_table("records", pa.Table.from_pylist(rows), mode="replace")
        store.write_table("persons", pa.Table.from_pylist(persons), mode="replace")
    out = runner.invoke(app, ["estimate", "--hub", str(hub), "--privacy", "suppression", "--json"])
    assert out.exit_code == 0, out.output
    d = json.loads(out.stdout)
    assert d["overall"]["seen"] == 300 and "estimate" not in d["overall"]
    assert "more than one partner" in d["overall"]["withheld"]


def test_hub_bad_stratum_column(tmp_path: Path) -> None:
    hub = _hub(tmp_path)
    out = runner.invoke(app, ["estimate", "--hub", str(hub), "--by", "person_pseudonym"])
    assert out.exit_code == 2 and "cannot stratify" in out.output
