"""Poisson log-linear fits for many tables or many models at once (Newton / IRLS in numpy).

Written by hand because statsmodels fits one GLM at a time: a bootstrap that repeats model
selection needs hundreds of thousands of small fits (63 cells, <= 22 parameters for six lists),
which a Python loop over statsmodels cannot do in a minute. Every fit shares one design matrix;
per fit, a cell mask drops histories and a parameter mask switches columns off (switched-off
parameters get an identity row in the Hessian so that one batched solve serves all). The
reported single-table estimates are refitted with statsmodels (see ``fit.py``) and the tests
check the two agree.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

MAX_ETA = 700.0  # exp overflow guard
MAX_STEP = 8.0  # damp wild Newton steps far from the optimum


@dataclass(frozen=True)
class BatchFit:
    beta: FloatArray  # (B, P), zero where the parameter is off
    mu: FloatArray  # (B, C), zero on dropped cells
    deviance: FloatArray  # (B,)
    converged: BoolArray  # (B,)
    last_step: FloatArray  # (B,) largest Newton step left at the end: O(1) when diverging


def poisson_deviance(y: FloatArray, mu: FloatArray) -> FloatArray:
    with np.errstate(divide="ignore", invalid="ignore"):
        term = np.where(y > 0, y * np.log(y / np.maximum(mu, 1e-300)), 0.0)
    return np.asarray(2.0 * (term - (y - mu)).sum(axis=-1), dtype=np.float64)


def _outer(x: FloatArray) -> FloatArray:
    """Products of every pair of design columns, per cell: (C, P*P)."""
    p = x.shape[1]
    return np.asarray((x[:, :, None] * x[:, None, :]).reshape(x.shape[0], p * p))


def _newton_step(
    x: FloatArray, y: FloatArray, mu: FloatArray, pm: FloatArray, rhs: FloatArray | None = None,
    outer: FloatArray | None = None, pm_outer: BoolArray | None = None,
) -> tuple[FloatArray, FloatArray]:
    """Newton step and score for every fit (the score is used for the Newton decrement)."""
    p = x.shape[1]
    # H_b = X' diag(mu_b) X for every b as one GEMM: mu (B, C) @ [x_cp x_cq] (C, P*P).
    # Switched-off parameters: zero row and column, 1 on the diagonal.
    h = mu @ (_outer(x) if outer is None else outer)
    if pm_outer is None:
        pm_outer = (pm[:, :, None] * pm[:, None, :]).reshape(h.shape) > 0
    np.multiply(h, pm_outer, out=h)
    h[:, :: p + 1] += (1.0 - pm) + 1e-12
    h = h.reshape(-1, p, p)
    g = ((y - mu) @ x) * pm if rhs is None else rhs * pm
    step = np.asarray(np.linalg.solve(h, g[..., None])[..., 0], dtype=np.float64)
    return step, np.asarray(g, dtype=np.float64)


def fit_batch(
    x: FloatArray,
    y: FloatArray,
    cell_mask: BoolArray,
    param_mask: BoolArray,
    beta0: FloatArray | None = None,
    max_iter: int = 60,
    tol: float = 1e-9,
) -> BatchFit:
    """Fit ``B`` Poisson log-linear models sharing design ``x`` (C, P).

    ``y`` (B, C) counts, ``cell_mask`` (B, C) cells used, ``param_mask`` (B, P) parameters used,
    ``beta0`` (B, P) optional warm start (e.g. the parent model in a stepwise search).
    """
    b = y.shape[0]
    cm = cell_mask.astype(np.float64)
    pm = param_mask.astype(np.float64)
    yf = np.asarray(y, dtype=np.float64) * cm
    if beta0 is None:
        # classical GLM start: weighted least squares of log(y + 0.5) on the design
        mu0 = (yf + 0.5) * cm
        z = np.log(yf + 0.5) * cm
        beta = _newton_step(x, yf, mu0, pm, rhs=(mu0 * z) @ x)[0]
    else:
        beta = np.asarray(beta0, dtype=np.float64) * pm
    mu = np.zeros_like(yf)
    last = np.full(b, np.inf)
    converged = np.zeros(b, dtype=bool)
    active = np.arange(b)
    outer = _outer(x)
    p = x.shape[1]
    pm_outer = (param_mask[:, :, None] & param_mask[:, None, :]).reshape(b, p * p)
    for _ in range(max_iter):
        eta = np.minimum(beta[active] @ x.T, MAX_ETA)
        mu_a = np.exp(eta) * cm[active]
        step, score = _newton_step(
            x, yf[active], mu_a, pm[active], outer=outer,
            pm_outer=pm_outer if active.size == b else pm_outer[active],
        )
        # Newton decrement g'H^-1 g: the deviance the next step would still gain (/2)
        # (scaled by the counts' size, as a deviance-relative tolerance would be)
        done = np.abs((score * step).sum(axis=1)) <= tol * (1.0 + yf[active].sum(axis=1))
        mu[active] = mu_a
        # When the MLE does not exist the iterates run off along a direction that drives some
        # zero-count cells to 0: the deviance settles but the Newton step stays near 1 in
        # size, while a converged, existing fit leaves a step near 0. Callers use this to
        # decide which fits need the exact linear-programme check.
        last[active] = np.abs(step).max(axis=1)
        converged[active[done]] = True
        # the final step is applied too (mu/deviance then lag by under tol: negligible)
        big = np.abs(step).max(axis=1, keepdims=True)
        step *= np.minimum(1.0, MAX_STEP / np.maximum(big, 1e-300))
        beta[active] += step
        active = active[~done]
        if active.size == 0:
            break
    dev = poisson_deviance(yf, mu)
    return BatchFit(beta, mu, dev, converged, last)
