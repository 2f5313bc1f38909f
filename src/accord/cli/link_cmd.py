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
    check_file_name,
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
    unit_files: Annotated[list[Path] | None, typer.Option(
        "--unit-file", help="Run as the linkage unit: link these partners' unit files "
        "(`accord ingest --linkage-unit-out`; repeatable) instead of a hub, and write the "
        "persons to --persons-out.")] = None,
    persons_out: Annotated[Path | None, typer.Option(
        "--persons-out", help="With --unit-file: the persons file to send to the hub.")] = None,
    persons: Annotated[Path | None, typer.Option(
        "--persons", help="At the hub: take the persons from the linkage unit's file instead of "
        "linking encodings the hub holds.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Link all contributions: persons table with match scores (never two records of one
    partner joined unless they share a pseudonym).

    With --unit-file / --persons the linkage runs at a linkage unit apart from the hub
    (docs/linkage.md, Threat model)."""
    if persons_out is not None and not unit_files:
        with user_errors():
            raise AccordError("--persons-out needs --unit-file",
                              hint="it names the linkage unit's output")
    if unit_files or persons is not None:
        _unit_layout(hub, unit_files or [], persons_out, persons, schema_file, threshold,
                     unsafe_encoding, as_json)
        return
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


def _unit_layout(hub: Path, unit_files: list[Path], persons_out: Path | None,
                 persons: Path | None, schema_file: Path | None, threshold: float | None,
                 unsafe_encoding: bool, as_json: bool) -> None:
    """The linkage-unit layout: link unit files at the unit, or import its persons at the hub."""
    from accord.link.unit import import_persons, link_units, read_persons

    with user_errors():
        if unit_files and persons is not None:
            raise AccordError("--unit-file runs at the linkage unit and --persons at the hub",
                              hint="give one of them")
        if unit_files:
            if persons_out is None:
                raise AccordError("--unit-file needs --persons-out",
                                  hint="name the persons file to send to the hub")
            check_file_name(persons_out, "--persons-out")
            if persons_out.exists():
                raise AccordError(f"{persons_out} already exists",
                                  hint="choose a new --persons-out file")
            schema = load_schema(schema_file) if schema_file else None
            with make_progress(transient=True) as bar:
                task = bar.add_task("linking", total=None)
                result = link_units(unit_files, schema, MatchConfig(threshold=threshold),
                                    progress=lambda m: bar.update(task, description=m),
                                    allow_unsafe=unsafe_encoding)
            import pyarrow.parquet as pq

            persons_out.parent.mkdir(parents=True, exist_ok=True)
            pq.write_table(result.persons, persons_out)
            out = {**result.summary.as_dict(), "replaced": result.replaced,
                   "persons_file": str(persons_out)}
            if result.unsafe:
                out["unsafe_encoding"] = result.unsafe
        else:
            assert persons is not None
            require_hub(hub)
            table = read_persons(persons)
            with open_store(hub) as store:
                out = import_persons(store, table)
    if as_json:
        print_json(out)
        return
    t = Table(title="linkage (linkage unit)" if unit_files else "persons from the linkage unit",
              show_header=False)
    for k, v in out.items():
        t.add_row(str(k).replace("_", " "), f"{v:,}" if isinstance(v, int) else str(v))
    console.print(t)
