"""Shared CLI helpers: console, error handling, JSON output, common options."""

from __future__ import annotations

import json
import math
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)

from accord.errors import AccordError

# Markup off by default: what the commands print is full of the user's text (paths, file, partner,
# column and table names), and read as markup '[final]' vanished and '[/b]' ended in exit 70. A
# message with intended styling says so with `markup=True` and passes every value through `plain`.
# Emoji codes off too: ':warning:' in a file name is text. Tables render with these defaults, so
# their titles and cells are plain text.
console = Console(stderr=False, markup=False, emoji=False)
err_console = Console(stderr=True, markup=False, emoji=False)

DEFAULT_HUB = Path("accord-hub.duckdb")


class HubLocation(type(Path())):  # type: ignore[misc]
    """A hub given as a PostgreSQL URL: still a Path to the commands, the URL kept as typed
    (a plain Path would collapse `postgresql://host/db` to `postgresql:/host/db`)."""

    url: str

    def __str__(self) -> str:  # what messages show: never the password
        from accord.store.urls import redact

        return redact(self.url)


def hub_location(value: str | Path) -> Path:
    from accord.store.urls import is_server_url

    if isinstance(value, str) and is_server_url(value):
        location = HubLocation(value)
        location.url = value
        return location
    return Path(value)


HubOption = Annotated[
    Path,
    typer.Option(
        "--hub",
        help="Hub store: a DuckDB file, or the shared hub's postgresql:// URL. "
             "Defaults to $ACCORD_HUB or ./accord-hub.duckdb.",
        envvar="ACCORD_HUB",
        parser=hub_location,
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]

F = TypeVar("F", bound=Callable[..., Any])


def plain(value: object) -> str:
    """A value in a `markup=True` message, shown as typed (escaped, never read as markup)."""
    return escape(str(value))


def require_hub(hub: Path) -> None:
    """Commands that read a hub refuse a missing file (opening it would create an empty hub)."""
    from accord.errors import StoreError
    from accord.store.urls import is_server_url

    if is_server_url(hub):  # a server hub: opening it says whether it can be reached
        return
    if not hub.exists():
        raise StoreError(f"no hub at {hub}; add a contribution with `accord hub add`",
                         hint="or point --hub (or $ACCORD_HUB) at an existing hub file")
    if hub.is_dir():
        raise StoreError(f"{hub} is a directory, not a hub file",
                         hint="point --hub (or $ACCORD_HUB) at the hub's .duckdb file")
    if hub.is_file() and not _is_duckdb_file(hub):
        raise StoreError(f"{hub} is not a hub file (not a DuckDB database)",
                         hint="point --hub (or $ACCORD_HUB) at the file `accord hub add` created; "
                         "exports and contributions go through `accord ingest` and `accord hub add`")


def _is_duckdb_file(path: Path) -> bool:
    """DuckDB's storage format starts with an 8-byte checksum and the magic bytes 'DUCK'."""
    try:
        with path.open("rb") as fh:
            return fh.read(12)[8:12] == b"DUCK"
    except OSError:
        return False


def debug_enabled() -> bool:
    return os.environ.get("ACCORD_DEBUG", "") not in ("", "0")


def print_json(payload: Any) -> None:
    sys.stdout.write(json.dumps(payload, indent=2, default=str, ensure_ascii=False) + "\n")


def fail(err: AccordError) -> None:
    # Escaped: a message names the user's paths and column names, and a hint may hold brackets
    # (pip install 'accord[spark]'); as markup, '[age]' vanished and '[/b]' crashed (exit 70).
    err_console.print(f"[bold red]error:[/] {plain(err.message)}", markup=True, highlight=False)
    if err.hint:
        err_console.print(f"[yellow]what to do:[/] {plain(err.hint)}", markup=True, highlight=False)
    raise typer.Exit(code=err.exit_code)


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn AccordError into a clear message and an exit code (traceback only with --debug)."""
    try:
        yield
    except AccordError as err:
        if debug_enabled():
            raise
        fail(err)
    except UnicodeDecodeError:
        # A binary or non-UTF-8 file where a text file was expected (the bytes are never shown).
        if debug_enabled():
            raise
        fail(AccordError("a file given is not UTF-8 text (a spreadsheet or binary file where a text file was "
                         "expected?)", hint="check the file paths given; save text files as UTF-8"))
    except OSError as err:
        # A path the user gave cannot be read or written (a directory, a missing folder, no
        # permission): say which and why. The path is the user's own argument, never a record.
        if debug_enabled():
            raise
        what = f"cannot use {err.filename}" if err.filename else "a file could not be read or written"
        fail(AccordError(f"{what}: {err.strerror or type(err).__name__}",
                         hint="check the paths given (files, not directories; their folders exist), their "
                         "permissions and the free disk space"))


OverwriteOption = Annotated[bool, typer.Option(
    "--overwrite", help="Replace outputs that exist (files of the same names; nothing else in a folder is removed).")]


def refuse_existing(*paths: Path | None, overwrite: bool, option: str = "--out", folder: bool = False) -> None:
    """No command replaces an output silently: an existing file, or a folder holding anything, is
    refused before any work (a release would spend budget first) unless --overwrite was given. An
    empty folder is fine: it was made for the output. An output that is a file (``folder`` False)
    needs a file name, whatever --overwrite says (check_file_name): every writer calls this first."""
    for path in paths:
        if path is None:
            continue
        if not folder:
            check_file_name(path, option)
        if overwrite or not path.exists():
            continue
        if path.is_dir():
            try:
                if not any(path.iterdir()):
                    continue
            except OSError:
                continue  # unreadable: writing into it says why
        what = "is a folder that is not empty" if path.is_dir() else "exists"
        raise AccordError(f"{option} {path} {what}; nothing was written",
                          hint=f"choose another {option}, or pass --overwrite to replace what is there")


def check_file_name(path: Path, option: str = "--out", what: str = "file") -> Path:
    """An output that names a file (or a new folder: ``what``) needs a name: '' (an unset variable
    in a script) or '.' or '/' would otherwise fail deep inside pathlib (a report named after it)
    or in the writer (a folder opened as a file), or, with --overwrite, go to the working folder."""
    if not path.name:
        raise AccordError(f"{option} needs a {what} name, not an empty path or '.'",
                          hint=f"give {option} the name of the {what} to write")
    return path


def check_separator(sep: str, option: str = "--sep") -> str:
    """A CSV separator is one character (the readers fail deep inside on anything else)."""
    if len(sep) != 1 or sep in "\r\n\"":
        raise AccordError(f"{option} must be one character other than a quote or a line break (e.g. ',' or "
                          f"';' or a tab), not {len(sep)} character(s)",
                          hint=f"give {option} ';' for a semicolon-separated file")
    return sep


def check_finite_positive(value: float, option: str, upper: float = 86_400.0) -> float:
    """A number of seconds above 0 and at most `upper` (a day): nan and inf pass typer's float parsing,
    and the socket layer overflows on 1e308."""
    if not (math.isfinite(value) and 0 < value <= upper):
        raise AccordError(f"{option} must be a number of seconds greater than 0 and at most {upper:g}",
                          hint=f"for example {option} 30")
    return value


# The most synthetic records one command draws: the sampler holds rows x columns codes in memory
# (a row count of 10**20 failed inside numpy); far beyond any caseload Accord serves.
MAX_SYNTHETIC_ROWS = 5_000_000

PageSizeOption = Annotated[int, typer.Option("--page-size", min=1, max=30000, help="Submissions per request.")]


def pull_to_export(fetch: Callable[[str], list[dict[str, Any]]], token_file: Path, out: Path,
                   overwrite: bool) -> None:
    """What `accord kobo pull` and `accord odk pull` share: read the token, fetch every submission,
    write the export `accord ingest` reads, say how many."""
    from accord.ingest.pull import read_token, write_export

    with user_errors():
        refuse_existing(out, overwrite=overwrite)
        rows = fetch(read_token(token_file))
        write_export(rows, out)
    console.print(f"wrote {out}: {len(rows):,} submissions")


def make_progress(transient: bool = False) -> Progress:
    return Progress(
        SpinnerColumn(),
        # The description names files and stages: plain text, not markup.
        TextColumn("{task.description}", style="progress.description", markup=False),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err_console,
        transient=transient,
        disable=not err_console.is_terminal and os.environ.get("ACCORD_PROGRESS") != "1",
    )
