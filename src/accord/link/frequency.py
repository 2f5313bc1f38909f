"""How common a name is, from the linkage itself: name agreement split by look-alikes.

A name that agrees says more when the name is rare. The model's u of "names agree" is an
average over all names, so it undervalues a rare name and overvalues a common one; the
competing candidates (`fellegi_sunter.pair_log_odds`) only take away odds, and only as far as
each look-alike is itself a likely match. On the three-partner simulator, pairs scored 0.1-0.9
whose records had no look-alike were 70 % true (the model said 47 %), those with four or more
15 % (the model said 30-40 %).

So the pairs whose names fall in the top levels are told apart by their *look-alikes*: the
candidates of either record, other than the pair itself, whose names are as close (one of the
split levels) and whose codes (sex, citizenship) do not disagree, counted in buckets (0, 1,
2-3, 4-7, 8+). The Bayes factor of such a pair is multiplied by P(bucket | level, match) /
P(bucket | level, non-match): the first from the candidates the fitted model finds clear
matches, the second from the random pairs it finds clear non-matches. The model itself (m, u, the
number of matches) is fitted without the split: fitted with the buckets as levels of their own,
EM found a second solution (common names with clearly different birth dates called matches,
precision 0.94 -> 0.82 on the simulator). Splink's term-frequency adjustment does the same with
the clear values' frequencies, which the hub never holds.

`match.score_pairs` applies it where every pair is compared (so every look-alike is counted);
with blocking, the look-alikes would be only those blocking kept, and there it cost F1 at 100k.

What the hub learns from this is what it already holds: the candidates and their comparison
levels (the count of similar name filters is what the cluster attack of the harness uses).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Lower bounds of the look-alike buckets (0, 1, 2-3, 4-7, 8+).
BUCKETS = (0, 1, 2, 4, 8)
# Name levels whose candidates count as look-alikes (1-based, best first): the two closest bands
# of the default levels (0.85, 0.7, 0.6), i.e. those at Dice 0.7 or more (`name_levels`).
COUNTED = (1, 2)
# Name levels whose Bayes factor is adjusted by the pair's look-alikes (Dice 0.6 or more).
SPLIT = (1, 2, 3)
COUNTED_DICE = 0.7
SPLIT_DICE = 0.6


def name_levels(thresholds: tuple[float, ...]) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(counted, split) levels of a name field with these Dice thresholds (best first): the
    levels at `COUNTED_DICE` and `SPLIT_DICE` or above, so that finer bands (levels between
    the default ones) keep the look-alikes and the split the default levels define."""
    counted = tuple(i + 1 for i, t in enumerate(thresholds) if t >= COUNTED_DICE - 1e-9)
    split = tuple(i + 1 for i, t in enumerate(thresholds) if t >= SPLIT_DICE - 1e-9)
    return counted, split


def _bucket_label(k: int) -> str:
    lo = BUCKETS[k]
    if k + 1 == len(BUCKETS):
        return f"{lo}+"
    hi = BUCKETS[k + 1] - 1
    return str(lo) if hi == lo else f"{lo}-{hi}"


@dataclass(frozen=True)
class FrequencySplit:
    """Each record's count of close candidates (``counts_a``, ``counts_b``) in the candidate set
    the model was fitted on, and the log ratio P(bucket | level, match) / P(bucket | level,
    non-match) per split level (rows, in SPLIT order) and bucket (columns)."""

    field: int  # column of the name field in the comparison matrix
    codes: tuple[int, ...]  # columns of the code fields (they must not disagree)
    counts_a: np.ndarray
    counts_b: np.ndarray
    log_ratio: np.ndarray  # (len(split), len(BUCKETS))
    counted: tuple[int, ...] = COUNTED
    split: tuple[int, ...] = SPLIT

    def buckets(self, gamma: np.ndarray, ia: np.ndarray, ib: np.ndarray,
                is_candidate: np.ndarray | bool) -> np.ndarray:
        c = look_alike_counts(gamma, ia, ib, self.field, self.codes, self.counts_a,
                              self.counts_b, is_candidate, self.counted)
        return np.searchsorted(np.asarray(BUCKETS), c, side="right") - 1

    def adjustment(self, gamma: np.ndarray, ia: np.ndarray, ib: np.ndarray,
                   is_candidate: np.ndarray | bool = True) -> np.ndarray:
        """Natural log of the factor each pair's Bayes factor is multiplied by (0 where the
        names are not in a split level). ``is_candidate``: whether each pair is among the
        candidates the counts come from (its own closeness is then not a look-alike)."""
        out = np.zeros(len(gamma))
        close = close_pairs(gamma, self.field, self.codes, self.split)
        if not close.any():
            return out
        idx = np.flatnonzero(close)
        cand = is_candidate if isinstance(is_candidate, bool) else is_candidate[idx]
        k = self.buckets(gamma[idx], ia[idx], ib[idx], cand)
        row = np.searchsorted(np.asarray(self.split), gamma[idx, self.field])
        out[idx] = self.log_ratio[row, k]
        return out

    def summary(self) -> dict[str, object]:
        return {"look_alike_buckets": [_bucket_label(k) for k in range(len(BUCKETS))],
                "log2_factor": {f"level {lv}": [round(float(x) / np.log(2), 3) for x in row]
                                for lv, row in zip(self.split, self.log_ratio, strict=True)}}


def close_pairs(gamma: np.ndarray, name: int, codes: tuple[int, ...],
                levels: tuple[int, ...] = COUNTED) -> np.ndarray:
    """Pairs whose names fall in ``levels`` and whose codes agree or are missing."""
    close = np.isin(gamma[:, name], levels)
    for j in codes:
        close &= gamma[:, j] <= 1
    return close


def look_alike_counts(gamma: np.ndarray, ia: np.ndarray, ib: np.ndarray, name: int,
                      codes: tuple[int, ...], counts_a: np.ndarray, counts_b: np.ndarray,
                      is_candidate: np.ndarray | bool,
                      counted: tuple[int, ...] = COUNTED) -> np.ndarray:
    """Look-alikes of each pair: close candidates of either record, the pair itself excluded."""
    own = close_pairs(gamma, name, codes, counted) & is_candidate
    return (counts_a[ia] + counts_b[ib] - 2 * own.astype(np.int64)).clip(0)


def frequency_split(gamma: np.ndarray, ia: np.ndarray, ib: np.ndarray, match_prob: np.ndarray,
                    random_gamma: np.ndarray, ra: np.ndarray, rb: np.ndarray,
                    random_candidate: np.ndarray | bool, random_match_prob: np.ndarray,
                    sizes: tuple[int, int], name: int, codes: tuple[int, ...],
                    pseudo: float = 1.0, clear: float = 0.9,
                    counted: tuple[int, ...] = COUNTED,
                    split: tuple[int, ...] = SPLIT) -> FrequencySplit:
    """The split from the candidates (``gamma`` of pairs ``ia``, ``ib``, with the fitted
    model's match probabilities) and the random pairs (with theirs). P(bucket | match) comes
    from the candidates the model finds matches with probability at least ``clear``,
    P(bucket | non-match) from the random pairs it finds matches with probability at most
    1 - ``clear``: weighting every pair by its probability let pairs the model hesitates on
    (same rare name, birth dates that differ) count half as matches and push their own bucket
    up (migrant-like 3k: precision 0.990 -> 0.972). Among matches and among non-matches the
    look-alikes do not depend on the other fields, so clear pairs are a fair sample.
    ``pseudo``: pseudo-pairs per bucket on either side, so a rare bucket gets a ratio near 1."""
    close = close_pairs(gamma, name, codes, counted)
    counts_a = np.bincount(ia[close], minlength=sizes[0]).astype(np.int64)
    counts_b = np.bincount(ib[close], minlength=sizes[1]).astype(np.int64)
    nb = len(BUCKETS)

    def table(g: np.ndarray, xa: np.ndarray, xb: np.ndarray, cand: np.ndarray | bool,
              weight: np.ndarray) -> np.ndarray:
        sel = close_pairs(g, name, codes, split)
        c = cand if isinstance(cand, bool) else cand[sel]
        k = np.searchsorted(np.asarray(BUCKETS), look_alike_counts(
            g[sel], xa[sel], xb[sel], name, codes, counts_a, counts_b, c, counted),
            side="right") - 1
        row = np.searchsorted(np.asarray(split), g[sel, name])
        t = np.bincount(row * nb + k, weights=weight[sel], minlength=len(split) * nb)
        counts = t.reshape(len(split), nb).astype(np.float64) + pseudo
        return np.asarray(counts / counts.sum(axis=1, keepdims=True), dtype=np.float64)

    matched = table(gamma, ia, ib, True, (match_prob >= clear).astype(np.float64))
    unmatched = table(random_gamma, ra, rb, random_candidate,
                      (random_match_prob <= 1.0 - clear).astype(np.float64))
    return FrequencySplit(name, codes, counts_a, counts_b, np.log(matched / unmatched),
                          counted, split)
