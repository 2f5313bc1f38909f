"""Report sections: each a title and a function from the report context to HTML.

Later stages (risk, differential privacy, MSE estimates, linkage quality) add their own
``ReportSection`` to the list passed to ``render_report``; nothing here is global.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup, escape

from accord.research.grid import SUPPRESSED_MARK, cell_text, grids
from accord.research.report.svg import bar_chart, pyramid
from accord.research.specs import MISSING
from accord.research.stats import StatsResult, StatTable


@dataclass(frozen=True)
class ReportContext:
    """Everything a section may show. Holds only published (protected) figures."""

    stats: StatsResult
    batches: tuple[dict[str, Any], ...]
    generated_at: str
    standard: str
    identifiers_dropped: tuple[str, ...]
    release_id: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    pseudonymised_records: int | None = None  # records that carried an identifier (None: unknown)

    @property
    def mark(self) -> str:
        """How a hidden cell reads: ``<10`` for a DP release, ``s`` for a suppressed one."""
        return f"<{self.stats.rules.threshold}" if self.stats.method == "dp" else SUPPRESSED_MARK


SectionRenderer = Callable[[ReportContext], Markup]


@dataclass(frozen=True)
class ReportSection:
    id: str
    title: str
    render: SectionRenderer


def environment() -> Environment:
    env = Environment(loader=PackageLoader("accord.research.report", "templates"),
                      autoescape=True, undefined=StrictUndefined, trim_blocks=True,
                      lstrip_blocks=True)
    env.filters["cell"] = cell_text
    return env


def _render(template: str, mark: str = SUPPRESSED_MARK, **values: Any) -> Markup:
    return Markup(environment().get_template(template).render(mark=mark, **values))


def not_recorded(table: StatTable) -> list[str]:
    """Titles of the dimensions with no recorded value at all (every category but "Not
    recorded" is zero or hidden): such a table says "not recorded", never a row of zeros."""
    out = []
    for axis, dim in enumerate(table.dims):
        known = [_at(table.published, [i if k == axis else -1 for k in range(len(table.dims))])
                 for i, c in enumerate(dim.codes) if c != MISSING]
        if not any(v for v in known if v is not None):
            out.append(dim.title)
    return out


def _at(cell: Any, index: list[int]) -> Any:
    for i in index:
        cell = cell[i]
    return cell


def _partners(batches: tuple[dict[str, Any], ...]) -> list[dict[str, Any]]:
    by: dict[str, dict[str, Any]] = {}
    for b in batches:
        p = by.setdefault(b["partner"], {"partner": b["partner"], "batches": 0, "rows_in": 0,
                                         "accepted": 0, "quarantined": 0, "last_added": ""})
        p["batches"] += 1
        for k in ("rows_in", "accepted", "quarantined"):
            p[k] += int(b[k])
        p["last_added"] = max(p["last_added"], str(b["added_at"]))
    return [by[k] for k in sorted(by)]


def summary_section(ctx: ReportContext) -> Markup:
    return _render("summary.html.j2", partners=_partners(ctx.batches), ctx=ctx)


def _pyramid_chart(table: StatTable, mark: str = SUPPRESSED_MARK) -> Markup | None:
    sex, bands = table.dims
    if "female" not in sex.codes or "male" not in sex.codes:
        return None
    keep = [i for i, c in enumerate(bands.codes) if c != MISSING]
    f_row = table.published[sex.codes.index("female")]
    m_row = table.published[sex.codes.index("male")]
    return pyramid([bands.labels[i] for i in keep], [m_row[i] for i in keep],
                   [f_row[i] for i in keep], "Male", "Female", table.title, mark=mark)


def pyramid_section(ctx: ReportContext) -> Markup:
    try:
        table = ctx.stats.table("sex_by_age_band")
    except KeyError:
        return Markup("<p>No age table in this release.</p>")
    missing = not_recorded(table)
    if missing:
        return Markup(f"<p class='nodata'>No pyramid: {escape(' and '.join(missing).lower())} "
                      "not recorded in these data. This does not mean there are none.</p>")
    chart = _pyramid_chart(table, ctx.mark)
    if chart is None:
        return Markup("<p>Too few categories of sex recorded to draw a pyramid.</p>")
    return _render("pyramid.html.j2", ctx.mark, chart=chart, table=table,
                   ctx_method=ctx.stats.method)


def _totals_chart(table: StatTable, mark: str = SUPPRESSED_MARK,
                  sd: float | None = None) -> Markup | None:
    """Bars of the first dimension's totals (the 'Total' column of the first grid or layer)."""
    if table.id == "partner_overlap":
        return None
    grid = grids(table)[-1]
    rows = grid.rows[:-1]  # the last row is the grand total
    if len(rows) < 2:
        return None
    return bar_chart([label for label, _ in rows], [values[-1] for _, values in rows],
                     f"{table.title}: totals by {table.dims[0].title.lower()}", mark=mark,
                     moe=_row_moe(table, sd))


def _row_moe(table: StatTable, sd: float | None) -> float | None:
    """Approximate 95 % margin of error of a row total of noisy cells: each of the row's cells
    carries noise of standard deviation ``sd``; a total adds them (independent, so sqrt(n))."""
    if not sd:
        return None
    cells = 1
    for d in table.dims[1:]:
        cells *= len(d.codes)
    return 1.96 * float(sd) * math.sqrt(cells)


def tables_section(ctx: ReportContext) -> Markup:
    from accord.research.export import downloads

    items = []
    for t in ctx.stats.tables:
        missing = not_recorded(t)
        items.append({"table": t, "grids": grids(t), "missing": missing,
                      "chart": None if missing else _totals_chart(
                          t, ctx.mark, ctx.stats.dp.get("noise_sd", {}).get(t.id))})
    return _render("tables.html.j2", ctx.mark, items=items, downloads=downloads(ctx.stats),
                   ctx_method=ctx.stats.method)


def protection_section(ctx: ReportContext) -> Markup:
    return _render("protection.html.j2", ctx.mark, ctx=ctx)


def focus_section(ctx: ReportContext) -> Markup:
    # Issue 18's focus groups live in their own module and template (report/focus.py).
    from accord.research.report.focus import focus_context
    return _render("focus.html.j2", **{**focus_context(ctx.stats), "mark": ctx.mark})


def default_sections() -> list[ReportSection]:
    """The sections of issue 2, in page order. Append or insert to extend the report."""
    return [
        ReportSection("contributions", "Contributions", summary_section),
        ReportSection("pyramid", "Population pyramid", pyramid_section),
        ReportSection("tables", "Tables", tables_section),
        ReportSection("focus", "Focus groups", focus_section),
        ReportSection("protection", "How this was protected", protection_section),
    ]
