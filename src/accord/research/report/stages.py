"""Report sections from the later stages: disclosure risk, differential privacy, estimated total.

Each shows only aggregate figures that are safe to publish: the risk section never lists the
riskiest combinations (those are the rare people themselves), the DP section shows only noisy
counts already released, and the estimate section applies the small-cell rule of every table.
"""

from __future__ import annotations

from pathlib import Path

from markupsafe import Markup, escape

from accord.errors import ReleaseRefused
from accord.release.dp.ledger import dp_summary, loss_text, rho_text
from accord.release.suppression import SuppressionRules
from accord.research.estimate.pipeline import report_section as estimate_report_section
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


def dp_html(store: Store) -> Markup:
    summary = dp_summary(store)
    budget = summary["budget"]
    latest = summary["latest_tables"]
    at = float(budget["delta"])
    pairs = [("data version", str(budget["data_version"])),
             ("accounting", f"rho (zCDP); every epsilon here is at the budget's delta {at:g} "
                            "unless it says otherwise"),
             ("budget", rho_text(budget["total_rho"], at)),
             ("spent", rho_text(budget["spent_rho"], at)),
             ("remaining", rho_text(budget["remaining_rho"], at)),
             ("composition", str(budget["composition"]))]
    parts = [f"<table>{_rows(pairs)}</table>"]
    spends = summary["spends"]
    if spends:
        rows = "".join(f"<tr><td>{escape(str(s['spent_at']))}</td><td>{escape(str(s['actor']))}</td>"
                       f"<td>{escape(str(s['kind']))}</td><td>{escape(str(s['purpose']))}</td>"
                       f"<td>{escape(loss_text(s['epsilon'], s['delta']))}</td><td>{s['rho']:.4g}</td>"
                       f"<td>{escape(loss_text(s['epsilon_at_budget_delta'], s['budget_delta']))}</td></tr>"
                       for s in spends)
        parts.append("<h3>Spends</h3><table><tr><th>when</th><th>who</th><th>release</th><th>purpose</th>"
                     "<th>asked for</th><th>rho</th><th>= epsilon at the budget's delta</th></tr>"
                     f"{rows}</table>")
    if latest:
        lp = latest["parameters"]
        asked = loss_text(lp.get("epsilon"), lp.get("delta"))
        cost = f" = {rho_text(lp['rho'], at)}" if lp.get("rho") else ""
        parts.append(f"<p>Latest differentially private tables: release {escape(latest['release_id'])}, "
                     f"{escape(asked)}{escape(cost)}, mechanism "
                     f"{escape(str(latest['parameters'].get('mechanism')))}. Every cell carries its 95 % margin "
                     "of error; sub-totals add up to the totals.</p>")
        for name, table in list(latest["results"].items()):
            head = "".join(f"<th>{escape(str(c))}</th>" for c in table["columns"])
            body = "".join("<tr>" + "".join(f"<td>{escape(str(v))}</td>" for v in row) + "</tr>"
                           for row in table["rows"][:60])
            extra = len(table["rows"]) - 60
            more = f"<p>({extra} more rows in the CSV release)</p>" if extra > 0 else ""
            parts.append(f"<h3>{escape(name)}</h3><table><tr>{head}</tr>{body}</table>{more}")
    else:
        parts.append("<p>No differentially private release yet "
                     "(<code>accord release tables --epsilon E</code>).</p>")
    return Markup("".join(parts))


def pipeline_sections(store: Store) -> list[ReportSection]:
    """Every section: the tables of issue 2, then risk, differential privacy and the estimated total."""
    risk = risk_html(store)
    dp = dp_html(store)
    sections = default_sections()
    protection = sections.pop()  # "how this was protected" stays last
    sections += [ReportSection("risk", "Disclosure risk of record-level data, as stored and "
                                       "at publication level", lambda _ctx: risk),
                 ReportSection("dp", "Differentially private release", lambda _ctx: dp)]
    if store.table_exists("persons"):
        sections.append(estimate_report_section(store))
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
            raise ReleaseRefused("--method dp counts people", hint="drop --unit records")
        stats = compute_dp_tables(store, rules.threshold, rho, actor=actor, purpose="report")
    else:
        check_one_off(store)
        stats = compute_tables(store, rules, unit=unit)  # type: ignore[arg-type]
    release_id = record_tables_release(store, stats, "report", actor, {"out": out.name})
    html = render_report(context_from(stats, store, release_id=release_id), pipeline_sections(store))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(html, encoding="utf-8")
    return release_id, stats
