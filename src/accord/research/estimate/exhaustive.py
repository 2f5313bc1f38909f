"""Every hierarchical two-way model at once: exhaustive AIC/BIC search and model averaging.

With ``t`` lists there are ``2**(t(t-1)/2)`` models made of main effects and any set of two-list
interactions (8 for three lists, 64 for four, 1,024 for five, 32,768 for six). The greedy forward
search in ``select.py`` can stop at a model worse than the best one; here every model is fitted,
in batches that share one design matrix (``batch.fit_batch``), so the best-scoring model is found
for certain, and the AIC (or BIC) weights ``w_m ~ exp(-crit_m / 2)`` give a model-averaged
total, as R's MultipleSystemsEstimation does, and the spread of totals among the models the data
support: how much the choice of model moves the estimate.

Existence: every model's fit is checked cheaply (rank of the design on the cells it keeps, and
the linear program of ``design.mle_exists`` when the Newton iterations look divergent); the
``EXACT_TOP`` best models are then checked with the linear program whatever their fit looked
like, so that the model reported and the models that carry the averaging weight are exact.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from accord.research.estimate.batch import BoolArray, FloatArray, fit_batch
from accord.research.estimate.design import design, mle_exists, pairs
from accord.research.estimate.select import (
    ValidityCache,
    _masks,
    _n_params,
    _penalty,
    _validate,
)

MAX_PAIRS = 15  # six lists: 32,768 models; seven lists (2**21 models) are not searched
EXACT_TOP = 200  # models checked by linear program whatever their fit looked like
CHUNK = 2048  # models per batched fit (Hessians: CHUNK * P * P * 8 bytes, 8 MB for six lists)
SUPPORTED = 0.01  # a model "the data support" carries at least this share of the weight


def all_models(n_lists: int) -> BoolArray:
    """(2**K, K): every subset of the K two-list interactions, in binary order."""
    k = len(pairs(n_lists))
    if k > MAX_PAIRS:
        raise ValueError(f"{n_lists} lists: 2^{k} models is too many to search exhaustively")
    codes = np.arange(2**k, dtype=np.int64)
    return np.asarray((codes[:, None] >> np.arange(k)) & 1, dtype=bool)


@dataclass(frozen=True)
class ModelSpace:
    """Every two-way model fitted to one table."""

    models: BoolArray  # (M, K)
    crit: FloatArray  # (M,) AIC or BIC; inf where the estimate does not exist
    dark: FloatArray  # (M,) people seen by no list under each model
    observed: int

    @property
    def valid(self) -> BoolArray:
        return np.asarray(np.isfinite(self.crit), dtype=bool)

    @property
    def best(self) -> int:
        return int(np.argmin(self.crit))

    def weights(self) -> FloatArray:
        """AIC/BIC weights (Burnham & Anderson): exp(-delta/2), normalised; 0 where invalid."""
        if not self.valid.any():
            return np.zeros(len(self.crit))
        delta = self.crit - self.crit[self.valid].min()
        w = np.where(self.valid, np.exp(-0.5 * np.where(self.valid, delta, 0.0)), 0.0)
        return np.asarray(w / w.sum(), dtype=np.float64)

    def averaged_total(self) -> float | None:
        if not self.valid.any():
            return None
        w = self.weights()
        return float(self.observed + (w * np.where(self.valid, self.dark, 0.0)).sum())

    def supported(self, share: float = SUPPORTED) -> np.ndarray:
        """Indices of the models carrying at least ``share`` of the weight, best first."""
        w = self.weights()
        idx = np.flatnonzero(w >= share)
        return idx[np.argsort(self.crit[idx])]


def fit_all(n_lists: int, counts: np.ndarray, method: str = "aic",
            models: BoolArray | None = None, exact_top: int = EXACT_TOP) -> ModelSpace:
    """Fit every two-way model (or the given ones) to one table of counts (C,)."""
    if method not in ("aic", "bic"):
        raise ValueError("exhaustive search scores models by aic or bic")
    x = design(n_lists)
    y1 = np.asarray(counts, dtype=np.float64)[None]
    ms = all_models(n_lists) if models is None else np.asarray(models, dtype=bool)
    empty1 = (y1 @ x[:, 1 + n_lists:]) == 0
    cache = ValidityCache()
    crit = np.full(len(ms), np.inf)
    dark = np.full(len(ms), np.nan)
    keep_cells = np.zeros((len(ms), x.shape[0]), dtype=bool)
    keep_params = np.zeros((len(ms), x.shape[1]), dtype=bool)
    pen = float(_penalty(method, y1)[0])
    for start in range(0, len(ms), CHUNK):
        part = ms[start:start + CHUNK]
        y = np.repeat(y1, len(part), axis=0)
        empty = np.repeat(empty1, len(part), axis=0)
        cells, params = _masks(n_lists, part, empty)
        fit = fit_batch(x, y, cells, params)
        ok = _validate(n_lists, y, cells, params, fit, cache, exact=False)
        stop = start + len(part)
        crit[start:stop] = np.where(ok, fit.deviance + pen * _n_params(n_lists, part), np.inf)
        dark[start:stop] = np.exp(fit.beta[:, 0])
        keep_cells[start:stop], keep_params[start:stop] = cells, params
    # The best models get the exact existence check (see the module docstring).
    for checked, m in enumerate(np.argsort(crit)):
        if not np.isfinite(crit[m]) or checked >= exact_top:
            break
        a = x[keep_cells[m]][:, keep_params[m]]
        if not mle_exists(a, y1[0][keep_cells[m]]):
            crit[m] = np.inf
    return ModelSpace(ms, crit, dark, int(y1.sum()))
