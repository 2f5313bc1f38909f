"""``accord anonymise``: k-anonymise / l-diversify any CSV with ARX-format hierarchies."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated

import pyarrow as pa
import pyarrow.csv as pcsv
import typer
from rich.table import Table

from accord.cli.common import (
    JsonOption,
    OverwriteOption,
    check_separator,
    console,
    err_console,
    make_progress,
    plain,
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
from accord.errors import AccordError, InputFileError
from accord.ingest.raw import check_header
from accord.input_files import refuse_special_file
from accord.release.anonymise import AnonymisationResult, anonymise, load_hierarchies
from accord.release.anonymise.inputs import count_columns, identifier_columns
from accord.safe_csv import write_arrow_csv


def _split(value: str | None) -> list[str]:
    return [v.strip() for v in (value or "").split(",") if v.strip()]


def read_csv_as_strings(path: Path, sep: str) -> pa.Table:
    """Read every column as text: codes like ``01`` must not become numbers."""
    check_separator(sep)
    refuse_special_file(path, "table")
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            header = next(csv.reader(fh, delimiter=sep))
        check_header(header, path.name)  # a repeated name (Arrow's exit 70): ingest's one check
        return pcsv.read_csv(
            path, read_options=pcsv.ReadOptions(encoding="utf8"),
            parse_options=pcsv.ParseOptions(delimiter=sep),
            convert_options=pcsv.ConvertOptions(
                column_types={h.lstrip("\ufeff"): pa.string() for h in header},
                strings_can_be_null=False))
    except (OSError, StopIteration, pa.ArrowInvalid) as err:
        raise InputFileError(f"cannot read {path.name} as a '{sep}'-separated table",
                             hint="Check the file and the --sep option.") from err


def parse_weights(value: str | None) -> dict[str, float]:
    """``sex=5,age=3`` -> {"sex": 5.0, "age": 3.0}; the value is never echoed back."""
    out: dict[str, float] = {}
    for part in _split(value):
        name, sep, number = part.partition("=")
        try:
            weight = float(number)
        except ValueError:
            weight = float("nan")
        if not sep or not name.strip() or weight != weight:
            raise AccordError("--weights must be COLUMN=NUMBER pairs, comma-separated",
                              hint="For example: --weights sex=5,age=3 (the others weigh 1).")
        out[name.strip()] = weight
    return out


def refuse_counts(table: pa.Table, exclude: Sequence[str] = ()) -> None:
    """A table of counts is not microdata: refuse it before computing anything on it."""
    found = count_columns(table, exclude)
    if found:
        raise InputFileError(
            f"this looks like a table of counts, not one row per person (column(s) "
            f"{', '.join(found)} hold counts)",
            hint="k-anonymity and re-identification risk need record-level data (one row per "
            "person or case). For published tables of counts use `accord stats` on a hub, or "
            "check the small cells yourself.")


def print_loss(result: AnonymisationResult) -> None:
    """Say plainly how much of each quasi-identifier the release keeps."""
    t = Table(title="What the release keeps, per quasi-identifier")
    t.add_column("column")
    t.add_column("rows starred", justify="right")
    t.add_column("information lost", justify="right")
    t.add_column("weight", justify="right")
    for col in result.levels:
        t.add_row(col, f"{result.starred_share.get(col, 0.0):.0%}",
                  f"{result.column_loss.get(col, 0.0):.0%}",
                  f"{result.weights.get(col, 1.0):g}")
    console.print(t)
    lost = result.utility.non_uniform_entropy_normalised
    useless = [c for c, v in result.starred_share.items() if v >= 0.99]
    if lost >= 0.5 or useless:
        console.print(f"[yellow]warning:[/] this release keeps little: {lost:.0%} of the "
                      "quasi-identifiers' information is lost"
                      + (f"; starred in every row: {plain(', '.join(useless))}" if useless else "")
                      + ". Say which fields matter most with --weights COL=N, release fewer "
                      "fields, or lower k / l.", markup=True)


def _print(result: AnonymisationResult, out: Path) -> None:
    t = Table(title=f"Released {result.table.num_rows} records to {out}")
    t.add_column("measure")
    t.add_column("value", justify="right")
    t.add_row("k achieved", str(result.k))
    t.add_row("l achieved, recorded values (distinct / entropy)",
              f"{result.l_distinct} / {result.l_entropy:.2f}")
    t.add_row("suppression", result.suppression)
    t.add_row("suppressed records (every cell)", f"{result.suppressed_records} "
              f"({result.suppressed_share:.2%})")
    t.add_row("suppressed cells / records touched",
              f"{result.suppressed_cells} / {result.records_with_suppressed_cells}")
    for col, lv in result.levels.items():
        t.add_row(f"level of {col}", f"{lv} of {result.level_labels[col] - 1}")
    for name, value in result.utility.as_dict().items():
        t.add_row(name.replace("_", " "), f"{value:,.4f}")
    t.add_row("lattice nodes / evaluated",
              f"{result.search.nodes} / {result.search.evaluated}")
    console.print(t)
    if result.sensitive_hidden_in_suppressed:
        console.print("[yellow]note:[/] the suppressed records were too few or not diverse "
                      "enough to hide among, so their sensitive values are suppressed too.", markup=True)


def anonymise_command(
    data: Annotated[Path, typer.Argument(help="Input CSV file.", exists=True, dir_okay=False)],
    qi: Annotated[str, typer.Option("--qi", help="Quasi-identifier columns, comma-separated.")],
    hierarchies: Annotated[Path, typer.Option(
        "--hierarchies", help="Folder with one ARX hierarchy CSV per quasi-identifier.")],
    k: Annotated[int, typer.Option("--k", min=1, help="Minimum class size.")],
    out: Annotated[Path, typer.Option("--out", help="Output CSV file.")],
    sensitive: Annotated[str | None, typer.Option(
        "--sensitive", help="Sensitive columns, comma-separated (for l-diversity).")] = None,
    l: Annotated[int, typer.Option("--l", min=1, help="Minimum l-diversity.")] = 1,  # noqa: E741
    l_kind: Annotated[str, typer.Option(
        "--l-kind", help="distinct or entropy l-diversity.")] = "distinct",
    max_suppression: Annotated[float, typer.Option(
        "--max-suppression", min=0.0, max=1.0, help="Largest share of records to suppress.")
    ] = 0.0,
    metric: Annotated[str, typer.Option(
        "--metric", help="Loss to minimise: entropy (non-uniform entropy) or loss.")
    ] = "entropy",
    suppression: Annotated[str, typer.Option(
        "--suppression", help="cells: suppress the fewest cells of the outliers (local "
        "suppression); records: blank the outliers' every quasi-identifier.")] = "cells",
    multi_valued: Annotated[str | None, typer.Option(
        "--multi-valued", help="Sensitive columns holding sets ('a|b'): l-diversity is "
        "checked for each code as its own 0/1 flag.")] = None,
    sep: Annotated[str, typer.Option("--sep", help="Field separator of input and output.")
                   ] = ",",
    keep: Annotated[str | None, typer.Option(
        "--keep", help="Columns that look like direct identifiers (names, phones, e-mails, "
        "document numbers) to release anyway; others are dropped, or refused if sensitive.")
    ] = None,
    weights: Annotated[str | None, typer.Option(
        "--weights", help="Which quasi-identifiers matter most: COL=N,... (default 1 each; "
        "ARX's attribute weights). The search loses heavy columns' information last.")] = None,
    person: Annotated[str | None, typer.Option(
        "--person", help="Column naming the person of each record: k then counts distinct "
        "people, not records. Not released.")] = None,
    max_loss: Annotated[float | None, typer.Option(
        "--max-loss", help="Refuse when more than this share of the quasi-identifiers' "
        "information is lost (normalised non-uniform entropy).")] = None,
    as_json: JsonOption = False,
    engine: EngineOption = "embedded",
    spark_master: SparkMasterOption = "local[*]",
    spark_conf: SparkConfOption = None,
    overwrite: OverwriteOption = False,
) -> None:
    """Generalise and suppress a table until it is k-anonymous (and l-diverse), losing least."""
    with user_errors():
        refuse_existing(out, overwrite=overwrite)
        check_engine(engine, spark_master, spark_conf)  # before any data is read
        if l_kind not in ("distinct", "entropy") or metric not in ("entropy", "loss") or \
                suppression not in ("cells", "records"):
            raise InputFileError("--l-kind must be distinct or entropy; --metric entropy or "
                                 "loss; --suppression cells or records",
                                 hint="For example: --l-kind distinct --metric entropy "
                                 "--suppression cells")
        qi_cols, sens_cols = _split(qi), _split(sensitive)
        if not qi_cols:
            raise AccordError("--qi names no column",
                              hint="give the quasi-identifier columns, e.g. --qi sex,age,region")
        table = read_csv_as_strings(data, sep)
        refuse_counts(table, qi_cols)
        people = None
        if person is not None:
            if person not in table.column_names or person in (*qi_cols, *sens_cols):
                raise InputFileError(f"--person must name a column of the data that is neither "
                                     f"quasi-identifier nor sensitive: {person}",
                                     hint="Check the column name (it is case-sensitive).")
            people = [str(v) if v is not None else None for v in table.column(person).to_pylist()]
            table = table.drop_columns([person])  # who is who is never released
        keep_cols = set(_split(keep))
        # Quasi-identifiers are generalised through their hierarchy; every other column would be
        # published as it is, so those that look like direct identifiers are not.
        found = [f for f in identifier_columns(
            table, [c for c in table.column_names if c not in qi_cols]) if f.column not in keep_cols]
        named = [f for f in found if f.column in sens_cols]
        if named:
            raise InputFileError(
                f"{len(named)} sensitive column(s) look like direct identifiers: "
                + ", ".join(f"{f.column} ({f.looks_like}, by its {f.by})" for f in named),
                hint="A direct identifier is never released; drop it from --sensitive, or "
                "pass --keep " + ",".join(f.column for f in named) + " if it is not one.")
        dropped = [f.column for f in found]
        if dropped:
            table = table.drop_columns(dropped)
            err_console.print(
                f"[yellow]note:[/] dropped {len(found):,} column(s) that look like direct "
                "identifiers: " + ", ".join(plain(f"{f.column} ({f.looks_like}, by its {f.by})")
                                            for f in found)
                + "; pass --keep COL to release one as it is.", markup=True, highlight=False)
        hier = load_hierarchies(hierarchies, qi_cols, sep=";")
        with group_engine(engine, spark_master, spark_conf) as groups, \
                make_progress(transient=True) as bar:
            task = bar.add_task("searching the lattice", total=None)
            result = anonymise(
                table, qi_cols, hier, k=k, sensitive=sens_cols, l=l,
                l_kind=l_kind,  # type: ignore[arg-type]
                max_suppression=max_suppression, metric=metric,  # type: ignore[arg-type]
                suppression=suppression,  # type: ignore[arg-type]
                multi_valued=_split(multi_valued),
                progress=lambda done, total: bar.update(task, completed=done, total=total),
                weights=parse_weights(weights), max_loss=max_loss, people=people,
                groups=groups)
        out.parent.mkdir(parents=True, exist_ok=True)
        write_arrow_csv(out, result.table, delimiter=sep)  # formula cells neutralised
    if as_json:
        print_json({"out": str(out), **result.summary(), "dropped_identifiers": dropped})
    else:
        _print(result, out)
        print_loss(result)
