"""``accord tables``: published tables in the exchange formats agencies use."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from accord.cli.common import console, user_errors
from accord.errors import AccordError

app = typer.Typer(help="Exchange formats for published tables (SDMX-CSV, HXL, data package).",
                  no_args_is_help=True)


@app.command("export")
def export(
    published: Annotated[Path, typer.Argument(help="Published tables: the JSON `accord stats --json` prints.")],
    out: Annotated[Path, typer.Option("--out", help="Directory to write the files into.")],
    period: Annotated[str, typer.Option("--period", help="Reporting period the data cover (2023 or 2023-06).")],
    ref_area: Annotated[str, typer.Option(
        "--ref-area", help="Reference area (ISO 3166 alpha-3), or _T for all areas of the collaborative.")] = "_T",
) -> None:
    """Write SDMX-CSV with its SDMX-ML structure (UNODC trafficking-in-persons dimensions), an
    HXL-tagged CSV, a JSON Schema and a Frictionless datapackage.json. Only published values are
    written; a hidden cell stays hidden (empty, CONF_STATUS C)."""
    from accord.release.interop import build_export, export_tables

    with user_errors():
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
