"""Scalable candidate generation (LSH forest passes with a Dice filter) and the compiled kernels."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from accord.link import kernels
from accord.link.assign import greedy_one_to_one
from accord.link.blocking import (
    BlockingConfig,
    _band,
    _bits,
    _pass_groups,
    _thresholds,
    blocking_filter,
    candidate_codes,
    candidate_pairs,
    plan,
    sorted_unique,
)
from accord.link.encodings import EncodedSet
from accord.protect.encoding import LinkageSecret
from accord.protect.encoding.schema import FieldKind
from tests.linkage_data import encode_rows, generate

SECRET = LinkageSecret(b"b" * 32)


def _encode(rows: list[dict[str, str]], seed: int) -> EncodedSet:
    return encode_rows(rows, SECRET, seed)


@pytest.fixture(scope="module")
def five_k() -> tuple[EncodedSet, EncodedSet, list[tuple[str, str, str]]]:
    a_rows, b_rows, truth = generate(5000, seed=8)
    return _encode(a_rows, 1), _encode(b_rows[:5000], 2), truth


def test_blocking_recall_and_size_on_migrant_like_data(five_k: tuple) -> None:
    a, b, truth = five_k
    report: dict[str, object] = {}
    codes = candidate_codes(a, b, BlockingConfig(), report)
    assert len(codes) == len(np.unique(codes))
    assert report  # the passes run are reported
    pos_a = {x: i for i, x in enumerate(a.ids.tolist())}
    pos_b = {x: i for i, x in enumerate(b.ids.tolist())}
    true = [(pos_a[x] * len(b) + pos_b[y], k) for x, y, k in truth if y in pos_b]
    found = np.isin([c for c, _ in true], codes)
    assert found.mean() > 0.98
    by_kind = Counter(k for (_, k), f in zip(true, found, strict=True) if f)
    total = Counter(k for _, k in true)
    # Every kind of error but the unknown birth date (names alone: common at any size) is found.
    for kind, n in total.items():
        assert by_kind[kind] / n > (0.85 if kind == "unknown_date" else 0.97), kind
    assert len(codes) < 40 * len(a)  # a few dozen candidates per record, not |B|


def test_candidate_pairs_decodes_codes(five_k: tuple) -> None:
    a, b, _ = five_k
    ia, ib = candidate_pairs(a, b)
    codes = candidate_codes(a, b)
    assert np.array_equal(ia * len(b) + ib, codes)
    assert ia.max() < len(a) and ib.max() < len(b)


def _close_reference(fa: np.ndarray, fb: np.ndarray, bounds: np.ndarray, x: int, y: int,
                     min_dice: np.ndarray) -> bool:
    for g in range(len(bounds) - 1):
        wa, wb = fa[x, bounds[g]:bounds[g + 1]], fb[y, bounds[g]:bounds[g + 1]]
        na, nb = int(np.bitwise_count(wa).sum()), int(np.bitwise_count(wb).sum())
        if na and nb and 2 * int(np.bitwise_count(wa & wb).sum()) < min_dice[g] * (na + nb):
            return False
    return True


def test_streamed_band_equals_brute_force(five_k: tuple) -> None:
    """One band: the compiled join returns exactly the pairs that share a bucket and pass the
    Dice filter, computed here pair by pair."""
    a, b, _ = five_k
    a = EncodedSet(a.ids[:600], {k: type(v)(v.words[:600], v.ones[:600], v.present[:600])
                                 for k, v in a.fields.items()}, a.quality, a.info)
    kinds = (FieldKind.NAME, FieldKind.YEAR, FieldKind.CODE)
    (fa, bounds), (fb, _) = blocking_filter(a, kinds), blocking_filter(b, kinds)
    cfg = BlockingConfig()
    rows = plan(fa, fb, cfg).rows
    buckets, oa, ob = _band(fa, fb, rows, cfg, _bits(fa.shape[1] * 64, np.random.default_rng(4)))
    limits = _thresholds(a, kinds, cfg)
    assert limits.tolist() == [cfg.min_dice_long, cfg.min_dice, cfg.min_dice, cfg.min_dice]
    xa, xb = kernels.join_buckets(buckets, oa, ob, fa, kernels.group_ones(fa, bounds), fb,
                                  kernels.group_ones(fb, bounds), bounds, limits)
    expected = set()
    for s_a, e_a, s_b, e_b, _depth in buckets.tolist():
        for x in oa[s_a:e_a].tolist():
            for y in ob[s_b:e_b].tolist():
                if _close_reference(fa, fb, bounds, x, y, limits):
                    expected.add((x, y))
    got = list(zip(xa.tolist(), xb.tolist(), strict=True))
    assert len(got) == len(set(got))
    assert set(got) == expected
    # buckets are disjoint and each shares its key prefix
    seen_a = np.zeros(len(fa), dtype=int)
    for s_a, e_a, *_ in buckets.tolist():
        seen_a[s_a:e_a] += 1
    assert seen_a.max() <= 1


def test_pass_groups_or_name_domains_and_keep_codes_apart(five_k: tuple) -> None:
    a, _, _ = five_k
    groups = _pass_groups(a, (FieldKind.NAME, FieldKind.YEAR, FieldKind.CODE))
    assert groups[0] == [["given_family"]]  # one name field: given and family together
    assert [["dob__year"]] in groups
    assert [["sex"]] in groups and [["citizenship"]] in groups


# ------------------------------------------------------------------ kernels
def _greedy_reference(ia: np.ndarray, ib: np.ndarray, score: np.ndarray) -> list[int]:
    order = np.argsort(-score, kind="stable")
    used_a: set[int] = set()
    used_b: set[int] = set()
    keep = []
    for k in order.tolist():
        if ia[k] in used_a or ib[k] in used_b:
            continue
        used_a.add(int(ia[k]))
        used_b.add(int(ib[k]))
        keep.append(k)
    return keep


@given(st.lists(st.tuples(st.integers(0, 12), st.integers(0, 12),
                          st.integers(-5, 5)), max_size=80))
@settings(max_examples=200, deadline=None)
def test_greedy_one_to_one_property(rows: list[tuple[int, int, int]]) -> None:
    ia = np.array([r[0] for r in rows], dtype=np.int64)
    ib = np.array([r[1] for r in rows], dtype=np.int64)
    score = np.array([r[2] for r in rows], dtype=np.float64)
    keep = greedy_one_to_one(ia, ib, score)
    assert len(set(ia[keep].tolist())) == len(keep)  # each record used once
    assert len(set(ib[keep].tolist())) == len(keep)
    assert keep.tolist() == _greedy_reference(ia, ib, score)
    # maximal: every pair left out shares a record with a kept pair of at least its score
    kept_a = {int(ia[k]): score[k] for k in keep}
    kept_b = {int(ib[k]): score[k] for k in keep}
    for k in set(range(len(rows))) - set(keep.tolist()):
        assert max(kept_a.get(int(ia[k]), -np.inf), kept_b.get(int(ib[k]), -np.inf)) >= score[k]


@given(st.lists(st.tuples(st.binary(min_size=24, max_size=24),
                          st.binary(min_size=24, max_size=24)), min_size=1, max_size=30))
@settings(max_examples=100, deadline=None)
def test_pair_dice_matches_numpy(pairs: list[tuple[bytes, bytes]]) -> None:
    wa = np.frombuffer(b"".join(p[0] for p in pairs), dtype=np.uint64).reshape(len(pairs), 3)
    wb = np.frombuffer(b"".join(p[1] for p in pairs), dtype=np.uint64).reshape(len(pairs), 3)
    oa = np.bitwise_count(wa).sum(axis=1, dtype=np.int32)
    ob = np.bitwise_count(wb).sum(axis=1, dtype=np.int32)
    idx = np.arange(len(pairs), dtype=np.int64)
    common = np.bitwise_count(wa & wb).sum(axis=1)
    ref = np.where(oa + ob > 0, 2 * common / np.maximum(oa + ob, 1), 0.0)
    got = kernels.pair_dice(wa, oa, wb, ob, idx, idx[::-1].copy()[::-1])
    assert np.allclose(got, ref, atol=1e-6)


def test_kernels_compile_without_a_writable_cache() -> None:
    """A read-only install: numba finds no cache location, the kernel is compiled in memory."""
    code = textwrap.dedent("""
        import numpy as np
        from accord.link.kernels import jit
        src = "def f(x):\\n    return x.sum() * 2\\n"
        ns = {}
        exec(compile(src, "/nonexistent/readonly/module.py", "exec"), ns)
        g = jit()(ns["f"])
        print(g(np.arange(4)))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "12"


def _others_reference(x: np.ndarray, idx: np.ndarray, n: int) -> np.ndarray:
    # The plain numpy form the compiled kernel replaced.
    total = np.bincount(idx, weights=x, minlength=n)
    best = np.full(n, -np.inf)
    np.maximum.at(best, idx, x)
    cand = np.flatnonzero(x >= best[idx])
    _, first = np.unique(idx[cand], return_index=True)
    top = np.zeros(len(x), dtype=bool)
    top[cand[first]] = True
    rest = np.bincount(idx, weights=np.where(top, 0.0, x), minlength=n)
    return np.where(top, rest[idx], np.maximum(total[idx] - x, 0.0))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 6), st.floats(0, 1e6)), min_size=1, max_size=60))
def test_others_sum_matches_numpy(pairs: list[tuple[int, float]]) -> None:
    from accord.link.kernels import others_sum

    idx = np.array([p[0] for p in pairs], dtype=np.int64)
    x = np.array([p[1] for p in pairs], dtype=np.float64)
    np.testing.assert_allclose(others_sum(x, idx, 7), _others_reference(x, idx, 7), rtol=1e-9, atol=1e-9)


@given(st.lists(st.lists(st.integers(0, 50), max_size=40), max_size=5))
@settings(max_examples=60, deadline=None)
def test_sorted_unique_is_numpys_unique_of_the_parts(parts: list[list[int]]) -> None:
    """The deduplication of the candidate codes (in place, one full-size copy) gives
    np.unique's result, and lets go of the parts it was given."""
    arrays = [np.asarray(p, dtype=np.int64) for p in parts]
    want = np.unique(np.concatenate(arrays)) if arrays else np.empty(0, dtype=np.int64)
    given_parts = list(arrays)
    got = sorted_unique(given_parts)
    assert got.dtype == np.int64 and np.array_equal(got, want)
    assert given_parts == []
