"""Estimates from the hub: capture histories from the linked persons, overall and by stratum.

Each partner is a list; linkage (the ``persons`` table) says which partners saw each person.
A record that linkage has not assigned counts as its own person (as in the overlap table).
Published figures follow the hub's small-cell rules: the people seen per stratum are suppressed
like any count table (primary and complementary), and no estimate is shown for a stratum whose
seen count is hidden, so that seen = total - dark figure cannot give it away.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pyarrow as pa
from markupsafe import Markup

from accord.errors import AccordError, ParameterError
from accord.release.dp.tables import MISSING as DP_MISSING
from accord.release.suppression import Equation, SuppressionRules, suppress_cells
from accord.research.estimate.mse import CAVEATS, EstimateOptions, MSEResult, estimate
from accord.research.estimate.noisy import STRATA, by_strata, draw_key, ensure_draw
from accord.research.estimate.table import (
    CaptureTableError,
    from_memberships,
    from_rows,
    histories,
)
from accord.research.overlap import overlap_table
from accord.research.report.sections import ReportSection
from accord.store import Store

MISSING_STRATUM = "missing"
_NOT_STRATA = {"batch_id", "partner", "record_key", "person_pseudonym", "registration_date"}

_PERSONS_SQL = (
    "SELECT coalesce(CAST(p.person_id AS VARCHAR), r.partner || ':' || r.record_key) AS pid,"
    " r.partner{extra} FROM records r LEFT JOIN persons p"
    " ON p.partner = r.partner AND p.record_key = r.record_key"
)


class EstimateInputError(AccordError):
    """The hub cannot give capture histories (no linkage yet, unknown stratum column...)."""


@dataclass(frozen=True)
class PipelineOptions:
    by: tuple[str, ...] = ()
    rules: SuppressionRules = field(default_factory=SuppressionRules)
    min_list_size: int = 10
    min_stratum: int = 20  # fewer people seen than this in a stratum: no estimate
    estimate: EstimateOptions = field(default_factory=EstimateOptions)
    method: str = "dp"  # "dp": one noisy draw per data version; "suppression": exact, one-off
    rho: float | None = None  # DP cost of the draw (default accord.research.noisy.ESTIMATE_RHO)
    actor: str = "hub"
    test_seed: int | None = None  # tests only: reproducible, NOT private noise

    def __post_init__(self) -> None:
        # Refused, not ignored (as `accord stats` does): a user would believe the estimates were
        # drawn at the rho asked for. Here, not in the CLI alone: the server's route builds these
        # options too, before any record is read or anything recorded.
        if self.method == "suppression" and self.rho is not None:
            raise ParameterError("--rho applies to --privacy dp; suppressed estimates spend no "
                                 "privacy budget", hint="drop --rho, or use --privacy dp")

    def parameters(self) -> dict[str, Any]:
        """What a release of these estimates records."""
        e = self.estimate
        return {
            "by": list(self.by), "rules": self.rules.as_dict(),
            "min_list_size": self.min_list_size, "min_stratum": self.min_stratum,
            "method": e.method, "pthresh": e.pthresh, "level": e.level,
            "bootstrap": e.bootstrap, "resample": e.resample, "seed": e.seed,
            "privacy": self.method,
            **({"rho": self.resolved_rho()} if self.method == "dp" else {}),
            "average": e.average, "latent": e.latent,
        }

    @classmethod
    def of(cls, *, by: Sequence[str], threshold: int, min_list_size: int, method: str,
           bootstrap: int, seed: int, average: bool, latent: bool, privacy: str,
           rho: float | None, actor: str) -> PipelineOptions:
        """The options of ``accord estimate`` and of the server's estimate route, from the
        fields both take (``by`` as given: blank names dropped)."""
        return cls(by=tuple(c.strip() for c in by if c.strip()),
                   rules=SuppressionRules(threshold=threshold), min_list_size=min_list_size,
                   estimate=EstimateOptions(method=method, bootstrap=bootstrap, seed=seed,
                                            average=average, latent=latent),
                   method=privacy, rho=rho, actor=actor)

    def resolved_rho(self) -> float:
        from accord.research.noisy import ESTIMATE_RHO, check_rho

        return check_rho(ESTIMATE_RHO if self.rho is None else self.rho)


@dataclass(frozen=True)
class StratumEstimate:
    stratum: dict[str, str]
    seen: int | None  # None when suppressed
    result: MSEResult | None
    withheld: str | None  # why no estimate is shown

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"stratum": self.stratum, "seen": self.seen}
        if self.result is not None:
            d = self.result.to_dict()
            if self.seen is None:
                # seen hidden: do not show the dark figure either (seen = total - dark)
                d.pop("dark_figure", None)
                d["observed"] = None
            out["estimate"] = d
        out["withheld"] = self.withheld
        return out


def _stratum_columns(store: Store, by: Sequence[str]) -> list[str]:
    schema = store.query("SELECT * FROM records LIMIT 0").schema
    allowed = {
        f.name for f in schema
        if f.name not in _NOT_STRATA and not pa.types.is_list(f.type)
    }
    bad = [c for c in by if c not in allowed]
    if bad:
        raise EstimateInputError(
            f"cannot stratify by {', '.join(bad)}",
            hint=f"use single-valued record columns such as: {', '.join(sorted(allowed)[:12])}",
        )
    return list(by)


def _mode(votes: dict[str, int]) -> str:
    return min(votes, key=lambda value: (-votes[value], value))


def _partner_list(partners: Iterable[str]) -> list[str]:
    return sorted(set(partners))


def hub_partners(store: Store) -> list[str]:
    """The partners ``person_lists`` finds, without reading the records themselves: every partner
    with a record. The rows of ``_PERSONS_SQL`` are the records (a LEFT JOIN keeps each one, and
    its partner), so their partners are the records' partners whatever is linked or withdrawn."""
    return _partner_list(store.query("SELECT DISTINCT partner FROM records").column(0).to_pylist())


def hub_draw_key(store: Store) -> str:
    """The key the estimates' draw of this hub is stored and paid under (``ensure_draw`` with
    ``person_lists``' partners), for the checks made before any record is read."""
    return draw_key(hub_partners(store))


def person_lists(store: Store, by: Sequence[str] = ()) -> tuple[list[str], dict[tuple[str, ...],
                                                                            list[set[str]]]]:
    """Partners, and per stratum each person's set of partners.

    A person's stratum is the most frequent value over their records (ties: smallest value).
    """
    if not store.table_exists("persons"):
        raise EstimateInputError(
            "the hub has no linked persons yet",
            hint="run `accord link` first: estimation needs to know which partners saw each person",
        )
    cols = _stratum_columns(store, by)
    extra = "".join(f', CAST(r."{c}" AS VARCHAR) AS s{i}' for i, c in enumerate(cols))
    rows = store.query(_PERSONS_SQL.format(extra=extra)).to_pylist()
    if not rows:
        raise EstimateInputError("the hub has no records", hint="add contributions first")
    per: dict[str, tuple[set[str], list[dict[str, int]]]] = {}
    for row in rows:
        lists, votes = per.setdefault(row["pid"], (set(), [{} for _ in cols]))
        lists.add(row["partner"])
        for i, vote in enumerate(votes):
            value = row[f"s{i}"] if row[f"s{i}"] is not None else MISSING_STRATUM
            vote[value] = vote.get(value, 0) + 1
    strata: dict[tuple[str, ...], list[set[str]]] = {}
    for lists, votes in per.values():
        key = tuple(_mode(v) for v in votes)
        strata.setdefault(key, []).append(lists)
    # From the rows read (one snapshot), as ``hub_partners`` reads them from the records.
    return _partner_list(row["partner"] for row in rows), strata


def _estimate_one(
    partners: list[str], people: list[set[str]], opts: PipelineOptions,
    progress: Callable[[int, int], None] | None,
) -> tuple[MSEResult | None, str | None]:
    if len(people) < opts.min_stratum:
        return None, f"fewer than {opts.min_stratum} people seen: too few to estimate"
    if not any(len(p) > 1 for p in people):
        return None, ("nobody was seen by more than one partner, so the overlaps say nothing "
                      "about the people nobody saw")
    eopts = replace(opts.estimate, min_list_size=opts.min_list_size)
    try:
        result = estimate(from_memberships(partners, people), eopts, progress)
    except CaptureTableError as err:
        return None, err.message
    if not result.ok:
        return result, (f"the estimate {result.status}: the overlaps between partners are too "
                        "sparse for any model (details under 'reason')")
    return result, None


def estimate_hub(
    store: Store, opts: PipelineOptions | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Overall and stratified estimates, with published seen counts: by default from the data
    version's noisy draw (``noisy.py``), else suppressed exact counts (a one-off release)."""
    opts = opts or PipelineOptions()
    if opts.method == "dp":
        return _estimate_hub_dp(store, opts, progress)
    if opts.method != "suppression":
        raise EstimateInputError(f"unknown method '{opts.method}'", hint="use dp or suppression")
    _check_one_off(store)
    partners, strata = person_lists(store, opts.by)
    everyone = [s for people in strata.values() for s in people]
    keys = sorted(strata) if opts.by else []
    seen = [len(strata[k]) for k in keys] + [len(everyone)]
    equations: list[Equation] = [(tuple(range(len(keys))), len(keys))] if keys else []
    sup = suppress_cells(seen, equations, opts.rules, is_total=[False] * len(keys) + [True])
    shown = [None if sup.mask[i] else int(v) for i, v in enumerate(seen)]

    def one(people: list[set[str]], published: int | None) -> tuple[MSEResult | None, str | None]:
        if published is None:
            return None, "seen count suppressed (small-cell rule): estimate withheld"
        return _estimate_one(partners, people, opts, progress)

    overall_result, overall_why = one(everyone, shown[-1])
    overall = StratumEstimate({}, shown[-1], overall_result, overall_why)
    by_stratum = []
    for i, k in enumerate(keys):
        res, why = one(strata[k], shown[i])
        by_stratum.append(StratumEstimate(dict(zip(opts.by, k, strict=True)), shown[i], res, why))
    # The capture histories as shown to users: the hub's overlap table, under the same
    # small-cell rules (primary, complementary, audited) as every other published table.
    histories = overlap_table(store, opts.rules)
    return {
        "partners": partners,
        "parameters": opts.parameters(),
        "capture_histories": {
            "rows": [
                {"lists": label, "people": value}
                for label, value in zip(histories.dims[0].labels, histories.published, strict=False)
            ],
            "total": histories.published[-1],
            "suppressed_cells": histories.suppressed,
            "notes": list(histories.notes),
        },
        "overall": overall.to_dict(),
        "strata": [s.to_dict() for s in by_stratum],
        "suppression": {"cells": len(seen), "suppressed": int(sup.mask.sum())},
        "caveats": list(CAVEATS),
    }


def _check_one_off(store: Store) -> None:
    if not store.table_exists("releases"):
        return
    if store.scalar("SELECT count(*) FROM releases WHERE kind = 'estimate' AND data_version <> ?",
                    [store.data_version()]):
        from accord.errors import ReleaseRefused

        raise ReleaseRefused(
            "this hub has already published estimates of another data version; exact seen "
            "counts now could be differenced against them",
            hint="use the default --privacy dp (one noisy draw per data version)")


def _present_strata(store: Store) -> list[str]:
    names = set(store.query("SELECT * FROM records LIMIT 0").column_names)
    return [c for c in STRATA if c in names]


def require_estimate_affordable(store: Store, opts: PipelineOptions) -> None:
    """Refuse (exit 3) before any record is read an estimate whose draw (not yet made for this
    data version) the budget left cannot pay for; a bad rho is refused (exit 2) first. The one
    check of the CLI, the server's route (before the estimate waits for its turn) and
    ``estimate_hub``. Suppression draws nothing; a hub without linked persons is left to
    ``person_lists`` to refuse, with its own reason."""
    from accord.research.noisy import require_draws_affordable

    if opts.method != "dp":
        return
    rho = opts.resolved_rho()
    if store.table_exists("persons") and store.table_exists("records"):
        require_draws_affordable(store, [(hub_draw_key(store), rho)], "this estimate",
                                 opts.actor)


def noisy_draw(store: Store, rho: float, actor: str,
               test_seed: int | None = None) -> tuple[list[str], dict[str, Any], bool]:
    """The partners and the data version's DP draw of people by stratum x capture history
    (stored, or drawn and paid for now); whether it was re-used."""
    from accord.standard import load_standard

    present = _present_strata(store)
    partners, found = person_lists(store, present)
    # columns the hub does not have: everyone is "missing" there
    strata: dict[tuple[str, ...], list[set[str]]] = {}
    for key, people in found.items():
        full = tuple(key[present.index(c)] if c in present else MISSING_STRATUM for c in STRATA)
        strata.setdefault(full, []).extend(people)
    payload, reused = ensure_draw(store, partners, strata, load_standard(), MISSING_STRATUM,
                                  rho, actor, test_seed)
    return partners, payload, reused


def noisy_histories(store: Store, rho: float, actor: str) -> tuple[list[str], list[int]]:
    """Partners and the noisy number of people per capture history (``histories`` order)."""
    partners, payload, _ = noisy_draw(store, rho, actor)
    return partners, [int(v) for v in next(iter(by_strata(payload, ()).values()))]


def _estimate_hub_dp(store: Store, opts: PipelineOptions,
                     progress: Callable[[int, int], None] | None) -> dict[str, Any]:
    bad = [c for c in opts.by if c not in STRATA]
    if bad:
        raise EstimateInputError(
            f"cannot stratify by {', '.join(bad)}",
            hint=f"strata are fixed public categories: choose from {', '.join(STRATA)}")
    require_estimate_affordable(store, opts)
    rho = opts.resolved_rho()
    partners, payload, reused = noisy_draw(store, rho, opts.actor, opts.test_seed)
    t = opts.rules.threshold
    hist = histories(len(partners))

    def shown(n: int) -> int | None:
        return None if 0 < n < t else int(n)

    def one(counts: np.ndarray) -> tuple[int | None, MSEResult | None, str | None]:
        seen = int(counts.sum())
        if seen < opts.min_stratum:
            return shown(seen), None, (f"fewer than {opts.min_stratum} people seen (noisy count): "
                                       "too few to estimate")
        if not any(n > 0 for h, n in zip(hist, counts, strict=True) if h.sum() > 1):
            return shown(seen), None, ("nobody was seen by more than one partner (noisy "
                                       "counts), so the overlaps say nothing about the unseen")
        eopts = replace(opts.estimate, min_list_size=opts.min_list_size)
        try:
            result = estimate(from_rows(partners, hist, counts), eopts, progress)
        except CaptureTableError as err:
            return shown(seen), None, err.message
        if not result.ok:
            return shown(seen), result, (f"the estimate {result.status}: the overlaps between "
                                         "partners are too sparse for any model")
        return shown(seen), result, None

    overall_counts = next(iter(by_strata(payload, ()).values()))
    seen_all, res_all, why_all = one(overall_counts)
    overall = StratumEstimate({}, seen_all, res_all, why_all)
    by_stratum = []
    for key, counts in by_strata(payload, opts.by).items():
        seen, res, why = one(counts) if opts.by else (None, None, None)
        label = {c: (MISSING_STRATUM if v == DP_MISSING else v)
                 for c, v in zip(opts.by, key, strict=True)}
        by_stratum.append(StratumEstimate(label, seen, res, why))
    names = [" and ".join(p for p, v in zip(partners, h, strict=True) if v)
             + (" only" if h.sum() < len(partners) else "") for h in hist]
    rows = [{"lists": n, "people": shown(int(v))} for n, v in zip(names, overall_counts,
                                                                   strict=True)]
    hidden = sum(1 for r in rows if r["people"] is None) + sum(1 for s in by_stratum
                                                               if s.seen is None)
    return {
        "partners": partners,
        "parameters": opts.parameters(),
        "capture_histories": {
            "rows": rows, "total": shown(int(overall_counts.sum())),
            "suppressed_cells": sum(1 for r in rows if r["people"] is None),
            "notes": [f"Noisy counts (differential privacy, one draw per data version at rho "
                      f"{payload['rho']:.4g}, noise sd about {payload['noise_sd']:.0f} per "
                      f"finest cell); counts from 1 to {t - 1} are shown as hidden."
                      + (" Served again from the draw of this data version (no new cost)."
                         if reused else "")],
        },
        "overall": overall.to_dict(),
        "strata": [s.to_dict() for s in by_stratum],
        "suppression": {"cells": len(rows) + len(by_stratum) + 1, "suppressed": hidden},
        "dp": {"rho": rho, "reused": reused, "noise_sd": payload["noise_sd"]},
        "caveats": [*CAVEATS, "The counts behind every estimate are noisy (differential "
                              "privacy); the intervals do not include that noise."],
    }


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, str):
        return v
    return f"{round(float(v)):,}"


def section_html(summary: dict[str, Any]) -> Markup:
    """The report's "estimated total" section as an HTML fragment (all text escaped)."""
    e = html.escape
    ov = summary["overall"]
    est = ov.get("estimate")
    parts = ["<div class='estimate'>"]
    if est and est.get("total") is not None:
        lo, hi = est["interval"]
        parts.append(
            f"<p><strong>Seen by at least one partner:</strong> {_fmt(ov['seen'])}. "
            f"<strong>Estimated total, seen and unseen:</strong> {_fmt(est['total'])} "
            f"({int(est['level'] * 100)}% interval {_fmt(lo)} to {_fmt(hi)}).</p>"
        )
        parts.append(f"<p>Model: {e(str(est['model']))}. Why: {e(str(est['reason']))}.</p>")
        if est.get("bootstrap"):
            parts.append(
                "<p>The interval comes from a bootstrap that repeats the model choice "
                f"{est['bootstrap']['replicates']} times, so it includes the uncertainty about "
                "which model is right.</p>"
            )
        for note in est.get("notes", []):
            parts.append(f"<p class='note'>{e(note)}</p>")
    if est and est.get("model_choice", {}).get("summary"):
        parts.append(f"<p>How much the choice of model matters: "
                     f"{e(est['model_choice']['summary'])}.</p>")
    if est and est.get("latent_class"):
        lc = est["latent_class"]
        parts.append(f"<p>A model that lets people differ in how catchable they are (latent "
                     f"classes) gives {_fmt(lc['total'])} ({_fmt(lc['interval'][0])} to "
                     f"{_fmt(lc['interval'][1])}).</p>")
    for why in (est or {}).get("distrust", []):
        parts.append(f"<p class='warning'><strong>Why this estimate cannot be trusted:</strong> "
                     f"{e(why)}</p>")
    if not (est and est.get("total") is not None):
        parts.append(
            f"<p>Seen by at least one partner: {_fmt(ov['seen'])}. No estimate of the total "
            f"is shown: {e(str(ov.get('withheld') or 'the estimate does not exist'))}.</p>"
        )
    if summary["strata"]:
        by = summary["parameters"]["by"]
        parts.append("<table><thead><tr>")
        parts += [f"<th>{e(c)}</th>" for c in by]
        parts.append("<th>Seen</th><th>Estimated total</th><th>Interval</th></tr></thead><tbody>")
        for s in summary["strata"]:
            parts.append("<tr>" + "".join(f"<td>{e(s['stratum'][c])}</td>" for c in by))
            se = s.get("estimate")
            if s["withheld"] or not se:
                parts.append(f"<td>{_fmt(s['seen'])}</td><td colspan='2'>"
                             f"{e(s['withheld'] or '')}</td></tr>")
            else:
                lo, hi = se["interval"]
                parts.append(f"<td>{_fmt(s['seen'])}</td><td>{_fmt(se['total'])}</td>"
                             f"<td>{_fmt(lo)} to {_fmt(hi)}</td></tr>")
        parts.append("</tbody></table>")
    parts.append("<p>What the estimate assumes:</p><ul>")
    parts += [f"<li>{e(c)}</li>" for c in summary["caveats"]]
    parts.append("</ul></div>")
    return Markup("".join(parts))


def estimate_section(store: Store, opts: PipelineOptions | None = None) -> dict[str, Any]:
    """For the report: ``{"id", "title", "summary", "html"}`` (summary = JSON-ready figures).

    Wrap with ``ReportSection(d["id"], d["title"], lambda ctx: d["html"])`` to add it to a
    report. If the hub has no linkage yet, the section says so instead of failing.
    """
    try:
        summary = estimate_hub(store, opts)
    except EstimateInputError as err:
        body = Markup(f"<p>No estimate: {html.escape(err.message)}"
                      + (f" ({html.escape(err.hint)})" if err.hint else "") + "</p>")
        return {"id": "estimate", "title": "Estimated total", "summary": None, "html": body}
    return {"id": "estimate", "title": "Estimated total", "summary": summary,
            "html": section_html(summary)}


def report_section(store: Store, opts: PipelineOptions | None = None) -> ReportSection:
    """The "estimated total" section, ready to append to ``default_sections()``."""
    d = estimate_section(store, opts)
    body: Markup = d["html"]
    return ReportSection(d["id"], d["title"], lambda _ctx: body)
