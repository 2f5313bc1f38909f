"""``accord budget``: the hub's lifetime privacy-budget ledger (show, set, grant, quota)."""

from __future__ import annotations

import getpass
import math
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.table import Table

from accord.cli.common import DEFAULT_HUB, HubOption, JsonOption, console, plain, print_json, require_hub, user_errors
from accord.cli.remote import ServerOption, TokenFileOption, call_json
from accord.errors import AccordError, StoreError
from accord.release.dp import ledger
from accord.release.dp.params import MAX_DELTA, MAX_EPSILON, check_delta, check_epsilon
from accord.store import Store, open_store

app = typer.Typer(help="Show or set the differential-privacy budget (zCDP ledger).",
                  invoke_without_command=True)


def open_hub_waiting(hub: Path, wait: float) -> Store:
    """Open the hub, waiting up to ``wait`` seconds while another process holds it."""
    if not math.isfinite(wait) or not 0 <= wait <= 86_400:  # nan compares false and would wait forever
        raise AccordError(f"--wait {wait} is not a number of seconds from 0 to 86400",
                          hint="for example --wait 60")
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


T = TypeVar("T")


def _on_hub(hub: Path, wait: float, work: Callable[[Store], T]) -> T:
    """Open the hub (waiting while it is in use), do `work`, close it: what every budget command does."""
    store = open_hub_waiting(hub, wait)
    try:
        return work(store)
    finally:
        store.close()


def default_actor() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


WaitOption = Annotated[float, typer.Option(
    "--wait", help="Seconds to wait while another process uses the hub.")]


def _show(current: ledger.Budget, rows: list[dict[str, Any]], events: list[dict[str, Any]],
          chain_ok: bool, quotas: list[dict[str, Any]]) -> None:
    at = current.delta
    console.print("lifetime budget of this hub's people (one ledger for the hub, whatever data are "
                  "added or re-added), accounted in rho (zCDP); every epsilon below is at the "
                  f"budget's delta {at:g}", highlight=False)
    console.print(f"  budget {ledger.rho_text(current.total_rho, at)}", highlight=False)
    if current.granted_rho:
        console.print(f"    of which granted {ledger.rho_text(current.granted_rho, at)}",
                      highlight=False)
    console.print(f"  spent  {ledger.rho_text(current.spent_rho, at)} over {current.spends} "
                  "release(s)", highlight=False)
    console.print(f"  left   {ledger.rho_text(current.remaining_rho, at)}", highlight=False)
    if not chain_ok:
        console.print("[bold red]  the hub's chain is broken: every release is refused; run "
                      "`accord hub verify`[/]", markup=True, highlight=False)
    console.print(f"[dim]{plain(ledger.COMPOSITION)}[/]", markup=True, highlight=False)
    if quotas:
        def eps(value: float | None) -> str:
            return "no quota" if value is None else f"{value:.3g}"

        console.print(_table(f"Organisations' shares (epsilon at delta {at:g})",
                             ("organisation", "quota", "spent", "left of quota"),
                             ((q["org"], eps(q["quota_epsilon"]), f"{q['spent_epsilon']:.3g}",
                               "" if q["quota_epsilon"] is None else eps(q["remaining_epsilon"]))
                              for q in quotas)))
    if events:
        console.print(_table("Budget changes (set, grant, quota, migration)",
                             ("when", "who", "event", "figure", "rho", "reason / note"),
                             ((e["recorded_at"], e["actor"], e["event"],
                               ledger.loss_text(e["epsilon"], e["delta"]) if e["epsilon"] is not None else "",
                               f"{e['rho']:.4g}", e["purpose"] or e["detail"]) for e in events)))
    console.print(_table("Spends", ("when", "who", "kind", "purpose", "asked for", "rho",
                                    f"= epsilon at delta {at:g}", "release", "data version"),
                         ((r["spent_at"], r["actor"], r["kind"] or "", r["purpose"] or "",
                           ledger.loss_text(r["epsilon"], r["delta"]), f"{r['rho']:.4g}",
                           f"{r['epsilon_at_budget_delta']:.3g}", r["release_id"] or "", r["data_version"])
                          for r in rows)))


def _table(title: str, columns: Sequence[str], rows: Iterable[Sequence[str]]) -> Table:
    table = Table(title=title)
    for col in columns:
        table.add_column(col)
    for row in rows:
        table.add_row(*row)
    return table


@app.callback()
def budget(ctx: typer.Context, hub: HubOption = DEFAULT_HUB, as_json: JsonOption = False,
           wait: WaitOption = 30.0, server: ServerOption = None,
           token_file: TokenFileOption = None) -> None:
    """Show the hub's lifetime budget: total (set + granted), spent, left, every spend and change."""
    if ctx.invoked_subcommand is not None:
        return
    with user_errors():
        if server:
            doc = call_json(server, token_file, "GET", "/api/budget")
            if as_json:
                print_json(doc)
            else:
                _show(_budget_of(doc["budget"]), doc["spends"], doc["events"], doc["chain"]["ok"],
                      doc.get("quotas", []))
            return
        current, rows, events, report, shares = _on_hub(hub, wait, lambda store: (
            ledger.current_budget(store), ledger.spends(store), ledger.events(store), ledger.verify(store),
            ledger.quotas(store)))
    quotas = [q.to_dict(current.delta) for q in shares]
    if as_json:
        print_json({"budget": current.to_dict(), "spends": rows, "events": events,
                    "chain": report.to_dict(), "quotas": quotas})
        return
    _show(current, rows, events, report.ok, quotas)


ActorOpt = Annotated[str | None, typer.Option("--actor", help="Who does it (recorded).")]


@app.command("set")
def set_budget(
    epsilon: Annotated[float, typer.Option(
        "--epsilon", help=f"The hub's total epsilon, before grants (0 < E <= {MAX_EPSILON:g}).")],
    delta: Annotated[float, typer.Option(
        "--delta", help=f"Its delta (0 < D <= {MAX_DELTA:g}).")] = ledger.DEFAULT_TOTAL_DELTA,
    hub: HubOption = DEFAULT_HUB,
    actor: ActorOpt = None,
    as_json: JsonOption = False,
    wait: WaitOption = 30.0,
    server: ServerOption = None,
    token_file: TokenFileOption = None,
) -> None:
    """Set the hub's lifetime total (never below what is spent); recorded and audited."""
    with user_errors():
        check_epsilon(epsilon)
        check_delta(delta)
        result = _change(server, token_file, "/api/budget/set", {"epsilon": epsilon, "delta": delta}, hub, wait,
                         lambda store: ledger.set_budget(store, epsilon, delta, actor or default_actor()))
    _print_result(result, as_json, "budget set")


@app.command("grant")
def grant(
    epsilon: Annotated[float, typer.Option(
        "--epsilon", help=f"Epsilon to add, at the budget's delta (0 < E <= {MAX_EPSILON:g}).")],
    reason: Annotated[str, typer.Option("--reason", help="Why (e.g. '2027 allowance'); recorded.")],
    hub: HubOption = DEFAULT_HUB,
    actor: ActorOpt = None,
    as_json: JsonOption = False,
    wait: WaitOption = 30.0,
    server: ServerOption = None,
    token_file: TokenFileOption = None,
) -> None:
    """Grant more budget (a renewal, e.g. a yearly allowance): an explicit, audited act."""
    with user_errors():
        check_epsilon(epsilon)
        result = _change(server, token_file, "/api/budget/grant", {"epsilon": epsilon, "reason": reason}, hub, wait,
                         lambda store: ledger.grant(store, epsilon, actor or default_actor(), reason))
    _print_result(result, as_json, f"granted epsilon {epsilon:g}")


@app.command("quota")
def quota(
    org: Annotated[str, typer.Argument(help="The organisation (as `accord hub org list` shows it).")],
    reason: Annotated[str, typer.Option("--reason", help="Why (e.g. 'agreed share for 2027'); recorded.")],
    epsilon: Annotated[float | None, typer.Option(
        "--epsilon", help=f"Its quota: epsilon at the budget's delta (0 < E <= {MAX_EPSILON:g}).")] = None,
    remove: Annotated[bool, typer.Option("--remove", help="Remove its quota (the hub's budget "
                                                          "alone limits it again).")] = False,
    hub: HubOption = DEFAULT_HUB,
    actor: ActorOpt = None,
    as_json: JsonOption = False,
    wait: WaitOption = 30.0,
    server: ServerOption = None,
    token_file: TokenFileOption = None,
) -> None:
    """Give an organisation a share of the hub's budget: its users' releases draw from the hub's
    budget and from this quota (never below what they have spent); recorded and audited."""
    with user_errors():
        if remove == (epsilon is not None):
            raise AccordError("give either --epsilon E or --remove",
                              hint="for example: accord budget quota ngo-b --epsilon 2 --reason 'share for 2027'")
        if epsilon is not None:
            check_epsilon(epsilon)
        if server:
            doc = call_json(server, token_file, "POST", "/api/budget/quota",
                            {"org": org, "epsilon": epsilon, "reason": reason})
        else:
            def local(store: Store) -> dict[str, Any]:
                share = ledger.set_quota(store, org, epsilon, actor or default_actor(), reason)
                return share.to_dict(ledger.current_budget(store).delta)

            doc = _on_hub(hub, wait, local)
    if as_json:
        print_json(doc)
        return
    at = doc["epsilon_delta"]
    if doc["quota_rho"] is None:
        console.print(f"{plain(org)} has no quota now: the hub's budget alone limits its releases "
                      f"(spent so far {ledger.rho_text(doc['spent_rho'], at)})", highlight=False)
    else:
        console.print(f"{plain(org)}'s quota is {ledger.rho_text(doc['quota_rho'], at)}; spent "
                      f"{ledger.rho_text(doc['spent_rho'], at)}; left "
                      f"{ledger.rho_text(doc['remaining_rho'], at)}", highlight=False)


def _change(server: str | None, token_file: Path | None, route: str, body: dict[str, Any], hub: Path,
            wait: float, local: Callable[[Store], ledger.Budget]) -> ledger.Budget:
    """A budget change through the shared hub's server (a steward's token: the server records the
    token's user as the actor) or on the local hub: the budget after it."""
    if server:
        return _budget_of(call_json(server, token_file, "POST", route, body))
    return _on_hub(hub, wait, local)


def _budget_of(b: dict[str, Any]) -> ledger.Budget:
    """A Budget from its to_dict (the server's answer)."""
    return ledger.Budget(b["data_version"], b["epsilon"], b["delta"], b["total_rho"],
                         b["spent_rho"], b["granted_rho"], b["spends"])


def _print_result(result: ledger.Budget, as_json: bool, what: str) -> None:
    if as_json:
        print_json(result.to_dict())
        return
    at = result.delta
    console.print(f"{what}: the hub's lifetime budget is {ledger.rho_text(result.total_rho, at)}; "
                  f"spent {ledger.rho_text(result.spent_rho, at)}; left "
                  f"{ledger.rho_text(result.remaining_rho, at)}", highlight=False)
