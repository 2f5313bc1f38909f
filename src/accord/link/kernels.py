"""Compiled loops of linkage: band keys, bucket joins with a Dice filter, pair Dice, greedy
one-to-one assignment.

Why numba: these are loops over millions of records or pairs whose numpy form materialises
(pairs x words) temporaries or runs in Python; at 1,000,000 x 1,000,000 records that is the
difference between minutes and hours. Pair Dice uses all cores (``prange``); the band kernels are
serial and release the GIL, and the blocking runs bands in parallel threads. numba caches the
machine code next to the module; where no cache location is writable (a read-only install) the
kernels are compiled in memory at first use instead.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import numba
import numpy as np
from numba import prange

F = TypeVar("F", bound=Callable[..., Any])


def jit(**options: Any) -> Callable[[F], F]:
    """numba.njit with an on-disk cache when one is writable, else without."""

    def deco(fn: F) -> F:
        try:
            return numba.njit(cache=True, **options)(fn)
        except RuntimeError:  # "cannot cache function ...: no locator available"
            return numba.njit(cache=False, **options)(fn)

    return deco


_M1 = np.uint64(0x5555555555555555)
_M2 = np.uint64(0x3333333333333333)
_M4 = np.uint64(0x0F0F0F0F0F0F0F0F)
_H01 = np.uint64(0x0101010101010101)


@jit(inline="always")
def _popcount(x: np.uint64) -> np.uint64:
    # numba has no popcount intrinsic; LLVM turns this SWAR form into the CPU's popcnt.
    x = x - ((x >> np.uint64(1)) & _M1)
    x = (x & _M2) + ((x >> np.uint64(2)) & _M2)
    x = (x + (x >> np.uint64(4))) & _M4
    return (x * _H01) >> np.uint64(56)


@jit(inline="always")
def _dice(wa: np.ndarray, ones_a: np.ndarray, i: int, wb: np.ndarray, ones_b: np.ndarray,
          j: int) -> float:
    total = ones_a[i] + ones_b[j]
    if total == 0:
        return 0.0
    common = np.uint64(0)
    for w in range(wa.shape[1]):
        common += _popcount(wa[i, w] & wb[j, w])
    return 2.0 * float(common) / float(total)


@jit(parallel=True)
def pair_dice(wa: np.ndarray, ones_a: np.ndarray, wb: np.ndarray, ones_b: np.ndarray,
              ia: np.ndarray, ib: np.ndarray) -> np.ndarray:
    """Dice of the filter pairs (wa[ia[k]], wb[ib[k]]), float32; 0 where both are empty."""
    out = np.empty(len(ia), dtype=np.float32)
    for k in prange(len(ia)):
        out[k] = _dice(wa, ones_a, ia[k], wb, ones_b, ib[k])
    return out


@jit(nogil=True)
def band_keys(words: np.ndarray, word: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """Per record, the sampled bits (word[j], shift[j]) packed into a uint64 key, the first
    sampled bit most significant (so sorted keys nest: a prefix of the bits is a bucket)."""
    n = words.shape[0]
    out = np.empty(n, dtype=np.uint64)
    one = np.uint64(1)
    for i in range(n):
        key = np.uint64(0)
        for j in range(len(word)):
            key |= ((words[i, word[j]] >> np.uint64(shift[j])) & one) << np.uint64(63 - j)
        out[i] = key
    return out


@jit(nogil=True)
def _first_set(keys: np.ndarray, lo: int, hi: int, bit: np.uint64) -> int:
    """First index in keys[lo:hi] (sorted, equal above ``bit``) whose ``bit`` is set."""
    one = np.uint64(1)
    while lo < hi:
        mid = (lo + hi) // 2
        if (keys[mid] >> bit) & one:
            hi = mid
        else:
            lo = mid + 1
    return lo


@jit(nogil=True)
def shared_buckets(ka: np.ndarray, kb: np.ndarray, depth: int, bits: int, max_side: int,
                   cap: int) -> np.ndarray:
    """Buckets of records sharing a key prefix, as rows (start_a, end_a, start_b, end_b, bits
    shared) of the sorted key arrays.

    Records sharing the first ``depth`` bits form a bucket; a bucket where both sides hold more
    than ``max_side`` records (a common value) is split by the next bit, and again, up to
    ``bits`` (an LSH forest): the work per record stays bounded while rare values keep short
    keys, which true pairs share more often. A bucket still too large at full depth and pairing
    more than ``cap`` records is left out; other bands and passes find its true pairs.
    """
    out = np.empty((min(len(ka), len(kb)), 5), dtype=np.int64)
    stack = np.empty((130, 5), dtype=np.int64)
    n = 0
    i = 0
    j = 0
    drop = np.uint64(64 - depth)
    while i < len(ka) and j < len(kb):
        pa = ka[i] >> drop
        pb = kb[j] >> drop
        if pa < pb:
            i += 1
            continue
        if pa > pb:
            j += 1
            continue
        ei = i + 1
        while ei < len(ka) and (ka[ei] >> drop) == pa:
            ei += 1
        ej = j + 1
        while ej < len(kb) and (kb[ej] >> drop) == pb:
            ej += 1
        top = 0
        stack[0, 0] = i
        stack[0, 1] = ei
        stack[0, 2] = j
        stack[0, 3] = ej
        stack[0, 4] = depth
        top = 1
        while top > 0:
            top -= 1
            sa, ea, sb, eb, d = stack[top]
            na = ea - sa
            nb = eb - sb
            if na == 0 or nb == 0:
                continue
            if min(na, nb) <= max_side or d >= bits:
                if min(na, nb) <= max_side or na * nb <= cap:
                    out[n, 0] = sa
                    out[n, 1] = ea
                    out[n, 2] = sb
                    out[n, 3] = eb
                    out[n, 4] = d
                    n += 1
                continue
            bit = np.uint64(63 - d)
            ma = _first_set(ka, sa, ea, bit)
            mb = _first_set(kb, sb, eb, bit)
            stack[top, 0] = sa
            stack[top, 1] = ma
            stack[top, 2] = sb
            stack[top, 3] = mb
            stack[top, 4] = d + 1
            stack[top + 1, 0] = ma
            stack[top + 1, 1] = ea
            stack[top + 1, 2] = mb
            stack[top + 1, 3] = eb
            stack[top + 1, 4] = d + 1
            top += 2
        i = ei
        j = ej
    return out[:n]


@jit(inline="always")
def _close(wa: np.ndarray, ones_a: np.ndarray, i: int, wb: np.ndarray, ones_b: np.ndarray,
           j: int, bounds: np.ndarray, min_dice: np.ndarray) -> bool:
    """Every field group (words bounds[g]:bounds[g+1]) has Dice >= min_dice[g] or is empty."""
    for g in range(len(bounds) - 1):
        na = ones_a[i, g]
        nb = ones_b[j, g]
        if na == 0 or nb == 0:
            continue  # a missing value neither confirms nor refutes
        common = np.uint64(0)
        for w in range(bounds[g], bounds[g + 1]):
            common += _popcount(wa[i, w] & wb[j, w])
        if 2.0 * float(common) < min_dice[g] * float(na + nb):
            return False
    return True


@jit(nogil=True)
def join_buckets(buckets: np.ndarray, oa: np.ndarray, ob: np.ndarray, wa: np.ndarray,
                 ones_a: np.ndarray, wb: np.ndarray, ones_b: np.ndarray, bounds: np.ndarray,
                 min_dice: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Record pairs of the buckets that are close in every field group.

    Rows x of a bucket are records oa[x]; ``ones_*`` are popcounts per field group. Serial and
    free of the GIL: the bands of a pass run in parallel threads instead.
    """
    total = 0
    for k in range(buckets.shape[0]):
        total += (buckets[k, 1] - buckets[k, 0]) * (buckets[k, 3] - buckets[k, 2])
    out_a = np.empty(total, dtype=np.int64)
    out_b = np.empty(total, dtype=np.int64)
    p = 0
    for k in range(buckets.shape[0]):
        for x in range(buckets[k, 0], buckets[k, 1]):
            for y in range(buckets[k, 2], buckets[k, 3]):
                if _close(wa, ones_a, oa[x], wb, ones_b, ob[y], bounds, min_dice):
                    out_a[p] = oa[x]
                    out_b[p] = ob[y]
                    p += 1
    return out_a[:p].copy(), out_b[:p].copy()


@jit(parallel=True)
def group_ones(words: np.ndarray, bounds: np.ndarray) -> np.ndarray:
    """(n, groups) popcount of each field group."""
    n = words.shape[0]
    out = np.zeros((n, len(bounds) - 1), dtype=np.int32)
    for i in prange(n):
        for g in range(len(bounds) - 1):
            c = np.uint64(0)
            for w in range(bounds[g], bounds[g + 1]):
                c += _popcount(words[i, w])
            out[i, g] = c
    return out


@jit()
def greedy_assign(ia: np.ndarray, ib: np.ndarray, order: np.ndarray, na: int,
                  nb: int) -> np.ndarray:
    """Positions (in ``order``'s sequence) of pairs whose two records are both still free."""
    used_a = np.zeros(na, dtype=np.bool_)
    used_b = np.zeros(nb, dtype=np.bool_)
    keep = np.empty(min(len(order), min(na, nb)), dtype=np.int64)
    n = 0
    for k in order:
        x = ia[k]
        y = ib[k]
        if used_a[x] or used_b[y]:
            continue
        used_a[x] = True
        used_b[y] = True
        keep[n] = k
        n += 1
    return keep[:n]


@jit(nogil=True)
def others_sum(x: np.ndarray, idx: np.ndarray, n: int) -> np.ndarray:
    """For each pair k, the sum of x over the other pairs of record idx[k].

    The top pair of a record (its first maximum) gets the sum of the rest, added up directly:
    total - x would cancel catastrophically where one pair dominates its record. The others get
    max(total - x, 0), as in numpy. Three linear passes instead of a sort and ufunc.at.
    """
    total = np.zeros(n)
    best = np.full(n, -np.inf)
    top = np.full(n, -1, dtype=np.int64)
    for k in range(len(x)):
        i = idx[k]
        total[i] += x[k]
        if x[k] > best[i]:
            best[i] = x[k]
            top[i] = k
    rest = np.zeros(n)
    for k in range(len(x)):
        i = idx[k]
        if top[i] != k:
            rest[i] += x[k]
    out = np.empty(len(x))
    for k in range(len(x)):
        i = idx[k]
        out[k] = rest[i] if top[i] == k else max(total[i] - x[k], 0.0)
    return out


@jit(nogil=True)
def compact_sorted(x: np.ndarray) -> int:
    """Move the distinct values of the sorted array ``x`` to its front, in place; returns how
    many there are (``np.unique`` of a sorted array without its mask and its copy)."""
    n = len(x)
    if n == 0:
        return 0
    k = 1
    for i in range(1, n):
        if x[i] != x[k - 1]:
            x[k] = x[i]
            k += 1
    return k


# EM's competing-candidate step streamed over the pairs (fellegi_sunter.pattern_posteriors):
# `others_sum` of a pair is its record's total, top pair and rest with the pair's own value, so
# per-record state replaces every pair-sized intermediate. A record's state is one row of ``s``,
# per level its total, rest, top pair (its position in the stream, as a float64: exact below
# 2**53) and best value: 64 bytes, one cache line where the rows are aligned, so that a scan's
# random accesses (to B's records: the pairs are in A's order) touch one line a record.
STATE = 8


@jit(inline="always")
def _other(s: np.ndarray, level: int, i: int, g: int, v: float) -> float:
    """`others_sum`'s value for pair ``g`` (value ``v``) of record ``i`` at ``level``. Both
    values, then a select: whether a pair is its record's top is unpredictable, and a
    mispredicted branch cost more than the two loads from the one cache line."""
    c = 4 * level
    top = s[i, c + 1]
    other = max(s[i, c] - v, 0.0)
    return top if s[i, c + 2] == g else other


@jit(inline="always")
def _second(x: float, i: int, j: int, g: int, sa: np.ndarray,
            sb: np.ndarray) -> tuple[float, float]:
    """A pair's values for the second sums on its A record's side and on its B record's side:
    x / (1 + the other side's first sum), as `pair_log_odds` feeds them."""
    return x / (1.0 + _other(sb, 0, j, g, x)), x / (1.0 + _other(sa, 0, i, g, x))


@jit(inline="always")
def _add(s: np.ndarray, c: int, i: int, g: int, v: float) -> None:
    """Pair ``g`` with value ``v`` into record ``i``'s total, first maximum and rest.

    The rest (the sum of the pairs other than the top one, in pair order, as `others_sum`'s
    second loop adds them) in the same scan: when a pair becomes the best, the pairs before
    it are all not the top, and their sum in order is the total before it, to the bit; later
    pairs that are not the best add to it in order. Selects, not branches (see `_other`)."""
    total = s[i, c]
    best = v > s[i, c + 3]
    s[i, c + 1] = total if best else s[i, c + 1] + v
    s[i, c + 2] = g if best else s[i, c + 2]
    s[i, c + 3] = v if best else s[i, c + 3]
    s[i, c] = total + v


@jit(nogil=True)
def compete_first_side(pid: np.ndarray, rec: np.ndarray, wanted: np.ndarray,
                       x_pat: np.ndarray, g0: int, s: np.ndarray) -> bool:
    """One chunk of the first scan (pairs g0, g0 + 1, ... of the stream; those of unwanted
    patterns skipped) into one side's records' level-0 state (of x): ``rec`` holds the pairs'
    records on that side, ``s`` its state. The two sides are written by two threads at once,
    each adding its records' values in pair order. False if a record index is out of range
    (the state is then partly written: the caller drops it). One kernel a level, not one with
    the level as an argument: the branch between them cost a third of a scan's time."""
    n = s.shape[0]
    for k in range(len(pid)):
        p = pid[k]
        if not wanted[p]:
            continue
        i = rec[k]
        if not 0 <= i < n:
            return False
        _add(s, 0, i, g0 + k, x_pat[p])
    return True


@jit(nogil=True)
def compete_second_side(pid: np.ndarray, mine: np.ndarray, theirs: np.ndarray,
                        wanted: np.ndarray, x_pat: np.ndarray, g0: int, s_mine: np.ndarray,
                        s_theirs: np.ndarray) -> None:
    """One chunk of the second scan, after every chunk's first, for one side (``mine``,
    ``s_mine``): x / (1 + the other side's first sum) into this side's level-1 state. The
    other side's level 0 is only read (the other thread writes its level 1), so the two sides
    run at once."""
    for k in range(len(pid)):
        p = pid[k]
        if not wanted[p]:
            continue
        g = g0 + k
        x = x_pat[p]
        _add(s_mine, 4, mine[k], g, x / (1.0 + _other(s_theirs, 0, theirs[k], g, x)))


@jit(nogil=True)
def compete_sums(pid: np.ndarray, ia: np.ndarray, ib: np.ndarray, wanted: np.ndarray,
                 x_pat: np.ndarray, g0: int, sa: np.ndarray, sb: np.ndarray,
                 out_pid: np.ndarray, out_row: np.ndarray, out_col: np.ndarray) -> int:
    """The chunk's wanted pairs' pattern numbers and their two competing sums (`pair_log_odds`'s
    row and col, one round), written to the front of the out arrays; returns how many."""
    n = 0
    for k in range(len(pid)):
        p = pid[k]
        if not wanted[p]:
            continue
        i = ia[k]
        j = ib[k]
        g = g0 + k
        va, vb = _second(x_pat[p], i, j, g, sa, sb)
        out_pid[n] = p
        out_row[n] = _other(sa, 1, i, g, va)
        out_col[n] = _other(sb, 1, j, g, vb)
        n += 1
    return n


@jit(nogil=True)
def add_at(acc: np.ndarray, idx: np.ndarray, w: np.ndarray) -> None:
    """acc[idx[k]] += w[k] in order: `np.bincount` with weights, added to a running sum chunk
    by chunk (one bincount per chunk and their sum would add in another order)."""
    for k in range(len(idx)):
        acc[idx[k]] += w[k]
