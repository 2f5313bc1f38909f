"""Optimal search of the generalisation lattice, and the exhaustive reference search.

Written by hand because no maintained Python library does an optimal, pruned lattice search
(ARX's Flash is Java; anjana and pycanon apply or check a given generalisation, they do not
search for the least-loss one).

How it stays optimal while skipping most nodes:
- Lower bound. Both metrics (non-uniform entropy, generalisation intensity) are sums over
  cells, so the loss of a node with nothing suppressed is a sum of per-column totals, known for
  every node without touching the data. Suppressing a record only raises its cells to the top
  level, so that sum is a lower bound of the node's real loss. Nodes are visited in increasing
  order of the bound; once the bound reaches the best real loss found, no later node can win.
- Predictive tagging (as in Flash). k-anonymity and distinct l-diversity with a suppression
  limit are monotone: if a node is not anonymous, no node below it is; if it is, every node above
  it is. Each verdict is propagated through the lattice so those nodes are never grouped. For a
  node known to be anonymous with no suppression allowed, its loss is the bound: no evaluation.
- Inherited bounds. Every node below an anonymous node suppresses at least the same records,
  each at a finer level (a rarer value, so a higher extra loss); the cheapest finer value under
  each suppressed record's value gives a bound on the suppression loss below, propagated to every
  node below. A node whose raised bound exceeds the best loss is skipped before it is resolved.
- Roll-up (``nodes.py``): a node is grouped from the classes of the smallest finer node kept in
  a bounded cache, not from the tuples, whenever there is one.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from accord.release.anonymise.engine import Metric, PrivacyModel, Problem
from accord.release.anonymise.nodes import (
    NodeResult,
    Snapshot,
    base_snapshot,
    evaluate,
    judge,
    roll_up_sorted,
)

ProgressFn = Callable[[int, int], None]

_UNKNOWN, _ANON, _NOT = 0, 1, -1
# Classes kept for roll-up, as a multiple of the number of distinct tuples (memory: ~40 bytes
# per class and quasi-identifier set, more with sensitive attributes).
_SNAPSHOT_BUDGET = 3


@dataclass(frozen=True)
class Lattice:
    heights: tuple[int, ...]

    @property
    def size(self) -> int:
        return math.prod(self.heights)

    @property
    def strides(self) -> tuple[int, ...]:
        out, s = [], 1
        for h in reversed(self.heights):
            out.append(s)
            s *= h
        return tuple(reversed(out))

    def all_levels(self) -> npt.NDArray[np.int64]:
        """Every node as a row of levels, in index order."""
        grids = np.indices(self.heights).reshape(len(self.heights), -1).T
        return grids.astype(np.int64)


@dataclass
class SearchStats:
    nodes: int = 0
    evaluated: int = 0
    tagged: int = 0
    pruned_by_bound: int = 0
    pruned_by_inheritance: int = 0


@dataclass(frozen=True)
class SearchResult:
    best: NodeResult | None
    stats: SearchStats = field(default_factory=SearchStats)


def _better(a: NodeResult, b: NodeResult | None) -> bool:
    """Least loss wins; ties go to the lower node, then to the lexicographically smaller one."""
    if b is None:
        return True
    ka = (round(a.loss, 9), sum(a.levels), a.levels)
    kb = (round(b.loss, 9), sum(b.levels), b.levels)
    return ka < kb


def _tag(status: npt.NDArray[np.int8], start: int, levels: npt.NDArray[np.int64],
         lattice: Lattice, value: int) -> int:
    """Mark every node below (value=_NOT) or above (value=_ANON) ``start``; returns how many."""
    strides, heights = lattice.strides, lattice.heights
    stack, marked = [start], 0
    while stack:
        node = stack.pop()
        for c, stride in enumerate(strides):
            lv = levels[node, c]
            if value == _NOT and lv > 0:
                nxt = node - stride
            elif value == _ANON and lv < heights[c] - 1:
                nxt = node + stride
            else:
                continue
            if status[nxt] != value:
                status[nxt] = value
                marked += 1
                stack.append(nxt)
    return marked


class _Flash:
    """Lazy status resolution: binary search for the anonymity frontier along upward paths."""

    def __init__(self, problem: Problem, model: PrivacyModel, metric: Metric,
                 lattice: Lattice, levels: npt.NDArray[np.int64],
                 bound: npt.NDArray[np.float64], stats: SearchStats) -> None:
        self.problem, self.model, self.metric = problem, model, metric
        self.lattice, self.levels, self.bound, self.stats = lattice, levels, bound, stats
        self.totals = problem.level_totals(metric)
        self.limit = int(np.floor(model.max_suppression * problem.n + 1e-9))
        self.status = np.zeros(lattice.size, dtype=np.int8)
        # Suppression loss each node must at least carry, learnt from coarser evaluated nodes.
        self.inherited = np.zeros(lattice.size)
        self.cache: dict[int, tuple[bool, int, float]] = {}
        self.snapshots = _SnapshotCache(base_snapshot(problem), _SNAPSHOT_BUDGET * max(
            len(problem.weight), 1))

    def evaluate(self, idx: int) -> tuple[bool, int, float]:
        """(anonymous, suppressed records, loss) of a node, evaluated at most once."""
        hit = self.cache.get(idx)
        if hit is None:
            target = tuple(int(x) for x in self.levels[idx])
            snap = roll_up_sorted(self.problem, self.snapshots.source(target), target,
                                  k_first=(self.model.k, self.limit))
            self.snapshots.add(snap)
            res = judge(self.problem, snap, self.model, self.metric, self.totals)
            self.stats.evaluated += 1
            hit = (res.anonymous, res.suppressed, res.loss)
            self.cache[idx] = hit
            if self.model.monotone:
                if self.status[idx] == _UNKNOWN:
                    value = _ANON if res.anonymous else _NOT
                    self.status[idx] = value
                    self.stats.tagged += _tag(self.status, idx, self.levels, self.lattice, value)
                if res.anonymous and res.extra > 0:
                    self._inherit(res)
        return hit

    def _inherit(self, res: NodeResult) -> None:
        """Lower-bound the suppression loss of every node below an anonymous node.

        A node below suppresses at least the same records (k and distinct l are monotone), and
        each of them at a finer level, which costs at least the cheapest finer value under the
        record's value here (``Problem.min_delta``).
        """
        top = np.asarray(res.levels)
        below = (self.levels <= top).all(axis=1)
        contrib = np.zeros(int(below.sum()))
        sub = self.levels[below]
        min_delta = self.problem.min_delta(self.metric)
        for c, h in enumerate(res.levels):
            per_level = np.array([float((res.suppressed_by_value[c] * min_delta[c][(f, h)]).sum())
                                  for f in range(h + 1)])
            contrib += per_level[sub[:, c]]
        current = self.inherited[below]
        self.inherited[below] = np.maximum(current, contrib)

    def resolve(self, idx: int) -> None:
        """Settle ``status[idx]`` by checking a path upward from it, binary-search style."""
        path, cur = [idx], idx
        heights, strides = self.lattice.heights, self.lattice.strides
        while True:
            succ = [cur + strides[c] for c in range(len(heights))
                    if self.levels[cur, c] < heights[c] - 1
                    and self.status[cur + strides[c]] == _UNKNOWN]
            if not succ:
                break
            # Climb through the cheapest successor: the frontier is likeliest reached there.
            cur = min(succ, key=lambda n: (self.bound[n], n))
            path.append(cur)
        lo, hi = 0, len(path) - 1
        while lo <= hi and self.status[idx] == _UNKNOWN:
            mid = (lo + hi) // 2
            if self.status[path[mid]] == _UNKNOWN:
                self.evaluate(path[mid])
            if self.status[path[mid]] == _ANON:
                hi = mid - 1
            else:
                lo = mid + 1


class _SnapshotCache:
    """Evaluated nodes' classes kept for roll-up, within a budget of stored classes (LRU)."""

    def __init__(self, base: Snapshot, budget: int) -> None:
        self.base, self.budget = base, budget
        self.items: OrderedDict[tuple[int, ...], Snapshot] = OrderedDict()
        self.stored = 0

    def source(self, target: tuple[int, ...]) -> Snapshot:
        """The smallest stored snapshot at or below ``target`` (the tuples if none)."""
        best = self.base
        for key, snap in self.items.items():
            if snap.size < best.size and all(a <= b for a, b in zip(key, target, strict=True)):
                best = snap
        if best is not self.base:
            self.items.move_to_end(best.levels)
        return best

    def add(self, snap: Snapshot) -> None:
        if not snap.complete or snap.size > self.budget // 4 or snap.levels in self.items:
            return
        self.items[snap.levels] = snap
        self.stored += snap.size
        while self.stored > self.budget:
            _, old = self.items.popitem(last=False)
            self.stored -= old.size


def optimal_search(problem: Problem, model: PrivacyModel, metric: Metric = "entropy",
                   progress: ProgressFn | None = None) -> SearchResult:
    """Find the anonymous node of least loss (see the module docstring for why it is exact)."""
    lattice = Lattice(problem.heights)
    levels = lattice.all_levels()
    totals = problem.level_totals(metric)
    bound = np.zeros(lattice.size)
    for c, t in enumerate(totals):
        bound += t[levels[:, c]]
    order = np.lexsort((np.arange(lattice.size), levels.sum(axis=1), bound))
    stats = SearchStats(nodes=lattice.size)
    flash = _Flash(problem, model, metric, lattice, levels, bound, stats)
    best_idx = -1
    best_key: tuple[float, int, tuple[int, ...]] = (math.inf, 0, ())
    tol = 1e-9 * max(1.0, float(bound.max(initial=0.0)))
    for pos, raw in enumerate(order):
        idx = int(raw)
        if best_idx >= 0 and bound[idx] > best_key[0] + tol:
            stats.pruned_by_bound = lattice.size - pos
            break
        if progress is not None and pos % 64 == 0:
            progress(pos, lattice.size)
        if model.monotone:
            # Checked before resolving: a node that cannot win needs no verdict either.
            if best_idx >= 0 and bound[idx] + flash.inherited[idx] > best_key[0] + tol:
                stats.pruned_by_inheritance += 1
                continue
            if flash.status[idx] == _UNKNOWN:
                flash.resolve(idx)
            if flash.status[idx] == _NOT:
                continue
            # Anonymous with nothing suppressed: its loss is exactly the bound.
            loss = (float(bound[idx]) if model.max_suppression == 0
                    else flash.evaluate(idx)[2])
        else:
            anonymous, _, loss = flash.evaluate(idx)
            if not anonymous:
                continue
        key = (round(loss, 9), int(levels[idx].sum()), tuple(int(x) for x in levels[idx]))
        if key < best_key:
            best_idx, best_key = idx, key
    if progress is not None:
        progress(lattice.size, lattice.size)
    if best_idx < 0:
        return SearchResult(best=None, stats=stats)
    best, _ = evaluate(problem, tuple(int(x) for x in levels[best_idx]), model, metric, totals)
    return SearchResult(best=best, stats=stats)


def exhaustive_search(problem: Problem, model: PrivacyModel, metric: Metric = "entropy",
                      progress: ProgressFn | None = None) -> SearchResult:
    """Evaluate every node: the reference the optimal search is checked against."""
    lattice = Lattice(problem.heights)
    totals = problem.level_totals(metric)
    best: NodeResult | None = None
    stats = SearchStats(nodes=lattice.size)
    for i, row in enumerate(lattice.all_levels()):
        res, _ = evaluate(problem, tuple(int(x) for x in row), model, metric, totals)
        stats.evaluated += 1
        if res.anonymous and _better(res, best):
            best = res
        if progress is not None and i % 64 == 0:
            progress(i, lattice.size)
    return SearchResult(best=best, stats=stats)
