"""Generate docs/cli.md from the commands themselves, so the reference cannot drift (tests check it)."""

from __future__ import annotations

from typing import Any

import typer

from accord.ingest.findings import catalogue_markdown

# What every command does alike (src/accord/errors.py, accord.cli.main.run, accord.cli.common).
CONVENTIONS = [
    "## Conventions",
    "",
    "- Exit codes: 0 done; 2 refused, with `error:` saying why and `what to do:` saying what next",
    "  (bad input, a missing file, an output that exists, nothing to do); 3 a release refused (its",
    "  privacy parameters cannot be met, or the ledger was tampered with); 70 a bug in Accord",
    "  (`accord --debug ...` shows the traceback). Messages never quote a record value.",
    "- Outputs are never replaced silently: a file that exists, or a folder holding anything, is",
    "  refused (exit 2, before any work, so a refused release spends no budget) unless",
    "  `--overwrite` is given, which replaces the files the command writes and removes nothing",
    "  else. A contribution (`ingest --out`), a linkage unit's files, a password or token file",
    "  (`hub user reset-password`, `hub token create`) and a download folder are never replaced;",
    "  `keys init --force` replaces a key (rotation); `demo` clears its own folder (`--fresh`).",
    "- An output that is a file needs a file name: '' (an unset variable in a script) or '.' is",
    "  refused (exit 2, before any work), also with `--overwrite`.",
]


# typer ships its own copy of click, so commands are inspected by shape rather than by class.
def _walk(cmd: Any, path: list[str]) -> list[tuple[list[str], Any]]:
    out = [(path, cmd)]
    if hasattr(cmd, "commands"):
        for name in sorted(cmd.commands):
            out += _walk(cmd.commands[name], [*path, name])
    return out


def cli_reference(app: typer.Typer) -> str:
    root = typer.main.get_command(app)
    lines = ["# Command reference", "", "Generated from the CLI (`python -m accord.cli.reference`); "
             "a test fails when it is out of date.", "", *CONVENTIONS, ""]
    for path, cmd in _walk(root, ["accord"]):
        if cmd.hidden:
            continue
        lines += [f"## `{' '.join(path)}`", "", (cmd.help or "").strip().split("\n\n")[0], ""]
        params = [p for p in cmd.params if p.name != "help"]
        if params:
            lines += ["| option | help |", "| --- | --- |"]
            for p in params:
                names = ", ".join(f"`{o}`" for o in getattr(p, "opts", [])) or f"`{p.name}`"
                if type(p).__name__.endswith("Argument"):
                    names = f"`{(p.name or '').upper()}`"
                help_text = (getattr(p, "help", "") or "").replace("|", "\\|").replace("\n", " ")
                lines.append(f"| {names} | {help_text} |")
            lines.append("")
    lines += ["## Quarantine reasons", "", "Every quarantined row names one of these reasons.", "",
              catalogue_markdown()]
    return "\n".join(lines)


if __name__ == "__main__":
    from accord.cli.main import app as _app

    print(cli_reference(_app), end="")
