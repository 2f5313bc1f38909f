"""``accord estimate``: how many people in total, seen and unseen (multiple systems estimation).

Two forms:
- ``accord estimate [--hub FILE] [--by sex,age_group]``: from the hub's linked persons.
- ``accord estimate mse COUNTS.csv``: from a capture-history table an analyst already has.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from accord.cli.common import (
    DEFAULT_HUB,
    HubOption,
    JsonOption,
    console,
    make_progress,
    plain,
    print_json,
    require_hub,
    user_errors,
)
from accord.cli.remote import ServerOption, TokenFileOption, call_json
from accord.errors import AccordError
from accord.research.estimate import (
    METHODS,
    EstimateOptions,
    MSEResult,
    check_all_models,
    estimate,
    parse_model,
    read_counts_csv,
)
from accord.research.estimate.pipeline import PipelineOptions, estimate_hub

app = typer.Typer(
    help="Estimate the total number of people, seen and unseen, from the overlap between lists.",
    invoke_without_command=True,
)

MethodOption = Annotated[
    str, typer.Option("--method", help=f"Model choice: {', '.join(METHODS)}.")
]
BootOption = Annotated[
    int, typer.Option("--bootstrap", min=0, max=100_000,
                      help="Bootstrap replicates (repeating the model choice); 0 = none.")
]
AverageOption = Annotated[
    bool, typer.Option("--average", help="Also fit every two-way model (up to 6 lists): "
                                         "AIC/BIC-weighted average and the spread of totals "
                                         "among the models the data support.")
]
LatentOption = Annotated[
    bool, typer.Option("--latent", help="Also run a Bayesian latent-class model (LCMCR-like) "
                                        "for people who differ in how catchable they are.")
]
SeedOption = Annotated[int, typer.Option("--seed", help="Random seed for the bootstrap.")]
ResampleOption = Annotated[
    str, typer.Option("--resample", help="Bootstrap: 'multinomial' (observed cells) or "
                                         "'parametric' (Poisson from the fitted model).")
]


def _check_method(method: str) -> None:
    if method not in METHODS:
        raise typer.BadParameter(f"use one of: {', '.join(METHODS)}", param_hint="--method")


def _num(v: float | str | None) -> str:
    if v is None:
        return "-"
    if isinstance(v, str):
        return v
    return "unbounded" if math.isinf(v) else f"{v:,.0f}"


def _print_result(res: MSEResult) -> None:
    # List names are the user's column headers, and the model, reasons and notes name them: the
    # console reads no markup, and styled lines pass them through `plain` (a list '[/a]' ended as
    # 'unexpected MarkupError').
    console.print(f"lists: {', '.join(res.lists)}  (people seen: {res.observed:,})", highlight=False)
    console.print(f"model: {res.model}", highlight=False)
    console.print(f"why: {res.reason}", highlight=False)
    if not res.ok or res.total is None:
        console.print(f"[bold red]no estimate:[/] the model's estimate {plain(res.status)}; "
                      "try another method or merge sparse lists", markup=True, highlight=False)
    else:
        t = Table(title="Estimated number of people", title_justify="left")
        t.add_column("")
        t.add_column("estimate", justify="right")
        t.add_column(f"{res.level:.0%} interval", justify="right")
        iv = res.interval
        t.add_row("total (seen + unseen)", _num(res.total),
                  f"{_num(iv[0])} to {_num(iv[1])}" if iv else "-")
        t.add_row("unseen (dark figure)", _num(res.dark), "")
        console.print(t)
        if res.profile_interval:
            lo, hi = res.profile_interval
            console.print(f"profile-likelihood interval (given the model): {_num(lo)} to "
                          f"{_num(hi)}", highlight=False)
        if res.boot:
            lo, hi = res.boot.interval
            console.print(
                f"bootstrap interval ({res.boot.replicates} replicates, {res.boot.resample}, "
                f"model re-chosen each time): {_num(lo)} to {_num(hi)}", highlight=False)
    mc = res.extra.get("model_choice")
    if isinstance(mc, dict) and "summary" in mc:
        console.print(f"model choice: {mc['summary']}", highlight=False)
    lc = res.extra.get("latent_class")
    if isinstance(lc, dict):
        console.print(f"latent-class model (people differ in how catchable they are): "
                      f"{_num(lc['total'])} ({res.level:.0%} credible interval "
                      f"{_num(lc['interval'][0])} to {_num(lc['interval'][1])})", highlight=False)
    for why in res.distrust:
        console.print(f"[bold yellow]cannot be trusted:[/] {plain(why)}", markup=True, highlight=False)
    if res.empty_overlaps:
        console.print(f"pairs of lists with nobody in common (fitted as -inf): "
                      f"{', '.join(res.empty_overlaps)}", highlight=False)
    for note in res.notes:
        console.print(f"[yellow]note:[/] {plain(note)}", markup=True, highlight=False)
    for c in res.caveats:
        console.print(f"[dim]- {plain(c)}[/]", markup=True, highlight=False)


def _progress_run(opts: EstimateOptions, run: Any) -> Any:
    if opts.bootstrap <= 0:
        return run(None)
    with make_progress(transient=True) as bar:
        task = bar.add_task("bootstrap", total=opts.bootstrap)

        def tick(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        return run(tick)


@app.command("mse")
def mse(
    counts: Annotated[Path, typer.Argument(help="CSV: one 0/1 column per list, last column "
                                                "the number of people with that history.")],
    method: MethodOption = "stepwise",
    model: Annotated[str | None, typer.Option(
        "--model", help="Fit this model instead of choosing one, e.g. 'A:B,B:C'.")] = None,
    bootstrap: BootOption = 0,
    resample: ResampleOption = "multinomial",
    seed: SeedOption = 20130101,
    level: Annotated[float, typer.Option("--level", min=0.5, max=0.999, help="Interval coverage.")] = 0.95,
    pthresh: Annotated[float, typer.Option(
        "--pthresh", help="Stepwise: add pairs while their p-value is below this.")] = 0.02,
    min_list_size: Annotated[int, typer.Option(
        "--min-list-size", min=0, help="Merge lists with fewer people than this (0 = never).")
    ] = 0,
    check_models: Annotated[bool, typer.Option(
        "--check-models", help="List every two-way model and whether its estimate exists.")
    ] = False,
    average: AverageOption = False,
    latent: LatentOption = False,
    as_json: JsonOption = False,
) -> None:
    """Estimate from a capture-history table you already have."""
    _check_method(method)
    with user_errors():
        table = read_counts_csv(counts)
        if check_models:
            if len(table.lists) > 5:
                raise AccordError("--check-models lists every model: at most 5 lists",
                                  hint="drop --check-models, or merge lists first")
            from accord.research.estimate.design import model_name

            rows = [{"model": model_name(table.lists, m), "status": s.value}
                    for m, s in check_all_models(table).items()]
            if as_json:
                print_json(rows)
            else:
                t = Table(title="Two-way models: does the estimate exist?", title_justify="left")
                t.add_column("model")
                t.add_column("status")
                for r in rows:
                    t.add_row(r["model"], r["status"])
                console.print(t)
            return
        opts = EstimateOptions(
            method=method, model=parse_model(table.lists, model) if model else None,
            pthresh=pthresh, level=level, bootstrap=bootstrap, resample=resample, seed=seed,
            min_list_size=min_list_size, average=average, latent=latent,
        )
        res = _progress_run(opts, lambda tick: estimate(table, opts, tick))
    if as_json:
        print_json(res.to_dict())
    else:
        _print_result(res)
    if not res.ok:
        raise typer.Exit(code=3)


def _print_hub(summary: dict[str, Any]) -> None:
    ov = summary["overall"]
    console.print(f"partners (lists): {', '.join(summary['partners'])}", highlight=False)
    ch = summary["capture_histories"]
    t = Table(title="People by the partners that saw them (capture histories)",
              title_justify="left")
    t.add_column("partners")
    t.add_column("people", justify="right")
    for row in ch["rows"]:
        t.add_row(row["lists"], _num(row["people"]) if row["people"] is not None else "<hidden>")
    t.add_row("total", _num(ch["total"]) if ch["total"] is not None else "<hidden>")
    console.print(t)
    for note in ch["notes"]:
        console.print(f"[dim]{plain(note)}[/]", markup=True, highlight=False)
    est = ov.get("estimate")
    if est and est.get("total") is not None and not ov["withheld"]:
        lo, hi = est["interval"]
        console.print(f"people seen: {_num(ov['seen'])}; estimated total: {_num(est['total'])} "
                      f"({est['level']:.0%} interval {_num(lo)} to {_num(hi)})",
                      highlight=False)
        console.print(f"model: {est['model']}\nwhy: {est['reason']}", highlight=False)
        for note in est["notes"]:
            console.print(f"[yellow]note:[/] {plain(note)}", markup=True, highlight=False)
        if est.get("model_choice", {}).get("summary"):
            console.print(f"model choice: {est['model_choice']['summary']}", highlight=False)
        if est.get("latent_class"):
            lc = est["latent_class"]
            console.print(f"latent-class model: {_num(lc['total'])} ({_num(lc['interval'][0])} "
                          f"to {_num(lc['interval'][1])})", highlight=False)
    else:
        console.print(f"people seen: {_num(ov['seen'])}; no estimate: {ov['withheld']}",
                      highlight=False)
        if est:
            console.print(f"[dim]reason: {plain(est['reason'])}[/]", markup=True, highlight=False)
    for why in (est or {}).get("distrust", []):
        console.print(f"[bold yellow]cannot be trusted:[/] {plain(why)}", markup=True, highlight=False)
    if summary["strata"]:
        by = summary["parameters"]["by"]
        t = Table(title="By stratum", title_justify="left")
        for c in by:
            t.add_column(c)
        t.add_column("seen", justify="right")
        t.add_column("estimated total", justify="right")
        t.add_column("interval", justify="right")
        for s in summary["strata"]:
            se = s.get("estimate")
            cells = [s["stratum"][c] for c in by] + [_num(s["seen"])]
            if s["withheld"] or not se:
                cells += ["-", s["withheld"] or ""]
            else:
                cells += [_num(se["total"]), f"{_num(se['interval'][0])} to "
                                             f"{_num(se['interval'][1])}"]
            t.add_row(*cells)
        console.print(t)
    for c in summary["caveats"]:
        console.print(f"[dim]- {plain(c)}[/]", markup=True, highlight=False)


@app.callback()
def pipeline(
    ctx: typer.Context,
    hub: HubOption = DEFAULT_HUB,
    by: Annotated[str, typer.Option(
        "--by", help="Also estimate per stratum, e.g. 'sex,age_group'.")] = "",
    method: MethodOption = "stepwise",
    bootstrap: BootOption = 0,
    seed: SeedOption = 20130101,
    average: AverageOption = False,
    latent: LatentOption = False,
    threshold: Annotated[int, typer.Option(
        "--threshold", min=2, help="Smallest published count of people seen.")] = 10,
    min_list_size: Annotated[int, typer.Option(
        "--min-list-size", min=0, help="Merge partners with fewer people than this.")] = 10,
    actor: Annotated[str, typer.Option("--actor", help="Who makes this release.")] = "",
    privacy: Annotated[str, typer.Option(
        "--privacy", help="dp (default): seen counts from one noisy draw per data version, safe "
                         "to repeat; suppression: exact counts, only for a hub's first release "
                         "of estimates.")] = "dp",
    rho: Annotated[float | None, typer.Option(
        "--rho", help="Privacy cost (zCDP rho) of the data version's draw (default 0.005; "
                      "--privacy dp only).")
    ] = None,
    as_json: JsonOption = False,
    server: ServerOption = None,
    token_file: TokenFileOption = None,
) -> None:
    """Estimate from the hub's linked persons (each partner is a list)."""
    if ctx.invoked_subcommand is not None:
        return
    _check_method(method)
    if privacy not in ("dp", "suppression"):
        raise typer.BadParameter("use dp or suppression", param_hint="--privacy")
    from accord.store import open_store

    with user_errors():
        # Built (and so checked) before anything is sent or read: the server builds the same.
        opts = PipelineOptions.of(
            by=by.split(","), threshold=threshold, min_list_size=min_list_size, method=method,
            bootstrap=bootstrap, seed=seed, average=average, latent=latent, privacy=privacy,
            rho=rho, actor=actor or os.environ.get("USER", "cli"))
        if server:  # the shared hub's server runs estimate_hub as the token's user
            summary = call_json(server, token_file, "POST", "/api/estimate", {
                "by": [c.strip() for c in by.split(",") if c.strip()], "method": method,
                "bootstrap": bootstrap, "seed": seed, "average": average, "latent": latent,
                "threshold": threshold, "min_list_size": min_list_size, "privacy": privacy,
                "rho": rho})
            if as_json:
                print_json(summary)
            else:
                _print_hub(summary)
            return
        require_hub(hub)
        with open_store(hub) as store:
            summary = _progress_run(opts.estimate, lambda tick: estimate_hub(store, opts, tick))
            rel = store.record_release(
                "estimate", opts.parameters(),
                {"overall": summary["overall"], "strata": summary["strata"]},
                actor or os.environ.get("USER", "cli"),
            )
        summary["release_id"] = rel
    if as_json:
        print_json(summary)
    else:
        _print_hub(summary)
