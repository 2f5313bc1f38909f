"""``accord budget``: the privacy-budget ledger of the hub's current data version."""

from __future__ import annotations

import getpass
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from accord.cli.common import DEFAULT_HUB, HubOption, JsonOption, console, print_json, require_hub, user_errors
from accord.errors import StoreError
from accord.release.dp import ledger
from accord.store import Store, open_store

app = typer.Typer(help="Show or set the differential-privacy budget (zCDP ledger).",
                  invoke_without_command=True)


def open_hub_waiting(hub: Path, wait: float) -> Store:
    """Open the hub, waiting up to ``wait`` seconds while another process holds it."""
    require_hub(hub)
    deadline = time.monotonic() + wait
    delay = 0.05
    while True:
        try:
            return open_store(hub)
        except StoreError as err:
            if "in use" not in err.message or time.monotonic() >= deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 1.5, 1.0)


def default_actor() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


WaitOption = Annotated[float, typer.Option(
    "--wait", help="Seconds to wait while another process uses the hub.")]


@app.callback()
def budget(ctx: typer.Context, hub: HubOption = DEFAULT_HUB, as_json: JsonOption = False,
           wait: WaitOption = 30.0) -> None:
    """Show what is spent of the budget, by whom and for what."""
    if ctx.invoked_subcommand is not None:
        return
    with user_errors():
        store = open_hub_waiting(hub, wait)
        try:
            current = ledger.current_budget(store)
            rows = ledger.spends(store)
        finally:
            store.close()
    if as_json:
        print_json({"budget": current.to_dict(), "spends": rows})
        return
    at = current.delta
    console.print(f"data version {current.data_version}, accounted in rho (zCDP); every epsilon "
                  f"below is at the budget's delta {at:g}", highlight=False)
    console.print(f"  budget {ledger.rho_text(current.total_rho, at)}", highlight=False)
    console.print(f"  spent  {ledger.rho_text(current.spent_rho, at)}", highlight=False)
    console.print(f"  left   {ledger.rho_text(current.remaining_rho, at)}", highlight=False)
    console.print(f"[dim]{ledger.COMPOSITION}[/]", highlight=False)
    # Spends of older data versions may sit under a budget with another delta: then each cell
    # says its delta, else the column header does.
    one_delta = all(r["budget_delta"] == at for r in rows)
    t = Table(title="Spends")
    for col in ("when", "who", "kind", "purpose", "asked for", "rho",
                f"= epsilon at delta {at:g}" if one_delta else "= epsilon at its budget's delta",
                "release", "version"):
        t.add_column(col)
    for r in rows:
        at_budget = (f"{r['epsilon_at_budget_delta']:.3g}" if one_delta else
                     ledger.loss_text(r["epsilon_at_budget_delta"], r["budget_delta"]))
        t.add_row(r["spent_at"], r["actor"], r["kind"], r["purpose"] or "",
                  ledger.loss_text(r["epsilon"], r["delta"]), f"{r['rho']:.4g}", at_budget,
                  r["release_id"] or "", r["data_version"])
    console.print(t)


@app.command("set")
def set_budget(
    epsilon: Annotated[float, typer.Option("--epsilon", help="Total epsilon for this data version.")],
    delta: Annotated[float, typer.Option("--delta", help="Total delta.")] = ledger.DEFAULT_TOTAL_DELTA,
    hub: HubOption = DEFAULT_HUB,
    actor: Annotated[str | None, typer.Option("--actor", help="Who sets it (recorded).")] = None,
    as_json: JsonOption = False,
    wait: WaitOption = 30.0,
) -> None:
    """Set the total budget of the current data version (never below what is spent)."""
    with user_errors():
        store = open_hub_waiting(hub, wait)
        try:
            result = ledger.set_budget(store, epsilon, delta, actor or default_actor())
        finally:
            store.close()
    if as_json:
        print_json(result.to_dict())
    else:
        at = result.delta
        console.print(f"budget for data version {result.data_version}: "
                      f"{ledger.rho_text(result.total_rho, at)}; spent "
                      f"{ledger.rho_text(result.spent_rho, at)}", highlight=False)
