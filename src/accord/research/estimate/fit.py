"""Fit one chosen model with statsmodels and give its profile-likelihood interval."""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import statsmodels.api as sm
from scipy import optimize, stats

from accord.research.estimate.design import Model, design, layout
from accord.research.estimate.table import CaptureTable

MAX_LOG_RATIO = 12.0  # profile search gives up past exp(12) x the estimate: "no upper bound"


@dataclass(frozen=True)
class ModelFit:
    model: Model
    empty_pairs: Model
    dark: float  # estimated people on no list
    log_dark_se: float
    deviance: float
    df_resid: int
    aic: float
    fitted: npt.NDArray[np.float64]  # expected count per cell (0 on dropped cells)
    cell_mask: npt.NDArray[np.bool_]
    param_mask: npt.NDArray[np.bool_]
    params: npt.NDArray[np.float64]  # fitted parameters (active ones, intercept first)


def _glm(
    y: npt.NDArray[np.float64], x: npt.NDArray[np.float64], offset: float | None = None
) -> sm.GLM:
    off = None if offset is None else np.full(len(y), offset)
    return sm.GLM(y, x, family=sm.families.Poisson(), offset=off)


def fit_model(table: CaptureTable, model: Model) -> ModelFit:
    """Maximum likelihood fit of ``model`` (checked beforehand to exist and be identifiable)."""
    lay = layout(table, model)
    x = design(table.n_lists)[lay.cell_mask][:, lay.param_mask]
    y = table.counts[lay.cell_mask].astype(np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = _glm(y, x).fit(tol=1e-10, maxiter=200)
    fitted = np.zeros(len(table.counts))
    fitted[lay.cell_mask] = res.fittedvalues
    b0 = float(res.params[0])
    se = float(np.sqrt(res.cov_params()[0, 0]))
    return ModelFit(
        model=tuple(model),
        empty_pairs=lay.empty_pairs,
        dark=math.exp(b0),
        log_dark_se=se,
        deviance=float(res.deviance),
        df_resid=int(res.df_resid),
        aic=float(res.deviance + 2 * lay.n_params),
        fitted=fitted,
        cell_mask=lay.cell_mask,
        param_mask=lay.param_mask,
        params=np.asarray(res.params, dtype=np.float64),
    )


def _profile_deviance(
    y: npt.NDArray[np.float64], x: npt.NDArray[np.float64], b0: float,
    start: npt.NDArray[np.float64],
) -> tuple[float, npt.NDArray[np.float64]]:
    """Deviance with the intercept (log dark figure) held at ``b0``, warm-started."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = _glm(y, x[:, 1:], offset=b0).fit(start_params=start, tol=1e-9, maxiter=200)
    return float(res.deviance), np.asarray(res.params, dtype=np.float64)


def profile_interval(
    table: CaptureTable, mf: ModelFit, level: float = 0.95
) -> tuple[float, float]:
    """Profile-likelihood interval for the total (seen + dark figure) under the fitted model.

    The interval is {b0 : D(b0) - D(b0_hat) <= chi2_1(level)} for the log dark figure b0,
    mapped to totals. An end that is not reached within exp(12) times the estimate is
    reported as infinite (the data cannot bound it).
    """
    x = design(table.n_lists)[mf.cell_mask][:, mf.param_mask]
    y = table.counts[mf.cell_mask].astype(np.float64)
    b_hat = math.log(mf.dark)
    crit = float(stats.chi2.ppf(level, 1))
    start = [mf.params[1:]]  # last solution, to warm-start the next nearby fit

    def excess(b0: float) -> float:
        dev, start[0] = _profile_deviance(y, x, b0, start[0])
        return dev - mf.deviance - crit

    # first bracket just beyond the Wald end (z = 1.96 at 95 %), widened if not far enough
    step = 1.25 * float(stats.norm.ppf(0.5 + level / 2)) * max(mf.log_dark_se, 0.01)
    ends = []
    for sign in (-1.0, 1.0):
        start[0] = mf.params[1:]
        lo_b, hi_b = b_hat, b_hat + sign * step
        while excess(hi_b) < 0:
            lo_b, hi_b = hi_b, hi_b + sign * step
            step *= 1.5
            if abs(hi_b - b_hat) > MAX_LOG_RATIO:
                hi_b = math.nan
                break
        if math.isnan(hi_b):
            ends.append(math.inf * sign)
        else:
            ends.append(optimize.brentq(excess, lo_b, hi_b, xtol=1e-4))
        step = 1.25 * float(stats.norm.ppf(0.5 + level / 2)) * max(mf.log_dark_se, 0.01)
    n = table.observed
    low = n + (0.0 if math.isinf(ends[0]) else math.exp(ends[0]))
    high = math.inf if math.isinf(ends[1]) else n + math.exp(ends[1])
    return low, high


def wald_interval(table: CaptureTable, mf: ModelFit, level: float = 0.95) -> tuple[float, float]:
    """Log-normal (Wald on the log dark figure) interval, as SparseMSE's estimatepopulation.0."""
    z = float(stats.norm.ppf(0.5 + level / 2))
    b = math.log(mf.dark)
    n = table.observed
    return n + math.exp(b - z * mf.log_dark_se), n + math.exp(b + z * mf.log_dark_se)
