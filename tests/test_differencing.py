from __future__ import annotations

from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from accord.release.differencing import cells_at_risk, earlier_values, record_published
from accord.store import open_store


def test_moved_cells_are_at_risk(tmp_path: Path) -> None:
    with open_store(tmp_path / "h.duckdb") as store:
        record_published(store, "r1", "v1", "sex_age", {"F|18-20": 412, "M|18-20": 40, "F|0-8": None})
        record_published(store, "r2", "v2", "sex_age", {"F|18-20": 440})
        earlier = earlier_values(store, "sex_age", "v3")
        assert earlier == {"F|18-20": {412, 440}, "M|18-20": {40}}
        assert earlier_values(store, "sex_age", "v1") == {"F|18-20": {440}}
    current = {"F|18-20": 415, "M|18-20": 40, "F|0-8": 12}
    assert cells_at_risk(current, earlier, threshold=10) == {"F|18-20"}
    assert cells_at_risk({"F|18-20": 450}, earlier, threshold=10) == set()


@given(st.dictionaries(st.sampled_from("abcdef"), st.integers(0, 60)),
       st.dictionaries(st.sampled_from("abcdef"), st.integers(0, 60)), st.integers(2, 15))
def test_no_published_pair_differs_by_a_small_amount(before: dict[str, int], now: dict[str, int], t: int) -> None:
    risky = cells_at_risk(now, {k: {v} for k, v in before.items()}, t)
    for cell, value in now.items():
        if cell not in risky and cell in before:
            assert value == before[cell] or abs(value - before[cell]) >= t
