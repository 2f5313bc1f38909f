"""Attack: reset the privacy budget by re-adding the same people (issue 10).

Target: the lifetime rho spent on one hub's people stays within its budget under any sequence of
adds, re-adds, replacements, withdrawals and releases. Negative control: the per-data-version
ledger Accord had before (emulated in budget_lab.PerVersionLedger) lets the same sequence spend
several budgets, so these tests can fail.
"""

from __future__ import annotations

import json
import random
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from accord.cli.main import app
from accord.errors import ReleaseRefused
from accord.release.dp import ledger
from accord.release.dp.mechanism import rho_from_epsilon_delta
from accord.store import open_store
from tests.attacks.budget_lab import (
    BUDGET_RHO,
    RELEASE_DELTA,
    PerVersionLedger,
    make_lab,
    random_steps,
    reset_attack,
    run_sequence,
)


def test_readding_the_same_records_never_restores_the_budget_cli(tmp_path: Path) -> None:
    # The attack through the CLI: re-submit the same records, release at epsilon 10.
    lab = make_lab(tmp_path / "lab")
    runner = CliRunner()
    baseline = PerVersionLedger()
    codes, versions = [], set()
    rho = rho_from_epsilon_delta(10.0, RELEASE_DELTA)
    for i in range(4):
        if i:
            r = runner.invoke(app, ["hub", "add", str(lab.contribution()), "--hub", str(lab.hub)])
            assert r.exit_code == 0, r.output
        with open_store(lab.hub) as store:
            version = store.data_version()
        versions.add(version)
        r = runner.invoke(app, ["release", "tables", "--epsilon", "10", "--tables", "case_type_by_sex",
                                "--hub", str(lab.hub), "--out", str(tmp_path / f"o{i}")])
        codes.append(r.exit_code)
        baseline.pay(version, rho)
        if r.exit_code:
            assert "lifetime budget" in r.output and not (tmp_path / f"o{i}").exists()
    assert len(versions) == 4  # every re-add made a new data version
    assert codes == [0, ReleaseRefused.exit_code, ReleaseRefused.exit_code, ReleaseRefused.exit_code]
    budget = json.loads(runner.invoke(app, ["budget", "--hub", str(lab.hub), "--json"]).output)
    assert budget["budget"]["spent_rho"] == pytest.approx(rho)
    assert budget["budget"]["spent_rho"] <= budget["budget"]["total_rho"]
    # negative control: a budget per data version pays all four, ~4 budgets' worth of rho
    assert baseline.lifetime == pytest.approx(4 * rho) and baseline.lifetime > 2.5 * BUDGET_RHO


def test_reset_attack_many_rounds_api(tmp_path: Path) -> None:
    out = reset_attack(make_lab(tmp_path / "lab"), rounds=8)
    assert out.released == 1 and out.lifetime_rho <= BUDGET_RHO
    assert out.baseline_released == 8 and out.baseline_rho > 5 * BUDGET_RHO  # the control


@pytest.mark.slow
@settings(max_examples=8, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(min_value=0, max_value=10**6))
def test_lifetime_spent_stays_within_the_budget_under_any_sequence(seed: int) -> None:
    steps = random_steps(random.Random(seed), 14)
    with tempfile.TemporaryDirectory() as tmp:
        out = run_sequence(make_lab(Path(tmp) / "lab"), steps, seed=seed)
    assert out.lifetime_rho <= BUDGET_RHO + 1e-12
    assert out.baseline_rho >= out.lifetime_rho - 1e-12  # the control never pays less


@pytest.mark.slow
def test_random_sequences_break_the_per_version_ledger(tmp_path: Path) -> None:
    # The negative control of the property above, on fixed seeds: the unprotected ledger overspends.
    over = 0
    for seed in range(3):
        out = run_sequence(make_lab(tmp_path / f"lab{seed}"), random_steps(random.Random(seed), 16),
                           seed=seed)
        assert out.lifetime_rho <= BUDGET_RHO + 1e-12
        over += out.baseline_rho > BUDGET_RHO + 1e-12
    assert over >= 1


def test_an_old_per_version_ledger_is_merged_into_one_lifetime_ledger(tmp_path: Path) -> None:
    lab = make_lab(tmp_path / "lab")
    rho = 0.6
    with open_store(lab.hub) as store:  # the pre-issue-10 tables, three versions of one hub
        store.execute("CREATE TABLE dp_budget (data_version VARCHAR PRIMARY KEY, total_rho DOUBLE, "
                      "spent_rho DOUBLE, epsilon DOUBLE, delta DOUBLE, set_by VARCHAR, set_at VARCHAR)")
        store.execute("CREATE TABLE dp_spends (spend_id VARCHAR PRIMARY KEY, data_version VARCHAR, "
                      "release_id VARCHAR, kind VARCHAR, actor VARCHAR, purpose VARCHAR, "
                      "mechanism VARCHAR, epsilon DOUBLE, delta DOUBLE, rho DOUBLE, detail VARCHAR, "
                      "spent_at VARCHAR)")
        for i in range(3):
            store.execute("INSERT INTO dp_budget VALUES (?, ?, ?, 10, 1e-6, 'steward', ?)",
                          [f"v{i}", BUDGET_RHO, rho, f"2026-01-0{i + 1}T00:00:00+00:00"])
            store.execute("INSERT INTO dp_spends VALUES (?, ?, NULL, 'dp_tables', 'a', '', "
                          "'gaussian', 1, 1e-9, ?, '{}', ?)",
                          [f"s{i}", f"v{i}", rho, f"2026-01-0{i + 1}T01:00:00+00:00"])
    r = CliRunner().invoke(app, ["budget", "--hub", str(lab.hub), "--json"])
    assert r.exit_code == 0, r.output
    got = json.loads(r.output)
    assert got["budget"]["spent_rho"] == pytest.approx(3 * rho)  # the sum over every version
    assert got["budget"]["remaining_rho"] == 0.0 and got["chain"]["ok"]
    assert [e["event"] for e in got["events"]] == ["set", "migrated"]
    refused = CliRunner().invoke(app, ["release", "tables", "--epsilon", "0.1", "--hub", str(lab.hub),
                                       "--out", str(tmp_path / "o")])
    assert refused.exit_code == ReleaseRefused.exit_code and "lifetime budget" in refused.output
    with open_store(lab.hub) as store:
        assert store.table_exists("dp_budget_per_version") and not store.table_exists("dp_budget")
        actions = store.query("SELECT action FROM audit").column(0).to_pylist()
        assert "dp_ledger.migrated" in actions
        # a steward's grant is the way on, explicit and on record
        after = ledger.grant(store, 10.0, "steward", "2027 allowance")
    assert after.remaining_rho == pytest.approx(rho_from_epsilon_delta(10.0, 1e-6) - (3 * rho - BUDGET_RHO))
