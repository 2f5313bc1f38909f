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


def test_two_releases_cannot_be_differenced(tmp_path: Path) -> None:
    """Release, add three records, release again: no published cell moved by 1..9."""
    import numpy as np

    from accord.protect.job import build_contribution
    from accord.protect.keys import create_partner_key
    from accord.release.suppression import SuppressionRules
    from accord.research.stats import compute_tables, remember_published
    from accord.simulate import SimulationConfig, simulate
    from accord.store import add_contribution
    from tests.conftest import CASE_MAPPING, write_case_export

    sim = simulate(SimulationConfig(people=1500, partners=1, overlap=0.0, seed=3, out=tmp_path / "sim",
                                    format_a="csv"))
    key = create_partner_key(tmp_path / "k")
    files = sim.partners[0]
    build_contribution(files.export, files.mapping, "a", tmp_path / "ca", key)
    rules = SuppressionRules(threshold=10)
    with open_store(tmp_path / "hub.duckdb") as store:
        add_contribution(store, tmp_path / "ca")
        first = compute_tables(store, rules, unit="records")
        remember_published(store, first, store.record_release("tables", {}, {}, "t"))
        rows = [f"Z{i};Ana;Ruiz;01/02/1990;F;MX;01/02/2022;TV;FL;0;0;" for i in range(3)]
        mapping = tmp_path / "m.yaml"
        mapping.write_text(CASE_MAPPING)
        build_contribution(write_case_export(tmp_path / "few.csv", rows), mapping, "b", tmp_path / "cb", key)
        add_contribution(store, tmp_path / "cb")
        second = compute_tables(store, rules, unit="records")
    for t1 in first.tables:
        t2 = second.table(t1.id)
        a = np.asarray(t1.published, dtype=object)
        b = np.asarray(t2.published, dtype=object)
        if a.shape != b.shape:
            continue
        for x, y in zip(a.ravel(), b.ravel(), strict=True):
            if x is not None and y is not None:
                assert x == y or abs(x - y) >= 10, (t1.id, x, y)
    # The data did change by three records: the grand total was published before and is hidden now.
    assert first.data_version != second.data_version
    assert first.table("case_type_by_sex").value(None, None) is not None
    assert second.table("case_type_by_sex").value(None, None) is None
    # ... and the table says why, in words
    assert any("total is hidden: it changed by less than the threshold" in n
               for n in second.table("case_type_by_sex").notes)
    assert not any("total is hidden" in n for n in first.table("case_type_by_sex").notes)
