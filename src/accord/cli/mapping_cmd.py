"""``accord mapping``: propose a mapping for a partner export."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from accord.cli.common import OverwriteOption, console, refuse_existing, user_errors
from accord.errors import MappingError
from accord.standard import load_standard

app = typer.Typer(help="Write mapping files (docs/mapping.md).", no_args_is_help=True)


def _constants(items: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip() or not value.strip():
            raise MappingError(f"--set '{item}' is not FIELD=VALUE",
                               hint="e.g. --set country_of_registration=TH --set consent_statistics=yes")
        out[name.strip()] = value.strip()
    return out


@app.command("suggest")
def suggest(
    export: Annotated[Path, typer.Argument(help="The partner export (CSV, XLSX or Kobo/ODK JSON).")],
    out: Annotated[Path | None, typer.Option("--out", help="Write the mapping here (default: print it).")] = None,
    form: Annotated[Path | None, typer.Option(
        "--form", help="The XLSForm the export came from: its labels are matched too.")] = None,
    set_: Annotated[list[str] | None, typer.Option(
        "--set", help="FIELD=VALUE: a constant the export does not hold (country, consent basis); repeatable.")] = None,
    overwrite: OverwriteOption = False,
) -> None:
    """Propose a mapping by header names, form labels and values, to review and edit.

    Every guess is listed at the top of the file. Identifier fields are proposed from names and
    labels only and always called out; consent is never assumed (give it with --set, or map it).
    """
    from accord.ingest.suggest import suggest_mapping, suggestion_yaml

    with user_errors():
        refuse_existing(out, overwrite=overwrite)
        if not export.exists():
            raise MappingError(f"no such export: {export}")
        s = suggest_mapping(export, load_standard(), form=form, constants=_constants(set_ or []))
        text = suggestion_yaml(s)
        if out:
            out.write_text(text, encoding="utf-8")
    if out:
        console.print(f"wrote {out}: {len(s.fields)} fields proposed; review the notes at the top")
    else:
        typer.echo(text)
