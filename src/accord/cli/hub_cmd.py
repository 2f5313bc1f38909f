"""``accord hub``: load contributions into the hub store and show what it holds."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from accord.cli.common import DEFAULT_HUB, HubOption, JsonOption, console, print_json, require_hub, user_errors
from accord.store import add_contribution, open_store

app = typer.Typer(help="Load contributions into the hub store and show what it holds.",
                  no_args_is_help=True)


@app.command("add")
def add(
    contributions: Annotated[list[Path], typer.Argument(help="Contribution directories from `accord ingest`.")],
    hub: HubOption = DEFAULT_HUB,
    actor: Annotated[str, typer.Option("--actor", help="Who is adding (recorded in the audit log).")] = "hub-steward",
    as_json: JsonOption = False,
) -> None:
    """Verify contributions and load each as one all-or-nothing batch (idempotent)."""
    results = []
    with user_errors(), open_store(hub) as store:
        for c in contributions:
            outcome = add_contribution(store, c, actor=actor)
            results.append({"contribution": str(c), "batch_id": outcome.batch_id,
                            "partner": outcome.partner, "added": outcome.added,
                            "replaced": outcome.replaced, "duplicate": outcome.duplicate})
            if not as_json:
                if outcome.duplicate:
                    console.print(f"{c}: already in the hub (batch {outcome.batch_id[:12]}), nothing added")
                else:
                    extra = f", {outcome.replaced:,} earlier records updated" if outcome.replaced else ""
                    console.print(f"{c}: added {outcome.added:,} records from {outcome.partner}{extra}")
    if as_json:
        print_json(results)


@app.command("status")
def status(hub: HubOption = DEFAULT_HUB, as_json: JsonOption = False) -> None:
    """List the batches in the hub and the data version."""
    with user_errors():
        require_hub(hub)
        with open_store(hub, read_only=True) as store:
            batches = store.batches()
            version = store.data_version()
    if as_json:
        print_json({"data_version": version, "batches": batches})
        return
    t = Table(title=f"hub {hub} - data version {version}")
    for col in ("partner", "batch", "rows in", "accepted", "quarantined", "updated", "added at"):
        t.add_column(col, justify="right" if col[0] in "rauq" and col != "added at" else "left")
    for b in batches:
        t.add_row(b["partner"], b["batch_id"][:12], f"{b['rows_in']:,}", f"{b['accepted']:,}",
                  f"{b['quarantined']:,}", f"{b['replaced']:,}", b["added_at"])
    console.print(t)


@app.command("releases")
def releases(hub: HubOption = DEFAULT_HUB, as_json: JsonOption = False) -> None:
    """List every release made from this hub: kind, parameters, data version, who made it."""
    import json

    with user_errors():
        require_hub(hub)
        with open_store(hub, read_only=True) as store:
            rows = store.releases()
    if as_json:
        print_json([{**r, "parameters": json.loads(r["parameters"]), "results": json.loads(r["results"])}
                    for r in rows])
        return
    t = Table(title=f"releases from {hub}")
    for col in ("release", "kind", "created", "by", "data version", "parameters"):
        t.add_column(col)
    for r in rows:
        t.add_row(r["release_id"], r["kind"], r["created_at"], r["actor"], r["data_version"],
                  r["parameters"][:80])
    console.print(t)


@app.command("audit")
def audit(hub: HubOption = DEFAULT_HUB, as_json: JsonOption = False) -> None:
    """Show the audit trail: who did what to the hub, when."""
    with user_errors():
        require_hub(hub)
        with open_store(hub, read_only=True) as store:
            rows = store.query("SELECT * FROM audit ORDER BY occurred_at").to_pylist() \
                if store.table_exists("audit") else []
    if as_json:
        print_json(rows)
        return
    t = Table(title=f"audit trail of {hub}")
    for col in ("when", "who", "action", "detail"):
        t.add_column(col)
    for r in rows:
        t.add_row(r["occurred_at"], r["actor"], r["action"], r["detail"])
    console.print(t)



def _add_account_commands() -> None:
    # Accounts of the shared hub (accord serve) live in their own module.
    from accord.cli.hub_accounts_cmd import org_app, token_app, user_app

    app.add_typer(org_app, name="org")
    app.add_typer(user_app, name="user")
    app.add_typer(token_app, name="token")


_add_account_commands()
