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
    # Commands are registered here, one module each, in pipeline order (that is the --help order).
    from accord.cli import (
        anonymise_cmd,
        budget_cmd,
        demo_cmd,
        encode_cmd,
        estimate_cmd,
        hub_cmd,
        ingest_cmd,
        keys_cmd,
        link_cmd,
        match_cmd,
        release_dp_cmd,
        release_microdata_cmd,
        report_cmd,
        risk_cmd,
        simulate_cmd,
        standard_cmd,
        stats_cmd,
        synthesize_cmd,
    )

    app.add_typer(standard_cmd.app, name="standard")
    app.command("simulate", help="Simulate partner exports with mapping files and ground truth.")(
        simulate_cmd.simulate)
    app.add_typer(keys_cmd.app, name="keys")
    app.command("ingest")(ingest_cmd.ingest)
    app.command("encode")(encode_cmd.encode)
    app.add_typer(hub_cmd.app, name="hub")
    app.command("match")(match_cmd.match)
    app.command("link")(link_cmd.link)
    app.command("stats")(stats_cmd.stats)
    app.command("risk")(risk_cmd.risk_command)
    app.command("anonymise")(anonymise_cmd.anonymise_command)
    app.command("synthesize")(synthesize_cmd.synthesize)
    release_dp_cmd.app.command("microdata")(release_microdata_cmd.microdata)
    app.add_typer(release_dp_cmd.app, name="release")
    app.add_typer(budget_cmd.app, name="budget")
    app.add_typer(estimate_cmd.app, name="estimate")
    app.command("report")(report_cmd.report)
    app.command("demo")(demo_cmd.demo)


_register()


def run() -> None:
    try:
        app()
    except Exception as exc:  # the last guard: users get a sentence, not a traceback
        import os
        import sys

        if os.environ.get("ACCORD_DEBUG"):
            raise
        # Only the exception type is shown: library messages can quote record values.
        sys.stderr.write(
            f"error: unexpected {type(exc).__name__} - this is a bug in Accord, not in your data.\n"
            "what to do: run again with `accord --debug ...` and report the traceback "
            "(check it for personal data first).\n")
        sys.exit(70)


if __name__ == "__main__":
    run()
