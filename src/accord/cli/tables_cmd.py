"""``accord tables``: published tables in the exchange formats agencies use."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from accord.cli.budget_cmd import default_actor
from accord.cli.common import (
    DEFAULT_HUB,
    HubOption,
    JsonOption,
    OverwriteOption,
    console,
    print_json,
    refuse_existing,
    user_errors,
)
from accord.errors import AccordError

app = typer.Typer(help="Tables of counts: import (GLOTIP), rates per 100,000, export (SDMX-CSV, HXL, data package).",
                  no_args_is_help=True)


@app.command("export")
def export(
    published: Annotated[Path, typer.Argument(help="Published tables: the JSON `accord stats --json` prints.")],
    out: Annotated[Path, typer.Option("--out", help="Directory to write the files into.")],
    period: Annotated[str, typer.Option("--period", help="Reporting period the data cover (2023 or 2023-06).")],
    ref_area: Annotated[str, typer.Option(
        "--ref-area", help="Reference area (ISO 3166 alpha-3), or _T for all areas of the collaborative.")] = "_T",
    overwrite: OverwriteOption = False,
) -> None:
    """Write SDMX-CSV with its SDMX-ML structure (UNODC trafficking-in-persons dimensions), an
    HXL-tagged CSV, a JSON Schema and a Frictionless datapackage.json. Only published values are
    written; a hidden cell stays hidden (empty, CONF_STATUS C)."""
    from accord.release.interop import build_export, export_tables

    with user_errors():
        refuse_existing(out, overwrite=overwrite, folder=True)
        try:
            data = json.loads(published.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            raise AccordError(f"{published} is not a readable JSON file of published tables",
                              hint="write one with `accord stats --json > tables.json`") from None
        files = export_tables(data, out, period, ref_area)
        skipped = build_export(data, period, ref_area).skipped
    for kind, path in files.items():
        console.print(f"{kind:12} {path}")
    if skipped:
        console.print(f"not in the trafficking-in-persons structure, left out: {', '.join(skipped)}")


@app.command("ingest")
def ingest(
    table: Annotated[Path, typer.Argument(help="Aggregate table CSV (country, year, sex, age_group, "
                                               "form_of_exploitation, count) or a UNODC GLOTIP export.")],
    source: Annotated[str, typer.Option("--source", help="Name of the table's source (e.g. glotip).")],
    hub: HubOption = DEFAULT_HUB,
    country: Annotated[list[str] | None, typer.Option(
        "--country", help="NAME=CODE: an ISO 3166 alpha-2 code for a country the table names without one.")] = None,
) -> None:
    """Validate an aggregate table against the standard's code lists and store it in the hub.

    Unknown codes and negative counts refuse the whole table, naming row and column; `<5`
    suppression marks are kept as marks."""
    from accord.ingest.aggregates import read_aggregates
    from accord.standard import load_standard
    from accord.store import open_store
    from accord.store.aggregates import add_aggregates

    with user_errors():
        overrides: dict[str, str] = {}
        for item in country or []:
            name, sep, code = item.partition("=")
            if not sep or not name.strip() or not code.strip():
                raise AccordError(f"--country '{item}' is not NAME=CODE", hint="e.g. --country Sark=GG")
            overrides[name.strip()] = code.strip()
        result = read_aggregates(table, load_standard(), overrides)
        with open_store(hub) as store:
            add_aggregates(store, result.table, source)
    console.print(f"{table.name}: {result.rows_in:,} rows = {result.table.num_rows:,} counts stored "
                  f"({result.marks:,} kept as suppression marks) + "
                  f"{sum(result.out_of_scope.values()):,} out of scope + {result.duplicates:,} exact repeats + "
                  f"{result.conflicting:,} left out (same key given with different values)")
    if result.conflicting:
        console.print(f"  the first key given with different values is at row {result.first_conflict}; "
                      "correct the table to keep those counts")
    for what, n in result.out_of_scope.most_common():
        console.print(f"  out of scope: {what}: {n:,}")


@app.command("rates")
def rates_command(
    hub: HubOption = DEFAULT_HUB,
    source: Annotated[str | None, typer.Option("--source", help="Only this source.")] = None,
    out: Annotated[Path | None, typer.Option("--out", help="Write the rates as CSV here.")] = None,
    overwrite: OverwriteOption = False,
) -> None:
    """Detected victims per 100,000 population, by country and year, from the aggregate tables
    (World Bank population totals shipped with Accord)."""
    from accord.research.rates import rates
    from accord.store import open_store

    with user_errors(), open_store(hub, read_only=True) as store:
        refuse_existing(out, overwrite=overwrite)
        got = rates(store, source)
    header = ["source", "country", "year", "count", "mark", "population", "rate_per_100k", "upper_bound_per_100k"]
    rows = [[r.source, r.country, r.year, "" if r.count is None else r.count, r.mark or "", r.population or "",
             "" if r.rate is None else f"{r.rate:.3f}", "" if r.upper_bound is None else f"{r.upper_bound:.3f}"]
            for r in got]
    _write_csv(header, rows, out)


def _write_csv(header: list[str], rows: list[list[Any]], out: Path | None) -> None:
    """Country-year rows as CSV to ``out`` (``safe_csv.write_csv``, as every CSV Accord writes: a
    source name is the user's text), or to the terminal, neutralised the same way."""
    import csv
    import sys

    from accord.safe_csv import neutralise, write_csv

    if out:
        with user_errors():
            write_csv(out, header, rows)
        console.print(f"wrote {out}: {len(rows):,} country-years")
    else:
        w = csv.writer(sys.stdout, lineterminator="\n")
        w.writerow(header)
        w.writerows([neutralise(v) for v in r] for r in rows)


@app.command("combine")
def combine_command(
    hub: HubOption = DEFAULT_HUB,
    source: Annotated[list[str] | None, typer.Option(
        "--source", help="Aggregate source to combine (repeatable); default: every source in the hub.")] = None,
    no_hub: Annotated[bool, typer.Option(
        "--no-hub", help="Leave the hub's own records out (aggregate tables only).")] = False,
    threshold: Annotated[int, typer.Option("--threshold", help="Counts from 1 to this minus 1 are hidden.")] = 10,
    out: Annotated[Path | None, typer.Option("--out", help="Write the combined indicators as CSV here.")] = None,
    as_json: JsonOption = False,
    overwrite: OverwriteOption = False,
) -> None:
    """Detected victims (and per 100,000 population) by country and year, from the hub's records
    and the aggregate tables together. Each country-year comes from exactly one source; a
    country-year two sources cover is refused (they cannot be told apart, so adding them could
    count the same victims twice). Small counts are hidden as in every published table."""
    from accord.research.combined import combine
    from accord.store import open_store

    with user_errors():
        refuse_existing(out, overwrite=overwrite)
        if out is not None and out.is_dir():  # checked before the release is put on record
            raise AccordError(f"--out {out} is a directory; give the CSV file to write",
                              hint="for example --out combined.csv")
        with open_store(hub) as store:
            got = combine(store, threshold, source or None, include_hub=not no_hub, actor=default_actor())
    header = ["country", "year", "source", "count", "mark", "population", "rate_per_100k"]
    rows = [[c.country, c.year, c.source, "" if c.count is None else c.count, c.mark or "",
             c.population or "", "" if c.rate is None else f"{c.rate:.3f}"] for c in got.cells]
    if as_json:
        print_json({"release_id": got.release_id, "parameters": got.parameters,
                    "hub_unplaced": got.unplaced,
                    "cells": [dict(zip(header, r, strict=True)) for r in rows]})
        return
    _write_csv(header, rows, out)
    console.print(f"release {got.release_id}: sources {', '.join(got.sources)}; hub counted as "
                  f"{got.unit}; {got.unplaced:,} hub unit(s) without a country or year of "
                  "registration are in no cell", highlight=False)
