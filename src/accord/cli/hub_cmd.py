"""``accord hub``: load contributions into the hub store and show what it holds."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from accord.cli.common import DEFAULT_HUB, HubOption, JsonOption, console, plain, print_json, require_hub, user_errors
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
    # accepted is what the batch loaded; withdrawn and superseded (by a later batch) left since;
    # "in hub" is what releases are computed from now
    for col in ("partner", "batch", "rows in", "accepted", "quarantined", "updated", "withdrawn",
                "superseded", "in hub", "added at"):
        t.add_column(col, justify="left" if col in ("partner", "batch", "added at") else "right")
    for b in batches:
        t.add_row(b["partner"], b["batch_id"][:12], f"{b['rows_in']:,}", f"{b['accepted']:,}",
                  f"{b['quarantined']:,}", f"{b['replaced']:,}", f"{b['withdrawn']:,}",
                  f"{b['superseded']:,}", f"{b['current']:,}", b["added_at"])
    console.print(t)


@app.command("releases")
def releases(hub: HubOption = DEFAULT_HUB, as_json: JsonOption = False) -> None:
    """List every release made from this hub: kind, parameters, data version, who made it."""
    import json

    from accord.store import chain

    with user_errors():
        require_hub(hub)
        with open_store(hub, read_only=True) as store:
            rows = store.releases()
            # each release's own entry on the tamper-evident chain (SEQ:MAC, as `hub verify
            # --head` takes it); null if the release predates the chain or its row was changed
            entries = {e.entry_sha256: f"{e.seq}:{e.mac}" for e in chain.read_entries(store)
                       if e.source == "releases"}
    on_chain = [entries.get(chain.row_digest("releases", r)) for r in rows]
    if as_json:
        print_json([{**r, "parameters": json.loads(r["parameters"]), "results": json.loads(r["results"]),
                     "chain_entry": c} for r, c in zip(rows, on_chain, strict=True)])
        return
    t = Table(title=f"releases from {hub}")
    for col in ("release", "kind", "created", "by", "data version", "chain entry", "parameters"):
        t.add_column(col)
    for r, c in zip(rows, on_chain, strict=True):
        t.add_row(r["release_id"], r["kind"], r["created_at"], r["actor"], r["data_version"],
                  c.split(":")[0] if c else "-", r["parameters"][:80])
    console.print(t)


@app.command("audit")
def audit(hub: HubOption = DEFAULT_HUB, as_json: JsonOption = False) -> None:
    """Show the audit trail: who did what to the hub, when."""
    with user_errors():
        require_hub(hub)
        with open_store(hub, read_only=True) as store:
            from accord.store import chain as hub_chain
            rows = hub_chain.rows_in_order(store, "audit", ("occurred_at",))
    if as_json:
        print_json(rows)
        return
    t = Table(title=f"audit trail of {hub}")
    for col in ("when", "who", "action", "detail"):
        t.add_column(col)
    for r in rows:
        t.add_row(r["occurred_at"], r["actor"], r["action"], r["detail"])
    console.print(t)



@app.command("verify")
def verify(
    hub: HubOption = DEFAULT_HUB,
    head: Annotated[str | None, typer.Option(
        "--head", help="Also check a chain head SEQ:MAC (from a release's output) is on the chain.")] = None,
    resolve: Annotated[bool, typer.Option(
        "--resolve", help="(Data steward) accept the hub as it is now and seal it, carrying the "
                          "largest spent figure forward; needs --reason.")] = False,
    reason: Annotated[str, typer.Option("--reason", help="Why the chain is resolved (recorded).")] = "",
    actor: Annotated[str, typer.Option("--actor", help="Who resolves (recorded).")] = "hub-steward",
    as_json: JsonOption = False,
) -> None:
    """Check the tamper-evident chain over the audit trail, releases and privacy ledger.

    Exit 0 when intact, 3 when anything was edited, deleted, inserted or reordered outside Accord
    (every release is then refused until a steward resolves it)."""
    from accord.errors import ParameterError, ReleaseRefused
    from accord.release.dp import ledger

    with user_errors():
        require_hub(hub)
        expected = None
        if head:
            try:
                seq, mac = head.split(":", 1)
                expected = (int(seq), mac.strip())
            except ValueError:
                raise ParameterError("--head must be SEQ:MAC, as a release's chain_head gives it",
                                     hint="e.g. --head 42:3f9a...") from None
        if resolve:
            with open_store(hub) as store:
                outcome = ledger.resolve(store, actor, reason)
            if as_json:
                print_json(outcome)
            else:
                console.print(f"resolved: {len(outcome['problems_resolved'])} problem(s) sealed at "
                              f"chain entry {outcome['seal']} by {actor}; lifetime spent carried "
                              f"forward: rho {outcome['budget']['spent_rho']:.6g}", highlight=False)
                if outcome["key_lost"]:
                    console.print("the hub key was lost: a new one was made and nothing is left of "
                                  "the budget until a steward grants it (`accord budget grant`)")
            return
        with open_store(hub, read_only=True) as store:
            report = ledger.verify(store, expected)
        if as_json:
            print_json(report.to_dict())
        else:
            where = f"head entry {report.head['seq']}" if report.head else "no entries"
            console.print(f"chain of {hub}: {report.entries} entries, {where}"
                          + (f", sealed at entry {report.sealed_at}" if report.sealed_at else ""),
                          highlight=False)
            for note in report.notes:
                console.print(f"  note: {note}", highlight=False)
            for problem in report.problems:
                console.print(f"  [bold red]broken:[/] {plain(problem)}", markup=True, highlight=False)
            if report.ok:
                console.print("intact: every audit, release and ledger entry is on the chain",
                              highlight=False)
        if not report.ok:
            raise ReleaseRefused(f"the hub's chain is broken ({len(report.problems)} problem(s)); "
                                 "every release is refused",
                                 hint="restore the hub from a backup, or (data steward) accept "
                                      "it as it is: `accord hub verify --resolve --reason TEXT`")


def _add_account_commands() -> None:
    # Accounts of the shared hub (accord serve) live in their own module.
    from accord.cli.hub_accounts_cmd import org_app, token_app, user_app

    app.add_typer(org_app, name="org")
    app.add_typer(user_app, name="user")
    app.add_typer(token_app, name="token")


_add_account_commands()


def _add_flow_commands() -> None:
    # A partner's withdrawal and the requests for record-level outputs (accord.serve.requests).
    from accord.cli.request_cmd import hub_app as requests_app
    from accord.cli.withdraw_cmd import hub_withdraw

    app.command("withdraw")(hub_withdraw)
    app.add_typer(requests_app, name="requests")


_add_flow_commands()
