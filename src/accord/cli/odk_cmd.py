"""``accord odk``: pull an ODK Central form's submissions into an export Accord ingests."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from accord.cli.common import OverwriteOption, PageSizeOption, pull_to_export

app = typer.Typer(help="ODK Central: pull a form's submissions (OData).", no_args_is_help=True)


@app.command("pull")
def pull(
    server: Annotated[str, typer.Option("--server", help="ODK Central server, e.g. https://central.example.org.")],
    token_file: Annotated[Path, typer.Option("--token-file", help="File holding a session or app-user token.")],
    project: Annotated[int, typer.Option("--project", help="Project id.")],
    form: Annotated[str, typer.Option("--form", help="The form's xmlFormId.")],
    out: Annotated[Path, typer.Option("--out", help="Export file to write (JSON).")] = Path("odk-export.json"),
    page_size: PageSizeOption = 1000,
    overwrite: OverwriteOption = False,
) -> None:
    """Page through the form's submissions (and repeat tables) and write them as JSON for
    `accord ingest`. Groups become `group/question`; attachments are not downloaded."""
    from accord.ingest.pull import odk_pull

    pull_to_export(lambda token: odk_pull(server, token, project, form, page_size), token_file, out, overwrite)
