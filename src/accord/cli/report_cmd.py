"""``accord report``: write the self-contained HTML report."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from accord.cli.common import DEFAULT_HUB, HubOption, console, user_errors
from accord.cli.stats_cmd import (
    ActorOption,
    ThresholdOption,
    UnitOption,
    parse_unit,
    release_summary,
    require_hub,
)
from accord.errors import AccordError
from accord.release.suppression import SuppressionRules
from accord.research.report import render_report
from accord.research.report.render import context_from
from accord.research.stats import compute_tables
from accord.store import open_store


def report(
    out: Annotated[Path, typer.Option("--out", help="HTML file to write.")],
    hub: HubOption = DEFAULT_HUB,
    threshold: ThresholdOption = 10,
    unit: UnitOption = "auto",
    actor: ActorOption = "hub-steward",
) -> None:
    """Write the report: one HTML file with tables, charts and how the data were protected."""
    with user_errors():
        require_hub(hub)
        rules = SuppressionRules(threshold=threshold)
        with open_store(hub) as store:
            stats = compute_tables(store, rules, unit=parse_unit(unit))
            release_id = store.record_release(
                "report", {"rules": rules.as_dict(), "unit": stats.unit, "out": out.name},
                release_summary(stats), actor)
            html = render_report(context_from(stats, store, release_id=release_id))
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(html, encoding="utf-8")
        except OSError as exc:
            raise AccordError(f"cannot write {out}: {exc.strerror}",
                              hint="choose a writable path with --out") from None
    console.print(f"wrote {out} (data version {stats.data_version}, release {release_id})")
