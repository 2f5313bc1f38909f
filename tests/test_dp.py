"""DP count tables: OpenDP noise calibration, post-processing, margins of error."""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
import pytest
from scipy import stats

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
    assert _chi_square_p(samples, kind, scale) > 1e-3
    assert _chi_square_p(samples, kind, scale * 0.75) < 1e-3
    assert abs(samples.mean()) < 4 * math.sqrt(np.var(samples) / len(samples))


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
