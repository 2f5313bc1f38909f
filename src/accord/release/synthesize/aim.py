"""Adaptive selection of marginals (AIM-like) for a triangulated model within AIM's size caps.

Follows McKenna, Mullins, Sheldon & Miklau's AIM (VLDB 2022) under zCDP, with OpenDP for every
random draw (through :mod:`accord.release.synthesize.mst`'s ``add_noise`` and ``_noisy_max``):

1. measure every one-way marginal (a fifth of the budget up to epsilon about 1, down to a tenth
   from about 3.3: :func:`one_way_share`; discrete Gaussian) and merge rare levels
   as MST does;
2. rounds: among the workload's marginals (all 2- and 3-way by default) and their 2-way subsets,
   those the model can hold (the triangulation of the measured sets plus the candidate keeps every
   clique within :data:`~accord.release.synthesize.model.MAX_MODEL_CELLS` cells and all of them
   within :data:`~accord.release.synthesize.model.MAX_TOTAL_CELLS`: AIM's model-size filter; a
   cycle of pairs is allowed, as in AIM), OpenDP's noisy max picks the one whose current model
   estimate is furthest from the truth, net of the noise its measurement would add:
   ``L1(true - model) - sqrt(2/pi) sigma cells``. The model estimate and the penalty come from
   earlier noisy outputs only, so one person moves a score by at most 1
   (:data:`SELECTION_SENSITIVITY`). The pick is measured (discrete Gaussian, L2 sensitivity 1)
   and the model refitted (warm-started, a few raking sweeps: it only
   ranks the next candidates; the released model is fitted afresh);
3. budget annealing as in AIM: when a measurement barely changed the model's estimate of its
   marginal (by less than the noise expected), the per-round budget is quadrupled (sigma halved);
   the last round takes whatever remains, so the whole rho is spent and no more.

The released model is the raked model refined by :func:`accord.release.synthesize.joint.estimate`
(AIM's estimation, one least-squares fit of all measurements, written without ``mbi``'s JAX: see
that module and docs/dp.md).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import numpy as np

from accord.errors import ReleaseRefused
from accord.release.dp.mechanism import calibrate
from accord.release.synthesize import joint, mst
from accord.release.synthesize.model import (
    MAX_MODEL_CELLS,
    Encoded,
    FitCache,
    Measured,
    Measurement,
    Model,
    check_columns,
    column_label,
    fit,
    marginal,
    measure_one_way,
    model_cliques,
    seeder,
    spec_variance,
)

SELECTION_SENSITIVITY = 1.0  # L-inf sensitivity of quality_score (model and penalty are noisy)
# The one-way marginals' share of rho: a fifth at small budgets, a tenth at large ones, log-linear
# in rho between (public: the budget alone decides it). Every workload marginal contains its
# columns' one-way margins, the fit rakes every clique to them (fused with every later
# measurement), and they decide which rare levels are merged: at small budgets, where the rounds
# can afford only a score of marginals, they carry most of the 2-way accuracy; at large budgets
# the rounds' higher-order marginals gain more from the budget. Measured on adult (mean TVD2 /
# TVD3, seeded runs; benchmarks/results/aim.md): a tenth gave 0.0588 / 0.113 at epsilon 0.5
# (20 runs), 0.0414 / 0.087 at 1 (20), 0.0246 / 0.0595 at 4 (5); a fifth 0.0538 / 0.107,
# 0.0399 / 0.087 and 0.0251 / 0.0609; AIM's ~5.6 % 0.0695 / 0.128 at 0.5.
ONE_WAY_SHARE = 0.2
ONE_WAY_SHARE_LARGE = 0.1
ONE_WAY_RHO_SMALL, ONE_WAY_RHO_LARGE = 0.012, 0.12  # epsilon about 1 and 3.3 at delta 1e-9
REQUIRED_SHARE = 0.1  # the required marginals (the hub's sex x age x ...), measured next
SELECT_SHARE = 0.1  # of each round's budget, as in AIM
ROUNDS_PER_COLUMN = 16  # AIM's initial schedule: 16 d rounds
ROUND_SWEEPS = 4  # raking sweeps of the refits between rounds (warm-started); the final fit: 20
# Joint-fit steps after each round's refit (0: raking only; the released model is always fitted
# jointly, see joint.estimate). A variant for benchmarks/synthetic_variants.py.
ROUND_JOINT_ITERATIONS = 0


def one_way_share(rho: float) -> float:
    """The share of ``rho`` the one-way marginals get (see :data:`ONE_WAY_SHARE`)."""
    lo, hi = ONE_WAY_SHARE, ONE_WAY_SHARE_LARGE
    # An epsilon as small as 1e-320 gives rho = 0.0 (underflow): no logarithm of it.
    if rho <= ONE_WAY_RHO_SMALL:
        return lo
    if rho >= ONE_WAY_RHO_LARGE:
        return hi
    t = math.log(rho / ONE_WAY_RHO_SMALL) / math.log(ONE_WAY_RHO_LARGE / ONE_WAY_RHO_SMALL)
    return lo + (hi - lo) * t


def quality_score(true: np.ndarray, estimate: np.ndarray, sigma: float) -> float:
    """AIM's score: how wrong the model is on a marginal, net of the error measuring it would add.

    ``estimate`` (the current model's marginal, at the noisy total) and ``sigma`` come from earlier
    noisy outputs only; one person changes one cell of ``true`` by 1, the score by at most 1.
    """
    return float(np.abs(true - estimate).sum() - math.sqrt(2 / math.pi) * sigma * true.size)


def default_workload(columns: Sequence[str]) -> tuple[tuple[str, ...], ...]:
    """All 2-way and 3-way marginals."""
    return tuple(itertools.chain(itertools.combinations(columns, 2),
                                 itertools.combinations(columns, 3)))


def check_workload(workload: Sequence[Sequence[str]], columns: Sequence[str]) -> None:
    """Refuse, before anything is measured, a workload naming columns the data do not have."""
    known = set(columns)
    for table in workload:
        unknown = [c for c in table if c not in known]
        if unknown:
            raise ReleaseRefused(f"workload names column(s) not in the data: {', '.join(unknown)}",
                                 hint="name columns exactly as in the header (see --workload)")
        if len(set(table)) < 2:
            raise ReleaseRefused("a workload marginal needs at least two different columns",
                                 hint="write marginals as COL1,COL2[,COL3]")


def fits_model(sets: Sequence[tuple[int, ...]], sizes: Sequence[int]) -> bool:
    """Whether a model holding every set in ``sets`` stays within the size caps (AIM's filter)."""
    return model_cliques(sets, sizes) is not None


def model_marginal(model: Model, attrs: tuple[int, ...]) -> np.ndarray:
    """The fitted model's probability table over ``attrs`` (compressed levels), by elimination.

    The junction-tree model is a chain of conditionals P(new columns | separator) in sampling
    order; einsum sums out every other column.
    """
    for clique, table in zip(model.cliques, model.tables, strict=True):
        if set(attrs) <= set(clique):  # inside one clique: a plain sum (most candidates)
            drop = tuple(i for i, a in enumerate(clique) if a not in attrs)
            kept_order = [a for a in clique if a in attrs]
            out = table.sum(axis=drop) if drop else table
            return np.asarray(np.transpose(out, [kept_order.index(a) for a in attrs]), float)
    # Barren factors (conditionals of columns neither asked for nor conditioned on later) sum to
    # one and are dropped, so most queries touch two or three small tables.
    factors: list[tuple[tuple[int, ...], np.ndarray, frozenset[int]]] = []
    seen: set[int] = set()
    for clique, table in zip(model.cliques, model.tables, strict=True):
        known = [i for i, a in enumerate(clique) if a in seen]
        new = [i for i in range(len(clique)) if i not in known]
        if not new:
            continue
        t = table
        if known:
            denom = t.sum(axis=tuple(new), keepdims=True)
            t = np.divide(t, denom, out=np.full_like(t, 1.0 / int(np.prod(
                [t.shape[i] for i in new]))), where=denom > 0)
        factors.append((clique, t, frozenset(clique[i] for i in new)))
        seen.update(clique)
    need = set(attrs)
    kept = []
    for clique, t, new_vars in reversed(factors):
        if new_vars & need:
            kept.append((clique, t))
            need |= set(clique)
    letters = {a: chr(ord("a") + i) if i < 26 else chr(ord("A") + i - 26)
               for i, a in enumerate(sorted({a for c, _ in kept for a in c}))}
    spec = ",".join("".join(letters[a] for a in c) for c, _ in kept) + "->" + "".join(
        letters[a] for a in attrs)
    big = max(t.size for _, t in kept) > 10_000  # BLAS contraction beats einsum's plain loop
    out = np.einsum(spec, *[t for _, t in kept], optimize=len(kept) > 2 or big)
    return np.asarray(out, dtype=float)


def measure_adaptive(data: Encoded, rho: float, required: Sequence[Sequence[str]] = (),
                     workload: Sequence[Sequence[str]] | None = None,
                     test_seed: int | None = None) -> Measured:
    """Run the adaptive selection and measurements with a total zCDP budget ``rho``."""
    check_columns(data)
    d = len(data.columns)
    work = tuple(tuple(w) for w in (default_workload(data.columns) if workload is None
                                    else workload))
    check_workload([*work, *required], data.columns)
    idx = {c: i for i, c in enumerate(data.columns)}
    req = [tuple(sorted(idx[c] for c in t)) for t in required]
    seed = seeder(test_seed)

    # Refuse a domain too large before any budget is spent (sizes here are the public levels).
    for t in [*work, *required]:
        cells = int(np.prod([data.sizes[idx[c]] for c in t]))
        if cells > MAX_MODEL_CELLS and len(t) <= 2:
            big = max(t, key=lambda c: data.sizes[idx[c]])
            raise ReleaseRefused(f"the marginal {' x '.join(t)} has {cells} cells, too many to "
                                 f"model (largest column: {column_label(big, idx[big])})",
                                 hint="bin that column with --bin, or drop it")

    # 1. one-way marginals (L2^2 = d over all of them).
    first = measure_one_way(data, calibrate("gaussian", 1, d, rho * one_way_share(rho)), seed,
                            mst.add_noise)
    one_way, groups, comp, csizes = first.measurements, first.groups, first.comp, first.csizes
    spent = first.rho

    measured: list[Measurement] = []
    # Required marginals are measured first (they must be in the model whatever the scores say).
    if req:
        if not fits_model(req, csizes):
            raise ReleaseRefused("the required marginals are too large to model together",
                                 hint="bin their columns with --bin, or require fewer")
        spec_r = calibrate("gaussian", 1, len(req), rho * REQUIRED_SHARE)
        for r in req:
            measured.append(Measurement(r, mst.add_noise(marginal(comp, csizes, r), spec_r,
                                                         seed()), spec_r))
        spent += spec_r.cost_rho()

    candidates = sorted({tuple(sorted(idx[c] for c in t)) for t in work} | {
        p for t in work for p in itertools.combinations(sorted(idx[c] for c in t), 2)})
    # Candidates the model could never hold are dropped before their tables are counted (memory).
    candidates = [c for c in candidates
                  if int(np.prod([csizes[a] for a in c])) <= MAX_MODEL_CELLS]
    true_tables = {c: marginal(comp, csizes, c).astype(float) for c in candidates}
    # AIM's initial schedule: 16 d rounds; sigma and the selection rho follow from it.
    rounds = ROUNDS_PER_COLUMN * d
    rho_round = (rho - spent) / rounds
    selected: list[tuple[str, ...]] = []

    def build(ms: list[Measurement]) -> Measured:
        return Measured(data.columns, data.levels, groups, one_way, tuple(ms), spent, ())

    cache: FitCache = {}
    model = fit(build(measured), cache, sweeps=ROUND_SWEEPS)
    last = False
    while not last and rho - spent > 1e-12:
        remaining = rho - spent
        if remaining < 2 * rho_round:  # the last round takes the rest
            rho_round = remaining
            # and is the last: the calibrated noise may cost a hair less than its share, and a
            # round on that floating-point residue measured a marginal with noise of ~1e5 per
            # cell, which the fit then trusted (seen: sex x exploitation lost, TVD 0.38).
            last = True
        rho_sel, rho_meas = SELECT_SHARE * rho_round, (1 - SELECT_SHARE) * rho_round
        spec = calibrate("gaussian", 1, 1, rho_meas)
        sigma = math.sqrt(spec_variance(spec))
        attrs_now = sorted({m.attrs for m in measured})
        held = [set(c) for c in model.cliques]
        allowed = [c for c in candidates if any(set(c) <= h for h in held)
                   or fits_model([*attrs_now, c], csizes)]
        if not allowed:
            break
        total = model.total
        estimates = [model_marginal(model, c) * total for c in allowed]
        scores = np.array([quality_score(true_tables[c], e, sigma)
                           for c, e in zip(allowed, estimates, strict=True)])
        pick = mst._noisy_max(scores, SELECTION_SENSITIVITY, rho_sel, seed())
        spent += rho_sel
        chosen = allowed[pick]
        noisy = mst.add_noise(true_tables[chosen].astype(np.int64), spec, seed())
        spent += spec.cost_rho()
        measured.append(Measurement(chosen, noisy, spec))
        selected.append(tuple(data.columns[a] for a in chosen))
        before = estimates[pick]
        model = fit(build(measured), cache, sweeps=ROUND_SWEEPS, warm=model)
        if ROUND_JOINT_ITERATIONS > 0:
            model = joint.joint_fit(build(measured), model, ROUND_JOINT_ITERATIONS).model
        after = model_marginal(model, chosen) * model.total
        if np.abs(after - before).sum() <= math.sqrt(2 / math.pi) * sigma * before.size:
            rho_round *= 4.0  # annealing: the model has caught up, spend more per round
    result = build(measured)
    return Measured(result.columns, result.levels, result.groups, result.one_way, result.cliques,
                    spent, tuple((s[0], s[-1]) for s in selected))
