"""``accord stats``: print the disaggregated, disclosure-controlled tables."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Literal

import typer
from rich.table import Table

from accord.cli.common import (
    DEFAULT_HUB,
    HubOption,
    JsonOption,
    OverwriteOption,
    console,
    plain,
    print_json,
    refuse_existing,
    require_hub,
    user_errors,
)
from accord.cli.engine_opts import (
    EngineOption,
    SparkConfOption,
    SparkMasterOption,
    check_engine,
    group_engine,
)
from accord.cli.remote import ServerOption, TokenFileOption, call_json
from accord.errors import AccordError
from accord.release.suppression import SuppressionRules
from accord.research.grid import SUPPRESSED_MARK, cell_text, grids
from accord.research.stats import StatsResult, StatTable, result_from_dict, tables_on_record
from accord.store import open_store
from accord.store.groups import EMBEDDED, GroupEngine

ThresholdOption = Annotated[
    int, typer.Option("--threshold", min=2,
                      help="Smallest count published; cells from 1 to threshold-1 are suppressed.")
]
class Unit(StrEnum):
    AUTO = "auto"
    RECORDS = "records"
    PERSONS = "persons"


ProtectionOption = Annotated[
    int | None, typer.Option(
        "--protection", min=1,
        help="Width a hidden small cell's feasible range must keep (default: half the threshold).")
]
UnitOption = Annotated[
    Unit, typer.Option("--unit", help="Count records, persons (needs linkage) or auto.")
]
class Method(StrEnum):
    DP = "dp"
    SUPPRESSION = "suppression"


MethodOption = Annotated[
    Method, typer.Option(
        "--privacy",
        help="dp (default): noisy counts, one draw per data version, safe to publish every "
             "month. suppression: exact counts with small cells hidden; only for a hub's one "
             "and only release (refused once tables of another data version were published).")
]
RhoOption = Annotated[
    float | None, typer.Option(
        "--rho", help="Privacy cost (zCDP rho) of the data version's DP draw of all tables "
                      "(default 0.01; with the estimates' 0.005, any attacker stays within 5 "
                      "points of chance on one data version).")
]
ActorOption = Annotated[
    str, typer.Option("--actor", help="Who makes this release (recorded with it).")
]


def parse_unit(unit: Unit) -> Literal["auto", "records", "persons"]:
    if unit == Unit.RECORDS:
        return "records"
    if unit == Unit.PERSONS:
        return "persons"
    return "auto"


def check_privacy_options(method: Method, protection: int | None, rho: float | None) -> None:
    """An option the chosen method does not use is refused: silently ignoring it would let a user
    believe a release was protected the way they asked."""
    if method == Method.DP and protection is not None:
        raise AccordError("--protection applies to --privacy suppression; a DP release has no "
                          "hidden cells to protect", hint="drop --protection, or add --privacy suppression")
    if method == Method.SUPPRESSION and rho is not None:
        raise AccordError("--rho applies to --privacy dp; suppressed tables spend no privacy budget",
                          hint="drop --rho, or use --privacy dp")


def make_tables(hub: Path, rules: SuppressionRules, unit: Unit, actor: str,
                kind: str, method: Method = Method.DP, rho: float | None = None,
                groups: GroupEngine = EMBEDDED) -> StatsResult:
    """Open the hub, compute the protected tables and put the release on record."""
    require_hub(hub)
    with open_store(hub) as store:
        return tables_on_record(store, rules.threshold, rules.protection, parse_unit(unit), actor,
                                kind, "dp" if method == Method.DP else "suppression", rho,
                                groups)


def _print_table(table: StatTable, mark: str) -> None:
    """A grid when it fits the terminal; otherwise one line per cell, so no number is cut."""
    for grid in grids(table):
        title = table.title + (f" - {grid.caption}" if grid.caption else "")
        t = Table(title=title, title_justify="left")
        t.add_column(grid.row_title, no_wrap=True)
        for label in grid.col_labels:
            t.add_column(label, justify="right", no_wrap=True)
        for label, values in grid.rows:
            t.add_row(label, *(mark if v is None else cell_text(v) for v in values))
        if _natural_width(t) <= console.width:
            console.print(t)
            continue
        _print_long(title, grid.row_title, grid.col_labels, grid.rows, mark)
    for label, value in table.extra_rows:
        console.print(f"  {label}: {cell_text(value)}")
    for note in table.notes:
        console.print(f"  [dim]{plain(note)}[/]", markup=True, highlight=False)


def _natural_width(t: Table) -> int:
    """The table's width unconstrained (rich caps a measurement at the terminal width)."""
    wide = console.options.update(max_width=100_000, width=100_000)
    return console.measure(t, options=wide).maximum


def _print_long(title: str, row_title: str, col_labels: tuple[str, ...],
                rows: tuple[tuple[str, tuple[int | None, ...]], ...], mark: str) -> None:
    """Long layout: a two-column table (category, count), which fits any terminal width."""
    t = Table(title=title, title_justify="left")
    t.add_column(row_title, overflow="fold")
    t.add_column("Count", justify="right", no_wrap=True)
    for label, values in rows:
        for col, v in zip(col_labels, values, strict=True):
            name = label if len(col_labels) == 1 else f"{label} / {col}"
            t.add_row(name, mark if v is None else cell_text(v))
    console.print(t)


def stats(
    hub: HubOption = DEFAULT_HUB,
    threshold: ThresholdOption = 10,
    protection: ProtectionOption = None,
    unit: UnitOption = Unit.AUTO,
    method: MethodOption = Method.DP,
    rho: RhoOption = None,
    actor: ActorOption = "hub-steward",
    as_json: JsonOption = False,
    out: Annotated[Path | None, typer.Option(
        "--out", help="Also write each protected table as CSV, and all of them as one XLSX "
                      "workbook (tables.xlsx), into this folder.")] = None,
    hxl: Annotated[bool, typer.Option(
        "--hxl", help="With --out: add a row of HXL hashtags under each header.")] = False,
    server: ServerOption = None,
    token_file: TokenFileOption = None,
    engine: EngineOption = "embedded",
    spark_master: SparkMasterOption = "local[*]",
    spark_conf: SparkConfOption = None,
    overwrite: OverwriteOption = False,
) -> None:
    """Print the disaggregated tables, with small counts hidden (noisy by default)."""
    with user_errors():
        refuse_existing(out, overwrite=overwrite, folder=True)
        if hxl and out is None:
            raise AccordError("--hxl needs --out", hint="give --out DIR to write the tables")
        check_privacy_options(method, protection, rho)
        check_engine(engine, spark_master, spark_conf)
        if server and engine != "embedded":
            raise AccordError("--engine is the local hub's; the server counts on its own",
                              hint="drop --engine with --server")
        rules = SuppressionRules(threshold=threshold, protection=protection)
        if server:  # the shared hub's server runs tables_on_record as the token's user
            result = result_from_dict(call_json(server, token_file, "POST", "/api/stats", {
                "threshold": threshold, "protection": protection, "unit": parse_unit(unit),
                "privacy": method.value, "rho": rho}))
        else:
            with group_engine(engine, spark_master, spark_conf) as groups:
                result = make_tables(hub, rules, unit, actor, "tables", method, rho, groups)
        if out is not None:
            from accord.research.export import write_tables

            written = write_tables(result, out, hxl=hxl)
            if not as_json:
                console.print(f"wrote {len(written)} files to {out}", highlight=False)
    if as_json:
        print_json(result.to_dict())
        return
    mark = f"<{threshold}" if result.method == "dp" else SUPPRESSED_MARK
    for table in result.tables:
        _print_table(table, mark)
    what = ("a noisy count below the threshold" if result.method == "dp"
            else "suppressed to protect small counts")
    console.print(f"[bold]{plain(mark)}[/] = {plain(what)}. Data version {plain(result.data_version)}.",
                  markup=True, highlight=False)
    for line in result.notes:
        console.print(f"  {line}", highlight=False)
