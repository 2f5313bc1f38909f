"""Report sections from the later stages: disclosure risk, differential privacy, estimated total.

Each shows only aggregate figures that are safe to publish: the risk section never lists the
riskiest combinations (those are the rare people themselves), the DP section shows only noisy
counts already released, and the estimate section applies the small-cell rule of every table.
"""

from __future__ import annotations

from pathlib import Path

from markupsafe import Markup, escape

from accord.errors import AccordError
from accord.release.dp.ledger import dp_summary, loss_text, rho_text
from accord.release.suppression import SuppressionRules
from accord.research.estimate.mse import EstimateOptions
from accord.research.estimate.pipeline import PipelineOptions, estimate_section
from accord.research.report.glance import glance_html
from accord.research.report.render import context_from, render_report
from accord.research.report.risk_section import risk_html
from accord.research.report.sections import ReportSection, default_sections
from accord.research.stats import (
    StatsResult,
    check_one_off,
    compute_dp_tables,
    compute_tables,
    record_tables_release,
)
from accord.store import Store


def _rows(pairs: list[tuple[str, str]]) -> str:
    return "".join(f"<tr><th>{escape(k)}</th><td>{escape(v)}</td></tr>" for k, v in pairs)


_KINDS = {"dp_stats": "tables", "dp_tables": "tables", "estimate": "estimate",
          "synthetic": "synthetic data"}


def _kind(kind: str) -> str:
    return _KINDS.get(kind, kind.replace("_", " "))


def dp_html(store: Store, method: str = "dp") -> Markup:
    """The privacy budget in plain words; the accounting figures in a collapsed footnote.

    The DP tables themselves are not repeated here: when this page is the DP release they are
    the tables above, and when it is a suppressed release they are another release (showing
    both would print two different figures for one quantity on one page).
    """
    summary = dp_summary(store)
    budget = summary["budget"]
    latest = summary["latest_tables"]
    at = float(budget["delta"])
    total, spent = float(budget["total_rho"] or 0), float(budget["spent_rho"] or 0)
    share = f"{100 * spent / total:.0f} %" if total > 0 else "none"
    parts = [f"<p>Differential privacy limits how much all releases together can reveal about "
             f"any one person. This hub has used {escape(share)} of its privacy budget for "
             f"data version {escape(str(budget['data_version']))}; every figure of this data "
             "version is drawn once and shown again unchanged, so publishing it again costs "
             "nothing more.</p>"]
    if method == "dp":
        parts.append("<p>The tables of this page are that differentially private release.</p>")
    elif latest:
        parts.append("<p>The differentially private tables are a separate release and are not "
                     "repeated here, so that each quantity has one figure on this page "
                     "(<code>accord stats --out DIR</code> writes them).</p>")
    else:
        parts.append("<p>No differentially private release yet.</p>")
    pairs = [("accounting", f"rho (zero-concentrated differential privacy); every epsilon here "
                            f"is at the budget's delta {at:g} unless it says otherwise"),
             ("budget", rho_text(budget["total_rho"], at)),
             ("spent", rho_text(budget["spent_rho"], at)),
             ("remaining", rho_text(budget["remaining_rho"], at)),
             ("composition", str(budget["composition"]))]
    tech = [f"<table>{_rows(pairs)}</table>"]
    spends = summary["spends"]
    if spends:
        rows = "".join(f"<tr><td>{escape(str(s['spent_at']))}</td><td>{escape(str(s['actor']))}</td>"
                       f"<td>{escape(_kind(str(s['kind'])))}</td><td>{escape(str(s['purpose']))}</td>"
                       f"<td>{escape(loss_text(s['epsilon'], s['delta']))}</td><td>{s['rho']:.4g}</td>"
                       f"<td>{escape(loss_text(s['epsilon_at_budget_delta'], s['budget_delta']))}</td></tr>"
                       for s in spends)
        tech.append("<div class='scroll'><table><tr><th>When</th><th>Who</th><th>Release</th>"
                    "<th>Purpose</th><th>Asked for</th><th>rho</th><th>Epsilon at the budget's "
                    f"delta</th></tr>{rows}</table></div>")
    if latest:
        lp = latest["parameters"]
        asked = loss_text(lp.get("epsilon"), lp.get("delta"))
        cost = f" = {rho_text(lp['rho'], at)}" if lp.get("rho") else ""
        tech.append(f"<p>Latest differentially private tables: release "
                    f"{escape(latest['release_id'])}, {escape(asked)}{escape(cost)}, mechanism "
                    f"{escape(str(lp.get('mechanism')))}.</p>")
    parts.append("<details><summary>Technical figures (privacy accounting)</summary>"
                 + "".join(tech) + "</details>")
    return Markup("".join(parts))


def pipeline_sections(store: Store, method: str = "dp") -> list[ReportSection]:
    """Every section: the key figures first, the tables of issue 2, then the estimated total,
    risk, differential privacy, and how this was protected."""
    risk = risk_html(store)
    dp = dp_html(store, method)
    sections = default_sections()
    protection = sections.pop()  # "how this was protected" stays last
    # Averaging over every two-way model: the glance can then say how much the choice of model
    # moves the total, not only the chosen model's interval.
    estimate = (estimate_section(store, PipelineOptions(estimate=EstimateOptions(average=True)))
                if store.table_exists("persons") else None)
    summary = estimate["summary"] if estimate else None
    sections.insert(0, ReportSection("glance", "At a glance",
                                     lambda ctx: glance_html(ctx, summary)))
    if estimate is not None:
        body: Markup = estimate["html"]
        sections.append(ReportSection(estimate["id"], estimate["title"], lambda _ctx: body))
    sections += [ReportSection("risk", "Disclosure risk of record-level data, as stored and "
                                       "at publication level", lambda _ctx: risk),
                 ReportSection("dp", "Privacy budget", lambda _ctx: dp)]
    sections.append(protection)
    return sections


def publish_report(store: Store, out: Path, rules: SuppressionRules, unit: str = "auto",
                   actor: str = "hub-steward", method: str = "suppression",
                   rho: float | None = None) -> tuple[str, StatsResult]:
    """Compute the protected tables, record the release, write the HTML file.

    ``method="dp"``: the data version's noisy draw (accord.research.noisy); "suppression":
    exact counts with small cells hidden, refused once tables of another version were published.
    """
    if method == "dp":
        if unit == "records":
            # The same input error, and exit code, as `accord stats --unit records`.
            raise AccordError("--privacy dp counts people (one row per person bounds what one "
                              "person can change)", hint="drop --unit, or use --unit persons")
        stats = compute_dp_tables(store, rules.threshold, rho, actor=actor, purpose="report")
    else:
        check_one_off(store)
        stats = compute_tables(store, rules, unit=unit)  # type: ignore[arg-type]
    release_id = record_tables_release(store, stats, "report", actor, {"out": out.name})
    html = render_report(context_from(stats, store, release_id=release_id),
                         pipeline_sections(store, stats.method))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(html, encoding="utf-8")
    return release_id, stats
