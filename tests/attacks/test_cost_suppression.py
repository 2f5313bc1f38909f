"""Attack: recover a hidden small cell from a table protected by the cost-based suppression.

The cost method hides as little as it can (it keeps large cells and totals), which is exactly
where an attacker has the most to work with. The attacker here is written independently of the
module: for each hidden cell of a published table with margins it solves, over every cell, the
equations "each total is the sum of its cells" with published cells fixed and hidden cells >= 1
(zeros are published), by linear and by integer programming (scipy's HiGHS), and reports the
range of values the cell can take. A hidden small cell (1-9) must keep a range at least the
protection width wide; no hidden cell may be pinned.

Controls, the same attacker on patterns that must fail: (1) the small cells alone hidden, no
complements; (2) the first pattern of the cost method's own optimiser, before any protection cut
(only "no line with a single hidden cell"), which shows the LP-derived cuts are what protect.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy.optimize import Bounds, LinearConstraint, milp

from accord.release.suppression import SuppressionRules, suppress_table, table_equations, with_margins
from accord.release.suppression_cost import cost_pattern, default_costs

THRESHOLD = 10


def _table(seed: int) -> np.ndarray:
    """A citizenship x sex x age-like table: a few large rows, many small and zero cells."""
    rng = np.random.default_rng(seed)
    rows, cols = int(rng.integers(4, 9)), int(rng.integers(3, 6))
    scale = rng.choice([2.0, 6.0, 40.0], size=rows, p=[0.4, 0.3, 0.3])
    return rng.poisson(np.outer(scale, rng.uniform(0.3, 1.5, cols))).astype(np.int64)


def _ranges(ext: np.ndarray, hidden: np.ndarray) -> dict[tuple[int, ...], tuple[float, float]]:
    """The attacker: integer min and max of each hidden cell given everything published."""
    shape = ext.shape
    n = ext.size
    rows = []
    for axis in range(ext.ndim):
        others = [range(s) for k, s in enumerate(shape) if k != axis]
        for rest in itertools.product(*others):
            coef = np.zeros(n)
            for i in range(shape[axis]):
                idx = (*rest[:axis], i, *rest[axis:])
                coef[np.ravel_multi_index(idx, shape)] = -1.0 if i == shape[axis] - 1 else 1.0
            rows.append(coef)
    a = np.array(rows)
    flat = ext.ravel().astype(float)
    h = hidden.ravel()
    lower = np.where(h, 1.0, flat)
    upper = np.where(h, np.inf, flat)
    out = {}
    for c in np.flatnonzero(h):
        ends = []
        for sign in (1.0, -1.0):
            obj = np.zeros(n)
            obj[c] = sign
            res = milp(obj, integrality=np.ones(n), bounds=Bounds(lower, upper),
                       constraints=[LinearConstraint(a, 0.0, 0.0)])
            ends.append(sign * float(res.fun) if res.status == 0 else np.inf)
        out[tuple(int(i) for i in np.unravel_index(c, shape))] = (ends[0], ends[1])
    return out


def _narrowed(ext: np.ndarray, hidden: np.ndarray, width: int) -> list[tuple[int, float, float]]:
    """(true value, low, high) of hidden cells the attacker narrows below what they need."""
    out = []
    for idx, (lo, hi) in _ranges(ext, hidden).items():
        assert lo - 1e-6 <= ext[idx] <= hi + 1e-6  # the truth is always in the attacker's range
        need = width if 1 <= ext[idx] < THRESHOLD else 1
        if hi - lo < need - 1e-6:
            out.append((int(ext[idx]), lo, hi))
    return out


SEEDS = range(12)


@pytest.mark.slow
def test_cost_pattern_resists_the_attacker() -> None:
    rules = SuppressionRules(threshold=THRESHOLD, method="cost")
    attacked = 0
    for seed in SEEDS:
        inner = _table(seed)
        res = suppress_table(inner, rules)
        ext = with_margins(inner)
        small = (ext >= 1) & (ext < THRESHOLD)
        assert not (small & ~res.mask).any()
        attacked += int((small & res.mask).sum())
        assert not _narrowed(ext, res.mask, rules.required_width), seed
    assert attacked >= 40, "too few hidden small cells to say anything"


@pytest.mark.slow
def test_control_primary_only_is_recovered() -> None:
    rules = SuppressionRules(threshold=THRESHOLD)
    broken = 0
    for seed in SEEDS:
        ext = with_margins(_table(seed))
        primary = (ext >= 1) & (ext < THRESHOLD)
        broken += len(_narrowed(ext, primary, rules.required_width))
    assert broken >= 10


@pytest.mark.slow
def test_control_optimiser_without_protection_cuts_is_recovered() -> None:
    rules = SuppressionRules(threshold=THRESHOLD)
    broken = 0
    for seed in SEEDS:
        inner = _table(seed)
        ext = with_margins(inner)
        flat = ext.ravel()
        primary = (flat >= 1) & (flat < THRESHOLD)
        idx = np.indices(ext.shape)
        total_axes = sum((idx[a] == n for a, n in enumerate(inner.shape)), np.zeros(ext.shape))
        first = cost_pattern(flat, table_equations(inner.shape), primary,
                             np.where(primary, rules.required_width, 1.0), flat > 0,
                             np.ones(flat.size, bool), default_costs(flat, total_axes.ravel()),
                             max_rounds=1)
        assert first is not None
        broken += len(_narrowed(ext, first.reshape(ext.shape), rules.required_width))
    assert broken >= 3
