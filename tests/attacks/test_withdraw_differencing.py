"""Issue 12: an analyst who gets a release before and after a partner withdraws one person's
record must not learn that person's attributes from the difference beyond what one release tells.

Each attack (tests/attacks/withdraw_differencing.py) runs against Accord and, as the negative
control, against the same release without the protection, which the same attacker breaks, so
these tests can fail. Figures with more trials: benchmarks/attacks_withdraw_differencing.py ->
benchmarks/results/attacks/withdraw_differencing.md.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from accord.errors import ReleaseRefused
from accord.store import open_store
from accord.store.withdraw import withdraw
from tests.attacks import withdraw_differencing as wd

pytestmark = pytest.mark.slow
PEOPLE = 1000
TRIALS = 12
DP_TRIALS = 20
MARGIN = 0.15  # the DP attacker's success at most this far above the prior's, over DP_TRIALS


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict[str, Any]], Path]:
    root = tmp_path_factory.mktemp("withdraw_differencing")
    base = wd.build_hub(root, PEOPLE, seed=3)
    return base, wd.victims(base, DP_TRIALS, seed=4), root


def test_microdata_after_a_withdrawal_is_not_subtractable(lab: tuple[Path, list[dict[str, Any]], Path]) -> None:
    base, targets, root = lab
    protected = wd.microdata_attack(base, root / "md", targets[:TRIALS], protected=True)
    control = wd.microdata_attack(base, root / "md-control", targets[:TRIALS], protected=False)
    # without the over-time check the difference of the two files gives the value away
    assert control.refused == 0 and control.rate >= 0.8, control
    assert control.advantage >= 0.4, control
    # with it, the second file is refused: the analyst has the first file's class only
    assert protected.refused == protected.trials == TRIALS, protected
    assert protected.rate == protected.baseline, protected


def test_dp_tables_around_a_withdrawal_tell_no_more_than_one(
        lab: tuple[Path, list[dict[str, Any]], Path]) -> None:
    base, targets, root = lab
    dp = wd.tables_attack(base, root / "dp", targets, wd.dp_tables())
    exact = wd.tables_attack(base, root / "exact", targets, wd.suppressed_unguarded)
    assert exact.rate >= 0.9 and exact.advantage >= 0.3, exact  # the attacker reads exact tables
    assert dp.refused == 0 and dp.trials == DP_TRIALS
    assert dp.advantage <= MARGIN, dp


def test_suppressed_tables_after_a_withdrawal_are_refused(
        lab: tuple[Path, list[dict[str, Any]], Path]) -> None:
    base, targets, root = lab
    protected = wd.tables_attack(base, root / "supp", targets[:TRIALS], wd.suppressed_tables)
    assert protected.refused == protected.trials == TRIALS
    assert protected.rate == protected.baseline


def test_a_refused_microdata_release_leaves_nothing(lab: tuple[Path, list[dict[str, Any]], Path],
                                                    tmp_path: Path) -> None:
    base, targets, _ = lab
    hub = wd.copy_hub(base, tmp_path / "hub.duckdb")
    with open_store(hub) as store:
        wd.release_microdata(store, tmp_path / "m1", wd.load_standard(), wd.SETTINGS, "ana")
        # the same data again: nothing changed, nothing to subtract
        wd.release_microdata(store, tmp_path / "m1-again", wd.load_standard(), wd.SETTINGS, "ana")
        releases = len(store.releases())
        withdraw(store, wd.PARTNER, wd.PARTNER, record_keys=[targets[0]["record_key"]])
        with pytest.raises(ReleaseRefused) as refused:
            wd.release_microdata(store, tmp_path / "m2", wd.load_standard(), wd.SETTINGS, "ana")
        assert len(store.releases()) == releases
        assert targets[0]["record_key"] not in str(refused.value)
        # the same through the hub's request workflow: the approval fails, the request stays pending
        from accord.serve.accounts import Role, User
        from accord.serve.requests import approve_request, create_request, get_request

        params = {"k": wd.SETTINGS.k, "l": wd.SETTINGS.l, "qi": list(wd.QI),
                  "sensitive": [wd.SENSITIVE], "max_loss": None}
        row = create_request(store, User("ana", "agency", Role.ANALYST), "microdata", params, "x")
        with pytest.raises(ReleaseRefused):
            approve_request(store, row["request_id"], "steve")
        assert get_request(store, row["request_id"])["status"] == "pending"
        assert len(store.releases()) == releases
    assert not (tmp_path / "m2").exists() or not any((tmp_path / "m2").iterdir())
