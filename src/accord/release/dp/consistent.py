"""One number per quantity across the tables of one DP draw: shared margins reconciled.

Each table of a draw is fitted to its own noisy measurements, so two tables that both publish
the people by sex (sex x age band, case type x sex, ...) would print two different totals for the
same quantity. This is post-processing of the noisy values only (no record is read, so it costs
no privacy):

1. Tables that count the same units (people; or person-codes of one list field, which is what a
   list table's totals add up) form a family. A *shared margin* is a set of columns that two or
   more tables of a family can both sum to (the grand total, sex, migration status x sex, ...).
2. Shared margins are decided smallest first. Each is the inverse-variance weighted mean of what
   the tables say about it (more tables measured it, so the mean is more precise than any one),
   then the closest non-negative integers that add up to the margins already decided.
3. Every table is moved to the closest non-negative integer cells (L1 distance) whose margins
   equal the decided shared margins; its own margins remain the sums of its cells.

"Closest integers with given margins" is a small integer program, solved by scipy's HiGHS
(``milp``); for two-way margins its LP is a transportation problem, integral by itself.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.optimize import Bounds, LinearConstraint, milp
from scipy.sparse import coo_matrix, hstack, identity, vstack


class ReconcileError(RuntimeError):
    """The decided margins admit no table: an internal error, never expected."""


@dataclass(frozen=True)
class FittedTable:
    """A table's fitted finest cells (no totals) and what is needed to reconcile it."""

    columns: tuple[str, ...]
    family: str  # tables with the same family count the same units
    cells: np.ndarray  # non-negative integers, one axis per column
    cell_variance: float  # noise variance of one finest cell (used for weights only)


def _margin(cells: np.ndarray, columns: Sequence[str], keep: Sequence[str]) -> np.ndarray:
    """``cells`` summed to the columns ``keep`` (in that order)."""
    drop = tuple(i for i, c in enumerate(columns) if c not in keep)
    summed = cells.sum(axis=drop) if drop else cells
    left = [c for c in columns if c in keep]
    return np.transpose(summed, [left.index(c) for c in keep]) if keep else np.asarray(summed)


def shared_margins(tables: Sequence[FittedTable]) -> list[tuple[str, tuple[str, ...]]]:
    """(family, columns) of every margin two or more tables can both publish, smallest first."""
    found: set[tuple[str, tuple[str, ...]]] = set()
    for a, b in itertools.combinations(tables, 2):
        if a.family != b.family:
            continue
        common = sorted(set(a.columns) & set(b.columns))
        for k in range(len(common) + 1):
            for sub in itertools.combinations(common, k):
                found.add((a.family, sub))
    return sorted(found, key=lambda m: (len(m[1]), m))


def closest_integers(x0: np.ndarray, constraints: Sequence[tuple[tuple[int, ...], np.ndarray]]
                     ) -> np.ndarray:
    """Non-negative integers closest to ``x0`` in L1 whose sums over the axes not in each
    constraint's ``axes`` equal its target. Raises ReconcileError when none exists."""
    shape = x0.shape
    n = int(np.prod(shape)) if shape else 1
    # Rake first (spread each margin's change over its cells in proportion), then round: the L1
    # optimum alone would put a margin's whole change into one cell.
    flat0 = _rake(np.asarray(x0, float), constraints).ravel()
    rows = []
    rhs = []
    for axes, target in constraints:
        if axes:
            member = np.ravel_multi_index(tuple(np.indices(shape)[a].ravel() for a in axes),
                                          tuple(shape[a] for a in axes))
        else:
            member = np.zeros(n, dtype=np.int64)
        k = int(np.asarray(target).size)
        rows.append(coo_matrix((np.ones(n), (member, np.arange(n))), shape=(k, n)))
        rhs.append(np.asarray(target, float).ravel())
    if not rows:
        return np.round(np.clip(flat0, 0, None)).astype(np.int64).reshape(shape)
    # variables: x (n integers >= 0), e (n reals >= |x - x0|); minimise sum(e)
    eq = hstack([vstack(rows), coo_matrix((sum(r.shape[0] for r in rows), n))])
    eye = identity(n, format="coo")
    dev = vstack([hstack([-eye, eye]), hstack([eye, eye])])
    b = np.concatenate(rhs)
    cons = [LinearConstraint(eq.tocsr(), b, b),
            LinearConstraint(dev.tocsr(), np.concatenate([-flat0, flat0]), np.inf)]
    cost = np.concatenate([np.zeros(n), np.ones(n)])
    res = milp(cost, integrality=np.concatenate([np.ones(n), np.zeros(n)]),
               bounds=Bounds(np.zeros(2 * n), np.full(2 * n, np.inf)), constraints=cons)
    if res.x is None:
        raise ReconcileError(f"no table with the decided margins ({res.message})")
    return np.round(res.x[:n]).astype(np.int64).reshape(shape)


def _rake(x: np.ndarray, constraints: Sequence[tuple[tuple[int, ...], np.ndarray]],
          rounds: int = 50) -> np.ndarray:
    """Iterative proportional fitting of ``x`` to the constraints' margins (where a margin's
    cells are all zero, the integer step that follows fills it)."""
    x = np.clip(x, 0.0, None)
    for _ in range(rounds):
        for axes, target in constraints:
            drop = tuple(a for a in range(x.ndim) if a not in axes)
            current = x.sum(axis=drop, keepdims=True) if drop else x
            want = np.asarray(target, float).reshape(current.shape)
            ratio = np.divide(want, current, out=np.ones_like(current), where=current > 0)
            x = x * ratio
    return x


def reconcile(tables: Sequence[FittedTable]) -> list[np.ndarray]:
    """The tables' cells, moved so that every shared margin is one number across tables."""
    decided: dict[tuple[str, tuple[str, ...]], np.ndarray] = {}
    for family, cols in shared_margins(tables):
        members = [t for t in tables if t.family == family and set(cols) <= set(t.columns)]
        weights = []
        values = []
        for t in members:
            summed = t.cells.size // max(1, int(np.prod([t.cells.shape[t.columns.index(c)]
                                                          for c in cols])))
            weights.append(1.0 / (t.cell_variance * max(summed, 1)))
            values.append(_margin(t.cells, t.columns, cols).astype(float))
        mean = sum(w * v for w, v in zip(weights, values, strict=True)) / sum(weights)
        subs = [((tuple(cols.index(c) for c in sub)), decided[(family, sub)])
                for k in range(len(cols)) for sub in itertools.combinations(cols, k)
                if (family, sub) in decided]
        decided[(family, cols)] = closest_integers(np.asarray(mean), subs)
    out = []
    for t in tables:
        cons = [(tuple(t.columns.index(c) for c in cols), target)
                for (family, cols), target in decided.items()
                if family == t.family and set(cols) <= set(t.columns)]
        # constraints name the axes in the margin's column order, which _margin transposes to
        out.append(_fit_table(t, cons))
    return out


def _fit_table(t: FittedTable, cons: list[tuple[tuple[int, ...], np.ndarray]]) -> np.ndarray:
    # closest_integers sums to axes in increasing order; put each target in that order
    ordered = []
    for axes, target in cons:
        order = np.argsort(axes)
        ordered.append((tuple(sorted(axes)), np.transpose(target, order) if len(axes) else target))
    return closest_integers(t.cells, ordered)
