"""``accord release microdata``: k-anonymous, l-diverse microdata from the hub, on record.

Registered in ``cli/main.py`` on the ``release`` group: ``release_dp_cmd.app.command("microdata")``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from accord.cli.anonymise_cmd import parse_weights, print_loss
from accord.cli.common import (
    HubOption,
    JsonOption,
    OverwriteOption,
    console,
    make_progress,
    print_json,
    refuse_existing,
    require_hub,
    user_errors,
)
from accord.cli.engine_opts import (
    EngineOption,
    SparkConfOption,
    SparkMasterOption,
    check_engine,
    group_engine,
)
from accord.errors import StoreError
from accord.release.anonymise.microdata import (
    DEFAULT_MAX_LOSS,
    MicrodataSettings,
    release_microdata,
)
from accord.standard import load_standard


def _split(value: str | None) -> tuple[str, ...]:
    return tuple(v.strip() for v in (value or "").split(",") if v.strip())


def microdata(
    out: Annotated[Path, typer.Option("--out", help="Directory for the released files.")],
    hub: HubOption = Path("accord-hub.duckdb"),
    k: Annotated[int, typer.Option("--k", min=1, help="Minimum class size (CTDC used 11).")] = 11,
    l: Annotated[int, typer.Option("--l", min=1, help="Minimum l-diversity of each sensitive "  # noqa: E741
                                   "field.")] = 2,
    l_kind: Annotated[str, typer.Option("--l-kind", help="distinct or entropy.")] = "distinct",
    max_suppression: Annotated[float, typer.Option(
        "--max-suppression", min=0.0, max=1.0, help="Largest share of records to suppress.")
    ] = 0.05,
    qi: Annotated[str | None, typer.Option(
        "--qi", help="Quasi-identifiers (default: the standard's).")] = None,
    sensitive: Annotated[str | None, typer.Option(
        "--sensitive", help="Sensitive fields to release and keep l-diverse (default: the "
        "standard's; pass '' for none).")] = None,
    suppression: Annotated[str, typer.Option(
        "--suppression", help="cells: suppress the fewest cells of the outliers; records: "
        "blank the outliers' every quasi-identifier.")] = "cells",
    hxl: Annotated[bool, typer.Option("--hxl", help="Add an HXL hashtag row to the CSV.")
                   ] = False,
    weights: Annotated[str | None, typer.Option(
        "--weights", help="Which quasi-identifiers matter most: FIELD=N,... (default 1 each; "
        "ARX's attribute weights). The search loses heavy fields' information last.")] = None,
    max_loss: Annotated[float, typer.Option(
        "--max-loss", min=0.0, max=1.0, help="Refuse when more than this share of the "
        "quasi-identifiers' information is lost (normalised non-uniform entropy).")
    ] = DEFAULT_MAX_LOSS,
    force: Annotated[bool, typer.Option(
        "--force", help="Release even when more than --max-loss of the information is lost.")
    ] = False,
    actor: Annotated[str, typer.Option("--actor", help="Who makes this release (recorded).")
                     ] = "hub-steward",
    as_json: JsonOption = False,
    engine: EngineOption = "embedded",
    spark_master: SparkMasterOption = "local[*]",
    spark_conf: SparkConfOption = None,
    overwrite: OverwriteOption = False,
) -> None:
    """Generalise and suppress the hub's records until k-anonymous and l-diverse, losing least;
    write Parquet, CSV and a data dictionary; record the release in the hub."""
    with user_errors():
        refuse_existing(out, overwrite=overwrite, folder=True)
        if l_kind not in ("distinct", "entropy") or suppression not in ("cells", "records"):
            raise StoreError("--l-kind must be distinct or entropy; --suppression cells or "
                             "records", hint="--l-kind distinct --suppression cells")
        check_engine(engine, spark_master, spark_conf)  # before the hub is read
        require_hub(hub)
        from accord.store import open_store

        settings = MicrodataSettings(
            k=k, l=l, l_kind=l_kind, max_suppression=max_suppression,  # type: ignore[arg-type]
            qi=_split(qi), sensitive=None if sensitive is None else _split(sensitive), hxl=hxl,
            suppression=suppression,  # type: ignore[arg-type]
            weights=tuple(parse_weights(weights).items()),
            max_loss=None if force else max_loss)
        with group_engine(engine, spark_master, spark_conf) as groups, open_store(hub) as store, \
                make_progress(transient=True) as bar:
            task = bar.add_task("searching the lattice", total=None)
            rel = release_microdata(
                store, out, load_standard(), settings, actor,
                progress=lambda done, total: bar.update(task, completed=done, total=total),
                groups=groups)
    summary = {"release_id": rel.release_id, "files": rel.files, **rel.result.summary()}
    if as_json:
        print_json(summary)
        return
    t = Table(title=f"Microdata release {rel.release_id}")
    t.add_column("measure")
    t.add_column("value", justify="right")
    t.add_row("records / people", f"{rel.result.table.num_rows} / {rel.result.people}")
    t.add_row("k achieved (people / records)", f"{rel.result.k} / {rel.result.k_records}")
    t.add_row("l achieved, recorded values (distinct / entropy)",
              f"{rel.result.l_distinct} / {rel.result.l_entropy:.2f}")
    t.add_row("suppressed records (every cell)",
              f"{rel.result.suppressed_records} ({rel.result.suppressed_share:.2%})")
    t.add_row("suppressed cells / records touched",
              f"{rel.result.suppressed_cells} / {rel.result.records_with_suppressed_cells}")
    for col, lv in rel.result.levels.items():
        t.add_row(f"level of {col}", f"{lv} of {rel.result.level_labels[col] - 1}")
    t.add_row("non-uniform entropy (normalised)",
              f"{rel.result.utility.non_uniform_entropy_normalised:.3f}")
    t.add_row("discernibility", f"{rel.result.utility.discernibility:,.0f}")
    t.add_row("average class size", f"{rel.result.utility.average_class_size:,.1f}")
    console.print(t)
    print_loss(rel.result)
    for name, path in rel.files.items():
        console.print(f"{name}: {path}")
