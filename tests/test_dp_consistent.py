"""Tables of one DP draw agree: every margin two tables share is one number (issue 14).

Measured against the true counts of the same people: reconciling does not make the published
values worse (it is post-processing of the noisy values, so it costs no privacy).
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from accord.release.dp.consistent import FittedTable, closest_integers, shared_margins
from accord.release.dp.standard_tables import MAX_VALUES, levels_for
from accord.release.dp.tables import TableSpec as DPSpec
from accord.release.dp.tables import count_table
from accord.research.noisy import draw_tables, stats_specs
from accord.standard import load_standard
from tests.attacks.differencing import person
from tests.attacks.noisy_release import people_table

STANDARD = load_standard()
SPECS = stats_specs(STANDARD)
YEARS = (2016, 2024)


def _family(spec: object) -> str:
    multi = getattr(spec, "multi", None)
    units = f"units*{multi.column}" if multi is not None else "units"
    where = getattr(spec, "where", ())
    return units + (f" where {where!r}" if where else "")  # a subpopulation's margins are its own


def _margin(values: np.ndarray, columns: tuple[str, ...], keep: tuple[str, ...]) -> np.ndarray:
    """A published table (totals at the last position) read at the total of every other axis."""
    index = tuple(slice(0, -1) if c in keep else -1 for c in columns)
    sub = values[index]
    left = [c for c in columns if c in keep]
    return np.transpose(sub, [left.index(c) for c in keep]) if keep else sub


def _people(seed: int, n: int = 1500) -> object:
    rng = np.random.default_rng(seed)
    return people_table([person(rng) for _ in range(n)])


@pytest.mark.parametrize("seed", [1, 2])
def test_every_shared_total_is_one_number(seed: int) -> None:
    payload = draw_tables(_people(seed), STANDARD, 0.01, YEARS, test_seed=seed)
    tables = [FittedTable(tuple(s.columns), _family(s), np.zeros(1), 1.0) for s in SPECS]
    checked = 0
    for family, cols in shared_margins(tables):
        seen = []
        for spec in SPECS:
            if _family(spec) == family and set(cols) <= set(spec.columns):
                values = np.asarray(payload["tables"][spec.id]["values"])
                seen.append(_margin(values, tuple(spec.columns), cols))
        assert len(seen) >= 2
        for other in seen[1:]:
            assert np.array_equal(seen[0], other), (family, cols)
        checked += 1
    # people, people by sex, by migration status, by migration status x sex; list families
    assert checked >= 8
    # and every table still adds up: margins are the sums of the cells
    for spec in SPECS:
        arr = np.asarray(payload["tables"][spec.id]["values"])
        assert (arr >= 0).all()
        for axis in range(arr.ndim):
            inner = arr.take(range(arr.shape[axis] - 1), axis=axis).sum(axis=axis)
            assert (inner == arr.take(-1, axis=axis)).all(), spec.id


def test_without_reconciling_the_tables_disagree() -> None:
    """The control: the same draw, each table fitted alone, prints several people totals."""
    payload = draw_tables(_people(1), STANDARD, 0.01, YEARS, test_seed=1, consistent=False)
    totals = {np.asarray(payload["tables"][s.id]["values"]).ravel()[-1]
              for s in SPECS if s.multi is None}
    assert len(totals) > 1


@pytest.mark.slow
def test_reconciling_does_not_make_the_numbers_worse() -> None:
    before, after, shared_before, shared_after = [], [], [], []
    for seed in range(4):
        people = _people(seed)
        levels = {c: levels_for(STANDARD, c, YEARS) for s in SPECS for c in s.columns}
        truth = {}
        for s in SPECS:
            counts = count_table(people, DPSpec(s.id, s.columns), {c: levels[c] for c in s.columns},
                                 MAX_VALUES, {}).counts
            for axis in range(counts.ndim):
                counts = np.concatenate([counts, counts.sum(axis=axis, keepdims=True)], axis=axis)
            truth[s.id] = counts
        for consistent, out, shared in ((False, before, shared_before),
                                        (True, after, shared_after)):
            payload = draw_tables(people, STANDARD, 0.01, YEARS, test_seed=seed + 1,
                                  consistent=consistent)
            errors = [np.abs(np.asarray(payload["tables"][s.id]["values"]) - truth[s.id])
                      for s in SPECS]
            out.append(float(np.mean(np.concatenate([e.ravel() for e in errors]))))
            shared.append(float(np.mean([e.ravel()[-1] for e in errors])))  # the grand totals
    print(f"mean absolute error per published value: {np.mean(before):.2f} each table alone, "
          f"{np.mean(after):.2f} reconciled; grand totals {np.mean(shared_before):.1f} -> "
          f"{np.mean(shared_after):.1f}")
    assert np.mean(after) <= np.mean(before) * 1.03
    assert np.mean(shared_after) <= np.mean(shared_before) * 1.03


@settings(max_examples=40, deadline=None)
@given(arrays(np.int64, st.tuples(st.integers(1, 4), st.integers(1, 4)), elements=st.integers(0, 30)),
       st.integers(0, 40))
def test_closest_integers_meet_their_margins(x: np.ndarray, shift: int) -> None:
    rows = x.sum(axis=1)
    rows[0] += shift
    cols = x.sum(axis=0)
    cols[-1] += shift
    out = closest_integers(x.astype(float), [((0,), rows), ((1,), cols)])
    assert (out >= 0).all()
    assert np.array_equal(out.sum(axis=1), rows) and np.array_equal(out.sum(axis=0), cols)
    for a, b in itertools.product(range(x.shape[0]), range(x.shape[1])):
        assert abs(int(out[a, b]) - int(x[a, b])) <= shift + 1
