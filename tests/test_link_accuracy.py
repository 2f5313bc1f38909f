"""Accuracy mechanisms of the linkage model: the day/month-swap level, competing candidates,
the estimated number of matches, birth years from ages, and clustering that does not chain."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from accord.link import ClusterRecord, EncodedSet, MatchConfig, cluster_records, match_sets
from accord.link.blocking import all_pairs
from accord.link.comparisons import SWAP_LABEL, comparison_levels, comparisons
from accord.link.match import score_pairs
from accord.protect.encoding import LinkageSecret
from tests.linkage_data import encode_rows, generate

SECRET = LinkageSecret(b"s" * 32)


def _encode(rows: list[dict[str, str]], flip: float = 0.02, seed: int = 0) -> EncodedSet:
    return encode_rows(rows, SECRET, seed, flip)


def _row(pid: str, given: str, family: str, dob: str) -> dict[str, str]:
    return {"id": pid, "given": given, "family": family, "dob": dob, "sex": "female",
            "citizenship": "SY"}


@pytest.fixture(scope="module")
def generated() -> tuple[EncodedSet, EncodedSet, list[tuple[str, str, str]]]:
    a_rows, b_rows, truth = generate(900, seed=17)
    return _encode(a_rows, seed=1), _encode(b_rows, seed=2), truth


def _date_level(a: EncodedSet, b: EncodedSet, i: int, j: int) -> str:
    comp = comparisons(a.info.schema)
    col = [c.field for c in comp].index("dob")
    level = comparison_levels(a, b, np.array([i]), np.array([j]))[0, col]
    return comp[col].labels[level]


def test_day_month_swap_has_its_own_level() -> None:
    a = _encode([_row("a", "Amina", "Haddad", "1990-03-07")], flip=0.0)
    b = _encode([_row("swap", "Amina", "Haddad", "1990-07-03"),
                 _row("same", "Amina", "Haddad", "1990-03-07"),
                 _row("other-year", "Amina", "Haddad", "1984-07-03"),
                 _row("unrelated", "Amina", "Haddad", "1990-11-25"),
                 _row("same-month", "Amina", "Haddad", "1990-03-21")], flip=0.0)
    assert _date_level(a, b, 0, 0) == SWAP_LABEL
    assert _date_level(a, b, 0, 1) == "dice>=0.85"
    assert _date_level(a, b, 0, 2) not in (SWAP_LABEL, "dice>=0.44, year equal")
    assert _date_level(a, b, 0, 3) not in (SWAP_LABEL, "dice>=0.44, year equal")
    # The same month shares as many of the date filter's tokens as a swap does (a band below the
    # top one, or the partial level), never the swap level.
    assert _date_level(a, b, 0, 4) not in (SWAP_LABEL, "dice>=0.85")


def test_swapped_birth_dates_are_linked(generated: tuple) -> None:
    a, b, truth = generated
    r = match_sets(a, b)
    found = set(zip(a.ids[r.ia].tolist(), b.ids[r.ib].tolist(), strict=True))
    swaps = [(x, y) for x, y, k in truth if k == "day_month_swap"]
    # Before the swap level, about 0.6 of these were found at the default hardening.
    assert sum(p in found for p in swaps) / len(swaps) > 0.9
    false = len(found - {(x, y) for x, y, _ in truth})
    assert false / len(found) < 0.03


def test_em_estimates_the_number_of_matches(generated: tuple) -> None:
    a, b, truth = generated
    r = match_sets(a, b)
    assert r.model.matches == pytest.approx(len(truth), rel=0.1)
    assert r.model.summary()["estimated_matches"] == round(r.model.matches, 1)


def test_competing_candidates_share_the_evidence(generated: tuple) -> None:
    a, b, _ = generated
    # One record of A, three records of B with the same (rare) name and no birth date: nothing
    # tells which of the three it is, so no pair may be linked, and their match probabilities
    # together stay below one.
    extra_a = _encode([_row("ax", "Zebulon", "Quaxley", "")], seed=5)
    extra_b = _encode([_row(f"bx{i}", "Zebulon", "Quaxley", "") for i in range(3)], seed=6)
    aa = _concat(a, extra_a)
    bb = _concat(b, extra_b)
    ia, ib = all_pairs(aa, bb)
    _, prob, _ = score_pairs(aa, bb, ia, ib, MatchConfig())
    x = len(aa) - 1
    mine = (ia == x) & (ib >= len(bb) - 3)
    assert mine.sum() == 3
    # At most one in total, up to the mean-field discount of competitors that have weak
    # candidates of their own (1.011 with the format-3 joint name field).
    assert prob[mine].sum() <= 1.02
    assert (prob[mine] < 0.5).all()
    r = match_sets(aa, bb)
    assert x not in set(r.ia.tolist())


def _concat(s: EncodedSet, t: EncodedSet) -> EncodedSet:
    fields = {k: replace(v, words=np.concatenate([v.words, t.fields[k].words]),
                         ones=np.concatenate([v.ones, t.fields[k].ones]),
                         present=np.concatenate([v.present, t.fields[k].present]))
              for k, v in s.fields.items()}
    quality = {k: np.concatenate([v, t.quality[k]]) for k, v in s.quality.items()}
    return EncodedSet(np.concatenate([s.ids, t.ids]), fields, quality, s.info)


def test_birth_years_from_ages_count_only_where_the_date_is_unknown() -> None:
    a = _encode([_row("a1", "Amina", "Haddad", ""), _row("a2", "Amina", "Haddad", "1990-03-07")],
                flip=0.0)
    b = _encode([_row("b1", "Amina", "Haddad", ""), _row("b2", "Amina", "Haddad", "1990-03-07")],
                flip=0.0)
    assert _date_level(a, b, 0, 0) == "null"  # plain files: no ages, nothing to compare
    a = replace(a, birth_years=np.array([1990.2, 1990.3]))
    b = replace(b, birth_years=np.array([1990.9, 1960.0]))
    assert _date_level(a, b, 0, 0) == "age year +/-1.5"
    assert _date_level(a, b, 0, 1) == "age year differs"
    b = replace(b, birth_years=np.array([1990.6, 1960.0]))
    assert _date_level(a, b, 0, 0) == "age year +/-0.5"
    assert _date_level(a, b, 1, 1) == "dice>=0.85"  # a known date is never overridden


def test_clustering_does_not_chain_through_a_contradiction() -> None:
    recs = [ClusterRecord("a", None), ClusterRecord("b", None), ClusterRecord("c", None)]
    ei, ej, sc = np.array([0, 1]), np.array([1, 2]), np.array([0.9, 0.8])
    joined = cluster_records(recs, ei, ej, sc)
    assert len(set(joined.tolist())) == 1
    asked: list[tuple[int, int]] = []

    def never_a_with_c(i: int, j: int) -> bool:
        asked.append((i, j))
        return {i, j} != {0, 2}

    kept = cluster_records(recs, ei, ej, sc, never_a_with_c)
    assert kept[0] == kept[1] and kept[2] != kept[1]
    assert asked == [(0, 2)]  # only the pair without an edge of its own is checked


def test_tiny_and_disjoint_inputs() -> None:
    same_a = _encode([_row("x", "Amina", "Haddad", "1990-03-07")])
    same_b = _encode([_row("y", "Amina", "Haddad", "1990-03-07")])
    other = _encode([_row("z", "Petro", "Kovalenko", "1971-11-30")])
    assert len(match_sets(same_a, same_b).ia) == 1
    assert len(match_sets(same_a, other).ia) == 0  # one lone pair that disagrees: no match
    a_rows, _, _ = generate(300, overlap=0.0, seed=1)
    b_rows, _, _ = generate(300, overlap=0.0, seed=2)
    for row in b_rows:
        row["id"] = "b" + row["id"]
    res = match_sets(_encode(a_rows, seed=1), _encode(b_rows, seed=2))
    assert len(res.ia) <= 3 and res.model.matches < 5  # nobody in common
