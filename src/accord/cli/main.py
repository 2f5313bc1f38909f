"""Entry point of the ``accord`` command. Each command lives in its own module.

`run()` builds an app holding only the command being run, so `accord ingest` does not pay for
loading statsmodels, OpenDP or the report at start-up; `app` (for tests, docs and `--help`) holds
every command and is built on first use.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable
from typing import Annotated, Any

import typer

from accord import __version__

HELP = "Accord: joint, privacy-preserving data collection and research on migrant protection."
# Help is plain text (click's layout): read as rich markup, "needs accord[spark]" showed as
# "needs accord". Up to 120 columns wide where the terminal is (every subcommand inherits it).
TYPER_SETTINGS: dict[str, Any] = {"no_args_is_help": True, "add_completion": False,
                                  "pretty_exceptions_enable": False, "rich_markup_mode": None,
                                  "context_settings": {"max_content_width": 120}}


def _version(value: bool) -> None:
    if value:
        typer.echo(f"accord {__version__}")
        raise typer.Exit()


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
        os.environ["ACCORD_DEBUG"] = "1"


Registrar = Callable[[typer.Typer], None]


def _typer(module: str, name: str) -> Registrar:
    def register(app: typer.Typer) -> None:
        app.add_typer(importlib.import_module(f"accord.cli.{module}").app, name=name)

    return register


def _command(module: str, name: str, function: str, help_text: str | None = None) -> Registrar:
    def register(app: typer.Typer) -> None:
        app.command(name, help=help_text)(getattr(importlib.import_module(f"accord.cli.{module}"), function))

    return register


def _release(app: typer.Typer) -> None:
    # One `release` group: differentially private tables and synthetic data, and k-anonymous microdata.
    release = importlib.import_module("accord.cli.release_dp_cmd")
    microdata = importlib.import_module("accord.cli.release_microdata_cmd")
    if "microdata" not in {c.name for c in release.app.registered_commands}:
        release.app.command("microdata")(microdata.microdata)
    app.add_typer(release.app, name="release")


# Every command, in pipeline order (that is the --help order).
COMMANDS: dict[str, Registrar] = {
    "standard": _typer("standard_cmd", "standard"),
    "simulate": _command("simulate_cmd", "simulate", "simulate",
                         "Simulate partner exports with mapping files and ground truth."),
    "keys": _typer("keys_cmd", "keys"),
    "mapping": _typer("mapping_cmd", "mapping"),
    "tables": _typer("tables_cmd", "tables"),
    "kobo": _typer("kobo_cmd", "kobo"),
    "odk": _typer("odk_cmd", "odk"),
    "ingest": _command("ingest_cmd", "ingest", "ingest"),
    "encode": _command("encode_cmd", "encode", "encode"),
    "hub": _typer("hub_cmd", "hub"),
    "push": _command("push_cmd", "push", "push"),
    "withdraw": _command("withdraw_cmd", "withdraw", "withdraw"),
    "serve": _command("serve_cmd", "serve", "serve"),
    "match": _command("match_cmd", "match", "match"),
    "link": _command("link_cmd", "link", "link"),
    "stats": _command("stats_cmd", "stats", "stats"),
    "risk": _command("risk_cmd", "risk", "risk_command"),
    "anonymise": _command("anonymise_cmd", "anonymise", "anonymise_command"),
    "synthesize": _command("synthesize_cmd", "synthesize", "synthesize"),
    "release": _release,
    "request": _typer("request_cmd", "request"),
    "download": _command("request_cmd", "download", "download"),
    "budget": _typer("budget_cmd", "budget"),
    "estimate": _typer("estimate_cmd", "estimate"),
    "report": _command("report_cmd", "report", "report"),
    "demo": _command("demo_cmd", "demo", "demo"),
}


# One line per command for `accord --help`, so that listing the commands imports none of them
# (loading every command's libraries took 2-3 s). tests/test_startup.py checks these against the
# commands' own help.
SUMMARIES: dict[str, str] = {
    "standard": "Inspect the data standard (fields, code lists, roles, crosswalk).",
    "simulate": "Simulate partner exports with mapping files and ground truth.",
    "keys": "Create the secrets a partner needs (pseudonym key, shared linkage secret).",
    "mapping": "Write mapping files (docs/mapping.md).",
    "tables": "Tables of counts: import (GLOTIP), rates per 100,000, export (SDMX-CSV, HXL, data "
              "package).",
    "kobo": "KoboToolbox: pull a form's submissions (API v2).",
    "odk": "ODK Central: pull a form's submissions (OData).",
    "ingest": "Map, validate and protect one export: writes a contribution and a quarantine "
              "report.",
    "encode": "Encode identifiers into keyed, hardened Bloom filters (nothing else leaves the "
              "file).",
    "hub": "Load contributions into the hub store and show what it holds.",
    "push": "Upload a contribution; the hub verifies it as `accord hub add` does and loads it "
            "whole.",
    "withdraw": "Withdraw your organisation's records from the hub (a batch, or listed record keys).",
    "serve": "Serve the hub over HTTP: partners push contributions, roles read what they may "
             "(docs/hub.md).",
    "match": "Link two encoding files: Fellegi-Sunter scores with EM weights, one-to-one.",
    "link": "Link all contributions: persons table with match scores (never two records of one "
            "partner joined unless they share a pseudonym).",
    "stats": "Print the disaggregated tables, with small counts hidden (noisy by default).",
    "risk": "Equivalence classes, k-anonymity, l-diversity, individual and global "
            "re-identification risk, and what each quasi-identifier adds to it.",
    "anonymise": "Generalise and suppress a table until it is k-anonymous (and l-diverse), "
                 "losing least.",
    "synthesize": "Differentially private synthetic data (AIM-like: adaptive marginals, "
                  "graphical model).",
    "release": "Differentially private releases (budgeted in the hub's ledger).",
    "request": "Request k-anonymous microdata or DP synthetic data; a steward approves it before "
               "it is released.",
    "download": "Download the approved output of your request (record-level outputs are released "
                "only after a steward approves them).",
    "budget": "Show or set the differential-privacy budget (zCDP ledger).",
    "estimate": "Estimate the total number of people, seen and unseen, from the overlap between "
                "lists.",
    "report": "Write the report: one HTML file with tables, charts and how the data were "
              "protected.",
    "demo": "Run everything on generated data: simulate, keys, ingest, hub, link, statistics, "
            "report.",
}


def _listed() -> None:  # pragma: no cover - never run: the index only lists commands
    raise typer.Exit()


def index_app() -> typer.Typer:
    """The CLI as `accord --help` shows it: every command's name and summary, none loaded."""
    app = typer.Typer(name="accord", help=HELP, **TYPER_SETTINGS)
    app.callback()(_root)
    for name in COMMANDS:
        app.command(name, help=SUMMARIES[name], context_settings={
            "ignore_unknown_options": True, "allow_extra_args": True})(_listed)
    return app


def make_app(only: str | None = None) -> typer.Typer:
    """The CLI with every command, or with just `only`."""
    app = typer.Typer(name="accord", help=HELP, **TYPER_SETTINGS)
    app.callback()(_root)
    for name, register in COMMANDS.items():
        if only is None or name == only:
            register(app)
    return app


def __getattr__(name: str) -> Any:
    if name == "app":
        return make_app()
    raise AttributeError(name)


def _withhold_warning_text() -> None:
    """Library warnings can quote record values (openpyxl quotes the cell it could not read, numpy
    the operands): outside --debug, only the warning's kind and the library are shown."""
    import warnings

    original = warnings.showwarning

    def show(message: Warning | str, category: type[Warning], filename: str, lineno: int,
             file: Any = None, line: str | None = None) -> None:
        if os.environ.get("ACCORD_DEBUG"):
            original(message, category, filename, lineno, file, line)
            return
        parts = filename.replace("\\", "/").split("/")
        origin = parts[parts.index("site-packages") + 1] if "site-packages" in parts[:-1] else parts[-1]
        sys.stderr.write(f"warning: {category.__name__} from {origin} (text withheld: it can quote record "
                         "values; `accord --debug ...` shows it)\n")

    warnings.showwarning = show


def run() -> None:
    command = next((a for a in sys.argv[1:] if not a.startswith("-")), None)
    cli = make_app(command) if command in COMMANDS else index_app()
    _withhold_warning_text()
    try:
        cli()
    except Exception as exc:  # the last guard: users get a sentence, not a traceback
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
