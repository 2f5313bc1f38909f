"""k-anonymisation engine: optimality against exhaustive search, guarantees, refusal, CLI."""

from __future__ import annotations

import json
import math
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pcsv
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from accord.cli.main import app
from accord.errors import ReleaseRefused
from accord.release.anonymise import (
    PrivacyModel,
    anonymise,
    build_problem,
    check_release,
    exhaustive_search,
    load_hierarchies,
    optimal_search,
)
from accord.release.anonymise.hierarchy import HierarchyError
from tests.anonymise_hierarchies import HIERARCHIES, QI
from tests.data_paths import SHARED_DATA

ARX = SHARED_DATA / "arx"
needs_arx = pytest.mark.skipif(not (ARX / "adult.csv").is_file(),
                               reason="ARX adult data not found (set ACCORD_SHARED_DATA)")



def random_table(seed: int, n: int) -> pa.Table:
    rng = np.random.default_rng(seed)
    return pa.table({
        "age": [str(a) for a in rng.integers(20, 60, n)],
        "sex": list(rng.choice(["f", "m", "x"], n, p=[0.5, 0.45, 0.05])),
        "region": list(rng.choice(["FR", "DE", "NG", "GH", "TH"], n)),
        "diag": list(rng.choice(["a", "b", "c", "d"], n, p=[0.6, 0.2, 0.15, 0.05])),
    })


def plain_check(table: pa.Table, qi: list[str], sensitive: list[str]) -> tuple[int, int]:
    """Third opinion, in plain Python: smallest class and fewest distinct sensitive values,
    over records whose quasi-identifiers are not all suppressed."""
    rows = table.to_pylist()
    groups: dict[tuple[str, ...], list[dict[str, str]]] = defaultdict(list)
    for r in rows:
        key = tuple(r[q] for q in qi)
        if any(v != "*" for v in key):
            groups[key].append(r)
    if not groups:
        return 0, 0
    k = min(len(g) for g in groups.values())
    l_min = min((len({r[s] for r in g}) for g in groups.values() for s in sensitive),
                default=1)
    return k, l_min


@pytest.mark.parametrize("seed", [1, 2])
@pytest.mark.parametrize("k,supp", [(2, 0.0), (5, 0.0), (5, 0.05), (10, 0.1), (25, 0.02)])
@pytest.mark.parametrize("metric", ["entropy", "loss"])
def test_optimal_search_matches_exhaustive(seed: int, k: int, supp: float, metric: str) -> None:
    problem = build_problem(random_table(seed, 400), QI, ["diag"], HIERARCHIES)
    model = PrivacyModel(k=k, max_suppression=supp)
    fast = optimal_search(problem, model, metric)  # type: ignore[arg-type]
    full = exhaustive_search(problem, model, metric)  # type: ignore[arg-type]
    assert full.best is not None and fast.best is not None
    assert fast.best.loss == pytest.approx(full.best.loss, rel=1e-12, abs=1e-9)
    assert fast.best.levels == full.best.levels
    assert full.stats.evaluated == full.stats.nodes


@pytest.mark.parametrize("l_kind", ["distinct", "entropy"])
def test_optimal_search_matches_exhaustive_with_l(l_kind: str) -> None:
    problem = build_problem(random_table(7, 500), QI, ["diag"], HIERARCHIES)
    model = PrivacyModel(k=3, l=2, l_kind=l_kind, max_suppression=0.05)  # type: ignore[arg-type]
    fast, full = optimal_search(problem, model), exhaustive_search(problem, model)
    assert fast.best is not None and full.best is not None
    assert fast.best.loss == pytest.approx(full.best.loss)


def test_search_prunes_most_of_the_lattice() -> None:
    problem = build_problem(random_table(3, 2000), QI, [], HIERARCHIES)
    res = optimal_search(problem, PrivacyModel(k=5))
    assert res.stats.evaluated < res.stats.nodes


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), n=st.integers(1, 300), k=st.integers(1, 12),
       l=st.integers(1, 3), supp=st.sampled_from([0.0, 0.01, 0.1, 0.5]))
def test_released_table_is_k_anonymous_and_l_diverse(seed: int, n: int, k: int, l: int,  # noqa: E741
                                                     supp: float) -> None:
    table = random_table(seed, n)
    sensitive = ["diag"] if l > 1 else []
    try:
        res = anonymise(table, QI, HIERARCHIES, k=k, sensitive=sensitive, l=l,
                        max_suppression=supp)
    except ReleaseRefused:
        # Refusal is only legitimate when even full generalisation cannot work.
        distinct = len(set(table.column("diag").to_pylist()))
        assert n < k or (l > 1 and distinct < l)
        return
    k_seen, l_seen = plain_check(res.table, QI, ["diag"] if l > 1 else [])
    if k_seen:
        assert k_seen >= k
        assert l_seen >= l
    assert res.suppressed_records <= int(np.floor(supp * n + 1e-9))
    assert res.table.num_rows == n
    suppressed_rows = [r for r in res.table.to_pylist() if all(r[q] == "*" for q in QI)]
    if 0 < len(suppressed_rows) < k and sensitive:
        assert all(r["diag"] == "*" for r in suppressed_rows)


def test_refusal_names_the_feasible_settings() -> None:
    table = random_table(1, 30).drop_columns(["diag"]).append_column(
        "diag", pa.array(["a"] * 29 + ["b"]))
    with pytest.raises(ReleaseRefused) as err:
        anonymise(table, QI, HIERARCHIES, k=2, sensitive=["diag"], l=3)
    assert "l <= 2" in (err.value.hint or "")
    with pytest.raises(ReleaseRefused) as err:
        anonymise(table, QI, HIERARCHIES, k=31)
    assert "k <= 30" in (err.value.hint or "")


def test_entropy_l_is_checked_as_entropy() -> None:
    # 90 % one value: distinct 2-diverse at the top, but exp(entropy) is only about 1.4.
    table = random_table(2, 100).drop_columns(["diag"]).append_column(
        "diag", pa.array(["a"] * 90 + ["b"] * 10))
    assert anonymise(table, QI, HIERARCHIES, k=2, sensitive=["diag"], l=2).l_distinct >= 2
    with pytest.raises(ReleaseRefused):
        anonymise(table, QI, HIERARCHIES, k=2, sensitive=["diag"], l=2, l_kind="entropy")


def test_independent_check_catches_a_bad_table() -> None:
    bad = pa.table({"age": ["20-29", "20-29", "30-39"], "sex": ["f", "f", "m"],
                    "diag": ["a", "b", "a"]})
    res = check_release(bad, ["age", "sex"], ["diag"], k=2, l=2)
    assert res.k == 1 and not res.satisfies(2)
    lone_star = pa.table({"age": ["*", "1", "1"], "diag": ["a", "b", "c"]})
    assert not check_release(lone_star, ["age"], ["diag"], k=2, l=2).satisfies(2, 2)


def test_uncovered_value_is_reported_without_the_value() -> None:
    table = pa.table({"age": ["19"], "sex": ["f"], "region": ["FR"]})
    with pytest.raises(HierarchyError) as err:
        anonymise(table, QI, HIERARCHIES, k=1)
    assert "19" not in err.value.message


def _write_hierarchies(folder: Path) -> None:
    folder.mkdir()
    for name, h in HIERARCHIES.items():
        (folder / f"toy_hierarchy_{name}.csv").write_text(
            "\n".join(";".join(r) for r in h.rows) + "\n", encoding="utf-8")


def test_cli_anonymise_json(tmp_path: Path) -> None:
    data = tmp_path / "in.csv"
    pcsv.write_csv(random_table(5, 300), data)
    _write_hierarchies(tmp_path / "h")
    out = tmp_path / "out.csv"
    res = CliRunner().invoke(app, ["anonymise", str(data), "--qi", "age,sex,region",
                                   "--sensitive", "diag", "--hierarchies", str(tmp_path / "h"),
                                   "--k", "5", "--l", "2", "--max-suppression", "0.05",
                                   "--out", str(out), "--json"])
    assert res.exit_code == 0, res.output
    summary = json.loads(res.output)
    assert summary["k"] >= 5 and summary["l_distinct"] >= 2
    assert set(summary["levels"]) == {"age", "sex", "region"}
    assert summary["suppressed_share"] <= 0.05
    released = pcsv.read_csv(out, convert_options=pcsv.ConvertOptions(
        column_types={c: pa.string() for c in ["age", "sex", "region", "diag"]}))
    k_seen, l_seen = plain_check(released, QI, ["diag"])
    assert k_seen >= 5 and l_seen >= 2


def test_cli_refuses_with_exit_code_3(tmp_path: Path) -> None:
    data = tmp_path / "in.csv"
    pcsv.write_csv(random_table(5, 20), data)
    _write_hierarchies(tmp_path / "h")
    res = CliRunner().invoke(app, ["anonymise", str(data), "--qi", "age,sex,region",
                                   "--hierarchies", str(tmp_path / "h"), "--k", "50",
                                   "--out", str(tmp_path / "o.csv")])
    assert res.exit_code == 3
    assert "k <= 20" in res.output
    assert not (tmp_path / "o.csv").exists()


@needs_arx
def test_adult_k5_is_optimal_and_passes_the_check() -> None:
    qi = ["sex", "age", "race", "marital-status", "education", "native-country", "workclass",
          "occupation"]
    table = pcsv.read_csv(ARX / "adult.csv", parse_options=pcsv.ParseOptions(delimiter=";"),
                          convert_options=pcsv.ConvertOptions(
                              column_types={c: pa.string() for c in [*qi, "salary-class"]}))
    hier = load_hierarchies(ARX, qi)
    res = anonymise(table, qi, hier, k=5, max_suppression=0.02)
    k_seen, _ = plain_check(res.table, qi, [])
    assert k_seen >= 5
    assert res.suppressed_share <= 0.02
    stars = Counter(all(r[q] == "*" for q in qi) for r in res.table.to_pylist())
    assert stars[True] == res.suppressed_records


def test_cli_neutralises_formula_cells(tmp_path: Path) -> None:
    table = random_table(9, 60).drop_columns(["diag"]).append_column(
        "diag", pa.array(["=cmd()", "@x"] * 30))
    data = tmp_path / "in.csv"
    pcsv.write_csv(table, data)
    _write_hierarchies(tmp_path / "h")
    out = tmp_path / "o.csv"
    res = CliRunner().invoke(app, ["anonymise", str(data), "--qi", "age,sex,region",
                                   "--sensitive", "diag", "--hierarchies", str(tmp_path / "h"),
                                   "--k", "2", "--out", str(out)])
    assert res.exit_code == 0, res.output
    text = out.read_text(encoding="utf-8")
    assert "'=cmd()" in text and '"=cmd()"' not in text


@pytest.mark.parametrize("mode", ["records", "cells"])
def test_reported_entropy_loss_matches_a_direct_computation(mode: str) -> None:
    table = random_table(11, 300)
    res = anonymise(table, QI, HIERARCHIES, k=5, max_suppression=0.05,
                    suppression=mode)  # type: ignore[arg-type]
    orig, rel, n = table.to_pylist(), res.table.to_pylist(), table.num_rows
    assert res.suppressed_cells > 0  # the suppression term is exercised too
    loss = 0.0
    for q in QI:
        up = {row[0]: row[res.levels[q]] for row in HIERARCHIES[q].rows}
        f_orig = Counter(r[q] for r in orig)
        f_gen = Counter(up[r[q]] for r in orig)
        for o, r in zip(orig, rel, strict=True):
            p_gen = n if r[q] == "*" else f_gen[r[q]]
            loss += -math.log2(f_orig[o[q]] / p_gen)
    assert loss == pytest.approx(res.utility.non_uniform_entropy)
