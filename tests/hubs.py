"""Hubs and contributions made through the CLI, as partners and the hub would make them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from typer.testing import CliRunner

from accord.cli.main import app
from accord.protect.encoding import new_linkage_secret
from accord.simulate import SimulationConfig, simulate


def run_cli(*args: str, code: int = 0,
            read: Literal["output", "stdout", "squeezed", "json"] = "output") -> Any:
    """`accord ARGS` in-process (the CLI's click tree, as `accord` runs it). Asserts the exit code
    and that no exception escaped but the CLI's own exit (a traceback is a bug even with the
    expected code). Returns what it printed: ``output`` (stdout and stderr), ``stdout``,
    ``squeezed`` (the output with each run of whitespace one space: messages wrap at the
    terminal's width) or ``json`` (stdout parsed)."""
    res = CliRunner().invoke(app, list(args))
    assert res.exit_code == code, res.output
    assert res.exception is None or isinstance(res.exception, SystemExit), repr(res.exception)
    if read == "json":
        return json.loads(res.stdout)
    if read == "squeezed":
        return " ".join(res.output.split())
    return res.stdout if read == "stdout" else res.output


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


def simulated_contributions(tmp: Path, people: int, partners: int, overlap: float,
                            seed: int) -> list[Path]:
    """The contributions ``tmp/c0``, ``tmp/c1``, ... of ``partners`` simulated partners (CSV
    exports), each made by `accord ingest` with the partner key of `accord keys init` and one
    shared linkage secret, so that the hub can link them; each command must succeed."""
    sim = simulate(SimulationConfig(people=people, partners=partners, overlap=overlap, seed=seed,
                                    out=tmp / "exports", format_a="csv"))
    secret, key = tmp / "linkage.key", tmp / "partner.key"
    new_linkage_secret(secret)
    runner = CliRunner()
    result = runner.invoke(app, ["keys", "init", "--key-file", str(key)])
    assert result.exit_code == 0, result.output
    out = []
    for i, files in enumerate(sim.partners):
        result = runner.invoke(app, [
            "ingest", str(files.export), "--mapping", str(files.mapping), "--partner",
            files.partner.replace("_", "-"), "--key-file", str(key), "--out", str(tmp / f"c{i}"),
            "--linkage-secret", str(secret)])
        assert result.exit_code == 0, (files.partner, result.output)
        out.append(tmp / f"c{i}")
    return out
