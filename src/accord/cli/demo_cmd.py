"""``accord demo``: the whole pipeline on generated data, start to finish."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from accord.cli.common import console, make_progress, plain, user_errors
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
    serve: Annotated[bool, typer.Option(
        "--serve", help="Then serve the demo hub on loopback with one account per role (and per "
        "partner); prints the URL, passwords and tokens. Ctrl-C stops it.")] = False,
    bind: Annotated[str, typer.Option("--bind", help="With --serve: loopback HOST:PORT to listen on.")
                    ] = "127.0.0.1:8000",
) -> None:
    """Run everything on generated data: simulate, keys, ingest, hub, link, statistics, report."""
    # Imported here: the demo pulls in every stage, which no other command should pay for at start-up.
    from accord.demo import DemoConfig, run_demo

    with user_errors():
        if serve:
            host, port = _loopback(bind)
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
    console.print(f"report: [bold]{plain(summary.report)}[/]  (open it in a browser; it works offline)",
                  markup=True)
    if serve:
        _serve(summary.hub, host, port)


def _loopback(bind: str) -> tuple[str, int]:
    """The demo prints its passwords: it serves on this machine only."""
    from accord.errors import AccordError

    host, _, port = bind.rpartition(":")
    host = host.strip("[]")
    if host not in ("127.0.0.1", "localhost", "::1") or not port.isdigit():
        raise AccordError(f"--bind {bind} is not a loopback HOST:PORT",
                          hint="the demo serves on this machine only, e.g. --bind 127.0.0.1:8000; "
                               "use `accord serve` for a real hub")
    return host, int(port)


def _serve(hub: Path, host: str, port: int) -> None:
    import sys

    import uvicorn

    from accord.serve.app import ServerConfig, create_app
    from accord.serve.demo_hub import demo_accounts
    from accord.store import open_store

    with user_errors(), open_store(hub) as store:
        accounts = demo_accounts(store, hub.parent / "tokens")
    url = f"http://{host if ':' not in host else f'[{host}]'}:{port}"
    t = Table(title=f"demo hub at {url} (passwords and tokens are shown only now)")
    for col in ("user", "organisation", "role", "one-time password", "token file"):
        t.add_column(col, overflow="fold")
    for a in accounts:
        t.add_row(a.username, a.org, a.role.value, a.password or "(unchanged)", str(a.token_file))
    console.print(t)
    console.print(f"hub:    {url}/", highlight=False)
    console.print(f"API:    {url}/api/whoami  (header Authorization: Bearer TOKEN)", highlight=False)
    for a in accounts:
        console.print(f"token {a.username}: {a.token}", highlight=False, soft_wrap=True)
    analyst = next(a for a in accounts if a.username == "analyst")
    console.print(f"try:    accord request list --server {url} --token-file {analyst.token_file}",
                  highlight=False, soft_wrap=True)
    console.print("stop:   Ctrl-C", highlight=False)
    sys.stdout.flush()
    uvicorn.run(create_app(ServerConfig(hub)), host=host, port=port, log_level="warning",
                server_header=False)
