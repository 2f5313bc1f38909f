"""Entry point of the ``accord`` command. Each command lives in its own module."""

from __future__ import annotations

from typing import Annotated

import typer

from accord import __version__

app = typer.Typer(
    name="accord",
    help="Accord: joint, privacy-preserving data collection and research on migrant protection.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"accord {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")
    ] = False,
    debug: Annotated[
        bool, typer.Option("--debug", help="Show tracebacks instead of short error messages.")
    ] = False,
) -> None:
    """Accord: joint, privacy-preserving data collection and research on migrant protection."""
    if debug:
        import os

        os.environ["ACCORD_DEBUG"] = "1"


def _register() -> None:
    # Commands are registered here, one module each; keep this list sorted by pipeline stage.
    from accord.cli import encode_cmd, match_cmd, standard_cmd

    app.add_typer(standard_cmd.app, name="standard")
    app.command("encode")(encode_cmd.encode)
    app.command("match")(match_cmd.match)


_register()


def run() -> None:
    app()


if __name__ == "__main__":
    run()
