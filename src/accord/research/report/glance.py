"""The report's first screen: the key figures, each with what it means and how sure it is.

Every figure here is read from a table the page publishes further down (or from the estimate
section), so the first screen can never disagree with the detail: one protected figure per
quantity. A figure that the protection hid, or that the data do not record, says so in words.
"""

from __future__ import annotations

import math
from typing import Any

from markupsafe import Markup, escape

from accord.research.report.sections import ReportContext, not_recorded
from accord.research.specs import MISSING
from accord.research.stats import StatTable

PEOPLE_TABLES = ("case_type_by_sex", "sex_by_age_band", "migration_status_by_sex")


def _n(v: int | None) -> str:
    return "-" if v is None else f"{v:,}"


def _find(ctx: ReportContext, table_id: str) -> StatTable | None:
    try:
        return ctx.stats.table(table_id)
    except KeyError:
        return None


def _grand_total(t: StatTable) -> int | None:
    cell: Any = t.published
    while isinstance(cell, list):
        cell = cell[-1]
    return None if cell is None else int(cell)


def _uncertainty(ctx: ReportContext, table_id: str, cells: int = 1) -> str:
    """One sentence on how far a figure may be from the truth."""
    if ctx.stats.method != "dp":
        return "Exact count of the records in the hub; small counts are hidden, not changed."
    sd = ctx.stats.dp.get("noise_sd", {}).get(table_id)
    if not sd:
        return "Carries random noise to protect the people counted."
    moe = 1.96 * float(sd) * math.sqrt(max(cells, 1))
    return (f"Carries random noise to protect the people counted: each cell it adds up is "
            f"within about ±{moe:,.0f} of its true count 19 times out of 20.")


def _sex_breakdown(t: StatTable, ctx: ReportContext) -> dict[str, str] | None:
    axis = next((i for i, d in enumerate(t.dims) if d.name == "sex"), None)
    if axis is None or t.dims[axis].title in not_recorded(t):
        return None
    dim = t.dims[axis]
    total = _grand_total(t)
    parts = []
    for i, (code, label) in enumerate(zip(dim.codes, dim.labels, strict=True)):
        index = [i if k == axis else -1 for k in range(len(t.dims))]
        cell: Any = t.published
        for j in index:
            cell = cell[j]
        if code == MISSING:
            continue
        if cell is None:
            parts.append(f"{label}: {ctx.mark}")
        elif cell and total:
            parts.append(f"{label}: {cell:,} ({100 * cell / total:.0f} %)")
    if not parts:
        return None
    return {"label": "By sex", "figure": ", ".join(parts[:2]),
            "meaning": (f"Also recorded: {'; '.join(parts[2:])}." if parts[2:] else "People by recorded sex.")
            + " " + _source(t),
            "uncertainty": _uncertainty(ctx, t.id)}


def _source(t: StatTable) -> str:
    return f"From the table “{t.title}”."


def _is_minor_band(code: str) -> bool:
    hi = code.split("--")[-1] if "--" in code else ""
    return hi.isdigit() and int(hi) < 18


def _minors(ctx: ReportContext) -> dict[str, str] | None:
    t = _find(ctx, "sex_by_age_band")
    if t is None or len(t.dims) != 2:
        return None
    dim = t.dims[1]
    if dim.title in not_recorded(t):
        return {"label": "Children (under 18)", "figure": "Not recorded",
                "meaning": "Age is not recorded in these data, so the number of children is "
                           "unknown. This does not mean there are none.",
                "uncertainty": ""}
    bands = [i for i, c in enumerate(dim.codes) if _is_minor_band(c)]
    if not bands:
        return None
    values = [t.published[-1][i] for i in bands]
    hidden = any(v is None for v in values)
    figure = ctx.mark if hidden and len(bands) == 1 else (
        "Partly hidden" if hidden else _n(sum(int(v) for v in values)))
    return {"label": "Children (under 18)", "figure": figure,
            "meaning": "People under 18 at registration"
                       + (" (some age bands hold too few people to show)." if hidden else "."),
            "uncertainty": _uncertainty(ctx, t.id, len(bands))}


def _overlap(ctx: ReportContext) -> dict[str, str] | None:
    t = _find(ctx, "partner_overlap")
    if t is None:
        return None
    codes = t.dims[0].codes
    values = t.published[:-1]
    shared = [v for c, v in zip(codes, values, strict=True) if "+" in c]
    if not shared:
        return None
    if any(v is None for v in shared):
        figure, meaning = ctx.mark if len(shared) == 1 else "Partly hidden", (
            "Some combinations of partners hold too few people to show.")
    else:
        total = sum(int(v) for v in shared)
        figure = _n(total)
        meaning = ("People whom linkage found registered by more than one partner; each is "
                   "counted once in every other figure.")
    return {"label": "Served by more than one partner", "figure": figure, "meaning": meaning,
            "uncertainty": _uncertainty(ctx, "partner_overlap", len(shared))}


def _estimate(summary: dict[str, Any] | None) -> dict[str, str] | None:
    if not summary:
        return None
    ov = summary.get("overall") or {}
    est = ov.get("estimate") or {}
    if est.get("total") is None:
        why = ov.get("withheld") or "; ".join(est.get("distrust") or []) or "the data do not support one"
        return {"label": "Estimated total, seen and unseen", "figure": "No estimate",
                "meaning": f"No estimate of the hidden population is shown: {why}.",
                "uncertainty": ""}
    lo, hi = est["interval"]
    level = round(float(est.get("level", 0.95)) * 100)
    untrusted = "; ".join(est.get("distrust") or [])  # accord.research.estimate.mse: MSEResult
    meaning = ("People seen by a partner plus those no partner saw, estimated from how the "
               "partners' lists overlap (multiple systems estimation).")
    if untrusted:
        meaning += f" Cannot be trusted: {untrusted}."
    uncertainty = (f"The true total is likely ({level} % interval) between {_n(round(lo))} and "
                   f"{_n(round(hi))}, if the model's assumptions hold.")
    choice = est.get("model_choice") or {}
    if choice.get("supported_range"):
        # The interval is the chosen model's; other models the data support give other totals.
        # Their range joined with it is a conservative interval that includes the choice.
        r_lo, r_hi = choice["supported_range"]
        both = (min(lo, r_lo), max(hi, r_hi))
        uncertainty += (f" The models the data support give totals from {_n(round(r_lo))} to "
                        f"{_n(round(r_hi))}; allowing for the choice of model, between "
                        f"{_n(round(both[0]))} and {_n(round(both[1]))}.")
    return {"label": "Estimated total, seen and unseen", "figure": _n(round(est["total"])),
            "meaning": meaning, "uncertainty": uncertainty}


def key_figures(ctx: ReportContext, estimate: dict[str, Any] | None = None) -> list[dict[str, str]]:
    keys: list[dict[str, str]] = []
    people = next((t for t in (_find(ctx, i) for i in PEOPLE_TABLES) if t is not None), None)
    if people is None and ctx.stats.tables:
        people = ctx.stats.tables[0]
    if people is not None:
        unit = "people" if ctx.stats.unit == "persons" else "records"
        keys.append({"label": f"{unit.capitalize()} registered", "figure": _n(_grand_total(people)),
                     "meaning": (f"Distinct {unit} in the partners' contributions"
                                 + (", each person counted once." if unit == "people" else
                                    "; a person registered twice counts twice.")),
                     "uncertainty": " ".join((_uncertainty(ctx, people.id, 1),
                                              _source(people)))})
    partners = sorted({str(b["partner"]) for b in ctx.batches})
    keys.append({"label": "Partners contributing", "figure": _n(len(partners)),
                 "meaning": ", ".join(partners) or "No contribution recorded.",
                 "uncertainty": ""})
    for item in (_overlap(ctx), _estimate(estimate), _minors(ctx),
                 _sex_breakdown(people, ctx) if people is not None else None):
        if item is not None:
            keys.append(item)
    return keys


def _too_few(ctx: ReportContext) -> str | None:
    """Why the figures cannot be read (None when they can): nothing published, or noise as
    large as the count of people itself."""
    people = next((t for t in (_find(ctx, i) for i in PEOPLE_TABLES) if t is not None), None)
    total = _grand_total(people) if people is not None else None
    if people is None or not total:
        return ("Too few people in this hub to publish figures: every count is below the "
                "threshold or hidden. Add contributions and publish again.")
    sd = ctx.stats.dp.get("noise_sd", {}).get(people.id) if ctx.stats.method == "dp" else None
    if sd and 1.96 * float(sd) >= total / 2:
        return (f"Too few people in this hub for reliable figures: the noise that protects "
                f"them (about ±{1.96 * float(sd):,.0f} on each count) is as large as the counts "
                f"themselves ({total:,} people). Only the number of people and partners is "
                "shown; add contributions and publish again.")
    return None


def glance_html(ctx: ReportContext, estimate: dict[str, Any] | None = None) -> Markup:
    """The first screen; on an empty or tiny hub it says what is missing instead."""
    keys = key_figures(ctx, estimate)
    parts = []
    why = _too_few(ctx)
    if why:
        parts.append(f"<p class='nodata'>{escape(why)}</p>")
        keys = [k for k in keys if k["label"].endswith(("registered", "contributing"))]
    parts.append("<div class='keys'>")
    for k in keys:
        parts.append(
            "<div class='key'>"
            f"<div class='label'>{escape(k['label'])}</div>"
            f"<div class='figure{' long' if len(k['figure']) > 14 else ''}'>"
            f"{escape(k['figure'])}</div>"
            f"<p>{escape(k['meaning'])}</p>"
            + (f"<p class='note'>{escape(k['uncertainty'])}</p>" if k["uncertainty"] else "")
            + "</div>")
    parts.append("</div>")
    return Markup("".join(parts))
