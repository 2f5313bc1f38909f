"""A one-partner hub made through the CLI, as a partner and the hub would make it."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from accord.cli.main import app


def hub_from_export(tmp_path: Path, export: Path, mapping: Path, partner: str = "ngo_a") -> Path:
    """``tmp_path/hub.duckdb`` after `accord keys init`, `accord ingest` of ``export`` with
    ``mapping`` as ``partner``, and `accord hub add` of the contribution; each must succeed."""
    runner = CliRunner()
    key, hub, contribution = tmp_path / "partner.key", tmp_path / "hub.duckdb", tmp_path / "contrib"
    for args in (["keys", "init", "--key-file", str(key)],
                 ["ingest", str(export), "--mapping", str(mapping), "--partner", partner,
                  "--key-file", str(key), "--out", str(contribution)],
                 ["hub", "add", str(contribution), "--hub", str(hub)]):
        result = runner.invoke(app, args)
        assert result.exit_code == 0, (args[0], result.output)
    return hub
