"""Estimate the total number of people, seen and unseen, from a capture-history table."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from accord.errors import AccordError
from accord.research.estimate.bootstrap import RESAMPLES, BootstrapResult, bootstrap
from accord.research.estimate.design import Model, Status, check_model, model_name, pairs
from accord.research.estimate.exhaustive import MAX_PAIRS, SUPPORTED, ModelSpace, fit_all
from accord.research.estimate.fit import fit_model, profile_interval, wald_interval
from accord.research.estimate.latent import latent_class_estimate
from accord.research.estimate.select import METHODS, select
from accord.research.estimate.table import (
    MIN_LISTS,
    CaptureTable,
    CaptureTableError,
    ListMerge,
    from_rows,
    merge_small_lists,
)

CAVEATS = (
    "Closed population: the estimate assumes the same people could have been seen by every "
    "list over the period (nobody arrived, left or died in between in a way that matters).",
    "Dependence between lists is modelled only through the two-list interactions chosen; "
    "dependence that involves three or more lists together, or that differs between kinds of "
    "people, is not captured.",
    "Heterogeneity: people who are harder to reach for every list (for example because they "
    "are still under their exploiter's control) make the estimate too low.",
    "Linkage: people matched wrongly across lists, or missed matches, bias the overlaps and so "
    "the estimate.",
)


@dataclass(frozen=True)
class EstimateOptions:
    method: str = "stepwise"
    model: Model | None = None  # fixed pairs instead of a search
    pthresh: float = 0.02
    level: float = 0.95
    bootstrap: int = 0
    resample: str = "multinomial"
    seed: int = 20130101
    min_list_size: int = 0  # lists with fewer people are merged (0 = never)
    # Fit every two-way model and report the AIC/BIC-weighted average and the spread of
    # totals among the models the data support (always done by aic-all / bic-all).
    average: bool = False
    # Also run the Bayesian latent-class model for heterogeneous capture (latent.py)
    latent: bool = False

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise AccordError(
                f"unknown method '{self.method}'", hint=f"use one of: {', '.join(METHODS)}"
            )
        if self.resample not in RESAMPLES:
            raise AccordError(
                f"unknown resampling '{self.resample}'", hint=f"use one of: {', '.join(RESAMPLES)}"
            )
        if not 0 < self.level < 1:
            raise AccordError("the interval level must be between 0 and 1", hint="e.g. 0.95")
        if self.bootstrap < 0:
            raise AccordError("the number of bootstrap replicates cannot be negative")


@dataclass(frozen=True)
class MSEResult:
    lists: tuple[str, ...]
    observed: int
    method: str
    status: str  # Status value of the chosen model
    model: str | None
    reason: str
    total: float | None = None
    dark: float | None = None
    profile_interval: tuple[float, float] | None = None
    wald_interval: tuple[float, float] | None = None
    boot: BootstrapResult | None = None
    empty_overlaps: tuple[str, ...] = ()
    merge: ListMerge | None = None
    notes: tuple[str, ...] = ()
    caveats: tuple[str, ...] = CAVEATS
    level: float = 0.95
    extra: dict[str, object] = field(default_factory=dict)
    # Plain-language reasons not to trust the figure (empty = nothing specific known)
    distrust: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.status == Status.OK.value

    @property
    def interval(self) -> tuple[float, float] | None:
        """The headline interval: bootstrap (carries model uncertainty) if run, else profile."""
        return self.boot.interval if self.boot else self.profile_interval

    def to_dict(self) -> dict[str, object]:
        def num(v: float) -> float | str:
            return "inf" if math.isinf(v) else round(v, 1)

        def pair(iv: tuple[float, float] | None) -> list[float | str] | None:
            return None if iv is None else [num(iv[0]), num(iv[1])]

        out: dict[str, object] = {
            "lists": list(self.lists),
            "observed": self.observed,
            "method": self.method,
            "status": self.status,
            "model": self.model,
            "reason": self.reason,
            "total": None if self.total is None else num(self.total),
            "dark_figure": None if self.dark is None else num(self.dark),
            "level": self.level,
            "interval": pair(self.interval),
            "profile_interval": pair(self.profile_interval),
            "wald_interval": pair(self.wald_interval),
            "bootstrap": None if self.boot is None else self.boot.to_dict(),
            "empty_overlaps": list(self.empty_overlaps),
            "notes": list(self.notes),
            "caveats": list(self.caveats),
            "trusted": not self.distrust,
            "distrust": list(self.distrust),
        }
        for key in ("model_choice", "latent_class"):
            if key in self.extra:
                out[key] = self.extra[key]
        if self.merge and self.merge.merged:
            out["merged_lists"] = {"into": self.merge.merged_name, "lists": list(self.merge.merged)}
        return out


def _drop_empty_lists(table: CaptureTable) -> tuple[CaptureTable, list[str]]:
    sizes = table.list_sizes()
    empty = [n for n in table.lists if sizes[n] == 0]
    if not empty:
        return table, []
    keep = [i for i, n in enumerate(table.lists) if sizes[n] > 0]
    if len(keep) < MIN_LISTS:
        raise CaptureTableError(
            f"only {len(keep)} list(s) have anyone on them",
            hint="multiple systems estimation needs at least two lists with people on them",
        )
    return from_rows([table.lists[i] for i in keep], table.cells[:, keep], table.counts), [
        f"list '{n}' has nobody on it and was left out" for n in empty
    ]


def _isolated_lists(table: CaptureTable) -> list[str]:
    ov = table.pair_overlaps()
    return [
        n for n in table.lists if all(v == 0 for (a, b), v in ov.items() if n in (a, b))
    ]


def _reason(opts: EstimateOptions, lists: tuple[str, ...], trace: list[tuple[int, float]]) -> str:
    ps = pairs(len(lists))

    def nm(k: int) -> str:
        return f"{lists[ps[k][0]]}:{lists[ps[k][1]]}"

    if opts.model is not None:
        return "fixed model given by the user"
    if opts.method == "main":
        return "main effects only, as asked: assumes the lists see people independently"
    if opts.method == "stepwise":
        steps = ", ".join(f"{nm(k)} (p={v:.2g})" for k, v in trace)
        head = f"stepwise from main effects: added {steps}; " if steps else "stepwise: "
        return head + (
            f"stopped as no further pair had p < {opts.pthresh} with an estimate that exists"
        )
    if opts.method.endswith("-all"):
        return (f"exhaustive {opts.method[:3].upper()} search: every two-way model was fitted "
                "and this one scores best")
    label = opts.method.upper()
    steps = ", ".join(f"{nm(k)} ({label} {v:.1f})" for k, v in trace)
    head = f"forward {label} search from main effects: added {steps}; " if steps else ""
    return head + f"stopped as no further pair lowered {label}"


TWO_LISTS = (
    "With only two lists the estimate rests entirely on the assumption that the two lists "
    "catch people independently of each other, and two lists give no way to test it: if one "
    "partner refers people to the other, or both reach the same kind of people more easily, "
    "the figure is too low (or too high if they reach different people), by an unknown amount. "
    "Treat it as an order of magnitude at best; a third list would allow checking."
)


def distrust_reasons(result: MSEResult, n_lists: int, isolated: Sequence[str] = ()
                     ) -> tuple[str, ...]:
    """Why a reader should not trust this estimate, in words (empty when nothing is known)."""
    out: list[str] = []
    if n_lists == 2:
        out.append(TWO_LISTS)
    if result.status != Status.OK.value or result.total is None:
        out.append(
            "No model fits these lists: no model in the search has an estimate that exists "
            "and is identifiable, because the lists share too few people. No total can be "
            "given; more overlap between lists (or merging sparse lists) is needed."
        )
        return tuple(out)
    iv = result.interval
    if iv is not None and math.isinf(iv[1]):
        out.append(
            "The interval has no upper bound: the data are compatible with any number of "
            "unseen people, so the central figure alone means little."
        )
    elif iv is not None and result.total > 0 and iv[1] > 3 * result.total:
        out.append(
            "The interval is very wide (its upper end is more than three times the "
            "estimate): the overlaps are too small to pin the total down."
        )
    if isolated:
        out.append(
            f"{len(isolated)} list(s) share nobody with the others, so how they depend on the "
            "other lists is assumed, not measured."
        )
    if result.dark is not None and result.observed > 0 and result.dark > 4 * result.observed:
        out.append(
            "The estimate says most people (over four in five) were seen by no list: a "
            "figure driven almost entirely by the model, very sensitive to its assumptions."
        )
    return tuple(out)


def _extra(table: CaptureTable, opts: EstimateOptions, space: ModelSpace | None
           ) -> dict[str, object]:
    out: dict[str, object] = {}
    if space is not None:
        out["model_choice"] = model_choice(space, table.lists, opts.method)
    if opts.latent:
        out["latent_class"] = latent_class_estimate(table, seed=opts.seed,
                                                    level=opts.level).to_dict()
    return out


def model_choice(space: ModelSpace, lists: tuple[str, ...], method: str) -> dict[str, object]:
    """How much the choice of model moves the estimate: weights, average, spread."""
    label = "BIC" if "bic" in method else "AIC"
    w = space.weights()
    if not space.valid.any():
        return {"criterion": label, "models_fitted": len(space.models), "models_with_estimate": 0}

    def name(m: int) -> str:
        return model_name(lists, tuple(int(k) for k in np.flatnonzero(space.models[m])))

    sup = space.supported()
    totals = space.observed + space.dark[sup]
    best = space.best
    avg = space.averaged_total()
    lo, hi = float(totals.min()), float(totals.max())
    return {
        "criterion": label,
        "models_fitted": len(space.models),
        "models_with_estimate": int(space.valid.sum()),
        "best_model": name(best),
        "best_total": round(float(space.observed + space.dark[best]), 1),
        "averaged_total": None if avg is None else round(avg, 1),
        "supported_range": [round(lo, 1), round(hi, 1)],
        "supported": [{"model": name(int(m)), "total": round(float(space.observed
                                                                    + space.dark[m]), 1),
                       "weight": round(float(w[m]), 4)} for m in sup[:10]],
        "summary": (
            f"{len(sup)} of {int(space.valid.sum()):,} two-way models carry at least "
            f"{SUPPORTED:.0%} of the {label} weight; they give totals from {lo:,.0f} to "
            f"{hi:,.0f}; the {label}-weighted average over all models is "
            f"{0 if avg is None else avg:,.0f}"
        ),
    }


def estimate(
    table: CaptureTable,
    opts: EstimateOptions | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> MSEResult:
    """Select a model, estimate the total and its intervals; never a number that does not exist."""
    opts = opts or EstimateOptions()
    table, notes = _drop_empty_lists(table)
    merge = None
    if opts.min_list_size > 0:
        table, merge = merge_small_lists(table, opts.min_list_size)
        if merge.merged:
            notes.append(
                f"lists with fewer than {opts.min_list_size} people ({', '.join(merge.merged)}) "
                f"were merged into '{merge.merged_name}'"
            )
        for n in merge.flagged:
            notes.append(f"list '{n}' has fewer than {opts.min_list_size} people: treat with care")
    isolated = _isolated_lists(table)
    for n in isolated:
        notes.append(
            f"list '{n}' shares nobody with any other list: its dependence with the others "
            "cannot be estimated from the data, so the estimate rests on the model's assumption"
        )
    k_pairs = len(pairs(table.n_lists))
    fixed = None
    if opts.model is not None:
        fixed = np.zeros((1, k_pairs), dtype=bool)
        fixed[0, list(opts.model)] = True
    space = None
    if (opts.method.endswith("-all") or opts.average) and k_pairs <= MAX_PAIRS:
        space = fit_all(table.n_lists, table.counts, "bic" if "bic" in opts.method else "aic")
        if fixed is None and opts.method.endswith("-all") and space.valid.any():
            fixed = space.models[space.best][None]
    sel = select(
        table.n_lists, table.counts[None].astype(np.float64), opts.method, opts.pthresh,
        exact=True, fixed=fixed,
    )
    model: Model = tuple(int(k) for k in np.nonzero(sel.models[0])[0])
    name = model_name(table.lists, model)
    reason = _reason(opts, table.lists, sel.trace)
    status, lay = check_model(table, model)
    ps = pairs(table.n_lists)
    empty = tuple(f"{table.lists[ps[k][0]]}:{table.lists[ps[k][1]]}" for k in lay.empty_pairs)
    result = MSEResult(
        lists=table.lists, observed=table.observed, method=opts.method, status=status.value,
        model=name, reason=reason, empty_overlaps=empty, merge=merge, level=opts.level,
        notes=tuple(notes),
        extra=_extra(table, opts, space),
    )
    if status is not Status.OK:
        why = (
            "the maximum likelihood estimate does not exist (the overlaps are too sparse for "
            "this model: some histories are forced to zero)"
            if status is Status.NOT_EXIST
            else "the model's parameters are not identifiable from the histories available"
            if status is Status.NOT_IDENTIFIABLE
            else "the estimate neither exists nor is identifiable"
        )
        failed = replace(result, reason=f"{reason}; {why}")
        return replace(failed, distrust=distrust_reasons(failed, table.n_lists, isolated))
    mf = fit_model(table, model)
    boot = None
    if opts.bootstrap > 0:
        boot = bootstrap(
            table, opts.method, table.observed + mf.dark, opts.bootstrap, opts.seed, opts.resample, mf.fitted,
            opts.pthresh, opts.level, progress, fixed=opts.model,
        )
        if boot.failed:
            notes.append(
                f"{boot.failed} of {boot.replicates} bootstrap replicates had no estimate that "
                "exists; they count as unbounded in the interval"
            )
    done = replace(
        result,
        total=table.observed + mf.dark,
        dark=mf.dark,
        profile_interval=profile_interval(table, mf, opts.level),
        wald_interval=wald_interval(table, mf, opts.level),
        boot=boot,
        notes=tuple(notes),
    )
    return replace(done, distrust=distrust_reasons(done, table.n_lists, isolated))
