"""Does the estimate's interval cover the true total? Simulated hidden populations, many seeds.

Each run draws a population's covariates (case type, minor, male, in about the shares of
``accord simulate``'s population; names and dates are not needed here), lets each partner
catch people with the capture model of ``accord simulate --capture``
(``accord.simulate.capture``), builds the capture-history table of the people caught, and runs
``accord.research.estimate.estimate``. The coverage is the share of seeds whose interval holds the
true population size; its Monte Carlo standard error is sqrt(c(1-c)/seeds).

The peer is the textbook: a 95 % interval should cover 95 % of the time where the model's
assumptions hold. Scenarios where they do not (heterogeneity shared by the lists, two lists with
dependence) are run too, to measure how far off the estimate then is.

    .venv/bin/python benchmarks/mse_coverage.py [--seeds 200] [--out benchmarks/results/mse_coverage.md]
"""

from __future__ import annotations

import argparse
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from accord.research.estimate import EstimateOptions, estimate
from accord.research.estimate.latent import latent_class_estimate
from accord.research.estimate.table import CaptureTable, from_rows, histories
from accord.simulate.capture import CaptureDesign, draw_captures


@dataclass(frozen=True)
class Scenario:
    name: str
    lists: int
    design: CaptureDesign
    method: str = "stepwise"
    bootstrap: int = 0
    people: int = 3000


def capture_table(caught: np.ndarray) -> CaptureTable:
    """The capture-history table of the people caught by some list."""
    t = caught.shape[1]
    weights = 1 << np.arange(t)
    code = caught[caught.any(axis=1)].astype(np.int64) @ weights
    cells = histories(t)
    counts = np.bincount(code, minlength=2**t)[cells.astype(np.int64) @ weights]
    return from_rows([f"partner_{chr(97 + j)}" for j in range(t)], cells, counts)


def covariates(people: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Case type, minor, male, drawn like ``accord simulate``'s population (cheap parts only)."""
    rng = np.random.default_rng([seed, 99])
    case_type = rng.choice(3, size=people, p=[0.55, 0.25, 0.20])
    minor = rng.random(people) < np.array([0.15, 0.2, 0.3])[case_type]
    male = rng.random(people) < np.array([0.35, 0.07, 0.54])[case_type]
    return case_type, minor, male


@dataclass(frozen=True)
class Outcome:
    coverage: float
    no_estimate: int
    median_ratio: float  # median of estimate / truth
    median_width: float  # median interval width / truth
    seconds: float


def run(sc: Scenario, seeds: int) -> Outcome:
    hits, none, ratios, widths = 0, 0, [], []
    t0 = time.perf_counter()
    for s in range(seeds):
        case_type, minor, male = covariates(sc.people, s)
        caught = draw_captures(np.random.default_rng([s, 4]), sc.design, sc.lists, case_type,
                               minor, male)
        res = estimate(capture_table(caught),
                       EstimateOptions(method=sc.method, bootstrap=sc.bootstrap, seed=s))
        if res.total is None or res.interval is None:
            none += 1
            continue
        lo, hi = res.interval
        hits += int(lo <= sc.people <= hi)
        ratios.append(res.total / sc.people)
        widths.append((hi - lo) / sc.people)
    return Outcome(hits / seeds, none, float(np.median(ratios)) if ratios else float("nan"),
                   float(np.median(widths)) if widths else float("nan"),
                   time.perf_counter() - t0)


def run_latent(sc: Scenario, seeds: int, groups: bool = False) -> Outcome:
    """The same for the latent-class model; ``groups``: two hidden groups (30 % easy to catch,
    p = 0.6; 70 % hard, p = 0.15) for every list alike, instead of ``sc.design``."""
    hits, ratios, widths = 0, [], []
    t0 = time.perf_counter()
    for s in range(seeds):
        if groups:
            rng = np.random.default_rng([s, 5])
            p = np.where(rng.random(sc.people) < 0.3, 0.6, 0.15)[:, None]
            caught = rng.random((sc.people, sc.lists)) < p
        else:
            case_type, minor, male = covariates(sc.people, s)
            caught = draw_captures(np.random.default_rng([s, 4]), sc.design, sc.lists,
                                   case_type, minor, male)
        res = latent_class_estimate(capture_table(caught), seed=s)
        lo, hi = res.interval
        hits += int(lo <= sc.people <= hi)
        ratios.append(res.total / sc.people)
        widths.append((hi - lo) / sc.people)
    return Outcome(hits / seeds, 0, float(np.median(ratios)), float(np.median(widths)),
                   time.perf_counter() - t0)


SCENARIOS = (
    Scenario("independent lists, everyone alike (main-effects model is true)", 3,
             CaptureDesign(0.3, 0.0, 1.0), "main"),
    Scenario("independent lists, everyone alike, stepwise", 3, CaptureDesign(0.3, 0.0, 1.0)),
    Scenario("referrals a->b (odds ratio 2), stepwise", 3, CaptureDesign(0.3, 0.0, 2.0)),
    Scenario("referrals a->b (odds ratio 2), 4 lists, stepwise", 4, CaptureDesign(0.3, 0.0, 2.0)),
    Scenario("referrals a->b (odds ratio 2), 4 lists, exhaustive AIC", 4,
             CaptureDesign(0.3, 0.0, 2.0), "aic-all"),
    Scenario("referrals + covariate heterogeneity (simulate's default effects), stepwise", 3,
             CaptureDesign(0.3, 1.0, 2.0)),
    Scenario("two lists, independent", 2, CaptureDesign(0.3, 0.0, 1.0), "main"),
    Scenario("two lists, referrals a->b (odds ratio 2): untestable", 2,
             CaptureDesign(0.3, 0.0, 2.0), "main"),
)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=200)
    ap.add_argument("--boot-seeds", type=int, default=60)
    ap.add_argument("--latent-seeds", type=int, default=50)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/mse_coverage.md"))
    args = ap.parse_args()
    scenarios = [*SCENARIOS, Scenario("referrals a->b, stepwise, bootstrap 200 (model re-chosen)",
                                      3, CaptureDesign(0.3, 0.0, 2.0), bootstrap=200)]
    rows = []
    for sc in scenarios:
        seeds = args.boot_seeds if sc.bootstrap else args.seeds
        o = run(sc, seeds)
        se = (o.coverage * (1 - o.coverage) / seeds) ** 0.5
        rows.append(f"| {sc.name} | {sc.lists} | {sc.method} | {seeds} | **{o.coverage:.3f}** "
                    f"(± {se:.3f}) | {o.no_estimate} | {o.median_ratio:.3f} | "
                    f"{o.median_width:.3f} | {o.seconds:.1f} |")
        print(rows[-1], flush=True)
    het = Scenario("referrals + covariate heterogeneity", 3, CaptureDesign(0.3, 1.0, 2.0))
    groups = Scenario("two hidden groups (easy 0.6 / hard 0.15), 4 lists", 4,
                      CaptureDesign(0.3, 0.0, 1.0), "main")
    for sc, grp in ((het, False), (groups, True)):
        if grp:  # the log-linear negative control on the same draws
            hits = 0
            for s in range(args.latent_seeds):
                rng = np.random.default_rng([s, 5])
                p = np.where(rng.random(sc.people) < 0.3, 0.6, 0.15)[:, None]
                r = estimate(capture_table(rng.random((sc.people, sc.lists)) < p),
                             EstimateOptions(method="stepwise"))
                hits += int(r.interval is not None and r.interval[0] <= sc.people
                            <= r.interval[1])
            rows.append(f"| {sc.name} | {sc.lists} | stepwise (log-linear) | "
                        f"{args.latent_seeds} | **{hits / args.latent_seeds:.3f}** | - | - | - "
                        "| - |")
        o = run_latent(sc, args.latent_seeds, grp)
        se = (o.coverage * (1 - o.coverage) / args.latent_seeds) ** 0.5
        rows.append(f"| {sc.name} | {sc.lists} | latent-class (`--latent`) | "
                    f"{args.latent_seeds} | **{o.coverage:.3f}** (± {se:.3f}) | 0 | "
                    f"{o.median_ratio:.3f} | {o.median_width:.3f} | {o.seconds:.1f} |")
        print(rows[-1], flush=True)
    text = "\n".join([
        "# MSE interval coverage on simulated hidden populations (issue 14)",
        "",
        f"`benchmarks/mse_coverage.py --seeds {args.seeds} --boot-seeds {args.boot_seeds} "
        f"--latent-seeds {args.latent_seeds}`, "
        f"`nproc` = {os.cpu_count()} (shared). Population of 3,000 per seed; each partner "
        "catches each person with probability 0.3 on the logit scale, shifted by the "
        "covariate effects (heterogeneity) and the referral odds ratio "
        "(`accord.simulate.capture`). Interval: profile likelihood given the chosen model, "
        "or the bootstrap percentile interval where a bootstrap is run. Nominal level 95 %. "
        "Coverage ± its Monte Carlo standard error.",
        "",
        "| scenario | lists | method | seeds | coverage of the true total | no estimate | "
        "median estimate / truth | median interval width / truth | seconds |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
        *rows,
        "",
        "Reading: where the lists' dependence is the kind a log-linear model with two-list "
        "interactions can represent (independent lists, referrals between two lists), the "
        "interval covers at about its nominal rate once three or more lists let the model see "
        "the dependence. With two lists and referrals the estimate is biased low and the "
        "interval misses almost always: nothing in two lists can reveal it, which is why the "
        "estimate says so in words. Heterogeneity in who is caught (case type, age, sex) also "
        "biases the estimate, and the coverage falls: that is the documented caveat, not a bug; "
        "stratify (`accord estimate hub --by`) where it is known, or compare with the "
        "latent-class model (`--latent`), which lets people differ in how catchable they are "
        "(last rows: its credible interval against the truth, with the log-linear stepwise "
        "estimate on the same draws as the control). Measured, the latent-class model is not "
        "better on these designs: it misses the referral dependence, and on two hidden groups "
        "with four lists its interval covered less often than stepwise's (stepwise finds "
        "interactions that stand in for the heterogeneity). It is a second opinion on how much "
        "the model matters, not a replacement.",
        "",
    ])
    args.out.write_text(text, encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
