"""Model selection over two-list interactions, vectorised over many tables at once.

The same function selects the model for the data (one table) and for every bootstrap replicate
(many tables), so that the bootstrap interval carries the uncertainty of the selection itself.

Methods (all start from main effects and add one pair at a time, never removing one):
- ``main``: main effects only.
- ``stepwise``: Chan, Silverman & Vincent's rule: add the pair whose observed overlap is least
  likely under the current fit (two-sided Poisson p-value), while that p-value is below
  ``pthresh`` (0.02) and the enlarged model has an estimate that exists and is identifiable.
- ``aic`` / ``bic``: add the pair that lowers AIC (BIC) most, while it lowers it. Pairs whose
  overlap is empty count as parameters (as in SparseMSE). BIC's penalty is log(people seen).
Forward search is greedy: with six lists there are 32,768 two-way models, too many to fit for
every replicate; the greedy path fits at most 120.
- ``aic-all`` / ``bic-all``: fit every two-way model (``exhaustive.py``) and keep the one with
  the lowest AIC (BIC): the greedy path can stop at a worse model. Costs 2**(t(t-1)/2) fits per
  table (and per bootstrap replicate): 32,768 for six lists.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import numpy.typing as npt
from scipy import stats

from accord.research.estimate.batch import BatchFit, BoolArray, FloatArray, fit_batch
from accord.research.estimate.design import design, mle_exists, pairs

Method = Literal["main", "stepwise", "aic", "bic", "aic-all", "bic-all"]
METHODS: tuple[str, ...] = ("main", "stepwise", "aic", "bic", "aic-all", "bic-all")
DIVERGING_STEP = 0.05  # a Newton step this large after convergence: check existence by LP


@dataclass
class ValidityCache:
    """Exact rank / existence results keyed by (cells used, parameters used, observed support).

    Both depend only on these patterns, not on the counts, so bootstrap replicates share them.
    """

    rank_ok: dict[bytes, bool] = field(default_factory=dict)
    exists: dict[bytes, bool] = field(default_factory=dict)


@dataclass(frozen=True)
class Selection:
    models: BoolArray  # (B, K) chosen pairs
    empty: BoolArray  # (B, K) pairs whose overlap is empty in that table
    fit: BatchFit
    valid: BoolArray  # (B,) the chosen model's estimate exists and is identifiable
    criterion: FloatArray  # (B,) final AIC/BIC (or deviance for main/stepwise)
    trace: list[tuple[int, float]]  # for table 0: (pair added, criterion or p-value) per step

    @property
    def dark(self) -> FloatArray:
        return np.asarray(np.exp(self.fit.beta[:, 0]), dtype=np.float64)


def _masks(
    n_lists: int, models: BoolArray, empty: BoolArray
) -> tuple[BoolArray, BoolArray]:
    x = design(n_lists)
    pair_cells = x[:, 1 + n_lists :]  # (C, K)
    dropped = (models & empty).astype(np.float64) @ pair_cells.T > 0
    params = np.ones((models.shape[0], x.shape[1]), dtype=bool)
    params[:, 1 + n_lists :] = models & ~empty
    return ~dropped, params


def _validate(
    n_lists: int,
    y: FloatArray,
    cells: BoolArray,
    params: BoolArray,
    fit: BatchFit,
    cache: ValidityCache,
    exact: bool,
) -> BoolArray:
    x = design(n_lists)
    ok = np.ones(y.shape[0], dtype=bool)
    suspect = (
        ~(fit.last_step < DIVERGING_STEP) | ~fit.converged | ~np.isfinite(fit.beta).all(axis=1)
    )
    for b in range(y.shape[0]):
        key = np.packbits(np.concatenate([cells[b], params[b]])).tobytes()
        rank = cache.rank_ok.get(key)
        if rank is None:
            a = x[cells[b]][:, params[b]]
            rank = bool(a.shape[0] >= a.shape[1] and np.linalg.matrix_rank(a) == a.shape[1])
            cache.rank_ok[key] = rank
        if not rank:
            ok[b] = False
            continue
        if not (exact or suspect[b]):
            continue
        skey = key + np.packbits((y[b] > 0) & cells[b]).tobytes()
        ex = cache.exists.get(skey)
        if ex is None:
            ex = mle_exists(x[cells[b]][:, params[b]], y[b][cells[b]])
            cache.exists[skey] = ex
        ok[b] = ex
    return ok


@dataclass(frozen=True)
class _Children:
    models: BoolArray
    fit: BatchFit
    valid: BoolArray
    crit: FloatArray


@dataclass
class _State:
    """Current model and fit per table during the search (mutated in place)."""

    models: BoolArray
    beta: FloatArray
    mu: FloatArray
    dev: FloatArray
    conv: BoolArray
    last: FloatArray
    valid: BoolArray
    crit: FloatArray

    def adopt(self, rows: npt.NDArray[np.intp], ch: _Children, idx: npt.NDArray[np.intp]) -> None:
        self.models[rows] = ch.models[idx]
        self.beta[rows] = ch.fit.beta[idx]
        self.mu[rows] = ch.fit.mu[idx]
        self.dev[rows] = ch.fit.deviance[idx]
        self.conv[rows] = ch.fit.converged[idx]
        self.last[rows] = ch.fit.last_step[idx]
        self.valid[rows] = True
        self.crit[rows] = ch.crit[idx]


def _penalty(method: str, y: FloatArray) -> FloatArray:
    if method == "bic":
        return np.asarray(np.log(np.maximum(y.sum(axis=1), 2.0)), dtype=np.float64)
    return np.full(y.shape[0], 2.0)


def _n_params(n_lists: int, models: BoolArray) -> FloatArray:
    return np.asarray(1 + n_lists + models.sum(axis=1), dtype=np.float64)


def select(
    n_lists: int,
    y: npt.ArrayLike,
    method: str = "stepwise",
    pthresh: float = 0.02,
    cache: ValidityCache | None = None,
    exact: bool = False,
    fixed: BoolArray | None = None,
) -> Selection:
    """Select a model for each row of ``y`` (B, C) counts over the cells of ``histories(t)``.

    ``exact`` runs the existence LP for every candidate (use for the data; replicates run it
    only when a fit looks degenerate). ``fixed`` skips the search and fits the given pairs.
    """
    if method not in METHODS:
        raise ValueError(f"unknown method {method}")
    if method.endswith("-all"):
        return _select_exhaustive(n_lists, y, method[:3], pthresh, cache, exact, fixed)
    yy = np.atleast_2d(np.asarray(y, dtype=np.float64))
    b, _ = yy.shape
    x = design(n_lists)
    k_pairs = len(pairs(n_lists))
    pair_cells = x[:, 1 + n_lists :]
    cache = cache if cache is not None else ValidityCache()
    overlap = yy @ pair_cells
    empty = overlap == 0
    models = np.zeros((b, k_pairs), dtype=bool) if fixed is None else np.array(fixed, dtype=bool)
    cells, params = _masks(n_lists, models, empty)
    fit = fit_batch(x, yy, cells, params)
    valid = _validate(n_lists, yy, cells, params, fit, cache, exact)
    pen = _penalty(method, yy)
    st = _State(
        models=models, beta=fit.beta.copy(), mu=fit.mu.copy(), dev=fit.deviance.copy(),
        conv=fit.converged.copy(), last=fit.last_step.copy(), valid=valid,
        crit=np.where(valid, fit.deviance + pen * _n_params(n_lists, models), np.inf),
    )
    trace: list[tuple[int, float]] = []
    alive = np.ones(b, dtype=bool) if method != "main" and fixed is None else np.zeros(b, bool)

    def children(rows: npt.NDArray[np.intp], ks: npt.NDArray[np.intp]) -> _Children:
        child = st.models[rows].copy()
        child[np.arange(rows.size), ks] = True
        c_cells, c_params = _masks(n_lists, child, empty[rows])
        c_fit = fit_batch(x, yy[rows], c_cells, c_params, beta0=st.beta[rows])
        c_valid = _validate(n_lists, yy[rows], c_cells, c_params, c_fit, cache, exact)
        crit = c_fit.deviance + pen[rows] * _n_params(n_lists, child)
        return _Children(child, c_fit, c_valid, crit)

    while alive.any():
        rows, ks = np.nonzero(alive[:, None] & ~st.models)
        score = np.full((b, k_pairs), np.inf)
        if method == "stepwise":
            # p-values come from the current fit; only the best pair is fitted (to check that
            # its estimate exists), falling back to the next best when it does not.
            pstar = (st.mu[rows] * pair_cells[:, ks].T).sum(axis=1)
            nstar = overlap[rows, ks]
            score[rows, ks] = np.minimum(
                stats.poisson.cdf(nstar, pstar), stats.poisson.sf(nstar - 1, pstar)
            )
            accept = np.zeros(b, dtype=bool)
            pending = alive.copy()
            while pending.any():
                best = np.argmin(score, axis=1)
                best_p = score[np.arange(b), best]
                pending &= best_p < pthresh
                try_rows = np.nonzero(pending)[0]
                if try_rows.size == 0:
                    break
                ch = children(try_rows, best[try_rows])
                good = try_rows[ch.valid]
                st.adopt(good, ch, np.nonzero(ch.valid)[0])
                accept[good] = True
                pending[good] = False
                score[try_rows[~ch.valid], best[try_rows[~ch.valid]]] = np.inf
                if good.size and good[0] == 0:
                    trace.append((int(best[0]), float(best_p[0])))
        else:
            if rows.size == 0:
                break
            ch = children(rows, ks)
            score[rows, ks] = np.where(ch.valid, ch.crit, np.inf)
            best = np.argmin(score, axis=1)
            best_score = score[np.arange(b), best]
            accept = alive & (best_score < st.crit - 1e-9)
            index = np.full((b, k_pairs), -1)
            index[rows, ks] = np.arange(rows.size)
            acc = np.nonzero(accept)[0]
            st.adopt(acc, ch, index[acc, best[acc]])
            if accept[0]:
                trace.append((int(best[0]), float(best_score[0])))
        alive = accept
    return Selection(
        st.models, empty, BatchFit(st.beta, st.mu, st.dev, st.conv, st.last), st.valid, st.crit,
        trace,
    )


def _select_exhaustive(
    n_lists: int,
    y: npt.ArrayLike,
    method: str,
    pthresh: float,
    cache: ValidityCache | None,
    exact: bool,
    fixed: BoolArray | None,
) -> Selection:
    """The best-scoring two-way model of every table, then its fit as a fixed model."""
    from accord.research.estimate.exhaustive import fit_all  # exhaustive imports this module

    yy = np.atleast_2d(np.asarray(y, dtype=np.float64))
    if fixed is None:
        chosen = np.zeros((yy.shape[0], len(pairs(n_lists))), dtype=bool)
        for b in range(yy.shape[0]):
            space = fit_all(n_lists, yy[b], method, exact_top=EXACT_TOP if exact else 1)
            chosen[b] = space.models[space.best]
        fixed = chosen
    return select(n_lists, yy, method, pthresh, cache=cache, exact=exact, fixed=fixed)


EXACT_TOP = 200


def select_with_progress(
    n_lists: int,
    y: FloatArray,
    method: str,
    pthresh: float,
    chunk: int = 250,
    progress: Callable[[int, int], None] | None = None,
    fixed: tuple[int, ...] | None = None,
) -> tuple[BoolArray, FloatArray, BoolArray]:
    """Run :func:`select` over many tables in chunks; return models, dark figures, validity."""
    cache = ValidityCache()
    n = y.shape[0]
    k_pairs = len(pairs(n_lists))
    p = design(n_lists).shape[1]
    # every table in a chunk fits up to k_pairs children, each with a P x P Hessian: keep the
    # chunk's Hessians near 250 MB whatever the number of lists
    chunk = max(4, min(chunk, int(2.5e8 / (8 * p * p * max(k_pairs, 1)))))
    models = np.zeros((n, k_pairs), dtype=bool)
    dark = np.full(n, np.nan)
    valid = np.zeros(n, dtype=bool)
    for start in range(0, n, chunk):
        part = y[start : start + chunk]
        fix = None
        if fixed is not None:
            fix = np.zeros((part.shape[0], models.shape[1]), dtype=bool)
            fix[:, list(fixed)] = True
        sel = select(n_lists, part, method, pthresh, cache=cache, fixed=fix)
        stop = start + sel.models.shape[0]
        models[start:stop], dark[start:stop], valid[start:stop] = sel.models, sel.dark, sel.valid
        if progress:
            progress(stop, n)
    return models, dark, valid
