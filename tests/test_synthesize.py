"""The DP synthesiser: CLI, required marginals, post-processing isolation, reports."""

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
from accord.release.dp.mechanism import calibrate, rho_from_epsilon_delta
from accord.release.synthesize import api, data, model
from accord.release.synthesize.mst import measure
from accord.release.synthesize.report import tvd


def _people(n: int, seed: int = 0) -> pa.Table:
    """Correlated categorical data: exploitation depends on sex, age band on case type."""
    rng = np.random.default_rng(seed)
    sex = rng.choice(["female", "male"], n, p=[0.6, 0.4])
    case = rng.choice(["tv", "gbv", "vm"], n)
    age = np.where(case == "gbv", rng.choice(["0-17", "18-59"], n, p=[0.7, 0.3]),
                   rng.choice(["0-17", "18-59", "60+"], n, p=[0.2, 0.7, 0.1]))
    exp = np.where(sex == "female", rng.choice(["sexual", "labour"], n, p=[0.85, 0.15]),
                   rng.choice(["sexual", "labour"], n, p=[0.1, 0.9]))
    region = rng.choice(["north", "south", "east", "west"], n)
    return pa.table({"sex": sex, "age": age, "case_type": case, "exploitation": exp,
                     "region": region})


def _write_csv(path: Path, table: pa.Table, sep: str = ";") -> Path:
    lines = [sep.join(table.column_names)]
    lines += [sep.join(str(v) for v in row.values()) for row in table.to_pylist()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_cli_writes_synthetic_data_and_reports(tmp_path: Path) -> None:
    src = _write_csv(tmp_path / "people.csv", _people(3000))
    out = tmp_path / "out" / "synthetic.csv"
    steward = tmp_path / "steward" / "real-stats.json"
    res = CliRunner().invoke(app, ["synthesize", str(src), "--sep", ";", "--epsilon", "4",
                                   "--rows", "2000", "--out", str(out), "--json",
                                   "--steward-report", str(steward)])
    assert res.exit_code == 0, res.output
    payload = json.loads(res.output)
    synth = data.read_csv(out, ";")
    assert synth.num_rows == 2000
    assert synth.column_names == ["sex", "age", "case_type", "exploitation", "region"]
    assert set(synth.column("sex").to_pylist()) <= {"female", "male"}
    # Published: fit to the noisy measured marginals (1-way and the measured cliques).
    orders = {o["order"]: o for o in payload["utility"]["orders"]}
    assert 1 in orders and 2 in orders and "noisy" in payload["utility"]["against"]
    # Against the noisy measurements, so their own noise is in it: the adaptive mode spends
    # smaller shares on more marginals (0.05-0.16 seen over runs). It only has to rule out a model
    # that ignores them (independent columns: ~0.3); fit to the truth is checked below at 0.08.
    assert orders[2]["mean_tvd"] < 0.25
    # The strong sex x exploitation dependence survives (independent columns would give ~0.3).
    real = data.encode(_people(3000))
    enc = data.encode(synth, levels=dict(zip(real.columns, real.levels, strict=True)))
    assert tvd(real.codes, enc.codes, real.sizes, (0, 3)) < 0.08
    for key in ("utility_svg", "utility_md", "privacy_json"):
        assert Path(payload["files"][key]).exists()
    assert Path(payload["files"]["utility_svg"]).read_text().startswith("<svg")
    privacy = json.loads(Path(payload["files"]["privacy_json"]).read_text())
    assert privacy["epsilon"] == 4 and privacy["rho_spent"] <= privacy["rho"] + 1e-12
    assert "distance_to_closest_record" not in privacy
    # Kept by the steward, outside the release folder: the real-data statistics.
    kept = json.loads(steward.read_text())
    assert kept["note"].startswith("STEWARD ONLY")
    assert {o["order"] for o in kept["utility_vs_real_data"]["orders"]} == {1, 2, 3}
    assert kept["utility_vs_real_data"]["orders"][1]["mean_tvd"] < 0.08
    assert sum(kept["distance_to_closest_record"]["synthetic_to_real"]) == 1000
    inside = CliRunner().invoke(app, ["synthesize", str(src), "--sep", ";", "--epsilon", "4",
                                      "--out", str(out), "--overwrite", "--steward-report",
                                      str(out.parent / "real.json")])
    assert inside.exit_code == 2 and "release folder" in inside.output
    assert not (out.parent / "real.json").exists()


def test_cli_refuses_bad_input(tmp_path: Path) -> None:
    src = _write_csv(tmp_path / "people.csv", _people(50))
    res = CliRunner().invoke(app, ["synthesize", str(src), "--sep", ";", "--epsilon", "0",
                                   "--out", str(tmp_path / "x.csv")])
    assert res.exit_code != 0 and "epsilon" in res.output
    res = CliRunner().invoke(app, ["synthesize", str(src), "--sep", ";", "--epsilon", "1",
                                   "--bin", "age=oops", "--out", str(tmp_path / "x.csv")])
    assert res.exit_code != 0 and "LOW:HIGH:WIDTH" in res.output


@pytest.mark.parametrize("text", ["sex;age\n", "sex\n"])
def test_a_table_without_rows_is_bad_input_not_a_refused_release(tmp_path: Path, text: str) -> None:
    """A header without rows ended in exit 3, the code of a release refused for privacy (users
    went after --epsilon): nothing to model is bad input, exit 2, with what to do next."""
    src = tmp_path / "empty.csv"
    src.write_text(text, encoding="utf-8")
    out = tmp_path / "x.csv"
    res = CliRunner().invoke(app, ["synthesize", str(src), "--sep", ";", "--epsilon", "1", "--rows", "10",
                                   "--out", str(out)])
    assert res.exit_code == 2, res.output
    said = " ".join(res.output.split())
    assert "nothing to synthesise" in said and "what to do: give a table with data rows" in said
    assert not out.exists()


def test_required_marginals_are_always_measured() -> None:
    enc = data.encode(_people(1500))
    required = [("sex", "age", "case_type"), ("sex", "age", "exploitation")]
    res = api.synthesize(enc, 1.0, required=required, test_seed=3)
    measured = res.parameters()["measured_marginals"]
    for clique in required:
        assert sorted(clique) in [sorted(m) for m in measured]
    # Every column is in the model through its one-way marginal: region (independent of the
    # rest) needs no joint measurement in the adaptive mode, unlike in MST's spanning tree.
    assert res.parameters()["one_way_marginals"] == len(enc.columns)
    j = enc.columns.index("region")
    real = np.bincount(enc.codes[:, j], minlength=enc.sizes[j]) / enc.codes.shape[0]
    synth = np.bincount(res.synthetic_codes[:, j], minlength=enc.sizes[j])
    assert 0.5 * np.abs(real - synth / synth.sum()).sum() < 0.1


def test_post_processing_reads_only_the_measurements() -> None:
    enc = data.encode(_people(1000))
    measured = measure(enc, rho_from_epsilon_delta(1.0, 1e-9), test_seed=11)
    first = model.sample(model.fit(measured), 500, np.random.default_rng(1))
    enc.codes[...] = 0  # poison the real records after measuring
    second = model.sample(model.fit(measured), 500, np.random.default_rng(1))
    assert np.array_equal(first, second)


def test_test_seed_reproduces_and_default_does_not() -> None:
    enc = data.encode(_people(800))
    a = api.synthesize(enc, 1.0, rows=300, test_seed=5).synthetic_codes
    b = api.synthesize(enc, 1.0, rows=300, test_seed=5).synthetic_codes
    c = api.synthesize(enc, 1.0, rows=300).synthetic_codes
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_budget_is_split_and_accounted() -> None:
    enc = data.encode(_people(800))
    rho = rho_from_epsilon_delta(2.0, 1e-9)
    m = measure(enc, rho)
    # One-way measurements: one person moves one cell in each of the 5 tables -> L2^2 = 5.
    assert m.one_way[0].noise.l2_sq == 5
    assert m.one_way[0].noise.cost_rho() <= rho / 3 + 1e-15
    assert m.rho <= rho + 1e-12 and m.rho > 0.99 * rho


def test_numeric_binning() -> None:
    bins = data.parse_bins(["age=0:100:25"])
    assert bins["age"].labels() == ("[0, 25)", "[25, 50)", "[50, 75)", "[75, 100)")
    enc = data.encode(pa.table({"age": ["3", "30", "99", "140", "-5"]}), bins)
    assert enc.codes[:, 0].tolist() == [0, 1, 3, 3, 0]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(-50, 50), min_size=1, max_size=30), st.floats(0.5, 200))
def test_simplex_projection(values: list[float], total: float) -> None:
    v = np.array(values)
    x = model.project_to_simplex(v, total)
    assert (x >= 0).all() and x.sum() == pytest.approx(total, rel=1e-9, abs=1e-9)
    # Optimality (KKT): the positive cells are v shifted by one common amount.
    shift = v[x > 0] - x[x > 0]
    assert np.ptp(shift) < 1e-7
    assert (v[x == 0] <= shift[0] + 1e-7).all()


def test_release_synthetic_from_the_hub(tmp_path: Path) -> None:
    from tests.test_dp import _hub

    hub = _hub(tmp_path / "hub.duckdb", n=600)
    out = tmp_path / "syn"
    res = CliRunner().invoke(app, ["release", "synthetic", "--epsilon", "2", "--rows", "300",
                                   "--out", str(out), "--hub", str(hub), "--json"])
    assert res.exit_code == 0, res.output
    payload = json.loads(res.output)
    measured = [sorted(m) for m in payload["privacy"]["measured_marginals"]]
    assert sorted(["sex", "age_group", "case_type"]) in measured
    assert sorted(["sex", "age_group", "type_of_exploitation"]) in measured
    synth = data.read_csv(out / "synthetic.csv")
    assert synth.num_rows == 300
    assert set(synth.column("sex").to_pylist()) <= {"female", "male", "transgender_female",
                                                     "transgender_male", "non_conforming",
                                                     "unknown", "(missing)"}
    assert (out / "synthetic.utility.svg").exists() and (out / "release.json").exists()
    for f in out.iterdir():  # real-data statistics stay in the hub's release record
        assert "distance_to_closest_record" not in f.read_text() and "STEWARD" not in f.read_text()
    assert "distance_to_closest_record" not in res.output
    from accord.store import open_store

    store = open_store(hub)
    (record,) = [r for r in store.releases() if r["kind"] == "dp_synthetic"]
    store.close()
    assert json.loads(record["results"])["steward_only"]["note"].startswith("STEWARD ONLY")
    ledger = json.loads(CliRunner().invoke(app, ["budget", "--hub", str(hub), "--json"]).output)
    assert ledger["spends"][0]["kind"] == "dp_synthetic"
    assert 0 < ledger["budget"]["spent_rho"] <= rho_from_epsilon_delta(2.0, 1e-9) + 1e-12


def test_synthetic_csv_neutralises_formula_cells(tmp_path: Path) -> None:
    """Category values that a spreadsheet would run as formulas are written as text."""
    import csv as _csv

    from typer.testing import CliRunner

    from accord.cli.main import app

    data = tmp_path / "d.csv"
    data.write_text("kind,sex\n" + "".join(f"{'=cmd()' if i % 2 else 'plain'},{'f' if i % 3 else 'm'}\n"
                                           for i in range(400)), encoding="utf-8")
    out = tmp_path / "s.csv"
    result = CliRunner().invoke(app, ["synthesize", str(data), "--epsilon", "4", "--out", str(out)])
    assert result.exit_code == 0, result.output
    values = {row["kind"] for row in _csv.DictReader(out.read_text(encoding="utf-8").splitlines())}
    assert "'=cmd()" in values and "=cmd()" not in values


def test_release_synthetic_refused_when_the_budget_cannot_pay(tmp_path: Path) -> None:
    from accord.errors import ReleaseRefused
    from accord.store import open_store
    from tests.test_dp import _hub

    hub = _hub(tmp_path / "hub.duckdb", n=300)
    r = CliRunner().invoke(app, ["budget", "set", "--epsilon", "1", "--delta", "1e-9",
                                 "--hub", str(hub)])
    assert r.exit_code == 0, r.output
    out = tmp_path / "syn"
    refused = CliRunner().invoke(app, ["release", "synthetic", "--epsilon", "2", "--rows", "100",
                                       "--out", str(out), "--hub", str(hub)])
    assert refused.exit_code == ReleaseRefused.exit_code, refused.output
    assert "budget" in refused.output
    assert not out.exists()
    with open_store(hub) as store:
        assert "dp_synthetic" not in store.query("SELECT kind FROM releases").column(0).to_pylist()
    ledger = json.loads(CliRunner().invoke(app, ["budget", "--hub", str(hub), "--json"]).output)
    assert ledger["budget"]["spent_rho"] == 0 and not ledger["spends"]
    # The same release within the budget goes through: it was the budget that refused.
    ok = CliRunner().invoke(app, ["release", "synthetic", "--epsilon", "0.5", "--rows", "100",
                                  "--out", str(out), "--hub", str(hub)])
    assert ok.exit_code == 0, ok.output


def test_a_blank_header_is_named_by_its_position(tmp_path: Path) -> None:
    src = tmp_path / "blank.csv"
    src.write_text("sex,,region\n" + "".join(f"f,id{i},north\n" for i in range(10_050)))
    res = CliRunner().invoke(app, ["synthesize", str(src), "--epsilon", "1",
                                   "--out", str(tmp_path / "o.csv")])
    assert res.exit_code == 3, res.output
    assert "column 2 (no header)" in res.output and "``" not in res.output
    assert "id1" not in res.output


@pytest.mark.parametrize("header", ["Count", "txtVALUE", "n", "Number"])
def test_aggregate_input_is_refused(tmp_path: Path, header: str) -> None:
    src = tmp_path / "agg.csv"
    src.write_text(f"country,sex,{header}\n" + "MX,female,120\nMX,male,<5\nGT,female,33\n"
                   "GT,male,0\n")
    res = CliRunner().invoke(app, ["synthesize", str(src), "--epsilon", "1",
                                   "--out", str(tmp_path / "o.csv")])
    assert res.exit_code == 2, res.output
    assert "table of counts" in res.output and f"{header} holds counts" in res.output
    assert not (tmp_path / "o.csv").exists()


def test_person_level_columns_with_count_like_names_are_not_refused(tmp_path: Path) -> None:
    # A 0/1 flag called "n", and a column of text called "value": attributes of each person.
    src = tmp_path / "people.csv"
    src.write_text("sex,n,value\n" + "".join(f"{'f' if i % 2 else 'm'},{i % 2},{'ab'[i % 2]}\n"
                                             for i in range(300)))
    res = CliRunner().invoke(app, ["synthesize", str(src), "--epsilon", "2",
                                   "--out", str(tmp_path / "o.csv")])
    assert res.exit_code == 0, res.output


def test_glotip_is_refused(tmp_path: Path, shared_data: Path) -> None:
    res = CliRunner().invoke(app, ["synthesize", str(shared_data / "glotip" / "data_glotip.csv"),
                                   "--epsilon", "1", "--out", str(tmp_path / "o.csv")])
    assert res.exit_code == 2 and "table of counts" in res.output, res.output


def test_adaptive_is_the_default_and_measures_workload_marginals() -> None:
    enc = data.encode(_people(2000))
    res = api.synthesize(enc, 4.0, test_seed=2)
    params = res.parameters()
    assert params["method"] == "aim-junction-tree"
    assert params["rho_spent"] <= res.rho * (1 + 1e-9) and params["rho_spent"] > 0.99 * res.rho
    # The strongest dependence (sex x exploitation) is found and reproduced.
    measured = [set(m) for m in params["measured_marginals"]]
    assert any({"sex", "exploitation"} <= m for m in measured)
    syn = res.table()
    female = np.asarray(syn.column("sex").to_pylist()) == "female"
    sexual = np.asarray(syn.column("exploitation").to_pylist()) == "sexual"
    assert sexual[female].mean() > 0.7 and sexual[~female].mean() < 0.3
    mst_res = api.synthesize(enc, 4.0, test_seed=2, mode="mst")
    assert mst_res.parameters()["method"] == "mst-junction-tree"


def test_user_workload_is_targeted() -> None:
    enc = data.encode(_people(2000))
    res = api.synthesize(enc, 2.0, test_seed=4, workload=[("case_type", "age")])
    measured = [set(m) for m in res.parameters()["measured_marginals"]]
    assert all(m <= {"case_type", "age"} for m in measured)


def test_cli_refuses_unknown_workload_and_huge_domains(tmp_path: Path) -> None:
    src = _write_csv(tmp_path / "people.csv", _people(200))
    res = CliRunner().invoke(app, ["synthesize", str(src), "--sep", ";", "--epsilon", "1",
                                   "--workload", "sex,colour", "--out", str(tmp_path / "x.csv")])
    assert res.exit_code == 3 and "colour" in res.output
    assert not (tmp_path / "x.csv").exists()
    rng = np.random.default_rng(0)
    wide = pa.table({"id": [f"p{i}" for i in range(600)],
                     "code": [f"c{i}" for i in rng.permutation(600)],
                     "sex": rng.choice(["f", "m"], 600)})
    big = _write_csv(tmp_path / "wide.csv", wide)
    res = CliRunner().invoke(app, ["synthesize", str(big), "--sep", ";", "--epsilon", "1",
                                   "--out", str(tmp_path / "y.csv")])
    assert res.exit_code == 3 and "id" in res.output and "--bin" in res.output
    assert not (tmp_path / "y.csv").exists()


def test_model_cliques_triangulate_the_measured_sets_within_the_caps(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # A chordal family keeps its own cliques (no fill-in); a triangle of pairs becomes one
    # clique; a 4-cycle gets one chord (two 3-column cliques); too many cells: None.
    assert model.model_cliques([(0, 1), (1, 2)], (2, 3, 4)) == ((0, 1), (1, 2))
    assert model.model_cliques([(0, 1), (1, 2), (0, 2)], (2, 3, 4)) == ((0, 1, 2),)
    square = model.model_cliques([(0, 1), (1, 2), (2, 3), (0, 3)], (2, 2, 2, 2))
    assert square is not None and len(square) == 2 and all(len(c) == 3 for c in square)
    assert model.model_cliques([(0,), (1,)], (5, 5)) == ((0,), (1,))
    assert model.model_cliques([(0, 1), (1, 2), (0, 2)], (600, 600, 2)) is None
    monkeypatch.setattr(model, "MAX_TOTAL_CELLS", 10)
    model._cliques.cache_clear()
    assert model.model_cliques([(0, 1), (1, 2)], (3, 3, 3)) is None
    model._cliques.cache_clear()


def cycle_measured() -> tuple[np.ndarray, tuple[int, int, int], model.Measured]:
    """Three pairwise-dependent columns (codes, sizes) measured as their one-way tables and three
    2-way tables around a cycle, with the noise scale on record but exact counts."""
    rng = np.random.default_rng(5)
    n = 20_000
    a = rng.integers(0, 3, n)
    b = np.where(rng.random(n) < 0.7, a, rng.integers(0, 3, n))
    c = np.where(rng.random(n) < 0.5, (a + b) % 3, rng.integers(0, 3, n))
    codes = np.stack([a, b, c], axis=1)
    sizes = (3, 3, 3)
    spec = calibrate("gaussian", 1, 6, 50.0)
    one = tuple(model.Measurement((j,), model.marginal(codes, sizes, (j,)), spec)
                for j in range(3))
    pairs = tuple(model.Measurement(p, model.marginal(codes, sizes, p), spec)
                  for p in ((0, 1), (1, 2), (0, 2)))
    lv = tuple(tuple(str(i) for i in range(3)) for _ in range(3))
    measured = model.Measured(("a", "b", "c"), lv, tuple(np.arange(3) for _ in range(3)), one,
                              pairs, 1.0, ())
    return codes, sizes, measured


def test_fit_holds_a_cycle_of_pairs_the_junction_tree_could_not() -> None:
    # Three pairwise-dependent columns measured as three 2-way tables (a cycle): the model
    # carries one 3-column clique raked to all three, and reproduces each pair.
    codes, sizes, measured = cycle_measured()
    n = len(codes)
    fitted = model.fit(measured)
    assert fitted.cliques == ((0, 1, 2),)
    joint = fitted.tables[0]
    for p in ((0, 1), (1, 2), (0, 2)):
        drop = tuple(i for i in range(3) if i not in p)
        true = model.marginal(codes, sizes, p).ravel() / n
        assert 0.5 * np.abs(joint.sum(axis=drop).ravel() - true).sum() < 0.01
    draws = model.sample(fitted, 5000, np.random.default_rng(1))
    assert tvd(codes, draws, sizes, (0, 2)) < 0.03


@pytest.mark.parametrize("seed", [8, 13, 16])
def test_no_round_on_the_budget_s_floating_point_residue(seed: int) -> None:
    """These seeds once ended with an extra round on the ~1e-12 the last round's calibrated noise
    left unspent: a marginal measured with noise of ~1e5 per cell, which the fit trusted, so the
    strong sex x exploitation dependence was lost (TVD 0.38-0.42)."""
    real = data.encode(_people(3000))
    res = api.synthesize(real, 4.0, rows=2000, test_seed=seed)
    assert max(model.spec_variance(m.noise) for m in res.measured.cliques) < 100**2  # sd < 100
    assert tvd(real.codes, res.synthetic_codes, real.sizes, (0, 3)) < 0.08


@pytest.mark.slow
def test_one_way_share_lowers_the_2way_error_at_small_epsilon(
        shared_data: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A fifth of the budget on the one-way marginals (it was a tenth) closed the gap to AIM at
    epsilon 0.5 on adult (AIM: mean TVD2 0.059); the accounting is unchanged (all of rho, no more)."""
    from accord.release.synthesize import aim
    from accord.release.synthesize.report import utility

    real = data.encode(data.read_csv(shared_data / "arx" / "adult.csv", ";"))
    rho = rho_from_epsilon_delta(0.5, api.DEFAULT_DELTA)

    def mean_tvd2() -> float:
        out = []
        for seed in range(1, 6):
            res = api.synthesize(real, 0.5, rows=real.codes.shape[0], test_seed=seed)
            assert rho * 0.999 < res.measured.rho <= rho * (1 + 1e-9)
            one_way = res.measured.one_way[0].noise.cost_rho()
            assert one_way <= aim.one_way_share(rho) * rho * (1 + 1e-9)
            util = utility(real.codes, res.synthetic_codes, real.sizes, real.columns)
            out.append(next(o["mean_tvd"] for o in util["orders"] if o["order"] == 2))
        return float(np.mean(out))

    now = mean_tvd2()
    monkeypatch.setattr(aim, "ONE_WAY_SHARE", 0.1)
    before = mean_tvd2()
    print(f"mean TVD2 at epsilon 0.5: {now:.4f} (a tenth on one-ways: {before:.4f})")
    assert now < 0.059 and now < before - 0.002


def test_one_way_share_falls_from_a_fifth_to_a_tenth_with_the_budget() -> None:
    from accord.release.synthesize import aim

    shares = [aim.one_way_share(rho_from_epsilon_delta(e, 1e-9)) for e in (0.1, 0.5, 1, 2, 4, 8)]
    assert shares[:3] == [0.2, 0.2, 0.2] and shares[-2:] == [0.1, 0.1]
    assert 0.1 < shares[3] < 0.2
    # rho underflows to 0 for an epsilon like 1e-320 (found by the CLI sweep): a share, no error
    assert aim.one_way_share(0.0) == 0.2 and aim.one_way_share(5e-324) == 0.2
    real = data.encode(_people(2000))
    res = api.synthesize(real, 4.0, test_seed=3)
    rho = rho_from_epsilon_delta(4.0, api.DEFAULT_DELTA)
    assert res.measured.one_way[0].noise.cost_rho() <= 0.1 * rho * (1 + 1e-9)
    assert rho * 0.99 < res.measured.rho <= rho * (1 + 1e-9)


def test_a_clique_is_raked_to_the_part_of_a_measured_set_inside_it(shared_data: Path) -> None:
    """The measured sets of an adult run (epsilon 1) whose model put marital x salary, measured
    only inside sex x marital x salary, in a root clique (marital, education, occupation, salary)
    that held none of the sets wholly: that margin was fitted at maximum entropy (TVD 0.17, the
    run's TVD2 0.053 against 0.039 typical). Exact counts here, so only the fit can be wrong."""
    from accord.release.synthesize.aim import model_marginal

    real = data.encode(data.read_csv(shared_data / "arx" / "adult.csv", ";"))
    col = {c: i for i, c in enumerate(real.columns)}
    names = [("sex", "marital-status", "salary-class"), ("sex", "occupation", "salary-class"),
             ("education", "salary-class"), ("sex", "workclass"), ("sex", "race"),
             ("workclass", "salary-class"), ("race", "native-country"), ("age", "salary-class"),
             ("sex", "race", "salary-class"), ("education", "occupation"),
             ("workclass", "occupation"), ("age", "marital-status"),
             ("marital-status", "occupation"), ("race", "native-country", "salary-class"),
             ("marital-status", "education")]
    spec = calibrate("gaussian", 1, 1, 1.0)
    sizes = real.sizes

    def exact(attrs: tuple[int, ...]) -> model.Measurement:
        return model.Measurement(attrs, model.marginal(real.codes, sizes, attrs), spec)

    measured = model.Measured(
        real.columns, real.levels, tuple(np.arange(s) for s in sizes),
        tuple(exact((j,)) for j in range(len(sizes))),
        tuple(exact(tuple(sorted(col[c] for c in t))) for t in names), 1.0, ())
    fitted = model.fit(measured)
    pair = (col["marital-status"], col["salary-class"])
    truth = model.marginal(real.codes, sizes, pair).astype(float)
    est = model_marginal(fitted, pair)
    assert 0.5 * np.abs(truth / truth.sum() - est).sum() < 0.01


def test_draws_are_the_expected_counts_rounded() -> None:
    """Sampling rounds n p (as mbi's sampler does) instead of drawing a multinomial: on adult at
    epsilon 4 that took the sampled rows' TVD2 from 0.024 to 0.020 (the model's own: 0.017)."""
    rng = np.random.default_rng(5)
    probs = rng.dirichlet(np.ones(40))
    for n in (0, 1, 7, 1000, 30_162):
        counts = np.bincount(model._draw(probs, n, rng), minlength=probs.size)
        assert counts.sum() == n and np.all(np.abs(counts - n * probs) < 1)
    assert len(set(model._draw(probs, 1000, rng)[:50].tolist())) > 5  # shuffled, not sorted
