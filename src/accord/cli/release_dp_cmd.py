"""``accord release tables`` and ``accord release synthetic``: DP releases paid from the ledger."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from accord.cli.budget_cmd import WaitOption, default_actor, open_hub_waiting
from accord.cli.common import (
    DEFAULT_HUB,
    MAX_SYNTHETIC_ROWS,
    HubOption,
    JsonOption,
    OverwriteOption,
    console,
    print_json,
    refuse_existing,
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
from accord.release.dp import ledger
from accord.release.dp.mechanism import MECHANISMS, Mechanism, epsilon_from_rho
from accord.release.dp.params import MAX_DELTA, MAX_EPSILON, check_delta, check_epsilon
from accord.release.dp.release import DEFAULT_DELTA, TablesRelease, release_tables, write_tables
from accord.release.dp.standard_tables import select_tables
from accord.release.dp.tables import PublishedTable
from accord.release.synthesize.pipeline import release_synthetic, write_synthetic

app = typer.Typer(help="Differentially private releases (budgeted in the hub's ledger).",
                  no_args_is_help=True)

EpsilonOption = Annotated[float, typer.Option(
    "--epsilon", help=f"Privacy loss of this release (0 < E <= {MAX_EPSILON:g}).")]
DeltaOption = Annotated[float, typer.Option(
    "--delta", help=f"Delta (Gaussian mechanism; 0 < D <= {MAX_DELTA:g}).")]
ActorOption = Annotated[str | None, typer.Option("--actor", help="Who releases (recorded).")]
PurposeOption = Annotated[str, typer.Option("--purpose", help="What the release is for (recorded).")]


def _mechanism(value: str) -> Mechanism:
    if value == "gaussian":
        return "gaussian"
    if value == "laplace":
        return "laplace"
    raise typer.BadParameter(f"use one of {', '.join(MECHANISMS)}", param_hint="--mechanism")


def _spend(epsilon: float, delta: float | None, rho: float, budget: ledger.Budget) -> dict[str, Any]:
    """This release's cost: as asked for, in rho, and at the budget's delta (like the ledger)."""
    return {"epsilon": epsilon, "delta": delta, "rho": rho, "budget_delta": budget.delta,
            "epsilon_at_budget_delta": epsilon_from_rho(rho, budget.delta)}


def _print_spend(epsilon: float, delta: float | None, rho: float, budget: ledger.Budget) -> None:
    at = budget.delta
    console.print(f"spent: asked for {ledger.loss_text(epsilon, delta)}, cost "
                  f"{ledger.rho_text(rho, at)} (the budget's delta)", highlight=False)
    console.print(f"left:  {ledger.rho_text(budget.remaining_rho, at)}, of "
                  f"{ledger.rho_text(budget.total_rho, at)}", highlight=False)


def _head_text(head: dict[str, Any] | None) -> str:
    """The chain head as `accord hub verify --head` takes it (SEQ:MAC)."""
    return f"{head['seq']}:{head['mac']}" if head else "(none)"


def _remote_tables(server: str, token_file: Path | None, epsilon: float, delta: float,
                   mechanism: Mechanism, names: list[str], purpose: str) -> TablesRelease:
    """The release made by the hub's server, as the local command would hold it."""
    doc = call_json(server, token_file, "POST", "/api/release/tables", {
        "epsilon": epsilon, "delta": delta, "mechanism": mechanism, "tables": names,
        "purpose": purpose})
    specs = {t.spec.name: t.spec for t in select_tables(list(doc["tables"]))}
    tables = tuple(PublishedTable(specs[name], tuple(t["columns"]), tuple(tuple(r) for r in t["rows"]))
                   for name, t in doc["tables"].items())
    b = doc["budget_after"]
    budget = ledger.Budget(b["data_version"], b["epsilon"], b["delta"], b["total_rho"],
                           b["spent_rho"], b["granted_rho"], b["spends"])
    return TablesRelease(doc["release_id"], tables, doc["parameters"], budget, doc["chain_head"])


@app.command("tables")
def tables(
    epsilon: EpsilonOption,
    out: Annotated[Path, typer.Option("--out", help="Directory for the CSV files.")] = Path("dp-tables"),
    table_names: Annotated[list[str] | None, typer.Option(
        "--tables", help="Table(s) to release (repeatable); default: all standard tables.")] = None,
    delta: DeltaOption = DEFAULT_DELTA,
    mechanism: Annotated[str, typer.Option(
        "--mechanism", help="gaussian (discrete, zCDP) or laplace (discrete, pure DP).")] = "gaussian",
    hxl: Annotated[bool, typer.Option("--hxl", help="Also write HXL-tagged CSV files.")] = False,
    hub: HubOption = DEFAULT_HUB,
    actor: ActorOption = None,
    purpose: PurposeOption = "",
    as_json: JsonOption = False,
    wait: WaitOption = 60.0,
    server: ServerOption = None,
    token_file: TokenFileOption = None,
    engine: EngineOption = "embedded",
    spark_master: SparkMasterOption = "local[*]",
    spark_conf: SparkConfOption = None,
    overwrite: OverwriteOption = False,
) -> None:
    """The standard's tables with DP noise, consistent totals and 95 % margins of error."""
    names = [n for item in table_names or [] for n in item.split(",") if n]
    with user_errors():
        refuse_existing(out, overwrite=overwrite, folder=True)
        check_epsilon(epsilon)  # before the hub is opened: a refused release reads nothing
        check_delta(delta)
        check_engine(engine, spark_master, spark_conf)
        if server and engine != "embedded":
            raise AccordError("--engine is the local hub's; the server counts on its own",
                              hint="drop --engine with --server")
        if server:  # the server draws from the shared hub's ledger, as the token's user
            rel = _remote_tables(server, token_file, epsilon, delta, _mechanism(mechanism),
                                 names, purpose)
        else:
            with group_engine(engine, spark_master, spark_conf) as groups:
                store = open_hub_waiting(hub, wait)
                try:
                    rel = release_tables(store, epsilon, delta=delta,
                                         mechanism=_mechanism(mechanism), names=names or None,
                                         actor=actor or default_actor(), purpose=purpose,
                                         groups=groups)
                finally:
                    store.close()
        files = write_tables(rel, out, hxl)
    if as_json:
        print_json({"release_id": rel.release_id, "parameters": rel.parameters,
                    "spend": _spend(epsilon, rel.parameters["delta"], rel.parameters["rho"],
                                    rel.budget),
                    "budget_after": rel.budget.to_dict(), "chain_head": rel.chain_head,
                    "files": files, "tables": {t.spec.name: t.to_arrow().to_pylist() for t in rel.tables}})
        return
    for pub in rel.tables:
        view = Table(title=pub.spec.name, title_justify="left")
        for col in pub.columns:
            view.add_column(col, justify="right" if col in ("count", "moe95") else "left")
        for row in pub.rows[:40]:
            view.add_row(*(f"±{v}" if i == len(row) - 1 else str(v) for i, v in enumerate(row)))
        console.print(view)
        if len(pub.rows) > 40:
            console.print(f"  ... {len(pub.rows) - 40} more rows in {out / (pub.spec.name + '.csv')}")
    console.print(f"release {rel.release_id}: files in {out}; chain head "
                  f"{_head_text(rel.chain_head)}", highlight=False)
    _print_consent(rel.parameters["consent"])
    _print_spend(rel.parameters["epsilon"], rel.parameters["delta"], rel.parameters["rho"],
                 rel.budget)


def _print_consent(consent: dict[str, Any]) -> None:
    """Research consent, in aggregate: how many of the hub's records the release could use."""
    console.print(f"research consent: {consent['records_used']:,} of {consent['records']:,} "
                  f"records used; {consent['records_withheld']:,} without research consent "
                  "left out", highlight=False)


@app.command("synthetic")
def synthetic(
    epsilon: EpsilonOption,
    rows: Annotated[int, typer.Option("--rows", min=1, max=MAX_SYNTHETIC_ROWS, help="Synthetic records to draw.")],
    out: Annotated[Path, typer.Option("--out", help="Directory for data and reports.")],
    delta: DeltaOption = DEFAULT_DELTA,
    hub: HubOption = DEFAULT_HUB,
    actor: ActorOption = None,
    purpose: PurposeOption = "",
    as_json: JsonOption = False,
    wait: WaitOption = 60.0,
    overwrite: OverwriteOption = False,
) -> None:
    """DP synthetic microdata over the standard's categorical fields, with utility/privacy reports."""
    with user_errors():
        refuse_existing(out, overwrite=overwrite, folder=True)
        check_epsilon(epsilon)  # before the hub is opened: a refused release reads nothing
        check_delta(delta)
        store = open_hub_waiting(hub, wait)
        try:
            rel = release_synthetic(store, epsilon, rows, delta=delta,
                                    actor=actor or default_actor(), purpose=purpose)
            head = store.chain_head()
        finally:
            store.close()
        files = write_synthetic(rel, out, head)  # the chain head goes into release.json
    if as_json:
        print_json({"release_id": rel.release_id, "files": files, "consent": rel.consent,
                    "spend": _spend(epsilon, delta, rel.result.measured.rho, rel.budget),
                    "budget_after": rel.budget.to_dict(), "chain_head": head, **rel.reports})
        return
    console.print(f"release {rel.release_id}: {rows} synthetic records in {files['synthetic']}; "
                  f"chain head {_head_text(head)}", highlight=False)
    for o in rel.reports["utility"]["orders"]:
        console.print(f"  {o['order']}-way marginals: mean TVD {o['mean_tvd']:.4f}, worst "
                      f"{o['max_tvd']:.4f} ({' x '.join(o['worst'])})")
    _print_consent(rel.consent)
    _print_spend(epsilon, delta, rel.result.measured.rho, rel.budget)
