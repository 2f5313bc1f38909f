"""Bootstrap intervals that repeat the model selection in every replicate.

Replicate tables are drawn all at once (multinomial over the observed histories, or Poisson
from the fitted model) and selected/fitted in vectorised chunks (see ``select.py``).
A replicate in which no model has an estimate that exists is counted as an infinite total:
the interval then says honestly that the data cannot bound the number.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt
from scipy import stats

from accord.research.estimate.design import Model, model_name
from accord.research.estimate.select import select_with_progress
from accord.research.estimate.table import CaptureTable

Resample = Literal["multinomial", "parametric"]
RESAMPLES: tuple[str, ...] = ("multinomial", "parametric")


@dataclass(frozen=True)
class BootstrapResult:
    replicates: int
    resample: str
    seed: int
    totals: npt.NDArray[np.float64]  # one per replicate; inf where no estimate exists
    failed: int
    interval: tuple[float, float]  # BCa
    percentile: tuple[float, float]
    acceleration: float
    top_models: tuple[tuple[str, float], ...]  # most often chosen models, with their share

    def to_dict(self) -> dict[str, object]:
        return {
            "replicates": self.replicates,
            "resample": self.resample,
            "seed": self.seed,
            "failed": self.failed,
            "interval": list(self.interval),
            "interval_kind": "BCa",
            "percentile_interval": list(self.percentile),
            "acceleration": self.acceleration,
            "top_models": [{"model": m, "share": s} for m, s in self.top_models],
        }


def draw_replicates(
    table: CaptureTable,
    n_boot: int,
    rng: np.random.Generator,
    resample: str = "multinomial",
    fitted: npt.NDArray[np.float64] | None = None,
) -> npt.NDArray[np.float64]:
    if resample == "multinomial":
        n = table.observed
        return rng.multinomial(n, table.counts / n, size=n_boot).astype(np.float64)
    if resample == "parametric":
        if fitted is None:
            raise ValueError("parametric bootstrap needs the fitted expected counts")
        return rng.poisson(fitted, size=(n_boot, len(fitted))).astype(np.float64)
    raise ValueError(f"unknown resample scheme {resample}")


def _jackknife_acceleration(
    table: CaptureTable, method: str, pthresh: float, fixed: Model | None
) -> float:
    """BCa acceleration from the delete-one-person jackknife (one refit per non-empty cell).

    Deleting any of the n_c people of cell c gives the same table, so each distinct deletion
    is fitted once and weighted by n_c (as in SparseMSE's ``estimatepopulation``).
    """
    nz = np.nonzero(table.counts)[0]
    y = np.repeat(table.counts[None].astype(np.float64), len(nz), axis=0)
    y[np.arange(len(nz)), nz] -= 1
    _, dark, valid = select_with_progress(table.n_lists, y, method, pthresh, fixed=fixed)
    if not valid.all() or not np.isfinite(dark).all():
        return 0.0
    theta = y.sum(axis=1) + dark
    w = table.counts[nz].astype(np.float64)
    mean = float((w * theta).sum() / w.sum())
    d = mean - theta
    den = 6.0 * float((w * d**2).sum()) ** 1.5
    return float((w * d**3).sum() / den) if den > 0 else 0.0


def bca_interval(
    totals: npt.NDArray[np.float64], point: float, accel: float, level: float
) -> tuple[float, float]:
    """Bias-corrected and accelerated percentile interval (Efron 1987)."""
    below = float((totals < point).mean() + 0.5 * (totals == point).mean())
    z0 = float(stats.norm.ppf(min(max(below, 1e-6), 1 - 1e-6)))
    out = []
    for q in ((1 - level) / 2, (1 + level) / 2):
        zq = float(stats.norm.ppf(q))
        adj = float(stats.norm.cdf(z0 + (z0 + zq) / (1 - accel * (z0 + zq))))
        out.append(float(np.quantile(totals, adj, method="inverted_cdf")))
    return out[0], out[1]


def bootstrap(
    table: CaptureTable,
    method: str,
    point: float,
    n_boot: int = 1000,
    seed: int = 20130101,
    resample: str = "multinomial",
    fitted: npt.NDArray[np.float64] | None = None,
    pthresh: float = 0.02,
    level: float = 0.95,
    progress: Callable[[int, int], None] | None = None,
    fixed: Model | None = None,
) -> BootstrapResult:
    """BCa interval for the total from ``n_boot`` replicates, each re-selecting its model.

    Plain percentile intervals are too wide here: replicates drawn from the observed table
    pick up its noise as extra interactions more often than the data themselves did, which
    shifts and stretches the bootstrap distribution; BCa corrects the shift (z0) and the
    skew (acceleration from the jackknife). The percentile interval is reported as well.
    """
    rng = np.random.default_rng(seed)
    y = draw_replicates(table, n_boot, rng, resample, fitted)
    models, dark, valid = select_with_progress(
        table.n_lists, y, method, pthresh, progress=progress, fixed=fixed
    )
    totals = np.where(valid & np.isfinite(dark), y.sum(axis=1) + dark, np.inf)
    alpha = 1.0 - level
    lo, hi = np.quantile(totals, [alpha / 2, 1 - alpha / 2], method="inverted_cdf")
    accel = _jackknife_acceleration(table, method, pthresh, fixed)
    counts = Counter(
        model_name(table.lists, tuple(int(k) for k in np.nonzero(m)[0]))
        for m, ok in zip(models, valid, strict=True)
        if ok
    )
    top = tuple((m, c / n_boot) for m, c in counts.most_common(3))
    return BootstrapResult(
        replicates=n_boot,
        resample=resample,
        seed=seed,
        totals=totals,
        failed=int((~valid).sum()),
        interval=bca_interval(totals, point, accel, level),
        percentile=(float(lo), float(hi)),
        acceleration=accel,
        top_models=top,
    )
