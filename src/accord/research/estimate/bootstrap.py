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
    interval: tuple[float, float]
    top_models: tuple[tuple[str, float], ...]  # most often chosen models, with their share

    def to_dict(self) -> dict[str, object]:
        return {
            "replicates": self.replicates,
            "resample": self.resample,
            "seed": self.seed,
            "failed": self.failed,
            "interval": list(self.interval),
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


def bootstrap(
    table: CaptureTable,
    method: str,
    n_boot: int = 1000,
    seed: int = 20130101,
    resample: str = "multinomial",
    fitted: npt.NDArray[np.float64] | None = None,
    pthresh: float = 0.02,
    level: float = 0.95,
    progress: Callable[[int, int], None] | None = None,
    fixed: Model | None = None,
) -> BootstrapResult:
    """Percentile interval for the total from ``n_boot`` replicates, each re-selecting its model."""
    rng = np.random.default_rng(seed)
    y = draw_replicates(table, n_boot, rng, resample, fitted)
    models, dark, valid = select_with_progress(
        table.n_lists, y, method, pthresh, progress=progress, fixed=fixed
    )
    totals = np.where(valid & np.isfinite(dark), y.sum(axis=1) + dark, np.inf)
    alpha = 1.0 - level
    lo, hi = np.quantile(totals, [alpha / 2, 1 - alpha / 2], method="inverted_cdf")
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
        interval=(float(lo), float(hi)),
        top_models=top,
    )
