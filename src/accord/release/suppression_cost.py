"""Cost-based complementary suppression: the cheapest hiding pattern that the LP audit accepts.

The model is the one statistical offices use for optimal cell suppression (Fischetti and
Salazar-Gonzalez 2000, "Models and algorithms for optimizing cell suppression in tabular data with
linear constraints"; tau-Argus' optimal method and R sdcTable's ``OPT`` solve it): a binary
``x_i`` per cell, 1 when the cell is hidden, and

* minimise ``sum cost_i x_i``, where the cost protects what readers need: large cells cost their
  size, totals cost ``TOTAL_WEIGHT`` times more on every axis they total (a country's total is
  worth more than one of its cells);
* small (primary) cells, cells hidden by a linked table and cells an earlier pass hid are fixed at
  1; zeros (always published, see ``suppression``) and cells the attacker knows are fixed at 0;
* no equation of the table may hold exactly one hidden cell (the cheap necessary condition);
* protection cuts, added lazily (Benders decomposition): for a hidden cell whose attacker interval
  under the current pattern is too narrow, the dual of the attacker's linear program gives a bound
  on the interval's width that is linear in ``x`` and valid for every pattern. Requiring that
  bound to reach the needed width removes the current pattern and no acceptable one.

The master problem is a mixed-integer program solved by scipy's HiGHS (``scipy.optimize.milp``);
the attacker's programs are scipy's HiGHS LPs. The loop stops when no cut is needed or after
``MAX_ROUNDS`` (a safeguard; tables converge within a few dozen rounds); the caller
(``suppression.suppress_cells``) then runs its usual audit over the result, which stays the
only judge of safety and adds cells if anything is still too narrow.

Why hand-written: the optimisation model is small and standard, but no maintained Python library
implements it (tau-Argus is Java, sdcTable is R); the solvers are HiGHS.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
from scipy.optimize import Bounds, LinearConstraint, linprog, milp
from scipy.sparse import coo_matrix, csr_matrix

Equation = tuple[tuple[int, ...], int]
Proof = Callable[[np.ndarray, np.ndarray, int], tuple[float, float]]

# How much more a total costs than a cell of the same size, per axis it totals. Ten makes a
# row total cost as much as ten cells of its size: it is hidden only when no set of inner cells
# of comparable mass does the job.
TOTAL_WEIGHT = 10.0
# Rounds of the cut loop. A round is one small MILP plus LP audits of the cells not yet known to
# pass, so rounds are cheap; 3-D tables with many small cells need 10-20. A loop stopped early
# hands an unfinished pattern to the greedy completion, which hides far more (on a 1,500-record
# hub a stop at 8 rounds ended with the grand total hidden): the limit is a safeguard against
# cycling, never a time budget (a release must not depend on the machine's load).
MAX_ROUNDS = 200
_EPS = 1e-7


def default_costs(values: np.ndarray, total_axes: np.ndarray, objective: str = "mass") -> np.ndarray:
    """Cost of hiding each cell: its count (``mass``) or one per cell (``count``), times
    ``TOTAL_WEIGHT`` per axis the cell totals. Ties go to the smaller count, then fewer cells."""
    vals = np.asarray(values, dtype=float)
    if objective == "mass":
        base = vals + 1.0
    elif objective == "count":
        base = 1.0 + vals / (float(vals.max(initial=0.0)) + 1.0)
    else:
        raise ValueError("objective must be 'mass' or 'count'")
    return base * TOTAL_WEIGHT ** np.asarray(total_axes, dtype=float)


def _equation_matrix(equations: Sequence[Equation], n: int) -> csr_matrix:
    rows, cols, data = [], [], []
    for r, (parts, total) in enumerate(equations):
        for p in parts:
            rows.append(r)
            cols.append(p)
            data.append(1.0)
        rows.append(r)
        cols.append(total)
        data.append(-1.0)
    return coo_matrix((data, (rows, cols)), shape=(len(equations), n)).tocsr()


def attacker_move(values: np.ndarray, m_eq: csr_matrix, hidden: np.ndarray, cell: int,
                  direction: int) -> tuple[float, np.ndarray]:
    """How far ``cell`` can move (``direction`` +1 up, -1 down) given the hidden cells, and for
    every cell the capacity coefficient of the dual bound (``inf`` where hiding that cell would
    free the attacker without limit in this direction).

    The attacker solves over deviations ``z`` from the published values: every equation holds,
    published cells do not move, hidden cells stay >= 1 (zeros are published). Weak duality: with
    reduced costs ``d = c - M'y`` of this optimum (``y`` the equations' duals), any pattern ``x``
    allows at most ``sum_i x_i (inf if d_i < 0 else d_i * (value_i - 1))`` of movement. Only the
    hidden cells are variables (published ones do not move), which keeps each LP small.
    """
    n = len(values)
    cols = np.flatnonzero(hidden)
    sub = m_eq[:, cols]
    keep = np.flatnonzero(np.diff(sub.indptr))  # equations with a hidden cell
    sub = sub[keep]
    c = np.zeros(len(cols))
    c[int(np.searchsorted(cols, cell))] = -float(direction)  # linprog minimises
    res = linprog(c, A_eq=sub, b_eq=np.zeros(len(keep)),
                  bounds=np.column_stack([1.0 - values[cols], np.full(len(cols), np.inf)]),
                  method="highs")
    if res.status != 0:  # unbounded (3): the attacker cannot bound the cell; else no cut
        return math.inf, np.zeros(n)
    y = np.zeros(m_eq.shape[0])
    y[keep] = np.asarray(res.eqlin.marginals, float)
    full_c = np.zeros(n)
    full_c[cell] = -float(direction)
    reduced = full_c - m_eq.T @ y
    coef = np.where(reduced > _EPS, reduced, 0.0) * np.maximum(values - 1.0, 0.0)
    coef[reduced < -_EPS] = math.inf
    return float(-res.fun), coef


def cost_pattern(values: np.ndarray, equations: Sequence[Equation], fixed: np.ndarray,
                 need: np.ndarray, eligible: np.ndarray, attackable: np.ndarray,
                 cost: np.ndarray, proof: Proof | None = None,
                 max_rounds: int = MAX_ROUNDS) -> np.ndarray | None:
    """The cheapest hidden set containing ``fixed`` that gives every hidden cell its width.

    ``need`` is the width each fixed cell needs (1 for any other hidden cell); ``eligible``
    marks cells that may be added; ``attackable`` marks cells whose hiding counts (a hidden cell
    the attacker knows from elsewhere counts as published). Returns None when the master problem
    has no solution (the caller then falls back to the heuristic).
    """
    vals = np.asarray(values, dtype=float)
    n = len(vals)
    m_eq = _equation_matrix(equations, n)
    lb = fixed.astype(float)
    ub = (fixed | eligible).astype(float)
    rows: list[dict[int, float]] = []
    # No equation with exactly one hidden (attackable) cell, where the equation can take another.
    for parts, total in equations:
        line = [c for c in (*parts, total) if attackable[c]]
        for c in line:
            others = [d for d in line if d != c and ub[d] > 0]
            if ub[c] > 0 and others:
                rows.append({**dict.fromkeys(others, 1.0), c: -1.0})
    cuts_seen: set[tuple[tuple[int, float], ...]] = set()
    hidden = fixed.copy()
    passed: set[int] = set()
    stale = False  # a cell in ``passed`` may have passed under a pattern with more cells
    for _ in range(max_rounds):
        solved = _solve_master(cost, rows, lb, ub, n)
        if solved is None:
            return None
        # Hiding more only widens every interval, so a cell that passed under a subset of this
        # pattern still passes. When the pattern dropped cells, earlier passes may be stale:
        # they are trusted while the loop still finds cuts elsewhere, and re-checked all at
        # once before stopping (one full audit instead of one per round).
        stale = stale or bool((hidden & ~(solved | fixed)).any())
        hidden = solved | fixed
        audited = hidden & attackable
        new_cuts = 0
        for c in map(int, np.flatnonzero(audited)):
            if c in passed:
                continue
            width = float(need[c]) if fixed[c] else 1.0
            if proof is not None:
                down, up = proof(np.asarray(values), audited, c)
                if down + up >= width - 1e-9:
                    passed.add(c)
                    continue
            up, coef_up = attacker_move(vals, m_eq, audited, c, +1)
            if up >= width - 1e-9:
                passed.add(c)
                continue
            down, coef_down = attacker_move(vals, m_eq, audited, c, -1)
            if up + down >= width - 1e-9:
                passed.add(c)
                continue
            coef = np.minimum(coef_up + coef_down, width)
            coef[~attackable] = 0.0
            # A cut the best possible pattern cannot meet would make the master infeasible:
            # leave that cell to the final audit, which reports it as unprotected.
            if float(coef[ub > 0].sum()) < width - 1e-9:
                continue
            cut = {int(i): float(coef[i]) for i in np.flatnonzero(coef > _EPS) if i != c}
            cut[c] = cut.get(c, 0.0) + float(coef[c]) - width  # binds only when c is hidden
            key = tuple(sorted((i, round(v, 6)) for i, v in cut.items()))
            if key not in cuts_seen:
                cuts_seen.add(key)
                rows.append(cut)
                new_cuts += 1
        if not new_cuts:
            if not stale:
                return hidden
            passed, stale = set(), False  # next round: the same pattern, every cell audited
    return hidden


def _solve_master(cost: np.ndarray, rows: list[dict[int, float]], lb: np.ndarray,
                  ub: np.ndarray, n: int) -> np.ndarray | None:
    constraints = []
    if rows:
        r_idx, c_idx, data = [], [], []
        for r, row in enumerate(rows):
            for c, v in row.items():
                r_idx.append(r)
                c_idx.append(c)
                data.append(v)
        a = coo_matrix((data, (r_idx, c_idx)), shape=(len(rows), n)).tocsr()
        constraints.append(LinearConstraint(a, np.zeros(len(rows)), np.full(len(rows), np.inf)))
    res = milp(cost, integrality=np.ones(n), bounds=Bounds(lb, ub), constraints=constraints,
               options={"time_limit": 60.0})
    if res.x is None:
        return None
    return np.asarray(res.x) > 0.5
