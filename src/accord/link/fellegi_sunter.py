"""Fellegi-Sunter scoring with parameters estimated without labels, aware that a record is one
person.

The model works in the space of *all* record pairs, so it does not depend on which candidates
blocking produced:

* **u** (how non-matches compare) comes from random record pairs, which are almost all
  non-matches (Splink's `estimate_u_using_random_sampling`), corrected for the few matches among
  them. Names, sex and citizenship are *not* independent among non-matches (a common family name
  goes with a citizenship, a given name with a sex), so u is estimated for their joint pattern,
  shrunk towards the product of the per-field frequencies where random pairs show a pattern too
  rarely. Dates (and years) are taken as independent of the rest.
* **m** (how matches compare) is a product over fields: errors made at two registrations are
  independent. m and the number of matches are fitted by EM on the candidate pairs.
* **Competing candidates** (the one-to-one constraint inside EM, and the frequency adjustment):
  a record has at most one match on the other side, so the odds of a pair are divided by the
  evidence for the records' other candidates. A record whose name is shared by five candidates
  and whose birth date is unknown gets five weak links, not five strong ones; without this, EM
  settles on a class such as "same name and citizenship" that holds many pairs per record.

Why by hand: Splink does EM through SQL on clear text, with every pair independent; here the
comparison vectors are small integer matrices in memory, and the bipartite E-step (Sadinle's
one-to-one idea, in a closed-form approximation) is a few vectorised lines.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from accord.link.frequency import FrequencySplit

_EPS = 1e-12
LN2 = float(np.log(2.0))


@dataclass(frozen=True)
class FSModel:
    m: list[np.ndarray]  # per field, probability of each level among matches
    u: list[np.ndarray]  # per field, among non-matches (marginals, for audit)
    prior: float  # share of matches among all record pairs
    iterations: int
    converged: bool
    labels: list[tuple[str, ...]] = field(default_factory=list)
    matches: float = 0.0  # estimated number of matching pairs
    independent: tuple[int, ...] = ()  # fields scored with their own u (dates)
    joint_patterns: np.ndarray | None = None  # rows: level patterns of the other fields
    joint_log_u: np.ndarray | None = None  # natural log u of each pattern
    # How common each close name is, from look-alikes among the candidates
    # (accord.link.frequency): `pair_log_bayes_factor` applies it.
    frequency: FrequencySplit | None = None

    def pair_log_bayes_factor(self, gamma: np.ndarray, ia: np.ndarray, ib: np.ndarray,
                              is_candidate: np.ndarray | bool = True) -> np.ndarray:
        """`log_bayes_factor` of pairs (indices into the two sides the model was fitted on),
        with the look-alike adjustment of close names when the model has one."""
        out = self.log_bayes_factor(gamma)
        if self.frequency is not None:
            adj = self.frequency.adjustment(gamma, ia, ib, is_candidate)
            # A rare name never outweighs a birth date that clearly disagrees: EM's m of such a
            # level is an upper estimate (its floor, and the pairs EM hesitates on), and raising
            # those pairs linked same-name people with different birth dates (migrant-like 3k:
            # precision 0.990 -> 0.973). Common names still lose weight there.
            out = out + np.where(self.clearly_disagree(gamma), np.minimum(adj, 0.0), adj)
        return out

    def clearly_disagree(self, gamma: np.ndarray, ratio: float = 0.1) -> np.ndarray:
        """Pairs whose level of an independent field (a date) has m/u below ``ratio``."""
        out = np.zeros(len(gamma), dtype=bool)
        for j in self.independent:
            bad = (self.m[j] < ratio * self.u[j])
            bad[0] = False  # a missing value says nothing
            out |= bad[gamma[:, j]]
        return out

    def log_bayes_factor(self, gamma: np.ndarray) -> np.ndarray:
        """Natural log of m(gamma) / u(gamma) per pair."""
        return _log_m(gamma, self.m) - _log_u(gamma, self)

    def weights(self) -> list[np.ndarray]:
        """log2(m/u) per field and level from the marginals (for display only)."""
        out = []
        for m, u in zip(self.m, self.u, strict=True):
            out.append(np.log2(np.maximum(m, 1e-6) / np.maximum(u, 1e-6)))
        return out

    def summary(self) -> dict[str, object]:
        return {
            **({"name_look_alikes": self.frequency.summary()} if self.frequency else {}),
            "prior": self.prior,
            "estimated_matches": round(self.matches, 1),
            "iterations": self.iterations,
            "converged": self.converged,
            "fields": [
                {"levels": list(lab), "m": [round(float(x), 5) for x in m],
                 "u": [round(float(x), 6) for x in u]}
                for lab, m, u in zip(self.labels, self.m, self.u, strict=True)
            ],
        }


def _codes(g: np.ndarray, n_levels: list[int]) -> np.ndarray:
    """One sortable value per row (level pattern): an integer when the patterns fit in 62 bits,
    else the row's bytes."""
    if float(np.prod(np.asarray(n_levels, dtype=np.float64))) < 2.0**62:
        code = np.zeros(len(g), dtype=np.int64)
        for j, k in enumerate(n_levels):
            code = code * k + g[:, j]
        return code
    g = np.ascontiguousarray(g, dtype=np.int8)
    return g.view(np.dtype((np.void, g.shape[1]))).ravel()


def _log_m(gamma: np.ndarray, m: list[np.ndarray]) -> np.ndarray:
    out = np.zeros(len(gamma))
    for j, mj in enumerate(m):
        out += np.log(np.maximum(mj, _EPS))[gamma[:, j]]
    return out


def _log_u(gamma: np.ndarray, model: FSModel) -> np.ndarray:
    out = np.zeros(len(gamma))
    for j in model.independent:
        out += np.log(np.maximum(model.u[j], _EPS))[gamma[:, j]]
    rest = [j for j in range(gamma.shape[1]) if j not in model.independent]
    if not rest:
        return out
    if model.joint_patterns is None or model.joint_log_u is None or not len(gamma):
        return out
    n_levels = [len(model.m[j]) for j in rest]
    keys = _codes(gamma[:, rest], n_levels)
    table = _codes(model.joint_patterns, n_levels)
    order = np.argsort(table)
    pos = np.searchsorted(table[order], keys)
    pos = np.minimum(pos, len(table) - 1)
    found = table[order][pos] == keys
    logu = np.where(found, model.joint_log_u[order][pos], 0.0)
    if not found.all():  # a pattern never seen: the product of the marginals
        miss = ~found
        for j in rest:
            logu[miss] += np.log(np.maximum(model.u[j], _EPS))[gamma[miss, j]]
    return out + logu


def _initial_m(u: list[np.ndarray]) -> list[np.ndarray]:
    out = []
    for uj in u:
        k = len(uj)
        m = np.zeros(k)
        # Matches mostly agree: geometric decay from the best level; nulls as often as anywhere.
        m[1:] = 0.5 ** np.arange(k - 1) * 4.0 ** -np.arange(k - 1)
        m[1:] *= (1 - uj[0]) / m[1:].sum()
        m[0] = uj[0]
        out.append(m / m.sum())
    return out


def _others(x: np.ndarray, idx: np.ndarray, n: int) -> np.ndarray:
    """For each pair, the sum of x over the *other* pairs of its record (stable when one pair
    dominates its record, where S - x would cancel catastrophically)."""
    from accord.link import kernels  # numba: loaded when first needed

    if not len(x):
        return x
    if int(idx.min()) < 0 or int(idx.max()) >= n:  # the kernel does not check its bounds
        raise ValueError("record index out of range")
    return kernels.others_sum(np.ascontiguousarray(x, dtype=np.float64),
                              np.ascontiguousarray(idx, dtype=np.int64), int(n))


def _prior_odds_share(n_a: int, n_b: int, matches: float) -> float:
    """lambda: the share of all pairs that are matches (bounded away from 0 and 1)."""
    return min(max(matches / max(float(n_a) * n_b, 1.0), 1e-15), 0.5)


def alone_log_odds(log_bf: np.ndarray, n_a: int, n_b: int, matches: float) -> np.ndarray:
    """Natural log odds of each pair without its competing candidates (a pair on its own)."""
    lam = _prior_odds_share(n_a, n_b, matches)
    return np.log(lam) + log_bf - np.log1p(-lam)


def pair_odds(log_bf: np.ndarray, n_a: int, n_b: int,
              matches: float) -> tuple[np.ndarray, np.ndarray]:
    """log x and x of each pair: its odds against "both records unmatched" (`pair_log_odds`).
    Per pair, so an engine computes it in its partitions (accord.link.spark_score)."""
    lam = _prior_odds_share(n_a, n_b, matches)
    pa = min(matches / max(n_a, 1), 0.999)
    pb = min(matches / max(n_b, 1), 0.999)
    log_x = np.log(lam) + log_bf - np.log(1.0 - pa) - np.log(1.0 - pb)
    return log_x, np.exp(np.clip(log_x, -700.0, 650.0))


def pair_log_odds(log_bf: np.ndarray, ia: np.ndarray, ib: np.ndarray, n_a: int, n_b: int,
                  matches: float, compete: bool = True, rounds: int = 1) -> np.ndarray:
    """Natural log odds that each pair is a match, given the records' competing candidates.

    With M matches among n_a x n_b pairs, a pair's prior is lambda = M / (n_a n_b), and its odds
    against "both records unmatched" are x = lambda L / ((1 - M/n_a)(1 - M/n_b)). The pair (i, j)
    is a match only if neither record's match is another candidate, so its odds are
    x_ij / ((1 + sum_k x_ik / (1 + T_k)) (1 + sum_h x_hj / (1 + T_h))), over the other candidates
    k of i and h of j, where T_k sums the x of k's candidates other than i (and T_h likewise): a
    competitor that is itself the likely match of a third record takes little from this pair.
    With k equal candidates and no other evidence, each gets at most 1/(k+1).

    ``rounds`` > 1 repeats the correction (sum-product belief propagation for the one-to-one
    constraint, as for the permanent of a bipartite graph: Huang & Jebara 2009, Watanabe &
    Chertkov 2010): R = 1 + sum_k x_ik / C_ik, C = 1 + sum_h x_hj / R_hj, each over the other
    pairs of the record, odds x / (R C). One round (the formula above) over-credits a pair
    in a group where many records of both sides look alike: 4 undated records of a name
    against 60 people of that name got 0.97 each (a competitor "taken" by the 3 other undated
    records counted as taken, though each of those has 60 choices); the fixed point gives each
    about 1/60.
    """
    if not compete:
        return alone_log_odds(log_bf, n_a, n_b, matches)
    log_x, x = pair_odds(log_bf, n_a, n_b, matches)
    row = _others(x / (1.0 + _others(x, ib, n_b)), ia, n_a)
    col = _others(x / (1.0 + _others(x, ia, n_a)), ib, n_b)
    for _ in range(rounds - 1):
        row, col = _others(x / (1.0 + col), ia, n_a), _others(x / (1.0 + row), ib, n_b)
    return log_x - np.log1p(row) - np.log1p(col)


def _sigmoid(lo: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(lo, -700.0, 700.0)))


Chunk = tuple[np.ndarray, np.ndarray, np.ndarray]  # pattern number, ia, ib of some pairs

# Pairs in a chunk of EM's streamed step (`pattern_posteriors`): its own arrays (~60 bytes a
# pair) are all it holds per pair, beside the records' state and the stored pairs.
CHUNK_PAIRS = 1 << 20


@dataclass(frozen=True)
class PairChunks:
    """``count`` pairs in candidate order, read as chunks of at most ``size`` pairs by
    ``read(start, stop)``, as often as needed (`pattern_posteriors` reads them three times)."""

    count: int
    read: Callable[[int, int], Chunk]
    size: int = CHUNK_PAIRS

    def __iter__(self) -> Iterator[Chunk]:
        for start in range(0, self.count, self.size):
            yield self.read(start, min(start + self.size, self.count))


def _record_state(n: int) -> np.ndarray:
    """Zeroed (n, `kernels.STATE`) float64 rows starting on 64-byte boundaries (a row is one
    cache line), best values -inf and top pairs -1 (`kernels.compete_first_side`)."""
    from accord.link import kernels

    width = kernels.STATE
    buf = np.zeros(n * width + 8)
    skip = (-buf.ctypes.data % 64) // 8
    s = buf[skip:skip + n * width].reshape(n, width)
    s[:, 3::4] = -np.inf
    s[:, 2::4] = -1.0
    return s


def pattern_posteriors(pairs: Iterable[Chunk], wanted: np.ndarray, log_bf: np.ndarray,
                       n_a: int, n_b: int, matches: float) -> np.ndarray:
    """Per level pattern (``log_bf``: its log Bayes factor), the sum of the match probabilities
    of its pairs with one round of competing candidates, over the pairs of the ``wanted``
    patterns in ``pairs`` (read three times; pairs of other patterns are skipped).

    Equal to the bit to ``np.bincount(pid, weights=_sigmoid(pair_log_odds(log_bf[pid], ia, ib,
    n_a, n_b, matches)), minlength=len(log_bf))`` over those pairs, without an array of them:
    each `_others` sum of a pair is its record's total, first maximum and rest with the pair's
    own value, so a scan per sum level (in pair order, as `_others` and bincount add) keeps
    only those per record (`kernels.compete_first_side`, `compete_second_side`: one thread a
    side), and the third turns a chunk at a time into probabilities. A pair's odds x are its
    pattern's (`pair_odds` is elementwise). At 10M a side EM's pairs were ~150 bytes each at
    the driver's peak (~19 GB); this holds the records' state (64 bytes a record a side) and
    one chunk.
    """
    from accord.link import kernels  # numba: loaded when first needed

    log_x, x = pair_odds(log_bf, n_a, n_b, matches)
    acc = np.zeros(len(log_bf))
    sa, sb = _record_state(n_a), _record_state(n_b)
    # The scans are serial kernels (each record's sums in pair order) bound by random reads
    # of B's records; the driver is otherwise idle while EM runs (on Spark too), so a second
    # thread (the kernels release the GIL) takes one side's records in the first two scans
    # and half of each chunk in the third. Each state gets the same additions in the same
    # order as in one thread, so the model is the same to the bit.
    with ThreadPoolExecutor(1) as other:
        g = 0
        for pid, ia, ib in pairs:
            on_b = other.submit(kernels.compete_first_side, pid, ib, wanted, x, g, sb)
            ok_a = kernels.compete_first_side(pid, ia, wanted, x, g, sa)
            if not (ok_a and on_b.result()):
                raise ValueError("record index out of range")
            g += len(pid)
        g = 0
        for pid, ia, ib in pairs:
            done = other.submit(kernels.compete_second_side, pid, ib, ia, wanted, x, g, sb, sa)
            kernels.compete_second_side(pid, ia, ib, wanted, x, g, sa, sb)
            done.result()
            g += len(pid)
        g = 0
        for pid, ia, ib in pairs:
            half = len(pid) // 2
            later = other.submit(_competing_sums, pid[half:], ia[half:], ib[half:], wanted, x,
                                 g + half, sa, sb)
            got, row, col = _competing_sums(pid[:half], ia[:half], ib[:half], wanted, x, g,
                                            sa, sb)
            got2, row2, col2 = later.result()
            got = np.concatenate([got, got2])
            lo = log_x[got] - np.log1p(np.concatenate([row, row2]))
            kernels.add_at(acc, got, _sigmoid(lo - np.log1p(np.concatenate([col, col2]))))
            g += len(pid)
    return acc


def _competing_sums(pid: np.ndarray, ia: np.ndarray, ib: np.ndarray, wanted: np.ndarray,
                    x: np.ndarray, g0: int, sa: np.ndarray,
                    sb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The wanted pairs' pattern numbers and two competing sums (`kernels.compete_sums`)."""
    from accord.link import kernels

    got, row, col = np.empty(len(pid), dtype=np.int64), np.empty(len(pid)), np.empty(len(pid))
    n = kernels.compete_sums(pid, ia, ib, wanted, x, g0, sa, sb, got, row, col)
    return got[:n], row[:n], col[:n]


def _pattern_ids(gamma: np.ndarray, n_levels: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """Distinct level patterns of the pairs and each pair's pattern number."""
    _, first, inverse = np.unique(_codes(gamma, n_levels), return_index=True,
                                  return_inverse=True)
    return gamma[first], inverse.ravel()


@dataclass(frozen=True)
class _JointCounts:
    """The joint patterns of the non-independent fields among candidates and random pairs."""

    cols: list[int]
    table: np.ndarray  # distinct patterns (over cols)
    counts: np.ndarray  # how often each occurs among the random pairs
    of_candidate: np.ndarray  # table row of each candidate pattern
    random_ids: np.ndarray  # table row of each random pair


def _joint_counts(patterns: np.ndarray, random_gamma: np.ndarray, n_levels: list[int],
                  independent: tuple[int, ...]) -> _JointCounts | None:
    cols = [j for j in range(len(n_levels)) if j not in independent]
    if not cols:
        return None
    both = np.concatenate([patterns[:, cols], random_gamma[:, cols]])
    table, inverse = _pattern_ids(both, [n_levels[j] for j in cols])
    counts = np.bincount(inverse[len(patterns):], minlength=len(table)).astype(np.float64)
    return _JointCounts(cols, table, counts, inverse[: len(patterns)], inverse[len(patterns):])


def _log_u_patterns(patterns: np.ndarray, jc: _JointCounts | None, r: int,
                    independent: tuple[int, ...], u: list[np.ndarray], m: list[np.ndarray],
                    lam: float, shrinkage: float, fixed: np.ndarray | None = None,
                    ) -> tuple[np.ndarray, np.ndarray | None]:
    """log u of each candidate pattern; and log u of each joint pattern (for the model).

    ``fixed``: log u of each joint pattern when it was estimated once from random pairs that
    are clear non-matches (see `fit`); otherwise it is re-estimated here from all random pairs.
    """
    out = np.zeros(len(patterns))
    for j in independent:
        out += np.log(np.maximum(u[j], _EPS))[patterns[:, j]]
    if jc is None:
        return out, None
    if fixed is not None:
        return out + fixed[jc.of_candidate], fixed
    m_pat = np.ones(len(jc.table))
    indep = np.ones(len(jc.table))
    for q, j in enumerate(jc.cols):
        m_pat *= m[j][jc.table[:, q]]
        indep *= u[j][jc.table[:, q]]
    # The random pairs' frequency less the matches expected among them, shrunk towards the
    # product of the marginals where the pattern is rare among random pairs.
    free = np.maximum(jc.counts - r * lam * m_pat, 0.0)
    log_u = np.log((free + shrinkage * indep) / (r + shrinkage))
    return out + log_u[jc.of_candidate], log_u


def _clean_joint_log_u(jc: _JointCounts, clean: np.ndarray, shrinkage: float) -> np.ndarray:
    """log u of each joint pattern from the random pairs in ``clean`` (rows of the random
    pairs' patterns, ``jc.random_ids``), shrunk towards the product of their marginals."""
    ids = jc.random_ids[clean]
    r = max(len(ids), 1)
    counts = np.bincount(ids, minlength=len(jc.table)).astype(np.float64)
    indep = np.ones(len(jc.table))
    for q in range(len(jc.cols)):
        col = jc.table[ids, q]
        marg = (np.bincount(col, minlength=int(jc.table[:, q].max()) + 1) + 0.5)
        marg = marg / marg.sum()
        indep *= marg[jc.table[:, q]]
    return np.log((counts + shrinkage * indep) / (r + shrinkage))


class Candidates(Protocol):
    """The candidate pairs as EM sees them: their level patterns, and the pairs of the patterns
    EM needs pair by pair. In memory (`PairLevels`) or in an engine's partitions
    (accord.link.spark_score), so that EM runs on the driver without every pair there."""

    def __len__(self) -> int: ...

    def patterns(self, n_levels: list[int]) -> tuple[np.ndarray, np.ndarray]:
        """Distinct level patterns (ascending `_codes`) and how many pairs have each."""
        ...

    def pairs_of(self, wanted: np.ndarray) -> PairChunks:
        """(pattern number, ia, ib) of the pairs whose pattern is ``wanted`` (a mask over
        `patterns`), in candidate order, in chunks; pairs of other patterns may be among them
        (the reader skips them, so that no pair-sized selection is made)."""
        ...

    def sample(self, number: np.ndarray) -> Candidates:
        """The pairs of the A records with ``number`` >= 0, numbered so in A."""
        ...


class PairLevels:
    """Candidates in memory: levels ``gamma`` of the pairs (ia, ib)."""

    def __init__(self, gamma: np.ndarray, ia: np.ndarray, ib: np.ndarray) -> None:
        self.gamma, self.ia, self.ib = gamma, ia, ib
        self._pid: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.gamma)

    def patterns(self, n_levels: list[int]) -> tuple[np.ndarray, np.ndarray]:
        patterns, self._pid = _pattern_ids(self.gamma, n_levels)
        return patterns, np.bincount(self._pid, minlength=len(patterns)).astype(np.float64)

    def pairs_of(self, wanted: np.ndarray) -> PairChunks:
        assert self._pid is not None, "patterns() first"
        pid, ia, ib = self._pid, self.ia, self.ib  # every pair, as views: nothing copied
        return PairChunks(len(pid), lambda start, stop: (pid[start:stop], ia[start:stop],
                                                         ib[start:stop]))

    def sample(self, number: np.ndarray) -> PairLevels:
        pos = np.flatnonzero(number[self.ia] >= 0)
        return PairLevels(self.gamma[pos], number[self.ia[pos]], self.ib[pos])


def fit_em(gamma: np.ndarray, random_gamma: np.ndarray, n_levels: list[int], *,
           pairs: tuple[np.ndarray, np.ndarray], sizes: tuple[int, int],
           independent: tuple[int, ...] = (), labels: list[tuple[str, ...]] | None = None,
           shrinkage: float = 20.0, max_iter: int = 200, tol: float = 1e-5,
           negligible: float = 1e-9, m_floor: float = 0.002,
           prior_matches: float = 5.0, clean: np.ndarray | None = None) -> FSModel:
    """EM for m and the number of matches, u from random pairs (see the module docstring).

    ``gamma``: levels of the candidate pairs ``pairs`` = (ia, ib); ``random_gamma``: levels of
    random pairs; ``sizes``: (|A|, |B|); ``independent``: fields whose u is estimated on its own
    (dates); ``shrinkage``: pseudo-count pulling a joint pattern's u towards the product of the
    marginals. Pairs whose prior odds times Bayes factor is below ``negligible`` (nearly all of
    them: their names disagree) are handled per pattern, without their competitors. ``clean``:
    a mask of the random pairs known to be non-matches (see `fit`); the joint u is then
    estimated once from them instead of from all random pairs less the expected matches.
    """
    return fit_em_on(PairLevels(gamma, *pairs), random_gamma, n_levels, sizes=sizes,
                     independent=independent, labels=labels, shrinkage=shrinkage,
                     max_iter=max_iter, tol=tol, negligible=negligible, m_floor=m_floor,
                     prior_matches=prior_matches, clean=clean)


def fit_em_on(cands: Candidates, random_gamma: np.ndarray, n_levels: list[int], *,
              sizes: tuple[int, int], independent: tuple[int, ...] = (),
              labels: list[tuple[str, ...]] | None = None, shrinkage: float = 20.0,
              max_iter: int = 200, tol: float = 1e-5, negligible: float = 1e-9,
              m_floor: float = 0.002, prior_matches: float = 5.0,
              clean: np.ndarray | None = None) -> FSModel:
    """`fit_em` on candidates wherever they are (see `Candidates`)."""
    n_a, n_b = sizes
    total = max(float(n_a) * n_b, 1.0)
    r = max(len(random_gamma), 1)
    counts = [np.bincount(random_gamma[:, j], minlength=k).astype(np.float64)
              for j, k in enumerate(n_levels)]
    u = [(c + 0.5) / (c.sum() + 0.5 * len(c)) for c in counts]
    m = m0 = _initial_m(u)
    labs = labels or []
    if len(cands) == 0:
        return FSModel(m, u, 1e-9, 0, False, labs, 0.0, independent)
    patterns, per_pattern = cands.patterns(n_levels)
    jc = _joint_counts(patterns, random_gamma, n_levels, independent)
    table = None if jc is None else jc.table
    fixed = None if jc is None or clean is None else _clean_joint_log_u(jc, clean, shrinkage)
    matches = 0.1 * min(n_a, n_b)
    iterations, converged = 0, False
    log_u_table: np.ndarray | None = None
    while iterations < max_iter:
        iterations += 1
        lam = matches / total
        # u: the random pairs' frequencies less the matches expected among them.
        u = [np.maximum(c / r - lam * mj, 0.0) + 0.5 / r for c, mj in zip(counts, m, strict=True)]
        u = [x / x.sum() for x in u]
        log_u, log_u_table = _log_u_patterns(patterns, jc, r, independent, u, m, lam, shrinkage,
                                             fixed)
        log_bf = _log_m(patterns, m) - log_u
        base = (1 - min(matches / n_a, 0.999)) * (1 - min(matches / n_b, 0.999))
        x_pat = np.exp(np.clip(np.log(lam) + log_bf, -700.0, 650.0)) / base
        live = x_pat > negligible
        post_pat = np.where(live, 0.0, per_pattern * x_pat / (1.0 + x_pat))
        if live.any():
            post_pat += pattern_posteriors(cands.pairs_of(live), live, log_bf, n_a, n_b,
                                           matches)
        new_matches = float(post_pat.sum())
        # A small floor on every level: one level never seen among the estimated matches must
        # not veto a pair outright (EM's m of a rare level is noisy).
        # And a prior of a few pseudo-matches shaped like the initial m ("matches mostly
        # agree"): with a handful of records EM cannot tell matches from non-matches, and
        # without it would call a lone disagreeing pair a match.
        floor = m_floor * post_pat.sum() + 1e-9
        new_m = [np.bincount(patterns[:, j], weights=post_pat, minlength=k) + floor
                 + prior_matches * m0[j] for j, k in enumerate(n_levels)]
        new_m = [x / x.sum() for x in new_m]
        delta = max(float(np.abs(a - b).max()) for a, b in zip(new_m, m, strict=True))
        delta = max(delta, abs(new_matches - matches) / max(matches, 1.0))
        m, matches = new_m, max(new_matches, 1e-6)
        if delta < tol:
            converged = True
            break
    return FSModel(m, u, matches / total, iterations, converged, labs, matches, independent,
                   table, log_u_table)


def probability(weight: np.ndarray, prior: float) -> np.ndarray:
    """Match probability from a match weight (log2 Bayes factor) and the prior share."""
    w = weight + np.log2(prior / (1 - prior))
    return 1.0 / (1.0 + np.exp2(-np.clip(w, -1000, 1000)))


def sample_numbers(n_a: int, records: int, seed: int) -> np.ndarray | None:
    """A random sample of ``records`` records of A, numbered within the sample (-1 for the
    others); None when A has no more records than that (the sample is all of A). EM on the
    sample takes all of each sampled record's candidates, so its competing candidates are
    complete."""
    if n_a <= records:
        return None
    rng = np.random.default_rng(seed)
    number = np.full(n_a, -1, dtype=np.int64)
    number[rng.choice(n_a, size=records, replace=False)] = np.arange(records)
    return number


# Levels of an independent field (a date) whose m/u is below this are "clear disagreement"
# in `fit` (see there why not lower).
CLEAR_RATIO = 0.5


def fit(gamma: np.ndarray, random_gamma: np.ndarray, n_levels: list[int], *,
        pairs: tuple[np.ndarray, np.ndarray], sizes: tuple[int, int],
        independent: tuple[int, ...] = (), labels: list[tuple[str, ...]] | None = None,
        sample_records: int = 50_000, clear_ratio: float = CLEAR_RATIO, min_clean: float = 0.2,
        seed: int = 11) -> FSModel:
    """The model in two steps, each where it is well conditioned.

    The joint u of names, sex and citizenship, estimated from all random pairs less the matches
    EM expects among them, feeds back into EM: at 100,000 records and more, an overestimated
    number of matches lowers u of "same name", which raises the matches again (and the share of
    matches EM puts on "same name, different birth date"). Instead:

    1. a first EM with every field independent, on the candidates of a sample of records of A,
       tells which levels of the independent fields (dates) are clear disagreement (m/u below
       ``clear_ratio``);
    2. random pairs whose dates clearly disagree are non-matches, and (dates being independent
       of names among non-matches) show the joint u of the other fields without any
       subtraction; EM on all candidates then fits m and the number of matches with that u
       fixed.

    Falls back to `fit_em` as is when there are no independent fields or too few random pairs
    (below ``min_clean`` of them) clearly disagree on them.

    Why ``clear_ratio`` is `CLEAR_RATIO` (0.5), not stricter: a random pair is a match with
    probability lambda = matches / (|A| |B|), so among random pairs at a level with m/u = rho the
    share of matches is about lambda rho, below lambda / 2 for every level used; the step needs
    no more. A strict ratio (0.1 before) only shrinks the clean pairs: on a small hub (the
    simulator's 600 people, 3 partners, ~250 records each) the first EM, which has a few dozen
    matches to learn from, put m/u of "dates differ" levels near 0.1-0.5, so whether the clean
    pairs reached ``min_clean`` depended on the encodings' random flips; when they did, a joint u
    from ~20 % of the pairs made "similar name, same citizenship, other birth date" a match
    class (precision 0.81-0.93 over 14 builds of one hub, F1 mean 0.886; with 0.5: precision
    0.93-0.98, F1 0.933, min 0.924; benchmarks/linkage_fit.py). FEBRL4, migrant-like 3k, 20k
    and 100k and the 3,000-person simulator were unchanged to the fourth decimal.
    """
    return fit_on(PairLevels(gamma, *pairs), random_gamma, n_levels, sizes=sizes,
                  independent=independent, labels=labels, sample_records=sample_records,
                  clear_ratio=clear_ratio, min_clean=min_clean, seed=seed)


def fit_on(cands: Candidates, random_gamma: np.ndarray, n_levels: list[int], *,
           sizes: tuple[int, int], independent: tuple[int, ...] = (),
           labels: list[tuple[str, ...]] | None = None, sample_records: int = 50_000,
           clear_ratio: float = CLEAR_RATIO, min_clean: float = 0.2, seed: int = 11) -> FSModel:
    """`fit` on candidates wherever they are (see `Candidates`)."""
    n_a, n_b = sizes
    if not independent or len(independent) == len(n_levels) or len(cands) == 0:
        return fit_em_on(cands, random_gamma, n_levels, sizes=sizes,
                         independent=independent, labels=labels)
    number = sample_numbers(n_a, sample_records, seed)
    sampled = cands if number is None else cands.sample(number)
    n_sample = n_a if number is None else sample_records
    first = fit_em_on(sampled, random_gamma, n_levels, sizes=(n_sample, n_b),
                      independent=tuple(range(len(n_levels))))
    clean = np.zeros(len(random_gamma), dtype=bool)
    for j in independent:
        ratio = first.m[j] / np.maximum(first.u[j], _EPS)
        clear = (ratio < clear_ratio) & (first.u[j] > 0)
        clear[0] = False  # a missing value says nothing
        clean |= clear[random_gamma[:, j]]
    if clean.sum() < min_clean * len(random_gamma):
        return fit_em_on(cands, random_gamma, n_levels, sizes=sizes,
                         independent=independent, labels=labels)
    return fit_em_on(cands, random_gamma, n_levels, sizes=sizes,
                     independent=independent, labels=labels, clean=clean)
