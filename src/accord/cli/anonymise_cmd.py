"""``accord anonymise``: k-anonymise / l-diversify any CSV with ARX-format hierarchies."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Annotated

import pyarrow as pa
import pyarrow.csv as pcsv
import typer
from rich.table import Table

from accord.cli.common import JsonOption, console, make_progress, print_json, user_errors
from accord.errors import InputFileError
from accord.release.anonymise import AnonymisationResult, anonymise, load_hierarchies
from accord.safe_csv import write_arrow_csv


def _split(value: str | None) -> list[str]:
    return [v.strip() for v in (value or "").split(",") if v.strip()]


def read_csv_as_strings(path: Path, sep: str) -> pa.Table:
    """Read every column as text: codes like ``01`` must not become numbers."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            header = next(csv.reader(fh, delimiter=sep))
        return pcsv.read_csv(
            path, read_options=pcsv.ReadOptions(encoding="utf8"),
            parse_options=pcsv.ParseOptions(delimiter=sep),
            convert_options=pcsv.ConvertOptions(
                column_types={h.lstrip("\ufeff"): pa.string() for h in header},
                strings_can_be_null=False))
    except (OSError, StopIteration, pa.ArrowInvalid) as err:
        raise InputFileError(f"cannot read {path.name} as a '{sep}'-separated table",
                             hint="Check the file and the --sep option.") from err


def _print(result: AnonymisationResult, out: Path) -> None:
    t = Table(title=f"Released {result.table.num_rows} records to {out}")
    t.add_column("measure")
    t.add_column("value", justify="right")
    t.add_row("k achieved", str(result.k))
    t.add_row("l achieved (distinct / entropy)",
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
                      "enough to hide among, so their sensitive values are suppressed too.")


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
    as_json: JsonOption = False,
) -> None:
    """Generalise and suppress a table until it is k-anonymous (and l-diverse), losing least."""
    with user_errors():
        if l_kind not in ("distinct", "entropy") or metric not in ("entropy", "loss") or \
                suppression not in ("cells", "records"):
            raise InputFileError("--l-kind must be distinct or entropy; --metric entropy or "
                                 "loss; --suppression cells or records",
                                 hint="For example: --l-kind distinct --metric entropy "
                                 "--suppression cells")
        qi_cols, sens_cols = _split(qi), _split(sensitive)
        table = read_csv_as_strings(data, sep)
        hier = load_hierarchies(hierarchies, qi_cols, sep=";")
        with make_progress(transient=True) as bar:
            task = bar.add_task("searching the lattice", total=None)
            result = anonymise(
                table, qi_cols, hier, k=k, sensitive=sens_cols, l=l,
                l_kind=l_kind,  # type: ignore[arg-type]
                max_suppression=max_suppression, metric=metric,  # type: ignore[arg-type]
                suppression=suppression,  # type: ignore[arg-type]
                multi_valued=_split(multi_valued),
                progress=lambda done, total: bar.update(task, completed=done, total=total))
        out.parent.mkdir(parents=True, exist_ok=True)
        write_arrow_csv(out, result.table, delimiter=sep)  # formula cells neutralised
    if as_json:
        print_json({"out": str(out), **result.summary()})
    else:
        _print(result, out)
