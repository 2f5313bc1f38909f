"""The estimates' DP draw is made, stored and paid under the key of the partners ``person_lists``
finds, and every check before it (``accord estimate``'s and ``accord stats``' budget checks) looks
it up under ``hub_draw_key``. The two must name the same partners on every hub, or a draw the
hub holds would be refused as unaffordable (or a new one not checked): here on both engines, with
a partner whose records are not linked yet, a batch withdrawn after a draw and a partner whose
records were all withdrawn."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from accord.cli.main import app
from accord.research.estimate.noisy import draw_key
from accord.research.estimate.pipeline import hub_draw_key, person_lists
from accord.store import open_store
from tests.hubs import run_cli, simulated_contributions


@pytest.fixture(scope="module")
def contributions(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return simulated_contributions(tmp_path_factory.mktemp("drawkey"),
                                   people=90, partners=3, overlap=0.4, seed=11)


def _keys(hub: str) -> tuple[str, str, list[str]]:
    """hub_draw_key, the key of person_lists' partners, and those partners."""
    with open_store(hub, read_only=True) as store:
        partners, _ = person_lists(store)
        return hub_draw_key(store), draw_key(partners), partners


def _stored_keys(hub: str) -> list[str]:
    """The keys of the current data version's stored draws."""
    with open_store(hub, read_only=True) as store:
        return [str(k) for k in store.query(
            "SELECT draw_key FROM dp_draws WHERE data_version = ?",
            [store.data_version()]).column(0).to_pylist()]


def _spent(hub: str) -> float:
    return float(json.loads(run_cli("budget", "--hub", hub, "--json", read="stdout"))["budget"]["spent_rho"])


def _batches(hub: str) -> list[dict[str, Any]]:
    return list(json.loads(run_cli("hub", "status", "--hub", hub, "--json", read="stdout"))["batches"])


def test_the_draw_is_looked_up_under_the_key_it_was_made_under(
        hub: str, contributions: list[Path]) -> None:
    for c in contributions[:2]:
        run_cli("hub", "add", str(c), "--hub", hub)
    run_cli("link", "--hub", hub)
    linked = {b["batch_id"] for b in _batches(hub)}
    run_cli("hub", "add", str(contributions[2]), "--hub", hub)  # not linked: each record a person
    late = next(b for b in _batches(hub) if b["batch_id"] not in linked)
    checked, drawn, partners = _keys(hub)
    assert len(partners) == 3 and late["partner"] in partners
    assert checked == drawn

    # Budget for the stats and estimates draws of one data version (rho 0.015), not for more.
    run_cli("budget", "set", "--epsilon", "0.83", "--hub", hub)
    run_cli("budget", "grant", "--epsilon", "0.65", "--reason", "one version", "--hub", hub)
    run_cli("stats", "--hub", hub)
    assert _stored_keys(hub).count(checked) == 1
    spent = _spent(hub)
    assert spent == pytest.approx(0.015)
    # Less budget left than a draw costs: the draws the hub holds are served again (the checks
    # before reading find them under the key they were stored under), at no cost.
    run_cli("estimate", "--hub", hub)
    run_cli("stats", "--hub", hub)
    assert _spent(hub) == spent

    # The late partner withdraws its batch after the draw: a new data version without it.
    run_cli("hub", "withdraw", "--partner", late["partner"], "--batch", late["batch_id"],
            "--hub", hub)
    checked, drawn, partners = _keys(hub)
    assert late["partner"] not in partners and len(partners) == 2
    assert checked == drawn
    assert _stored_keys(hub) == []
    # Exact counts of this version could be differenced against the estimates published: refused,
    # pointing at the option that is safe (--privacy; there is no --method dp).
    res = CliRunner().invoke(app, ["estimate", "--hub", hub, "--privacy", "suppression"])
    assert res.exit_code == 3 and "use the default --privacy dp" in res.output, res.output
    out = " ".join(CliRunner().invoke(app, ["estimate", "--hub", hub]).output.split())
    assert "needs rho 0.005" in out  # a new version's draw is not free: the check found none
    run_cli("budget", "grant", "--epsilon", "0.65", "--reason", "next version", "--hub", hub)
    run_cli("estimate", "--hub", hub)
    assert _stored_keys(hub) == [checked]
    run_cli("estimate", "--hub", hub)
    assert _spent(hub) == pytest.approx(spent + 0.005)
