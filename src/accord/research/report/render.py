"""Assemble the report page from its sections."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Literal

from accord.release.suppression import SuppressionRules
from accord.research.report.sections import ReportContext, ReportSection, default_sections, environment
from accord.research.stats import StatsResult, compute_tables
from accord.standard import Standard, load_standard
from accord.store import Store


def context_from(stats: StatsResult, store: Store, standard: Standard | None = None,
                 release_id: str | None = None) -> ReportContext:
    standard = standard or load_standard()
    return ReportContext(
        stats=stats,
        batches=tuple(store.batches()),
        generated_at=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        standard=f"{standard.name} {standard.version}",
        identifiers_dropped=tuple(f.label for f in standard.identifiers),
        release_id=release_id,
        pseudonymised_records=_pseudonymised(store),
    )


def _pseudonymised(store: Store) -> int | None:
    """How many records carry a keyed pseudonym (an identifier was consumed for them)."""
    if not store.table_exists("records"):
        return None
    return int(store.query("SELECT count(person_pseudonym) AS n FROM records").column("n")[0].as_py())


def build_context(store: Store, rules: SuppressionRules | None = None,
                  unit: Literal["auto", "records", "persons"] = "auto") -> ReportContext:
    """Compute the protected tables and gather what the report shows."""
    return context_from(compute_tables(store, rules, unit=unit), store)


def render_report(ctx: ReportContext, sections: Sequence[ReportSection] | None = None,
                  title: str = "Accord: protected statistics") -> str:
    """The whole page as one HTML string (no external resource of any kind)."""
    chosen = default_sections() if sections is None else list(sections)
    rendered = [{"id": s.id, "title": s.title, "html": s.render(ctx)} for s in chosen]
    return environment().get_template("report.html.j2").render(
        title=title, sections=rendered, ctx=ctx, mark=ctx.mark)
