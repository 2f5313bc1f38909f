"""``accord link``: link every contribution in the hub into persons."""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from accord.cli.common import (
    DEFAULT_HUB,
    HubOption,
    JsonOption,
    console,
    make_progress,
    print_json,
    require_hub,
    user_errors,
)
from accord.errors import AccordError
from accord.link.hub import link_hub
from accord.link.hub_evaluate import evaluate_hub
from accord.link.match import MatchConfig
from accord.link.spark import SparkSettings, parse_conf, refuse_secrets, spark_engine
from accord.protect.encoding import load_schema
from accord.store import open_store


def link(
    hub: HubOption = DEFAULT_HUB,
    threshold: Annotated[float | None, typer.Option(
        "--threshold", min=0.0, max=1.0,
        help="Minimum match probability; chosen from the data when not given.")] = None,
    schema_file: Annotated[Path | None, typer.Option(
        "--schema", help="The encoding schema the partners used (default: Accord's).")] = None,
    evaluate: Annotated[Path | None, typer.Option(
        "--evaluate", help="Ground truth CSV (partner, case_id, person_id) to score against.")]
    = None,
    keys: Annotated[Path | None, typer.Option(
        "--keys", help="With --evaluate: folder of partner keys (<partner>/partner.key).")] = None,
    unsafe_encoding: Annotated[bool, typer.Option(
        "--unsafe-encoding", help="Accept an encoding schema the attack harness shows to be unsafe "
        "(e.g. name parts encoded on their own, no diffusion); the audit log records it.")] = False,
    engine: Annotated[str, typer.Option(
        "--engine", help="Where the linkage runs: 'embedded' (this machine) or 'spark' "
        "(needs accord[spark] and Java 17; same persons and pairs).")] = "embedded",
    spark_master: Annotated[str, typer.Option(
        "--spark-master", help="With --engine spark: the Spark master URL.")] = "local[*]",
    spark_conf: Annotated[list[str] | None, typer.Option(
        "--spark-conf", help="With --engine spark: a Spark setting key=value (repeatable).")]
    = None,
    as_json: JsonOption = False,
) -> None:
    """Link all contributions: persons table with match scores (never two records of one
    partner joined unless they share a pseudonym)."""
    with user_errors():
        schema = load_schema(schema_file) if schema_file else None
        if engine not in ("embedded", "spark"):
            raise AccordError(f"unknown engine {engine!r}", hint="use embedded or spark")
        settings = SparkSettings(spark_master, parse_conf(spark_conf or []))
        refuse_secrets(settings)  # before anything else: the secret never goes near a cluster
        require_hub(hub)
        with ExitStack() as stack:
            band_engine = None
            if engine == "spark":
                band_engine = stack.enter_context(spark_engine(settings))
            store = stack.enter_context(open_store(hub))
            bar = stack.enter_context(make_progress(transient=True))
            task = bar.add_task("linking", total=None)
            summary = link_hub(store, schema, MatchConfig(threshold=threshold, engine=band_engine),
                               progress=lambda m: bar.update(task, description=m),
                               allow_unsafe=unsafe_encoding)
            scores = None
            if evaluate is not None:
                scores = evaluate_hub(store, evaluate, keys or hub.parent)
    out = summary.as_dict()
    from accord.protect.encoding.schema import scale_note

    note = scale_note(summary.encoded_records)  # also in the audit record
    if note:
        out["privacy_note"] = note
    if scores is not None:
        out["evaluation"] = scores.as_dict()
    if as_json:
        print_json(out)
        return
    t = Table(title="linkage", show_header=False)
    t.add_row("records", f"{summary.records:,}")
    t.add_row("records with an encoding", f"{summary.encoded_records:,}")
    t.add_row("persons", f"{summary.persons:,}")
    for k, v in summary.pairs.items():
        t.add_row(f"linked {k.replace('|', ' - ')}", f"{v:,} (threshold {summary.thresholds[k]})")
    if scores is not None:
        t.add_row("precision / recall / F1",
                  f"{scores.precision:.4f} / {scores.recall:.4f} / {scores.f1:.4f}")
    if note:
        t.add_row("privacy note", note)
    console.print(t)
