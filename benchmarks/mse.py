"""Benchmark: multiple systems estimation with a bootstrap that repeats the model choice.

No maintained Python MSE package exists to compare against (SparseMSE and Rcapture are R), so
the baseline is the plain approach in Python: the same forward search, one statsmodels GLM fit
and one existence check (linear programme + rank) per candidate model, replicate after
replicate, as SparseMSE does in R. The baseline runs on a few replicates and is extrapolated
to 1,000 (printed as such); the models it picks are checked against Accord's.

Also timed: fitting every model with up to two-way interactions for 6 lists (2**15 = 32,768)
on the UK data, vectorised over models, against statsmodels on a sample of models.

Run from the repository root (no extra environment needed: statsmodels is a core dependency):

    PYTHONPATH=src python benchmarks/mse.py [--replicates 1000] [--baseline-replicates 5]
"""

from __future__ import annotations

import argparse
import os
import time
import warnings
from pathlib import Path

import numpy as np

from accord.research.estimate import EstimateOptions, estimate, read_counts_csv
from accord.research.estimate.batch import fit_batch
from accord.research.estimate.bootstrap import draw_replicates
from accord.research.estimate.design import Status, all_models, check_model, design, pairs
from accord.research.estimate.fit import fit_model
from accord.research.estimate.select import select
from accord.research.estimate.table import CaptureTable, from_rows


def _data() -> Path:
    env = os.environ.get("ACCORD_SHARED_DATA")
    for base in ([Path(env)] if env else []) + [Path("../shared/data"), Path("/work/shared/data")]:
        if (base / "mse" / "UKdat.csv").is_file():
            return base / "mse" / "UKdat.csv"
    raise SystemExit("UKdat.csv not found: set ACCORD_SHARED_DATA")


def baseline_aic(table: CaptureTable) -> tuple[tuple[int, ...], float]:
    """Forward AIC search with one statsmodels fit and one LP check per candidate."""
    model: tuple[int, ...] = ()
    status, lay = check_model(table, model)
    best = fit_model(table, model).deviance + 2 * lay.n_params if status is Status.OK else np.inf
    while True:
        scores = {}
        for k in range(len(pairs(table.n_lists))):
            if k in model:
                continue
            cand = tuple(sorted((*model, k)))
            status, lay = check_model(table, cand)
            if status is Status.OK:
                scores[cand] = fit_model(table, cand).deviance + 2 * lay.n_params
        if not scores:
            break
        cand = min(scores, key=lambda m: scores[m])
        if scores[cand] >= best - 1e-9:
            break
        model, best = cand, scores[cand]
    return model, table.observed + fit_model(table, model).dark


def time_accord(table: CaptureTable, method: str, n_boot: int) -> tuple[float, float, object]:
    """Wall-clock and CPU seconds (CPU shows what we got on a shared machine)."""
    t0, c0 = time.perf_counter(), time.process_time()
    res = estimate(table, EstimateOptions(method=method, bootstrap=n_boot, seed=1))
    return time.perf_counter() - t0, time.process_time() - c0, res


def time_baseline(table: CaptureTable, n_rep: int) -> tuple[float, float]:
    """Seconds per replicate for the statsmodels loop, and agreement with Accord's choice."""
    y = draw_replicates(table, n_rep, np.random.default_rng(7))
    ours = select(table.n_lists, y, "aic")
    agree = 0
    t0 = time.perf_counter()
    for r in range(n_rep):
        rep = from_rows(table.lists, table.cells, y[r].astype(np.int64))
        model, _ = baseline_aic(rep)
        agree += model == tuple(int(k) for k in np.nonzero(ours.models[r])[0])
    return (time.perf_counter() - t0) / n_rep, agree / n_rep


def time_all_models(table: CaptureTable, sample: int) -> tuple[float, int, float]:
    """Fit all 2**15 two-way models: vectorised seconds, count, statsmodels s/model (sample)."""
    t = table.n_lists
    models = all_models(t)
    k = len(pairs(t))
    x = design(t)
    pair_cells = x[:, 1 + t:]
    empty = (table.counts @ pair_cells) == 0
    t0 = time.perf_counter()
    dark = []
    for start in range(0, len(models), 4096):
        chunk = models[start:start + 4096]
        m = np.zeros((len(chunk), k), dtype=bool)
        for i, mm in enumerate(chunk):
            m[i, list(mm)] = True
        cells = ~((m & empty).astype(float) @ pair_cells.T > 0)
        params = np.ones((len(chunk), x.shape[1]), dtype=bool)
        params[:, 1 + t:] = m & ~empty
        y = np.repeat(table.counts[None].astype(float), len(chunk), axis=0)
        dark.append(np.exp(fit_batch(x, y, cells, params).beta[:, 0]))
    vec = time.perf_counter() - t0
    rng = np.random.default_rng(0)
    pick = rng.choice(len(models), size=sample, replace=False)
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for i in pick:
            fit_model(table, models[i])
    per = (time.perf_counter() - t0) / sample
    return vec, len(models), per


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--replicates", type=int, default=1000)
    ap.add_argument("--baseline-replicates", type=int, default=5)
    ap.add_argument("--all-models-sample", type=int, default=300)
    args = ap.parse_args()
    table = read_counts_csv(_data())
    print(f"UK 2013: {table.n_lists} lists, {table.observed} people seen; nproc={os.cpu_count()}; "
          f"load average {os.getloadavg()[0]:.1f} (shared machine)")
    print(f"\n== Accord: estimate + {args.replicates} bootstrap replicates, model re-chosen in "
          "each (+ jackknife for BCa, + profile interval)")
    for method in ("main", "stepwise", "aic", "bic"):
        secs, cpu, res = time_accord(table, method, args.replicates)
        r = res.to_dict()  # type: ignore[attr-defined]
        print(f"  {method:8s} {secs:6.1f} s wall ({cpu:5.1f} s CPU)  total {r['total']}  "
              f"BCa {r['interval']}  profile {r['profile_interval']}")
        if method == "aic":
            aic_secs = secs
    per_rep, agree = time_baseline(table, args.baseline_replicates)
    base = per_rep * args.replicates
    print(f"\n== Baseline: statsmodels + LP per candidate, forward AIC, "
          f"{args.baseline_replicates} replicates timed")
    print(f"  {per_rep:.2f} s per replicate -> {base:.0f} s for {args.replicates} (extrapolated); "
          f"same model as Accord in {agree:.0%} of timed replicates")
    print(f"  ratio baseline / Accord (aic): {base / aic_secs:.1f}x")
    vec, n_models, per = time_all_models(table, args.all_models_sample)
    print(f"\n== All {n_models} two-way models for 6 lists fitted on the data")
    print(f"  Accord vectorised: {vec:.1f} s; statsmodels: {per * 1000:.1f} ms/model -> "
          f"{per * n_models:.0f} s (extrapolated from {args.all_models_sample}); "
          f"ratio {per * n_models / vec:.1f}x")


if __name__ == "__main__":
    main()
