"""``accord simulate``: simulated partner exports, their mapping files and the ground truth."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.progress import TaskID
from rich.table import Table

from accord.cli.common import (
    JsonOption,
    OverwriteOption,
    console,
    make_progress,
    plain,
    print_json,
    refuse_existing,
    user_errors,
)
from accord.simulate import SimulationConfig
from accord.simulate import simulate as run_simulation


def simulate(
    people: Annotated[int, typer.Option("--people", min=1, max=50_000_000, help="Number of distinct people.")] = 10_000,
    partners: Annotated[int, typer.Option("--partners", help="Number of partners (exports).")] = 2,
    overlap: Annotated[
        float, typer.Option("--overlap", help="Share of people seen by more than one partner.")
    ] = 0.15,
    seed: Annotated[int, typer.Option("--seed", help="Random seed (same seed, same files).")] = 1,
    out: Annotated[Path, typer.Option("--out", help="Directory to write into.")] = Path(
        "accord-sim"),
    format_a: Annotated[
        str, typer.Option("--format-a", help="Partner A's export: xlsx (<=100,000 rows) or csv.")
    ] = "xlsx",
    bad_share: Annotated[
        float, typer.Option("--bad-share", help="Share of deliberately bad rows per export.")
    ] = 0.005,
    capture: Annotated[
        float, typer.Option("--capture", help="Hidden population: each partner catches each "
                            "person with about this probability; people nobody catches are in "
                            "no export (0 = everyone seen, --overlap decides who twice).")
    ] = 0.0,
    heterogeneity: Annotated[
        float, typer.Option("--heterogeneity", help="With --capture: scale of the effects of "
                            "case type, age and sex on being caught (0 = everyone alike).")
    ] = 1.0,
    dependence: Annotated[
        float, typer.Option("--dependence", help="With --capture: odds ratio of partner b "
                            "catching people partner a caught (1 = independent lists).")
    ] = 1.0,
    json_out: JsonOption = False,
    overwrite: OverwriteOption = False,
) -> None:
    """Simulate partner exports (Kobo XLSX/JSON, case-management CSV) with mappings and truth."""
    config = SimulationConfig(people=people, partners=partners, overlap=overlap, seed=seed,
                              out=out, format_a=format_a.lower(), bad_share=bad_share,
                              capture=capture, heterogeneity=heterogeneity, dependence=dependence)
    with user_errors(), make_progress(transient=True) as bar:
        refuse_existing(out, overwrite=overwrite, folder=True)
        tasks: dict[str, TaskID] = {}

        def progress(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=total)
            bar.update(tasks[stage], completed=done, total=total)

        result = run_simulation(config, progress=progress)
    if json_out:
        print_json(result.as_dict())
        return
    title = (f"Simulated {result.people:,} people, {result.records:,} records"
             if result.seen_people is None else
             f"Simulated a population of {result.people:,}, {result.seen_people:,} seen, "
             f"{result.records:,} records")
    table = Table(title=title)
    for col in ("partner", "export", "mapping", "rows", "bad rows"):
        table.add_column(col, justify="right" if col in ("rows", "bad rows") else "left",
                         no_wrap=True)
    for p in result.partners:
        table.add_row(p.partner, p.export.name, p.mapping.name, f"{p.rows:,}",
                      str(sum(p.bad_rows.values())))
    console.print(table)
    if result.seen_people is not None:
        console.print(f"population {result.people:,}: {result.seen_people:,} caught by some "
                      f"partner, {result.people - result.seen_people:,} hidden (in no export)")
    console.print(f"people seen by more than one partner: {result.overlap_people:,} "
                  f"({result.overlap_share:.1%})")
    console.print(f"ground truth: {result.truth} (for linkage evaluation only; never send it "
                  "to the hub)")
    if result.population is not None:
        console.print(f"full population (true total, for checking estimates): "
                      f"{result.population}")
    for note in result.notes:
        console.print(f"[yellow]note:[/] {plain(note)}", markup=True)
