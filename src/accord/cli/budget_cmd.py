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
    console.print(f"data version {current.data_version}: budget epsilon {current.epsilon:g}, "
                  f"delta {current.delta:g} (zCDP rho {current.total_rho:.5f})")
    console.print(f"spent rho {current.spent_rho:.5f} (epsilon {current.spent_epsilon:.3f} at "
                  f"delta {current.delta:g}); left rho {current.remaining_rho:.5f}")
    console.print(f"[dim]{ledger.COMPOSITION}[/]", highlight=False)
    t = Table(title="Spends")
    for col in ("when", "who", "kind", "purpose", "epsilon", "delta", "rho", "release", "version"):
        t.add_column(col)
    for r in rows:
        t.add_row(r["spent_at"], r["actor"], r["kind"], r["purpose"] or "",
                  f"{r['epsilon']:g}" if r["epsilon"] is not None else "",
                  f"{r['delta']:g}" if r["delta"] is not None else "", f"{r['rho']:.5f}",
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
        console.print(f"budget for data version {result.data_version}: epsilon {epsilon:g}, "
                      f"delta {delta:g} (rho {result.total_rho:.5f}); spent rho {result.spent_rho:.5f}")
