"""``accord standard``: inspect the data standard."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from accord.cli.common import console, user_errors
from accord.standard import load_standard
from accord.standard.dictionary import dictionary_markdown

app = typer.Typer(help="Inspect the data standard (fields, code lists, roles, crosswalk).",
                  no_args_is_help=True)


@app.command("dictionary")
def dictionary(
    standard: Annotated[
        Path | None, typer.Option("--standard", help="A custom standard file.")
    ] = None,
    out: Annotated[Path | None, typer.Option("--out", help="Write to a file instead.")] = None,
) -> None:
    """Print the data dictionary as Markdown."""
    with user_errors():
        text = dictionary_markdown(load_standard(standard))
    if out:
        out.write_text(text, encoding="utf-8")
        console.print(f"wrote {out}")
    else:
        typer.echo(text)


@app.command("validate")
def validate(path: Annotated[Path, typer.Argument(help="Standard YAML file to check.")]) -> None:
    """Check a standard file and report the first problem."""
    with user_errors():
        s = load_standard(path)
    console.print(f"{path}: valid standard {s.name} {s.version} ({len(s.fields)} fields)")
