"""``accord stats``: print the disaggregated, disclosure-controlled tables."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer
from rich.table import Table

from accord.cli.common import DEFAULT_HUB, HubOption, JsonOption, console, print_json, user_errors
from accord.errors import StoreError
from accord.release.suppression import SuppressionRules
from accord.research.grid import SUPPRESSED_MARK, cell_text, grids
from accord.research.stats import StatsResult, StatTable, compute_tables
from accord.store import open_store

ThresholdOption = Annotated[
    int, typer.Option("--threshold", min=2,
                      help="Smallest count published; cells from 1 to threshold-1 are suppressed.")
]
UnitOption = Annotated[
    str, typer.Option("--unit", help="Count 'records', 'persons' (needs linkage) or 'auto'.")
]
ActorOption = Annotated[
    str, typer.Option("--actor", help="Who makes this release (recorded with it).")
]


def require_hub(hub: Path) -> None:
    if not hub.exists():
        raise StoreError(f"no hub at {hub}; add a contribution with `accord hub add`",
                         hint="or point --hub (or $ACCORD_HUB) at an existing hub file")


def parse_unit(unit: str) -> Literal["auto", "records", "persons"]:
    if unit == "records":
        return "records"
    if unit == "persons":
        return "persons"
    if unit == "auto":
        return "auto"
    raise typer.BadParameter("use records, persons or auto", param_hint="--unit")


def release_summary(result: StatsResult) -> dict[str, object]:
    """What the release log keeps: per table how many cells were hidden (no values)."""
    return {"unit": result.unit,
            "tables": {t.id: {"cells": t.cells, "suppressed": t.suppressed}
                       for t in result.tables}}


def make_tables(hub: Path, threshold: int, unit: str, actor: str, kind: str) -> StatsResult:
    """Open the hub, compute the protected tables and put the release on record."""
    require_hub(hub)
    rules = SuppressionRules(threshold=threshold)
    with open_store(hub) as store:
        result = compute_tables(store, rules, unit=parse_unit(unit))
        store.record_release(kind, {"rules": rules.as_dict(), "unit": result.unit},
                             release_summary(result), actor)
    return result


def _print_table(table: StatTable) -> None:
    for grid in grids(table):
        title = table.title + (f" - {grid.caption}" if grid.caption else "")
        t = Table(title=title, title_justify="left")
        t.add_column(grid.row_title)
        for label in grid.col_labels:
            t.add_column(label, justify="right")
        for label, values in grid.rows:
            t.add_row(label, *(cell_text(v) for v in values))
        console.print(t)
    for label, value in table.extra_rows:
        console.print(f"  {label}: {cell_text(value)}")
    for note in table.notes:
        console.print(f"  [dim]{note}[/]", highlight=False)


def stats(
    hub: HubOption = DEFAULT_HUB,
    threshold: ThresholdOption = 10,
    unit: UnitOption = "auto",
    actor: ActorOption = "hub-steward",
    as_json: JsonOption = False,
) -> None:
    """Print the disaggregated tables, with small cells suppressed."""
    with user_errors():
        result = make_tables(hub, threshold, unit, actor, kind="tables")
    if as_json:
        print_json(result.to_dict())
        return
    for table in result.tables:
        _print_table(table)
    console.print(f"[bold]{SUPPRESSED_MARK}[/] = suppressed to protect small counts. "
                  f"Data version {result.data_version}.", highlight=False)
    for line in result.notes:
        console.print(f"  {line}", highlight=False)
