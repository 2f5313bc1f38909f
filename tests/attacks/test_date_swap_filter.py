"""A curious hub attacks the unordered birth-date filter of format 4 (issue 11).

Claims (docs/linkage.md, Threat model, "Birth dates"):
* randomised response keeps equal dates' unordered filters from being bit-identical, so they
  cannot be counted as equal values; negative control: without it (p = 0) every equal date's
  filters are identical;
* what the filter discloses is the day/month-swap relation, and only that: grouping by it gives
  equal-or-swapped dates, grouping by the date filter (held since format 1) already gives equal
  dates and not swaps, and other dates are (almost) never grouped by either.
Figures at 3,000 x 3,000 records: benchmarks/results/dateswap.md.
"""

from __future__ import annotations

from accord.protect.encoding import LinkageSecret
from tests.attacks.date_filter_attack import date_group_rates
from tests.linkage_data import encode_rows, generate

SECRET = LinkageSecret(b"a" * 32)


def _rates(flip: float):  # type: ignore[no-untyped-def]
    a_rows, b_rows, _ = generate(1200, seed=8)
    a = encode_rows(a_rows, SECRET, 1, flip)
    b = encode_rows(b_rows, SECRET, 2, flip)
    return date_group_rates(a, b, [r["dob"] for r in a_rows], [r["dob"] for r in b_rows])


def test_counting_equal_unordered_filters_fails_only_with_randomised_response() -> None:
    hardened, plain = _rates(0.02), _rates(0.0)
    assert hardened.pairs["equal"] > 400 and hardened.pairs["swapped"] > 30
    assert hardened.identical_unordered < 0.01
    assert plain.identical_unordered == 1.0  # negative control: the count attack works


def test_the_unordered_filter_discloses_the_swap_relation_only() -> None:
    r = _rates(0.02)
    # The date filter already groups equal dates, not swaps; the unordered filter adds swaps.
    assert r.date_grouped["equal"] > 0.95 and r.date_grouped["swapped"] < 0.01
    assert r.unordered_grouped["equal"] > 0.99 and r.unordered_grouped["swapped"] > 0.99
    # Other dates are not grouped by either (a few in a million at most).
    assert r.unordered_grouped["other"] < 1e-4 and r.date_grouped["other"] < 1e-3
