"""Small-cell suppression of count tables: primary, complementary (secondary), and an LP audit.

Rules (the defaults follow the field: CTDC publishes nothing below 10):

* **Primary**: every cell, margins included, with a count from 1 to ``threshold - 1`` is
  suppressed. A total that small would expose a small population, so totals get no exemption.
* **Zeros are published as 0.** A zero says that nobody is in a cell; it does not point at a
  person, and hiding zeros would blank out structural zeros (no men with antenatal-care needs)
  that readers need. Because zeros are always published, an attacker knows every suppressed cell
  holds at least 1; the audit assumes exactly that knowledge. For the same reason a zero is never
  chosen as a complementary cell: hiding a structural zero protects nothing.
* **Secondary, by cost** (``method="cost"``, the default): the cheapest set of complementary cells
  that the audit below accepts, found by mixed-integer programming (``suppression_cost``): hiding
  a cell costs its count, and a total costs ten times more per axis it totals, so large cells,
  margins and the grand total stay published whenever smaller cells can protect the small ones.
  Tables with many small cells need a few dozen rounds of the optimiser's cut loop; stopping it
  early left the greedy completion to finish and hid grand totals.
* **The grand total** of a table is chosen as a complement under either method only when no
  safe pattern publishes it: the pattern is sought without it first (``suppress_cells``' ``keep``).
* **Secondary, heuristic** (``method="heuristic"``, kept for comparison): whenever an equation
  of the table (a row, column or layer and its total) has
  exactly one suppressed cell, the smallest published non-zero cell of that equation is suppressed
  as well (inner cells before totals), repeated to a fixed point.
* **Audit**: for each suppressed cell, linear programming finds the interval of values consistent
  with every published cell, every equation, and "suppressed cells are >= 1". A primary cell's
  interval must be at least ``protection`` wide (default ``ceil(threshold / 2)``), any other
  suppressed cell must not be pinned to one value. Where that fails, another cell sharing an
  equation with it is suppressed, and the whole process repeats. More suppression only widens the
  feasible set, so this terminates (at worst with every non-zero cell suppressed).

Why hand-written: no maintained Python library does cell suppression (tau-Argus is Java,
sdcTable is R); the audit itself is scipy's HiGHS solver.

Limits: the audit uses the LP relaxation. For 2-D tables the constraint matrix is totally
unimodular, so the LP bounds are the integer bounds; for 3-D tables the integer interval can be
narrower than the LP's, which is one reason the required width is half the threshold, not 1.
Tables that share margins are linked by the caller (``forced``), see ``accord.research.stats``.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import linprog

from accord.release.hypercube import hypercube_complements, hypercube_proof
from accord.release.suppression_cost import cost_pattern, default_costs

PRIMARY = "primary"
SECONDARY = "secondary"
LINKED = "linked"

# One linear identity of the table: the cells in ``parts`` add up to the cell ``total``.
Equation = tuple[tuple[int, ...], int]
# Chooses complementary cells given the values, the cells hidden so far and those allowed.
Complements = Callable[[np.ndarray, np.ndarray, np.ndarray], list[int]]
# How far a hidden cell can provably move down and up (a cheap sufficient check before the LP).
Proof = Callable[[np.ndarray, np.ndarray, int], tuple[float, float]]


@dataclass(frozen=True)
class SuppressionRules:
    """Parameters of the small-cell rule; recorded with every release that uses them."""

    threshold: int = 10
    protection: int | None = None
    # "cost": cheapest complements by mixed-integer programming (the default); "heuristic":
    # greedy complements, kept for comparison (benchmarks/suppression_cost.py).
    method: str = "cost"
    # what the cost method minimises: "mass" (suppressed counts) or "count" (suppressed cells)
    objective: str = "mass"

    def __post_init__(self) -> None:
        if self.threshold < 1:
            raise ValueError("threshold must be at least 1")
        if self.protection is not None and self.protection < 1:
            raise ValueError("protection must be at least 1")
        if self.method not in ("cost", "heuristic"):
            raise ValueError("method must be 'cost' or 'heuristic'")
        if self.objective not in ("mass", "count"):
            raise ValueError("objective must be 'mass' or 'count'")

    @property
    def required_width(self) -> int:
        """How wide the feasible interval of a primary cell must stay (never below 1)."""
        if self.protection is not None:
            return self.protection
        return max(1, math.ceil(self.threshold / 2))

    def describe(self) -> list[str]:
        t = self.threshold
        return [
            f"Cells and totals with a count from 1 to {t - 1} are suppressed (threshold {t}).",
            "Zeros are published: they show that nobody is in a cell and point at no person.",
            "Complementary cells are suppressed so that no row, column or layer has a single "
            "suppressed cell that its total would give away"
            + (": the cheapest such cells, so that large cells and totals stay published."
               if self.method == "cost" else "."),
            "A linear-programming audit checks that each suppressed small cell can only be "
            f"narrowed to a range at least {self.required_width} wide from everything published, "
            "and that no other suppressed cell can be worked out exactly.",
        ]

    def as_dict(self) -> dict[str, int | str]:
        return {"threshold": self.threshold, "protection": self.required_width,
                "method": self.method, "objective": self.objective}


@dataclass(frozen=True)
class CellSuppression:
    """Suppression over a flat list of cells tied by equations."""

    values: np.ndarray
    mask: np.ndarray
    reasons: tuple[str, ...]
    intervals: dict[int, tuple[float, float]] = field(default_factory=dict)
    unprotected: tuple[int, ...] = ()


@dataclass(frozen=True)
class TableSuppression:
    """A suppressed N-D table. Arrays have one extra position per axis: the last one is the total."""

    values: np.ndarray
    mask: np.ndarray
    reasons: np.ndarray
    rules: SuppressionRules
    intervals: dict[tuple[int, ...], tuple[float, float]]

    @property
    def published(self) -> list[object]:
        """Nested lists of ints, ``None`` where suppressed (JSON-ready)."""
        out = self.values.astype(object)
        out[self.mask] = None
        published: list[object] = out.tolist()
        return published

    @property
    def n_primary(self) -> int:
        return int((self.reasons == PRIMARY).sum())

    @property
    def n_secondary(self) -> int:
        return int(self.mask.sum()) - self.n_primary

    @property
    def note(self) -> str:
        return (f"{int(self.mask.sum())} of {self.mask.size} cells suppressed "
                f"(threshold {self.rules.threshold}, primary and complementary).")


def _line_cost(values: np.ndarray, is_total: np.ndarray, mask: np.ndarray,
               lines_of: dict[int, list[tuple[int, ...]]], cell: int) -> tuple[int, int, int, int]:
    # Inner cells before totals; then cells whose other equations already hold a suppressed cell
    # (hiding them closes a cycle instead of starting a new chain); then the smallest value.
    closes = any(sum(1 for x in line if mask[x]) >= 1 for line in lines_of[cell])
    return (int(is_total[cell]), 0 if closes else 1, int(values[cell]), cell)


def _index_lines(lines: Sequence[tuple[int, ...]]) -> dict[int, list[tuple[int, ...]]]:
    out: dict[int, list[tuple[int, ...]]] = {}
    for line in lines:
        for c in line:
            out.setdefault(c, []).append(line)
    return out


def _candidates(eligible: np.ndarray, mask: np.ndarray, cells: Sequence[int]) -> list[int]:
    return [c for c in cells if not mask[c] and eligible[c]]


def _complete_lines(values: np.ndarray, eligible: np.ndarray, lines: Sequence[tuple[int, ...]],
                    mask: np.ndarray, reasons: list[str], is_total: np.ndarray,
                    lines_of: dict[int, list[tuple[int, ...]]]) -> None:
    changed = True
    while changed:
        changed = False
        for line in lines:
            if sum(1 for c in line if mask[c]) != 1:
                continue
            cands = _candidates(eligible, mask, line)
            if not cands:  # only zeros left: the lone suppressed cell is then 0, impossible
                continue
            # the current line's own suppressed cell must not count as "closing"
            others = {c: [x for x in lines_of[c] if x != line] for c in cands}
            pick = min(cands, key=lambda c: _line_cost(values, is_total, mask, others, c))
            mask[pick] = True
            reasons[pick] = SECONDARY
            changed = True


def feasible_intervals(values: np.ndarray, equations: Sequence[Equation], mask: np.ndarray,
                       cells: Sequence[int] | None = None,
                       lower: float = 1.0,
                       enough: dict[int, float] | None = None) -> dict[int, tuple[float, float]]:
    """For each suppressed cell, the [min, max] an attacker can derive by linear programming.

    The attacker knows every published cell, every equation and that suppressed cells are at
    least ``lower``. ``inf`` means unbounded above. With ``enough`` (cell -> width needed), the
    maximum is solved first and the minimum skipped when the maximum alone shows the width;
    the interval is then reported as (value, max), which the true one contains.
    """
    hidden = [int(c) for c in np.flatnonzero(mask)]
    col = {c: j for j, c in enumerate(hidden)}
    rows: list[np.ndarray] = []
    rhs: list[float] = []
    for parts, total in equations:
        coef = np.zeros(len(hidden))
        b = 0.0
        for p in parts:
            if p in col:
                coef[col[p]] += 1.0
            else:
                b -= float(values[p])
        if total in col:
            coef[col[total]] -= 1.0
        else:
            b += float(values[total])
        if coef.any():
            rows.append(coef)
            rhs.append(b)
    a_eq = np.vstack(rows) if rows else None
    b_eq = np.asarray(rhs) if rows else None
    bounds = [(lower, None)] * len(hidden)
    out: dict[int, tuple[float, float]] = {}
    for c in hidden if cells is None else cells:
        obj = np.zeros(len(hidden))
        obj[col[c]] = 1.0
        hi = linprog(-obj, A_eq=a_eq, b_eq=b_eq, bounds=bounds, method="highs")
        high = float(-hi.fun) if hi.status == 0 else math.inf
        if enough is not None and high - float(values[c]) >= enough.get(c, math.inf) - 1e-9:
            out[c] = (float(values[c]), high)
            continue
        lo = linprog(obj, A_eq=a_eq, b_eq=b_eq, bounds=bounds, method="highs")
        low = float(lo.fun) if lo.status == 0 else lower
        out[c] = (low, high)
    return out


def _need(reason: str, rules: SuppressionRules) -> float:
    return float(rules.required_width if reason == PRIMARY else 1)


def _too_narrow(reason: str, interval: tuple[float, float], rules: SuppressionRules) -> bool:
    return interval[1] - interval[0] < _need(reason, rules) - 1e-6


def _widen(values: np.ndarray, eligible: np.ndarray, lines: Sequence[tuple[int, ...]],
           mask: np.ndarray,
           reasons: list[str], is_total: np.ndarray, lines_of: dict[int, list[tuple[int, ...]]],
           cell: int) -> bool:
    """Suppress one more cell near ``cell``; False when nothing is left to suppress."""
    near = [c for line in lines_of[cell] for c in line]
    cands = _candidates(eligible, mask, near)
    if not cands:
        touching = [c for line in lines if any(mask[x] for x in line) for c in line]
        cands = _candidates(eligible, mask, touching)
    if not cands:
        cands = _candidates(eligible, mask, range(len(values)))
    if not cands:
        return False
    pick = min(cands, key=lambda c: _line_cost(values, is_total, mask, lines_of, c))
    mask[pick] = True
    reasons[pick] = SECONDARY
    return True


def suppress_cells(values: Sequence[int] | np.ndarray, equations: Sequence[Equation],
                   rules: SuppressionRules | None = None,
                   forced: Sequence[bool] | np.ndarray | None = None,
                   is_total: Sequence[bool] | Sequence[int] | np.ndarray | None = None,
                   complements: Complements | None = None,
                   known: Sequence[bool] | np.ndarray | None = None,
                   proof: Proof | None = None,
                   previous: CellSuppression | None = None,
                   cost: Sequence[float] | np.ndarray | None = None,
                   keep: Sequence[bool] | np.ndarray | None = None) -> CellSuppression:
    """Suppress cells tied by ``equations`` so that no small cell can be recovered.

    ``forced`` marks cells that must be hidden because a linked table hides them (reason
    "linked"); ``is_total`` marks margins (or counts the axes each cell totals), which are chosen
    as complements only as a last resort, those totalling more axes last of all.
    ``complements`` may pick complementary cells first with knowledge of the table's shape
    (hypercubes for N-D tables); line completion and the audit then do the rest.
    ``known`` marks cells the attacker knows from elsewhere: they are never chosen as
    complements. Then protection can fail; such cells are listed in ``unprotected``.
    ``previous`` is an earlier result for the same values: hiding can only add to it, so its
    hidden cells and audited intervals are kept (used when linked tables force more cells).
    ``cost`` is the price of hiding each cell for the cost method (default: its count, ten
    times more for totals); ``complements`` is used by the heuristic method only.
    ``keep`` marks cells (the grand total) never chosen as complements unless no safe pattern
    exists without them: the pattern is first sought without them, and only when that leaves a
    cell unprotected is it sought again with them allowed.
    """
    rules = rules or SuppressionRules()
    vals = np.asarray(values, dtype=np.int64)
    if vals.ndim != 1:
        raise ValueError("values must be a flat array")
    if (vals < 0).any():
        raise ValueError("counts must be non-negative")
    totals = (np.zeros(len(vals), dtype=np.int64) if is_total is None
              else np.asarray(is_total).astype(np.int64))
    reasons = ["" for _ in vals]
    for i, v in enumerate(vals):
        if 1 <= v < rules.threshold:
            reasons[i] = PRIMARY
        elif forced is not None and forced[i] and v > 0:
            reasons[i] = LINKED
    if previous is not None:
        reasons = [r or p for r, p in zip(reasons, previous.reasons, strict=True)]
    eligible = vals > 0
    # cells known from elsewhere count as published in the audit, whatever this table shows
    eligible_or_unknown = np.ones(len(vals), dtype=bool)
    if known is not None:
        eligible &= ~np.asarray(known, dtype=bool)
        eligible_or_unknown = ~np.asarray(known, dtype=bool)
    prices = None
    if rules.method == "cost":
        prices = (np.asarray(cost, float) if cost is not None
                  else default_costs(vals, (totals > 0).astype(float), rules.objective))
    kept = (np.zeros(len(vals), dtype=bool) if keep is None
            else np.asarray(keep, dtype=bool) & eligible & np.array([r == "" for r in reasons]))

    def attempt(allowed: np.ndarray) -> CellSuppression:
        return _suppress(vals, equations, rules, list(reasons), allowed, eligible_or_unknown,
                         totals, complements, proof, previous, prices)

    if kept.any():
        first = attempt(eligible & ~kept)
        if not first.unprotected:
            return first
    return attempt(eligible)


def _suppress(vals: np.ndarray, equations: Sequence[Equation], rules: SuppressionRules,
              reasons: list[str], eligible: np.ndarray, eligible_or_unknown: np.ndarray,
              totals: np.ndarray, complements: Complements | None, proof: Proof | None,
              previous: CellSuppression | None, prices: np.ndarray | None) -> CellSuppression:
    mask = np.array([r != "" for r in reasons], dtype=bool)
    lines = [(*parts, total) for parts, total in equations]
    lines_of = _index_lines(lines)
    # With ``previous`` (a linked table forced a few more cells), the earlier optimum stays and
    # line completion and the audit below add what the forced cells need: re-optimising every
    # table on every linking round would cost many times more for a few cells.
    if prices is not None and previous is None and mask.any() and (eligible & ~mask).any():
        widths = np.array([_need(r, rules) for r in reasons])
        best = cost_pattern(vals, equations, mask.copy(), widths, eligible, eligible_or_unknown,
                            prices, proof=proof)
        if best is not None:
            for added in np.flatnonzero(best & ~mask):
                mask[added] = True
                reasons[int(added)] = SECONDARY
    elif complements is not None:
        for c in complements(vals, mask.copy(), eligible):
            if not mask[c] and eligible[c]:
                mask[c] = True
                reasons[c] = SECONDARY
    intervals: dict[int, tuple[float, float]] = dict(previous.intervals) if previous else {}
    while True:
        _complete_lines(vals, eligible, lines, mask, reasons, totals, lines_of)
        audited = mask & eligible_or_unknown
        # Hiding more only widens every interval, so a cell that passed stays passed: audit
        # only cells that are new or failed last time (the stored interval is then a lower
        # bound of the final one).
        todo = [int(c) for c in np.flatnonzero(audited)
                if int(c) not in intervals or _too_narrow(reasons[c], intervals[int(c)], rules)]
        if proof is not None:
            for c in todo:
                down, up = proof(vals, audited, c)
                intervals[c] = (float(vals[c]) - down, float(vals[c]) + up)
            todo = [c for c in todo if _too_narrow(reasons[c], intervals[c], rules)]
        need = {c: _need(reasons[c], rules) for c in todo}
        intervals.update(feasible_intervals(vals, equations, audited, cells=todo, enough=need))
        weak = [c for c in todo if _too_narrow(reasons[c], intervals[c], rules)]
        if not weak:
            break
        grew = False
        touched: set[int] = set()
        for c in weak:
            # One widening per neighbourhood per round, then re-audit: the first addition often
            # fixes its neighbours too, and this keeps complementary suppression small.
            if c in touched:
                continue
            grew = _widen(vals, eligible, lines, mask, reasons, totals, lines_of, c) or grew
            touched.update(x for line in lines_of[c] for x in line)
        if not grew:
            break
    intervals = {c: iv for c, iv in intervals.items() if audited[c]}
    unprotected = tuple(c for c, iv in intervals.items() if _too_narrow(reasons[c], iv, rules))
    return CellSuppression(vals, mask, tuple(reasons), intervals, unprotected)


def table_equations(shape: Sequence[int]) -> list[Equation]:
    """Equations of an N-D table extended with totals (last position of each axis)."""
    ext = tuple(n + 1 for n in shape)
    eqs: list[Equation] = []
    for axis, n in enumerate(shape):
        others = [range(e) for k, e in enumerate(ext) if k != axis]
        for rest in itertools.product(*others):
            def at(i: int, rest: tuple[int, ...] = rest, axis: int = axis) -> int:
                idx = (*rest[:axis], i, *rest[axis:])
                return int(np.ravel_multi_index(idx, ext))
            eqs.append((tuple(at(i) for i in range(n)), at(n)))
    return eqs


def with_margins(inner: np.ndarray) -> np.ndarray:
    """Extend an N-D count array with totals along every axis (last position)."""
    out = np.asarray(inner, dtype=np.int64)
    for axis in range(out.ndim):
        out = np.concatenate([out, out.sum(axis=axis, keepdims=True)], axis=axis)
    return out


def _flat(res: TableSuppression) -> CellSuppression:
    shape = res.values.shape
    return CellSuppression(
        res.values.ravel(), res.mask.ravel(), tuple(str(r) for r in res.reasons.ravel()),
        {int(np.ravel_multi_index(k, shape)): iv for k, iv in res.intervals.items()})


def suppress_table(inner: np.ndarray | Sequence[object], rules: SuppressionRules | None = None,
                   forced: np.ndarray | None = None,
                   previous: TableSuppression | None = None) -> TableSuppression:
    """Protect a 1-, 2- or 3-D count table and all its margins.

    ``forced`` (same shape as the extended table) marks cells hidden in a linked table;
    ``previous`` is an earlier result for the same table to build on.
    """
    rules = rules or SuppressionRules()
    arr = np.asarray(inner, dtype=np.int64)
    if arr.ndim < 1:
        raise ValueError("a table needs at least one dimension")
    ext = with_margins(arr)
    idx = np.indices(ext.shape)
    total_axes = np.zeros(ext.shape, dtype=np.int64)
    for axis, n in enumerate(arr.shape):
        total_axes += idx[axis] == n
    # The grand total is what readers need most: it is hidden as a complement only when no
    # safe pattern publishes it (see ``suppress_cells``' ``keep``).
    grand = total_axes == arr.ndim
    result = suppress_cells(
        ext.ravel(), table_equations(arr.shape), rules,
        cost=default_costs(ext.ravel(), total_axes.ravel(), rules.objective),
        forced=None if forced is None else np.asarray(forced, bool).ravel(),
        is_total=total_axes.ravel(), keep=grand.ravel(),
        complements=hypercube_complements(arr.shape),
        proof=hypercube_proof(arr.shape),
        previous=None if previous is None else _flat(previous),
    )
    reasons = np.array(result.reasons, dtype=object).reshape(ext.shape)
    intervals = {tuple(int(i) for i in np.unravel_index(c, ext.shape)): iv
                 for c, iv in result.intervals.items()}
    return TableSuppression(ext, result.mask.reshape(ext.shape), reasons, rules, intervals)
