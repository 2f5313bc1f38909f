"""Issue 10: a sequence of releases must not tell an attacker who knows everyone else where a
new or changed person is. Each attack runs >= 50 trials against Accord's default protection
(one DP draw per data version) and, as the negative control, against the unprotected release
(exact counts) that the same attacker breaks, so these tests can fail.

Figures (more trials, more budgets): benchmarks/attacks_overtime.py ->
benchmarks/results/attacks/overtime.md.
"""

from __future__ import annotations

import pytest

from accord.research.noisy import DEFAULT_RHO, ESTIMATE_RHO
from tests.attacks.differencing import Tally, exact, exact_strata, run, run_strata
from tests.attacks.noisy_release import dp_release, dp_strata_release

TRIALS = 50
MARGIN = 0.05  # success at most 5 points above the chance baseline


def _check(protected: dict[str, Tally], control: dict[str, Tally], control_gain: float) -> None:
    for name, t in protected.items():
        assert t.trials >= TRIALS, name
        assert t.advantage <= MARGIN, (name, t.rate, t.baseline)
    for name, t in control.items():  # the attack works: (nearly) always right, above chance
        assert t.rate >= 0.9 and t.advantage >= control_gain, (name, t.rate, t.baseline)


@pytest.mark.slow
@pytest.mark.parametrize("scenario", ["added", "updated"])
def test_one_person_added_or_updated_cannot_be_located(scenario: str) -> None:
    res = run({"accord": dp_release(DEFAULT_RHO), "exact": exact(hide_small=False)}, scenario,
              TRIALS, seed=7 if scenario == "added" else 8)
    # the unprotected release gives every table away
    _check(res["accord"], res["exact"], 0.1)


@pytest.mark.slow
def test_deterministic_small_cell_hiding_is_no_protection_over_time() -> None:
    """Hiding 1-9 without noise (what a deterministic method does) still shows the person."""
    res = run({"hidden": exact(hide_small=True)}, "added", TRIALS, seed=9,
              only=("sex_by_age_band", "case_type_by_sex", "citizenship_by_sex",
                    "registrations_by_year"))
    gains = [t.advantage for t in res["hidden"].values() if t.trials]
    assert gains and min(gains) >= 0.3


@pytest.mark.slow
def test_nested_estimate_strata_do_not_locate_a_person() -> None:
    res = run_strata({"accord": dp_strata_release(ESTIMATE_RHO),
                      "exact, small hidden": exact_strata(hide_small=True)}, 60)
    assert res["accord"].trials >= TRIALS
    assert res["accord"].advantage <= MARGIN, (res["accord"].rate, res["accord"].baseline)
    assert res["exact, small hidden"].advantage >= 0.5


@pytest.mark.slow
def test_the_attacker_breaks_a_dp_release_with_too_little_noise() -> None:
    """Positive control for the attacker on noisy, post-processed output: at rho 1000 (noise sd
    under 0.2) the same MILP finds the person (the 250-country table, fitted by least squares
    and raking, in 88 % of trials), so chance-level results at the default rho come
    from the noise, not from an attacker that cannot read a DP release."""
    res = run({"weak": dp_release(1000.0)}, "added", TRIALS, seed=10,
              only=("sex_by_age_band", "citizenship_by_sex", "registrations_by_year"))
    for name, t in res["weak"].items():
        if t.trials:
            assert t.rate >= 0.8 and t.advantage >= 0.5, (name, t.rate, t.baseline)
    strata = run_strata({"weak": dp_strata_release(1000.0)}, TRIALS, seed=12)
    assert strata["weak"].rate >= 0.9
