"""Attack: swap a stored noisy release for other numbers behind Accord's back.

`accord stats` keeps each data version's DP draw in the hub (`dp_draws`) and serves it again, so
the same data give the same numbers. Someone who can edit the hub file (but does not hold the
chain key) replaces the stored draw by other numbers, e.g. the exact counts, and waits for the
next `accord stats` to publish them as "differentially private". The stored draw must match a
chained spend, so the swap is refused (exit 3) and nothing is published. Negative control: with
that check taken out, the same edit is published as it is.
"""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from accord.cli.main import app
from accord.research import noisy
from tests.test_stats_report import known_records, make_store

runner = CliRunner()


def _hub(tmp_path: Path) -> Path:
    path = tmp_path / "hub.duckdb"
    make_store(path, known_records()).close()
    first = runner.invoke(app, ["stats", "--hub", str(path), "--json"])
    assert first.exit_code == 0, first.output
    return path


def _swap_stored_draw(hub: Path, value: int) -> None:
    """Edit every number of every stored draw, outside Accord (no key, no chain)."""
    con = duckdb.connect(str(hub))
    try:
        for key, text in con.execute("SELECT draw_key, payload FROM dp_draws").fetchall():
            payload = json.loads(text)
            for table in payload.get("tables", {}).values():
                table["values"] = _fill(table["values"], value)
            con.execute("UPDATE dp_draws SET payload = ? WHERE draw_key = ?",
                        [json.dumps(payload, separators=(",", ":")), key])
    finally:
        con.close()


def _fill(values: object, value: int) -> object:
    if isinstance(values, list):
        return [_fill(v, value) for v in values]
    return value


def _published(output: str) -> list[int]:
    out: list[int] = []

    def walk(v: object) -> None:
        if isinstance(v, list):
            for x in v:
                walk(x)
        elif isinstance(v, int):
            out.append(v)

    for table in json.loads(output)["tables"]:
        walk(table["values"])
    return out


def test_a_swapped_stored_draw_is_refused(tmp_path: Path) -> None:
    hub = _hub(tmp_path)
    _swap_stored_draw(hub, 777)
    res = runner.invoke(app, ["stats", "--hub", str(hub), "--json"])
    assert res.exit_code == 3, res.output
    assert "777" not in res.output and "dp_draws" in res.output


def test_negative_control_without_the_check_the_swap_is_published(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    hub = _hub(tmp_path)
    _swap_stored_draw(hub, 777)
    monkeypatch.setattr(noisy, "_check_stored_draw", lambda store, text: None)
    res = runner.invoke(app, ["stats", "--hub", str(hub), "--json"])
    assert res.exit_code == 0, res.output
    assert 777 in _published(res.stdout)
