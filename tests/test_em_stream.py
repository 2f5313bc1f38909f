"""EM's competing-candidate step streamed over chunks of pairs (`pattern_posteriors`) is the
whole-array computation (`pair_log_odds` then `np.bincount`) to the last bit, however the
pairs are cut, with ties, lone pairs, unwanted patterns among them, and none at all."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from accord.link.fellegi_sunter import (
    PairChunks,
    _sigmoid,
    pair_log_odds,
    pattern_posteriors,
)


def _whole(pid: np.ndarray, ia: np.ndarray, ib: np.ndarray, wanted: np.ndarray,
           log_bf: np.ndarray, n: tuple[int, int], matches: float) -> np.ndarray:
    """What `fit_em_on` computed before: the wanted pairs selected, then whole arrays."""
    sel = np.flatnonzero(wanted[pid])
    out = np.zeros(len(log_bf))
    if len(sel):
        lo = pair_log_odds(log_bf[pid[sel]], ia[sel], ib[sel], *n, matches)
        out += np.bincount(pid[sel], weights=_sigmoid(lo), minlength=len(log_bf))
    return out


@settings(max_examples=150, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 30), st.integers(1, 30), st.integers(0, 300),
       st.integers(1, 12), st.integers(1, 400), st.sampled_from([2.0, 8.0, 300.0]))
def test_streamed_step_is_the_whole_array_step_to_the_bit(
        seed: int, n_a: int, n_b: int, n_pairs: int, n_pat: int, size: int,
        spread: float) -> None:
    rng = np.random.default_rng(seed)
    # Candidate order (code order), each pair once; few records and patterns, so that records
    # have one pair or many, and equal odds within a record (ties for the top pair) are common.
    codes = np.unique(rng.integers(0, n_a * n_b, n_pairs))
    ia, ib = codes // n_b, codes % n_b
    pid = rng.integers(0, n_pat, len(codes)).astype(np.int32)
    log_bf = rng.normal(0, spread, n_pat)  # 300: odds clipped, one pair dominating its record
    wanted = rng.random(n_pat) < 0.7
    matches = float(rng.uniform(0.5, min(n_a, n_b)))
    want = _whole(pid, ia, ib, wanted, log_bf, (n_a, n_b), matches)
    chunks = PairChunks(len(pid), lambda s, e: (pid[s:e], ia[s:e], ib[s:e]), size)
    got = pattern_posteriors(chunks, wanted, log_bf, n_a, n_b, matches)
    assert np.array_equal(want, got)
    assert got.dtype == want.dtype and got.shape == want.shape


def test_nothing_wanted_or_no_pairs_gives_zeros() -> None:
    pid = np.array([0, 1, 1], dtype=np.int32)
    ia, ib = np.array([0, 0, 1]), np.array([1, 0, 1])
    log_bf = np.array([3.0, -1.0])
    chunks = PairChunks(3, lambda s, e: (pid[s:e], ia[s:e], ib[s:e]), 2)
    assert np.array_equal(pattern_posteriors(chunks, np.zeros(2, bool), log_bf, 2, 2, 1.0),
                          np.zeros(2))
    none = PairChunks(0, lambda s, e: (pid[:0], ia[:0], ib[:0]))
    assert np.array_equal(pattern_posteriors(none, np.ones(2, bool), log_bf, 2, 2, 1.0),
                          np.zeros(2))


def test_a_record_out_of_range_is_refused() -> None:
    pid = np.zeros(2, dtype=np.int32)
    ia, ib = np.array([0, 2]), np.array([0, 1])  # A has 2 records: 2 is out of range
    chunks = PairChunks(2, lambda s, e: (pid[s:e], ia[s:e], ib[s:e]))
    with pytest.raises(ValueError, match="out of range"):
        pattern_posteriors(chunks, np.ones(1, bool), np.zeros(1), 2, 2, 1.0)
