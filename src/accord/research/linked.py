"""Joint audit of tables that share margins.

Hiding a shared margin in every table (``stats.protect_linked``) stops it being read off another
table, but an attacker can still combine what each table says about it: one table may bound the
hidden total of a small category from below, another from above. So all tables are audited as
one linear system, each shared margin being one unknown, and a primary cell whose joint range is
narrower than the protection width gets another complement in its own table.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from accord.release.suppression import (
    PRIMARY,
    Equation,
    SuppressionRules,
    TableSuppression,
    feasible_intervals,
    table_equations,
)

MarginKeys = dict[tuple[int, ...], tuple[object, ...]]


def joint_weak_cells(results: Sequence[TableSuppression], keys: Sequence[MarginKeys],
                     rules: SuppressionRules) -> list[tuple[int, tuple[int, ...]]]:
    """(table, cell) of every primary cell the joint system narrows below the required width."""
    # Tables that share no hidden margin with another are separate blocks of the joint system,
    # already audited on their own: only the others are put together.
    seen: dict[tuple[object, ...], set[int]] = {}
    for t, (res, k) in enumerate(zip(results, keys, strict=True)):
        for idx, key in k.items():
            if res.mask[idx]:
                seen.setdefault(key, set()).add(t)
    linked = sorted({t for tables in seen.values() if len(tables) > 1 for t in tables})
    if len(linked) < 2:
        return []
    weak = _joint_weak([results[t] for t in linked], [keys[t] for t in linked], rules)
    return [(linked[t], idx) for t, idx in weak]


def _joint_weak(results: Sequence[TableSuppression], keys: Sequence[MarginKeys],
                rules: SuppressionRules) -> list[tuple[int, tuple[int, ...]]]:
    offsets = np.cumsum([0] + [r.values.size for r in results])
    values = np.concatenate([r.values.ravel() for r in results])
    mask = np.concatenate([r.mask.ravel() for r in results])
    equations: list[Equation] = []
    first_copy: dict[tuple[object, ...], int] = {}
    for t, (res, k) in enumerate(zip(results, keys, strict=True)):
        base = int(offsets[t])
        inner = tuple(n - 1 for n in res.values.shape)
        equations += [(tuple(base + p for p in parts), base + total)
                      for parts, total in table_equations(inner)]
        for idx, key in k.items():
            flat = base + int(np.ravel_multi_index(idx, res.values.shape))
            if not mask[flat]:
                continue
            if key in first_copy:  # the same count in two tables: one unknown
                equations.append(((first_copy[key],), flat))
            else:
                first_copy[key] = flat
    primaries = [int(offsets[t]) + int(np.ravel_multi_index(idx, res.values.shape))
                 for t, res in enumerate(results)
                 for idx in zip(*np.nonzero(res.reasons == PRIMARY), strict=True)]
    if not primaries or len(results) < 2:
        return []
    need = float(rules.required_width)
    intervals = feasible_intervals(values, equations, mask, cells=primaries,
                                   enough=dict.fromkeys(primaries, need))
    weak = []
    for c, (lo, hi) in intervals.items():
        if hi - lo < need - 1e-6:
            t = int(np.searchsorted(offsets, c, side="right")) - 1
            idx = tuple(int(i) for i in np.unravel_index(c - int(offsets[t]),
                                                         results[t].values.shape))
            weak.append((t, idx))
    return weak


def complement_for(res: TableSuppression, cell: tuple[int, ...]) -> tuple[int, ...] | None:
    """The smallest published non-zero cell sharing a row, column or layer with ``cell``
    (inner cells first); None when every such cell is hidden or zero."""
    shape = res.values.shape
    best: tuple[tuple[int, int], tuple[int, ...]] | None = None
    for axis in range(len(shape)):
        for i in range(shape[axis]):
            idx = (*cell[:axis], i, *cell[axis + 1:])
            if res.mask[idx] or res.values[idx] == 0:
                continue
            is_total = any(j == n - 1 for j, n in zip(idx, shape, strict=True))
            cost = (int(is_total), int(res.values[idx]))
            if best is None or cost < best[0]:
                best = (cost, idx)
    return None if best is None else best[1]
