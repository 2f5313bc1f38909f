"""``accord demo``: the whole pipeline on generated data, start to finish."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from accord.cli.common import console, make_progress, user_errors
from accord.errors import AccordError

# What a directory the demo wrote holds; --fresh deletes only such a directory.
DEMO_ENTRIES = frozenset({"exports", "partners", "hub", "releases", "report.html"})


def _clear_demo_dir(out: Path) -> None:
    """Delete an earlier demo's directory, and nothing else: `--out .` or `--out ~/Documents` must
    never wipe a user's files."""
    if not out.is_dir():
        raise AccordError(f"{out} exists and is not a directory", hint="give --out a new or demo directory")
    entries = {p.name for p in out.iterdir()}
    if entries and not ({"exports", "hub"} <= entries and entries <= DEMO_ENTRIES):
        raise AccordError(f"{out} is not empty and is not a directory the demo wrote; --fresh would delete it",
                          hint="give --out a new directory (the demo writes everything inside it)")
    shutil.rmtree(out)


def demo(
    out: Annotated[Path, typer.Option("--out", help="Directory for everything the demo writes.")] = Path("accord-demo"),
    people: Annotated[int, typer.Option("--people", help="Simulated population (seen and hidden).")] = 3000,
    partners: Annotated[int, typer.Option("--partners", help="Simulated partners.")] = 3,
    overlap: Annotated[float, typer.Option(
        "--overlap", help="With --capture 0: share of people seen by more than one partner.")] = 0.15,
    capture: Annotated[float, typer.Option(
        "--capture", help="Probability that a partner catches a person (0 = everyone seen, --overlap mode).")] = 0.4,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the simulated population.")] = 2026,
    fresh: Annotated[bool, typer.Option("--fresh/--keep", help="Start from an empty directory.")] = True,
) -> None:
    """Run everything on generated data: simulate, keys, ingest, hub, link, statistics, report."""
    # Imported here: the demo pulls in every stage, which no other command should pay for at start-up.
    from accord.demo import DemoConfig, run_demo

    with user_errors():
        if fresh and out.exists():
            _clear_demo_dir(out)
    config = DemoConfig(out=out, people=people, partners=partners, overlap=overlap, seed=seed, capture=capture)
    with user_errors(), make_progress() as bar:
        task = bar.add_task("demo", total=None)

        def step(msg: str, done: int, total: int) -> None:
            bar.update(task, description=msg, completed=done, total=total)

        summary = run_demo(config, progress=step)
    t = Table(title="Accord demo: what happened", show_header=False)
    t.add_column("step")
    t.add_column("result")
    for k, v in summary.lines:
        t.add_row(k, v)
    console.print(t)
    console.print(f"report: [bold]{summary.report}[/]  (open it in a browser; it works offline)")
