"""Local (cell) suppression and per-flag l-diversity of multi-valued sensitive columns."""

from __future__ import annotations

import json
from collections import defaultdict
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
    optimal_search,
)
from accord.release.anonymise.api import Suppressing
from accord.release.anonymise.nodes import base_snapshot, evaluate, judge, roll_up_sorted
from accord.release.anonymise.search import Lattice
from accord.release.risk import assess_risk
from tests.anonymise_hierarchies import HIERARCHIES, QI


def random_table(seed: int, n: int) -> pa.Table:
    rng = np.random.default_rng(seed)
    needs = ["|".join(sorted(rng.choice(["food", "legal", "medical"], int(rng.integers(0, 3)),
                                        replace=False))) for _ in range(n)]
    return pa.table({
        "age": [str(a) for a in rng.integers(20, 60, n)],
        "sex": list(rng.choice(["f", "m", "x"], n, p=[0.5, 0.45, 0.05])),
        "region": list(rng.choice(["FR", "DE", "NG", "GH", "TH"], n)),
        "diag": list(rng.choice(["a", "b", "c", "d"], n, p=[0.6, 0.2, 0.15, 0.05])),
        "needs": needs,
    })


def flag_values(value: str, code: str) -> str:
    if value in ("*", ""):
        return value
    return "1" if code in value.split("|") else "0"


def plain_check(table: pa.Table, qi: list[str], single: list[str], multi: list[str]
                ) -> tuple[int, int]:
    """Third opinion in plain Python, '*' a value of its own; multi columns per flag. l counts
    recorded values only (empty is not a value); flags with fewer than two recorded values over
    the table, and columns recorded for no one, are skipped. Rows all '*' are left out."""
    rows = table.to_pylist()
    attrs: list[tuple[str, str | None]] = [
        (s, None) for s in single if any(r[s] not in ("*", "") for r in rows)]
    for m in multi:
        codes = sorted({c for r in rows if r[m] not in ("*", "") for c in r[m].split("|")})
        for code in codes:
            if len({flag_values(r[m], code) for r in rows} - {"*", ""}) > 1:
                attrs.append((m, code))
    groups: dict[tuple[str, ...], list[dict[str, str]]] = defaultdict(list)
    for r in rows:
        key = tuple(r[q] for q in qi)
        if any(v != "*" for v in key):
            groups[key].append(r)
    if not groups:
        return 0, 0
    k = min(len(g) for g in groups.values())
    l_min = min((len({r[a] if code is None else flag_values(r[a], code) for r in g} - {""})
                 for g in groups.values() for a, code in attrs), default=10**9)
    return k, l_min


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), n=st.integers(1, 250), k=st.integers(1, 8),
       l=st.integers(1, 2), supp=st.sampled_from([0.0, 0.02, 0.1, 0.5]),
       multi=st.booleans())
def test_any_release_passes_the_checks(seed: int, n: int, k: int, l: int,  # noqa: E741
                                       supp: float, multi: bool) -> None:
    table = random_table(seed, n)
    sensitive = (["needs"] if multi else ["diag"]) if l > 1 else []
    results = {}
    modes: tuple[Suppressing, Suppressing] = ("cells", "records")
    for mode in modes:
        try:
            res = anonymise(table, QI, HIERARCHIES, k=k, sensitive=sensitive, l=l,
                            max_suppression=supp, suppression=mode,
                            multi_valued=["needs"] if multi else [])
        except ReleaseRefused as err:
            # Only "k/l cannot be met" is legitimate, never a release the check rejected.
            assert "independent" not in err.message
            assert n < k or l > 1
            return
        k_seen, l_seen = plain_check(res.table, QI, [s for s in sensitive if s != "needs"],
                                     [s for s in sensitive if s == "needs"])
        if k_seen:
            assert k_seen >= k
            assert l_seen >= l
        assert check_release(res.table, QI, sensitive, k=k, l=l,
                             multi_valued=["needs"] if multi else []).satisfies(k, l)
        stars = sum(all(r[q] == "*" for q in QI) for r in res.table.to_pylist())
        everything_generalised = all(res.levels[q] == res.level_labels[q] - 1 for q in QI)
        assert stars == (n if everything_generalised else res.suppressed_records)
        assert res.records_with_suppressed_cells <= int(np.floor(supp * n + 1e-9))
        results[mode] = res
    cells, records = results["cells"], results["records"]
    assert cells.levels == records.levels
    assert cells.suppressed_cells <= records.suppressed_cells
    assert cells.suppressed_records <= records.suppressed_records
    assert cells.utility.non_uniform_entropy <= records.utility.non_uniform_entropy + 1e-9


def known_case() -> pa.Table:
    """Two big classes and three outliers that differ from each other only in age."""
    rows = [("35", "f", "FR")] * 100 + [("45", "m", "DE")] * 100 + \
        [("31", "f", "FR"), ("32", "f", "FR"), ("33", "f", "FR")]
    return pa.table({"age": [r[0] for r in rows], "sex": [r[1] for r in rows],
                     "region": [r[2] for r in rows]})


def test_cell_suppression_blanks_one_cell_where_records_lose_three() -> None:
    table = known_case()
    cells = anonymise(table, QI, HIERARCHIES, k=3, max_suppression=0.05, metric="loss",
                      suppression="cells")
    records = anonymise(table, QI, HIERARCHIES, k=3, max_suppression=0.05, metric="loss",
                        suppression="records")
    assert cells.levels == records.levels == {"age": 0, "sex": 0, "region": 0}
    assert (records.suppressed_records, records.suppressed_cells) == (3, 9)
    # The fewest cells: age alone, once per outlier; the three then form a class of three.
    assert (cells.suppressed_records, cells.suppressed_cells) == (0, 3)
    assert cells.records_with_suppressed_cells == 3
    outliers = [r for r in cells.table.to_pylist() if r["age"] == "*"]
    assert outliers == [{"age": "*", "sex": "f", "region": "FR"}] * 3
    assert cells.k == 3 and check_release(cells.table, QI, k=3).satisfies(3)


def test_a_lone_starred_record_fails_the_check() -> None:
    # '*' matches nothing but '*' in the same cell: a single (*, f) row is a class of one.
    table = pa.table({"age": ["*", "30", "30", "*", "*"], "sex": ["f", "m", "m", "m", "m"]})
    res = check_release(table, ["age", "sex"], k=2)
    assert res.k == 1 and not res.satisfies(2)


def test_per_flag_l_diversity_catches_a_shared_flag() -> None:
    # Every set differs, but everyone in the class has 'legal': the flag is disclosed.
    table = pa.table({"age": ["30"] * 3 + ["40"] * 3,
                      "needs": ["legal|food", "legal", "legal|medical", "food", "", "medical"]})
    res = check_release(table, ["age"], ["needs"], k=3, l=2, multi_valued=["needs"])
    assert not res.satisfies(3, 2)
    as_set = check_release(table, ["age"], ["needs"], k=3, l=2)
    assert as_set.satisfies(3, 2)  # what the per-set check let through
    report = assess_risk(table, ["age"], ["needs"], multi_valued=["needs"])
    by_flag = {ld.flag: ld for ld in report.l_diversity}
    assert set(by_flag) == {"food", "legal", "medical"}
    # Recorded values only: the age-40 class (0, blank, 0) is 1-diverse in 'legal' too.
    assert by_flag["legal"].distinct_min == 1 and by_flag["legal"].records_below_2 == 6


def test_risk_reads_list_columns_per_flag() -> None:
    table = pa.table({"sex": ["f", "f", "m", "m"],
                      "needs": pa.array([["a", "b"], ["a"], ["b"], None],
                                        type=pa.list_(pa.string()))})
    lds = assess_risk(table, ["sex"], ["needs"]).l_diversity
    # m: 'b' recorded once, the other record blank: 1-diverse in recorded values.
    assert [(ld.field, ld.flag, ld.distinct_min) for ld in lds] == [
        ("needs__a", "a", 1), ("needs__b", "b", 1)]


def test_engine_generalises_until_every_flag_is_diverse() -> None:
    table = pa.table({"age": ["30", "31", "32", "40", "41", "42"],
                      "sex": ["f"] * 6, "region": ["FR"] * 6,
                      "needs": ["legal|food", "legal", "legal|medical", "food", "legal", "food"]})
    as_flags = anonymise(table, QI, HIERARCHIES, k=3, sensitive=["needs"], l=2,
                         multi_valued=["needs"])
    assert as_flags.levels["age"] >= 2  # the two decades must merge for 'legal' to vary
    assert "needs__legal" in as_flags.sensitive_attributes
    assert plain_check(as_flags.table, QI, [], ["needs"])[1] >= 2


def test_cli_cells_and_records(tmp_path: Path) -> None:
    data = tmp_path / "in.csv"
    pcsv.write_csv(known_case(), data)
    hdir = tmp_path / "h"
    hdir.mkdir()
    for name, h in HIERARCHIES.items():
        (hdir / f"{name}.csv").write_text("\n".join(";".join(r) for r in h.rows) + "\n",
                                          encoding="utf-8")
    out = {}
    for mode in ("cells", "records"):
        res = CliRunner().invoke(app, ["anonymise", str(data), "--qi", "age,sex,region",
                                       "--hierarchies", str(hdir), "--k", "3", "--metric",
                                       "loss", "--max-suppression", "0.05", "--suppression",
                                       mode, "--out", str(tmp_path / f"{mode}.csv"), "--json"])
        assert res.exit_code == 0, res.output
        out[mode] = json.loads(res.output)
    assert out["cells"]["suppressed_cells"] == 3 and out["cells"]["suppressed_records"] == 0
    assert out["records"]["suppressed_cells"] == 9 and out["records"]["suppressed_records"] == 3
    text = (tmp_path / "cells.csv").read_text(encoding="utf-8")
    assert text.count('"*"') + text.count(",*,") >= 3
    bad = CliRunner().invoke(app, ["anonymise", str(data), "--qi", "age", "--hierarchies",
                                   str(hdir), "--k", "2", "--suppression", "rows", "--out",
                                   str(tmp_path / "x.csv")])
    assert bad.exit_code != 0 and "--suppression" in bad.output


@pytest.mark.parametrize("sensitive,multi", [([], []), (["diag"], []), (["needs"], ["needs"])])
def test_roll_up_from_any_finer_node_equals_grouping_the_tuples(sensitive: list[str],
                                                                multi: list[str]) -> None:
    problem = build_problem(random_table(4, 400), QI, sensitive, HIERARCHIES, multi)
    model = PrivacyModel(k=4, l=2 if sensitive else 1, max_suppression=0.1)
    totals = problem.level_totals("entropy")
    nodes = [tuple(int(x) for x in row) for row in Lattice(problem.heights).all_levels()]
    snaps = {lv: roll_up_sorted(problem, base_snapshot(problem), lv) for lv in nodes}
    for target in nodes:
        direct, _ = evaluate(problem, target, model, "entropy", totals)
        for src_levels, src in snaps.items():
            if not all(a <= b for a, b in zip(src_levels, target, strict=True)):
                continue
            rolled = judge(problem, roll_up_sorted(problem, src, target), model, "entropy",
                           totals)
            assert (rolled.anonymous, rolled.suppressed, rolled.classes) == \
                (direct.anonymous, direct.suppressed, direct.classes)
            assert rolled.loss == direct.loss  # bit-identical, whatever the source
            limit = int(model.max_suppression * problem.n)
            quick = judge(problem, roll_up_sorted(problem, src, target, k_first=(4, limit)),
                          model, "entropy", totals)
            assert quick.anonymous == direct.anonymous  # stopping after k never changes it


@pytest.mark.parametrize("seed", [5, 6])
def test_per_flag_search_matches_exhaustive(seed: int) -> None:
    problem = build_problem(random_table(seed, 500), QI, ["needs"], HIERARCHIES, ["needs"])
    assert {"needs__food", "needs__legal", "needs__medical"} == set(problem.sensitive)
    model = PrivacyModel(k=3, l=2, max_suppression=0.05)
    fast, full = optimal_search(problem, model), exhaustive_search(problem, model)
    assert fast.best is not None and full.best is not None
    assert fast.best.loss == pytest.approx(full.best.loss) and fast.best.levels == full.best.levels


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), n=st.integers(1, 250), k=st.integers(1, 8),
       l=st.integers(1, 2), supp=st.sampled_from([0.0, 0.05, 0.2]),
       repeat=st.sampled_from([0.0, 0.3, 0.8]), mode=st.sampled_from(["cells", "records"]))
def test_any_release_in_people_holds_k_people(seed: int, n: int, k: int, l: int,  # noqa: E741
                                              supp: float, repeat: float, mode: str) -> None:
    """k in people: however people repeat across records, every released class (and the
    suppressed group, unless its sensitive values are hidden) holds k distinct people."""
    table = random_table(seed, n)
    rng = np.random.default_rng(seed + 1)
    people = [f"p{int(rng.integers(0, max(n // 3, 1)))}" if rng.random() < repeat else f"q{i}"
              for i in range(n)]
    sensitive = ["diag"] if l > 1 else []
    try:
        res = anonymise(table, QI, HIERARCHIES, k=k, sensitive=sensitive, l=l,
                        max_suppression=supp, suppression=mode,  # type: ignore[arg-type]
                        people=people)
    except ReleaseRefused as err:
        assert "independent" not in err.message
        return
    groups: dict[tuple[str, ...], set[str]] = defaultdict(set)
    stars: set[str] = set()
    rows = res.table.to_pylist()
    for r, p in zip(rows, people, strict=True):
        key = tuple(r[q] for q in QI)
        (stars if all(v == "*" for v in key) else groups[key]).add(p)
    if groups:
        assert min(len(g) for g in groups.values()) >= k
        assert res.k == min(len(g) for g in groups.values())
    if stars and len(stars) < k and sensitive:
        assert all(r["diag"] == "*" for r in rows if all(r[q] == "*" for q in QI))
    assert res.people == len(set(people))
    assert check_release(res.table, QI, sensitive, k=k, l=l, people=people).satisfies(k, l)
