"""``accord kobo``: pull a KoboToolbox form's submissions into an export Accord ingests."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from accord.cli.common import OverwriteOption, PageSizeOption, pull_to_export

app = typer.Typer(help="KoboToolbox: pull a form's submissions (API v2).", no_args_is_help=True)


@app.command("pull")
def pull(
    server: Annotated[str, typer.Option("--server", help="Kobo server, e.g. https://kf.kobotoolbox.org.")],
    token_file: Annotated[Path, typer.Option("--token-file", help="File holding your Kobo API token.")],
    form: Annotated[str, typer.Option("--form", help="The form's asset uid.")],
    out: Annotated[Path, typer.Option("--out", help="Export file to write (JSON).")] = Path("kobo-export.json"),
    page_size: PageSizeOption = 1000,
    overwrite: OverwriteOption = False,
) -> None:
    """Page through the form's submissions and write them as JSON for `accord ingest`.

    Repeat groups become space-separated answers plus a count; attachments are not downloaded."""
    from accord.ingest.pull import kobo_pull

    pull_to_export(lambda token: kobo_pull(server, token, form, page_size), token_file, out, overwrite)
