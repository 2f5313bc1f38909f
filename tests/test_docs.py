"""The docs cannot drift from the code: the CLI reference is generated and checked here."""

from __future__ import annotations

from pathlib import Path

import typer

from accord.cli.main import app
from accord.cli.reference import cli_reference

ROOT = Path(__file__).resolve().parents[1]


def test_cli_reference_is_current() -> None:
    current = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    assert current == cli_reference(app), "docs/cli.md is stale: run `python -m accord.cli.reference > docs/cli.md`"


def test_every_command_has_a_purpose() -> None:
    root = typer.main.get_command(app)
    commands = getattr(root, "commands", {})
    assert len(commands) >= 8
    for name, cmd in commands.items():
        assert (cmd.help or cmd.short_help or "").strip(), f"`accord {name}` has no help text"


def test_readme_quick_start() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "make demo" in readme and "make test" in readme
