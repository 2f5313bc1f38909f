"""``accord standard``: inspect the data standard."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from accord.cli.common import OverwriteOption, console, refuse_existing, user_errors
from accord.errors import AccordError
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
    overwrite: OverwriteOption = False,
) -> None:
    """Print the data dictionary as Markdown."""
    with user_errors():
        refuse_existing(out, overwrite=overwrite)
        text = dictionary_markdown(load_standard(standard))
        if out:
            out.write_text(text, encoding="utf-8")
    if out:
        console.print(f"wrote {out}")
    else:
        typer.echo(text)


@app.command("xlsform")
def xlsform(
    out: Annotated[Path, typer.Option("--out", help="XLSForm file to write (.xlsx).")] = Path("accord-intake.xlsx"),
    mapping_out: Annotated[Path | None, typer.Option(
        "--mapping-out", help="Also write the mapping that reads this form's Kobo/ODK exports.")] = None,
    standard: Annotated[Path | None, typer.Option("--standard", help="A custom standard file.")] = None,
    overwrite: OverwriteOption = False,
) -> None:
    """Write the standard as an XLSForm for Kobo/ODK (checked with pyxform)."""
    from accord.standard.xlsform import write_kobo_mapping, write_xlsform

    with user_errors():
        refuse_existing(out, overwrite=overwrite)
        refuse_existing(mapping_out, overwrite=overwrite, option="--mapping-out")
        if out.suffix.lower() != ".xlsx":
            raise AccordError(f"--out {out} must name an .xlsx file", hint="for example --out intake.xlsx")
        s = load_standard(standard)
        write_xlsform(s, out)
        if mapping_out:
            write_kobo_mapping(s, mapping_out)
    console.print(f"wrote {out}" + (f" and {mapping_out}" if mapping_out else ""))


@app.command("validate")
def validate(path: Annotated[Path, typer.Argument(help="Standard YAML file to check.")]) -> None:
    """Check a standard file and report the first problem."""
    with user_errors():
        s = load_standard(path)
    console.print(f"{path}: valid standard {s.name} {s.version} ({len(s.fields)} fields)")


@app.command("diff")
def diff(
    old: Annotated[str, typer.Argument(help="Earlier version (e.g. 0.1).")],
    new: Annotated[str, typer.Argument(help="Later version (e.g. 0.2).")],
) -> None:
    """Show what changed between two packaged versions of the standard."""
    from accord.standard.diff import diff_markdown
    from accord.standard.model import load_version

    with user_errors():
        text = diff_markdown(load_version(old), load_version(new))
    typer.echo(text)
