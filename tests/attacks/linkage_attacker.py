"""A curious hub attacking name encodings: what it can label from what it holds.

The attacker sees only what a hub sees: the encoded columns of the contributions (packed filters),
the public schema in their metadata (field names, bits, hashes, q-gram size, hash domains, the
hardening settings) and the attributes it holds in clear next to them (sex and citizenship). It
never calls the encoder and never holds the linkage secret. Its background knowledge is an ideal
one: name frequencies by sex and citizenship from a population drawn by the project's simulator
with ANOTHER seed (the same name pools and weights, different people).

Attacks, each labelling every record (a record the attack cannot label gets the commonest name of
its sex and citizenship, so no attack scores below the clear-attribute baseline):

* ``frequency``: group *equal* filters, match groups to names by frequency and filter weight,
  one-to-one (the attack randomised response was designed against).
* ``cluster``: group *similar* filters (Dice >= 0.85, leaders by density; neighbours found
  through LSH candidates checked exactly, so groups of hundreds of thousands of filters can be
  attacked: every pair that comparing every pair finds at 11.5k records, all but 3 of 323,922
  at 46k, with the same rates; benchmarks/results/linkpriv3.md), estimate the name's length from
  the cluster's bit count, score clusters against names by frequency within the record's clear
  sex and citizenship, match one-to-one.
* ``pattern``: the cluster attack, then pattern mining in the manner of Vidanage, Christen et al.:
  learn which bit positions each q-gram sets from the clusters labelled with confidence (bits set
  in nearly every cluster whose name holds the q-gram), re-score every cluster by how well each
  candidate name's learned bits explain its bits, match again; twice.

``language_attack``: an attacker at the linkage unit (sex only next to the encodings) first puts
the name clusters into language groups from their bits, then runs the attacks above conditioned
on them.

Written by hand: no maintained library implements these attacks (the PPRL attack code of the
papers is research code for their data sets).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise

import numpy as np
from scipy.optimize import linear_sum_assignment
from scipy.special import gammaln

from accord.link.comparisons import REFERENCE_DIFFUSION, follow_hardening

Label = tuple[str, ...]  # one string per name component the encoded field holds
Group = tuple[str, str]  # (sex, citizenship) as the hub holds them in clear


@dataclass(frozen=True)
class EncodedField:
    """One encoded column as the hub holds it, with its public schema settings."""

    name: str
    components: tuple[str, ...]  # which name components it encodes, e.g. ("given",)
    filters: np.ndarray  # (n, bytes) uint8, packed bits
    present: np.ndarray  # (n,) bool
    hashes: int
    ngram: int
    domain: str
    flip: float
    diffusion: int = 0  # the schema's diffusion setting (0: plain Bloom filters)
    # The field is salted with an attribute the hub holds in clear: its index in a record's
    # Group (0 sex, 1 citizenship). Bit positions then differ between salts, so the pattern
    # attack learns them within each salt value. None: not salted, or salted with an attribute
    # the hub does not hold (it cannot split the records by it).
    salt_index: int | None = None

    @property
    def bits(self) -> int:
        return int(self.filters.shape[1]) * 8


@dataclass(frozen=True)
class HubView:
    fields: tuple[EncodedField, ...]
    groups: list[Group]  # per record


@dataclass(frozen=True)
class PublicList:
    """Name frequencies by (sex, citizenship): per group a Counter of labels per component set."""

    counts: Mapping[tuple[str, ...], Mapping[Group, Counter[Label]]]

    def for_components(self, components: tuple[str, ...]) -> Mapping[Group, Counter[Label]]:
        return self.counts[components]


@dataclass(frozen=True)
class Truth:
    """The records' true (normalised) name components, for scoring only."""

    values: Mapping[str, Sequence[str | None]]  # component -> per record


@dataclass
class _Cluster:
    group: Group
    rows: np.ndarray
    centroid: np.ndarray  # (bits,) share of members with each bit set
    ones: float  # mean bits set
    group_n: int  # records of the group with a value


def qgrams(text: str, q: int) -> set[str]:
    """Padded q-grams of each word, as the public documentation of the encoding describes."""
    pad = "_" * (q - 1)
    out: set[str] = set()
    for w in text.split():
        p = f"{pad}{w}{pad}"
        out.update(p[i : i + q] for i in range(len(p) - q + 1))
    return out


def _label_grams(label: Label, q: int) -> set[str]:
    out: set[str] = set()
    for part in label:
        out |= qgrams(part, q)
    return out


def _unpack(f: EncodedField, rows: np.ndarray) -> np.ndarray:
    return np.unpackbits(f.filters[rows], axis=1).astype(np.float32)


def _leaders(x: np.ndarray, threshold: float, all_pairs: bool = False) -> list[np.ndarray]:
    """Clusters of similar filters: the record with most unassigned neighbours leads, takes its
    unassigned neighbours, and so on (chaining through near neighbours is avoided). Neighbours
    are found by `_neighbours_lsh` (default) or by comparing every pair (``all_pairs``)."""
    n = len(x)
    if n == 0:
        return []
    if threshold >= 1.0:
        keys = [row.tobytes() for row in x.astype(np.uint8)]
        by_key: dict[bytes, list[int]] = defaultdict(list)
        for i, k in enumerate(keys):
            by_key[k].append(i)
        return [np.asarray(v) for v in by_key.values()]
    # Small groups: every pair is cheaper than the LSH tables (and exact by definition).
    exact = all_pairs or n <= LSH_ABOVE
    neigh = _neighbours_all_pairs(x, threshold) if exact else _neighbours_lsh(x, threshold)
    return _leaders_from(neigh)


def _leaders_from(neigh: list[np.ndarray]) -> list[np.ndarray]:
    n = len(neigh)
    out: list[np.ndarray] = []
    free = np.ones(n, bool)
    degree = np.array([len(v) for v in neigh])
    for i in np.argsort(-degree, kind="stable"):
        if not free[i]:
            continue
        members = neigh[i][free[neigh[i]]]
        if not free[i] or len(members) == 0:
            members = np.array([i])
        free[members] = False
        out.append(members)
    return out


def _neighbours_all_pairs(x: np.ndarray, threshold: float) -> list[np.ndarray]:
    """Per row, the rows at Dice >= threshold (itself included unless empty), comparing every
    pair; chunked so a large group never holds an n x n float matrix at once (about 5e7 cells a
    chunk: a few hundred MB at 300,000 records)."""
    n = len(x)
    chunk = max(64, min(3000, 50_000_000 // max(n, 1)))
    neigh: list[np.ndarray] = []
    ones = x.sum(axis=1)
    for s in range(0, n, chunk):
        inter = x[s : s + chunk] @ x.T
        den = ones[s : s + chunk, None] + ones[None, :]
        d = np.where(den > 0, 2 * inter / np.maximum(den, 1), 0.0)
        neigh.extend(np.flatnonzero(row >= threshold) for row in d)
    return neigh


# Candidate search of the cluster step: bit-sampling LSH for the Hamming distance, the classic
# index for it (no maintained library does this on packed filters with the exact-Dice check
# below; a few numpy lines do). Each table keys the filters by LSH_BITS sampled bit positions.
# Two encodings of one name differ in about 2p(1-p) = 4 % of their bits at p = 0.02, so they
# share a table's key with probability about 0.96^16 = 0.52; a pair at the threshold of Dice
# 0.85 (about 15 % of the bits differ) with probability 0.074, so LSH_TABLES = 64 tables find
# it with probability 0.993 (and far more often through the other records of its two names);
# unrelated filters (about half their bits set) share a key with probability 2^-16.
LSH_BITS = 16
LSH_TABLES = 64
LSH_BAND = 32  # within a bucket, each filter is compared with the next LSH_BAND - 1 in it
LSH_SEED = 20_261_207
LSH_ABOVE = 3_000  # groups of up to this many filters compare every pair
_POPCOUNT = np.array([bin(i).count("1") for i in range(256)], np.uint8)


def _dice_pairs(packed: np.ndarray, ones: np.ndarray, a: np.ndarray, b: np.ndarray,
                ) -> np.ndarray:
    """Exact Dice of the pairs (a[i], b[i]) of packed filters (as `_neighbours_all_pairs`
    computes it: 0 for two empty filters)."""
    out = np.empty(len(a), np.float32)
    for s in range(0, len(a), 500_000):
        aa, bb = a[s : s + 500_000], b[s : s + 500_000]
        inter = _POPCOUNT[packed[aa] & packed[bb]].sum(axis=1, dtype=np.float32)
        den = ones[aa] + ones[bb]
        out[s : s + 500_000] = np.where(den > 0, 2 * inter / np.maximum(den, 1), 0.0)
    return out


def _neighbours_lsh(x: np.ndarray, threshold: float) -> list[np.ndarray]:
    """The neighbour lists of `_neighbours_all_pairs` without comparing every pair.

    1. Candidates: in each LSH table, sort the filters by key; each filter is compared (exact
       Dice) with the next LSH_BAND - 1 filters of its bucket (every pair of a bucket of up to
       LSH_BAND filters). A pair at Dice >= threshold - 0.05 joins their components (the
       margin lets chains of near-threshold pairs join too).
    2. Within each connected component every pair is compared exactly (the all-pairs code on
       the component), so the neighbour lists are exact within components. A pair at Dice >=
       threshold is missed only if no chain of candidate pairs joins its two records; the
       benchmark counts such pairs against the all-pairs step (benchmarks/results/linkpriv3.md).
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    n, bits = x.shape
    xb = x.astype(np.uint8)
    packed = np.packbits(xb, axis=1)
    ones = x.sum(axis=1)
    rng = np.random.default_rng(LSH_SEED)
    k = min(LSH_BITS, bits)
    weights = np.uint64(1) << np.arange(k, dtype=np.uint64)
    verify = threshold - 0.05
    root = np.arange(n)  # a representative filter of each filter's component so far
    for _ in range(LSH_TABLES):
        pos = np.sort(rng.choice(bits, size=k, replace=False))
        key = (xb[:, pos].astype(np.uint64) * weights).sum(axis=1)
        order = np.argsort(key, kind="stable")
        sk = key[order]
        src: list[np.ndarray] = [np.arange(n)]
        dst: list[np.ndarray] = [root]  # keeps the components found so far joined
        for d in range(1, min(LSH_BAND, n)):
            same = np.flatnonzero(sk[:-d] == sk[d:])
            if len(same) == 0:
                break
            a, b = order[same], order[same + d]
            new = root[a] != root[b]  # a pair already joined needs no check
            a, b = a[new], b[new]
            keep = _dice_pairs(packed, ones, a, b) >= verify
            src.append(a[keep])
            dst.append(b[keep])
        i, j = np.concatenate(src), np.concatenate(dst)
        graph = coo_matrix((np.ones(len(i), np.int8), (i, j)), shape=(n, n))
        _, comp = connected_components(graph, directed=False)
        first = np.full(comp.max() + 1, n)
        np.minimum.at(first, comp, np.arange(n))
        root = first[comp]
    neigh: list[np.ndarray] = [np.array([r]) if ones[r] > 0 else np.zeros(0, np.int64)
                               for r in range(n)]
    order = np.argsort(comp, kind="stable")
    bounds = np.flatnonzero(np.r_[True, comp[order][1:] != comp[order][:-1], True])
    for lo, hi in pairwise(bounds.tolist()):
        if hi - lo < 2:
            continue
        members = order[lo:hi]  # ascending: the stable sort keeps row order within a component
        for r, local in zip(members, _neighbours_all_pairs(x[members], threshold), strict=True):
            neigh[r] = members[local]
    return neigh


def _expected_ones(label: Label, f: EncodedField) -> float:
    t = len(_label_grams(label, f.ngram))
    m = f.bits
    clean = m * (1 - (1 - 1 / m) ** (f.hashes * t))
    return clean * (1 - f.flip) + (m - clean) * f.flip


def _poisson_loglik(k: np.ndarray, lam: np.ndarray) -> np.ndarray:
    lam = np.maximum(lam, 1e-3)
    return k * np.log(lam) - lam - gammaln(k + 1)


CLUSTER_DICE = 0.85  # at the reference hardening (p = 0.02, diffusion 3); the linker's top level


def cluster_threshold(f: EncodedField) -> float:
    """The cluster attack's Dice threshold under the field's hardening: the attacker reads the
    public schema and moves its threshold as the linker moves its levels (more randomised
    response lowers equal names' Dice; a fixed 0.85 would understate the attack there)."""
    rows = f.filters[f.present]
    if len(rows) == 0:
        return CLUSTER_DICE
    fill = float(np.unpackbits(rows[:20_000], axis=1).mean())
    return follow_hardening((CLUSTER_DICE,), fill, max(1, f.diffusion), f.flip,
                            REFERENCE_DIFFUSION)[0]


def _clusters(f: EncodedField, view: HubView, threshold: float,
              all_pairs: bool = False) -> list[_Cluster]:
    by_group: dict[Group, list[int]] = defaultdict(list)
    for i, g in enumerate(view.groups):
        if f.present[i]:
            by_group[g].append(i)
    out: list[_Cluster] = []
    for g, rows_list in by_group.items():
        rows = np.asarray(rows_list)
        x = _unpack(f, rows)
        for members in _leaders(x, threshold, all_pairs):
            xs = x[members]
            out.append(_Cluster(g, rows[members], xs.mean(axis=0),
                                float(xs.sum(axis=1).mean()), len(rows)))
    return out


@dataclass(frozen=True)
class _Assignment:
    labels: dict[int, Label]  # cluster index -> label
    margin: dict[int, float]  # cluster index -> log-lik gap to its best alternative


def _assign(clusters: list[_Cluster], public: Mapping[Group, Counter[Label]],
            score: dict[int, np.ndarray], names: dict[Group, list[Label]]) -> _Assignment:
    """One-to-one within each group: clusters to names by total log-likelihood (Hungarian);
    a cluster may stay unlabelled (a dummy column at the likelihood of 'some rare name')."""
    labels: dict[int, Label] = {}
    margin: dict[int, float] = {}
    by_group: dict[Group, list[int]] = defaultdict(list)
    for ci, c in enumerate(clusters):
        by_group[c.group].append(ci)
    for g, cis in by_group.items():
        cand = names.get(g, [])
        if not cand:
            continue
        s = np.stack([score[ci] for ci in cis])  # (clusters, names)
        # Unlabelled: as likely as a name seen once in the public list at this size. A label
        # is worth only what it gains over that, so clusters x names with the gain clipped at
        # 0 (a zero-gain pairing means unlabelled) has the optimum of the square problem with
        # one "unlabelled" column per cluster, at a fraction of its cost.
        dummy = np.array([_rare_loglik(clusters[ci], public[g]) for ci in cis])
        gain = np.maximum(s - dummy[:, None], 0.0)
        r, c = linear_sum_assignment(-gain)
        for ri, cj in zip(r, c, strict=True):
            if gain[ri, cj] > 0:
                ci = cis[ri]
                labels[ci] = cand[cj]
                row = s[ri]
                others = np.delete(row, cj)
                best_other = max(float(others.max()) if len(others) else -np.inf, dummy[ri])
                margin[ci] = float(row[cj] - best_other)
    return _Assignment(labels, margin)


def _rare_loglik(c: _Cluster, counter: Counter[Label]) -> float:
    total = sum(counter.values())
    k = np.array([len(c.rows)], float)
    return float(_poisson_loglik(k, np.array([c.group_n / max(total, 1)]))[0]) - 2.0


def _base_scores(clusters: list[_Cluster], f: EncodedField, public: Mapping[Group, Counter[Label]],
                 top: int) -> tuple[dict[int, np.ndarray], dict[Group, list[Label]]]:
    """Frequency (Poisson on the cluster size) and length (normal on the bit count) terms."""
    names: dict[Group, list[Label]] = {}
    exp_ones: dict[Label, float] = {}
    for g, counter in public.items():
        names[g] = [lab for lab, _ in counter.most_common(top)]
        for lab in names[g]:
            if lab not in exp_ones:
                exp_ones[lab] = _expected_ones(lab, f)
    score: dict[int, np.ndarray] = {}
    sd = max(2.0, f.bits * 0.02)
    for ci, c in enumerate(clusters):
        cand = names.get(c.group, [])
        counter = public.get(c.group, Counter())
        total = max(sum(counter.values()), 1)
        lam = np.array([c.group_n * counter[lab] / total for lab in cand])
        freq = _poisson_loglik(np.full(len(cand), float(len(c.rows))), lam)
        if f.diffusion:
            # Diffused filters have about half their bits set whatever the name: no length.
            score[ci] = freq
            continue
        e = np.array([exp_ones[lab] for lab in cand])
        length = -0.5 * ((c.ones - e) / (sd / np.sqrt(len(c.rows)) + 1.0)) ** 2
        score[ci] = freq + length
    return score, names


def _learn_positions(clusters: list[_Cluster], assignment: _Assignment, f: EncodedField,
                     min_margin: float, min_support: int) -> dict[str, np.ndarray]:
    """Bits each q-gram sets: set (share >= 0.8) in >= 90 % of the confident clusters whose name
    holds the q-gram, where the name's other q-grams do not already explain them."""
    confident = [ci for ci, m in assignment.margin.items()
                 if m >= min_margin and len(clusters[ci].rows) >= 3]
    holders: dict[str, list[int]] = defaultdict(list)
    for ci in confident:
        for gram in _label_grams(assignment.labels[ci], f.ngram):
            holders[gram].append(ci)
    learned: dict[str, np.ndarray] = {}
    for gram, cis in holders.items():
        if len(cis) < min_support:
            continue
        on = np.stack([clusters[ci].centroid >= 0.8 for ci in cis])
        share = on.mean(axis=0)
        pos = np.flatnonzero(share >= 0.9)
        if 0 < len(pos) <= 2 * f.hashes:
            learned[gram] = pos
    return learned


def _pattern_scores(clusters: list[_Cluster], f: EncodedField, names: dict[Group, list[Label]],
                    learned: dict[str, np.ndarray], weight: float) -> dict[int, np.ndarray]:
    """Log-likelihood of each cluster's bits under each candidate name's learned bits."""
    if not learned:
        return {ci: np.zeros(len(names.get(c.group, []))) for ci, c in enumerate(clusters)}
    known = np.zeros(f.bits, bool)
    for pos in learned.values():
        known[pos] = True
    kidx = np.flatnonzero(known)
    cache: dict[Label, tuple[np.ndarray, float]] = {}

    def expect(lab: Label) -> np.ndarray:
        if lab not in cache:
            grams = _label_grams(lab, f.ngram)
            hit = np.zeros(f.bits, bool)
            unknown = 0
            for gram in grams:
                if gram in learned:
                    hit[learned[gram]] = True
                else:
                    unknown += 1
            background = 1 - (1 - 1 / f.bits) ** (f.hashes * unknown)
            p = np.where(hit, 1 - f.flip, background * (1 - f.flip) + (1 - background) * f.flip)
            cache[lab] = (np.clip(p[kidx], 0.02, 0.98), 0.0)
        return cache[lab][0]

    out: dict[int, np.ndarray] = {}
    for ci, c in enumerate(clusters):
        cand = names.get(c.group, [])
        if not cand:
            out[ci] = np.zeros(0)
            continue
        p = np.stack([expect(lab) for lab in cand])  # (names, known bits)
        x = c.centroid[kidx]
        ll = (x * np.log(p) + (1 - x) * np.log(1 - p)).sum(axis=1)
        out[ci] = weight * ll
    return out


@dataclass(frozen=True)
class FieldResult:
    labels: list[Label | None]  # per record; None: not labelled by the encodings
    clusters: int
    learned_grams: int


PATTERN_WEIGHT = 0.04


@dataclass(frozen=True)
class _Solved:
    clusters: list[_Cluster]
    assignment: _Assignment
    learned_grams: int


def _solve(f: EncodedField, view: HubView, public: PublicList, kinds: tuple[str, ...],
           top: int, all_pairs: bool = False) -> dict[str, _Solved]:
    """Each attack's clusters and one-to-one labelling of one field. The cluster attack is the
    pattern attack's first step, so both share the (costly) clustering."""
    pub = public.for_components(f.components)
    out: dict[str, _Solved] = {}
    if "frequency" in kinds:
        clusters = _clusters(f, view, 1.0)
        score, names = _base_scores(clusters, f, pub, top)
        out["frequency"] = _Solved(clusters, _assign(clusters, pub, score, names), 0)
    if "cluster" in kinds or "pattern" in kinds:
        clusters = _clusters(f, view, cluster_threshold(f), all_pairs)
        score, names = _base_scores(clusters, f, pub, top)
        assignment = _assign(clusters, pub, score, names)
        out["cluster"] = _Solved(clusters, assignment, 0)
        if "pattern" in kinds:
            n_learned = 0
            for _ in range(2):
                total, n_learned = _pattern_round(clusters, assignment, f, names, score)
                assignment = _assign(clusters, pub, total, names)
            out["pattern"] = _Solved(clusters, assignment, n_learned)
    return out


def _pattern_round(clusters: list[_Cluster], assignment: _Assignment, f: EncodedField,
                   names: dict[Group, list[Label]], score: dict[int, np.ndarray],
                   ) -> tuple[dict[int, np.ndarray], int]:
    """One round of pattern mining: learn q-gram bit positions from the confident clusters and
    add each cluster's pattern score to its base score. For a field salted with a clear
    attribute, positions are learned and used within each salt value."""
    keys = [c.group[f.salt_index] if f.salt_index is not None else "" for c in clusters]
    total: dict[int, np.ndarray] = {}
    n_learned = 0
    for key in sorted(set(keys)):
        idx = [ci for ci, k in enumerate(keys) if k == key]
        sub = [clusters[ci] for ci in idx]
        sub_assignment = _Assignment(
            {j: assignment.labels[ci] for j, ci in enumerate(idx) if ci in assignment.labels},
            {j: assignment.margin[ci] for j, ci in enumerate(idx) if ci in assignment.margin})
        learned = _learn_positions(sub, sub_assignment, f, min_margin=3.0, min_support=6)
        pattern = _pattern_scores(sub, f, names, learned, PATTERN_WEIGHT)
        for j, ci in enumerate(idx):
            total[ci] = score[ci] + pattern[j]
        n_learned += len(learned)
    return total, n_learned


def _field_result(solved: _Solved, n: int, min_margin: float) -> FieldResult:
    labels: list[Label | None] = [None] * n
    for ci, lab in solved.assignment.labels.items():
        if solved.assignment.margin.get(ci, 0.0) < min_margin:
            continue
        for r in solved.clusters[ci].rows.tolist():
            labels[r] = lab
    return FieldResult(labels, len(solved.clusters), solved.learned_grams)


def attack_field(f: EncodedField, view: HubView, public: PublicList, kind: str,
                 top: int = 300, min_margin: float = -np.inf,
                 all_pairs: bool = False) -> FieldResult:
    """Label each record's value of one encoded field; ``kind``: frequency, cluster or pattern.
    ``min_margin``: keep only labels whose log-likelihood beats the cluster's next best choice
    by this much (the others keep the clear-attribute guess). ``all_pairs``: the cluster step
    compares every pair of filters within a group instead of LSH candidates."""
    solved = _solve(f, view, public, (kind,), top, all_pairs)[kind]
    return _field_result(solved, len(view.groups), min_margin)


# ------------------------------------------------------------------ scoring
@dataclass(frozen=True)
class Rates:
    given: float
    family: float
    full: float

    def as_dict(self) -> dict[str, float]:
        return {"given": self.given, "family": self.family, "full": self.full}


def _commonest(public: PublicList, comp: str) -> tuple[dict[Group, str], str]:
    by_group = public.for_components((comp,))
    per: dict[Group, str] = {}
    overall: Counter[str] = Counter()
    for g, counter in by_group.items():
        per[g] = counter.most_common(1)[0][0][0]
        for lab, k in counter.items():
            overall[lab[0]] += k
    return per, overall.most_common(1)[0][0]


def baseline_guesses(view: HubView, public: PublicList) -> tuple[dict[str, list[str | None]],
                                                                  dict[str, list[str | None]]]:
    """Per component: the clear-attribute guess (commonest name of the record's sex and
    citizenship) and the commonest-name guess (the commonest name overall)."""
    clear: dict[str, list[str | None]] = {}
    common: dict[str, list[str | None]] = {}
    for comp in ("given", "family"):
        per, overall = _commonest(public, comp)
        clear[comp] = [per.get(g) for g in view.groups]
        common[comp] = [overall] * len(view.groups)
    return clear, common


def rates(guess: Mapping[str, Sequence[str | None]], truth: Truth) -> Rates:
    """Share of records whose given / family / both names are labelled correctly (records with
    no value count as not re-identified; a guess of the right name is a re-identification)."""
    g_ok = np.array([a is not None and a == b
                     for a, b in zip(guess["given"], truth.values["given"], strict=True)])
    f_ok = np.array([a is not None and a == b
                     for a, b in zip(guess["family"], truth.values["family"], strict=True)])
    return Rates(float(g_ok.mean()), float(f_ok.mean()), float((g_ok & f_ok).mean()))


def _combine(view: HubView, public: PublicList, truth: Truth,
             per_field: list[tuple[EncodedField, FieldResult]]) -> Rates:
    """Records no field labels keep the clear-attribute guess; where two fields label the same
    component, the first wins."""
    clear, _ = baseline_guesses(view, public)
    guess: dict[str, list[str | None]] = {c: list(v) for c, v in clear.items()}
    done: set[str] = set()
    for f, result in per_field:
        for j, comp in enumerate(f.components):
            if comp in done:
                continue
            for i, lab in enumerate(result.labels):
                if lab is not None:
                    guess[comp][i] = lab[j]
            done.add(comp)
    return rates(guess, truth)


def run_attack(view: HubView, public: PublicList, truth: Truth, kind: str,
               min_margin: float = -np.inf, all_pairs: bool = False) -> Rates:
    """The attack on every encoded name field; records it leaves unlabelled get the
    clear-attribute guess. Where two fields label the same component, the first wins."""
    per_field = [(f, attack_field(f, view, public, kind, min_margin=min_margin,
                                  all_pairs=all_pairs))
                 for f in view.fields]
    return _combine(view, public, truth, per_field)


def baseline_rates(view: HubView, public: PublicList, truth: Truth) -> tuple[Rates, Rates]:
    clear, common = baseline_guesses(view, public)
    return rates(clear, truth), rates(common, truth)


ATTACKS = ("frequency", "cluster", "pattern")
MARGINS = (-np.inf, 2.0)  # every label; only labels at odds of about 7:1 or better


def best_attack(view: HubView, public: PublicList, truth: Truth,
                all_pairs: bool = False) -> dict[str, Rates]:
    """Every attack, with all its labels and with its confident labels only; and per measure
    (given, family, full) the best of them, under the key ``best``. Each field is clustered
    once per threshold and each attack solved once (the margins only filter its labels)."""
    solved = [(f, _solve(f, view, public, ATTACKS, 300, all_pairs)) for f in view.fields]
    n = len(view.groups)
    out: dict[str, Rates] = {}
    for kind in ATTACKS:
        for m in MARGINS:
            key = kind if m == -np.inf else f"{kind}, confident"
            out[key] = _combine(view, public, truth,
                                [(f, _field_result(s[kind], n, m)) for f, s in solved])
    out["best"] = Rates(*(max(getattr(r, k) for r in out.values())
                          for k in ("given", "family", "full")))
    return out


@dataclass(frozen=True)
class StepAgreement:
    """How the LSH cluster step's neighbour lists compare with comparing every pair."""

    pairs: int  # ordered pairs at Dice >= the threshold (self pairs excluded), every pair compared
    missed: int  # of those, not found by the LSH step
    extra: int  # found by the LSH step and not by all pairs (must be 0: both are exact checks)
    same_clusters: bool  # the leader clustering comes out the same


def compare_cluster_steps(f: EncodedField, view: HubView) -> StepAgreement:
    """Run both neighbour searches on each group of one field (the benchmark's check that the
    faster step is not a weaker attack)."""
    threshold = cluster_threshold(f)
    by_group: dict[Group, list[int]] = defaultdict(list)
    for i, g in enumerate(view.groups):
        if f.present[i]:
            by_group[g].append(i)
    pairs = missed = extra = 0
    same = True
    for rows_list in by_group.values():
        x = _unpack(f, np.asarray(rows_list))
        exact = _neighbours_all_pairs(x, threshold)
        fast = _neighbours_lsh(x, threshold)
        for r, (a, b) in enumerate(zip(exact, fast, strict=True)):
            sa, sb = set(a.tolist()) - {r}, set(b.tolist()) - {r}
            pairs += len(sa)
            missed += len(sa - sb)
            extra += len(sb - sa)
        la, lb = _leaders_from(exact), _leaders_from(fast)
        same = same and len(la) == len(lb) and all(
            np.array_equal(p, q) for p, q in zip(la, lb, strict=True))
    return StepAgreement(pairs, missed, extra, same)


# ------------------------------------------------------------------ language groups
def language_groups(public: PublicList, overlap: float = 0.5) -> dict[str, str]:
    """Citizenships whose given- and family-name distributions overlap (1 - total variation
    distance >= ``overlap``) form one language group: what an attacker with the public list
    can tell apart by names at all. Returns citizenship -> group id (the group's first
    citizenship in sorted order)."""
    mass: dict[str, Counter[str]] = defaultdict(Counter)
    for comp in ("given", "family"):
        for (_, cit), counter in public.for_components((comp,)).items():
            for lab, k in counter.items():
                mass[cit][f"{comp}:{lab[0]}"] += k
    cits = sorted(mass)
    dist = {c: {k: v / sum(mass[c].values()) for k, v in mass[c].items()} for c in cits}
    parent = {c: c for c in cits}

    def root(c: str) -> str:
        while parent[c] != c:
            c = parent[c]
        return c

    for i, a in enumerate(cits):
        for b in cits[i + 1 :]:
            shared = sum(min(p, dist[b].get(k, 0.0)) for k, p in dist[a].items())
            if shared >= overlap:
                ra, rb = root(a), root(b)
                parent[max(ra, rb)] = min(ra, rb)
    return {c: root(c) for c in cits}


@dataclass(frozen=True)
class LanguageResult:
    rates: dict[str, Rates]  # the conditioned attacks (as best_attack), under the inferred groups
    accuracy: float  # share of records with a name whose language group is inferred correctly
    groups: int  # language groups the attacker told apart in the public list


def _bernoulli_loglik(x_sum: np.ndarray, n: np.ndarray, p: np.ndarray) -> np.ndarray:
    """(clusters, groups) log-likelihood of each cluster's members' bits under each group's
    independent bit frequencies ``p`` (groups, bits)."""
    p = np.clip(p, 1e-3, 1 - 1e-3)
    return x_sum @ np.log(p).T + (n[:, None] - x_sum) @ np.log(1 - p).T


def _fit_groups(x_sum: np.ndarray, n: np.ndarray, resp: np.ndarray) -> tuple[np.ndarray,
                                                                              np.ndarray]:
    """Per-group bit frequencies and log shares from soft assignments (clusters, groups)."""
    w = resp * n[:, None]
    p = (resp.T @ x_sum + 1) / (w.sum(axis=0)[:, None] + 2)
    share = np.log((w.sum(axis=0) + 1) / (w.sum() + len(p)))
    return p, share


def _mixture(x_sum: np.ndarray, n: np.ndarray, k: int, iters: int = 40,
             restarts: int = 4) -> np.ndarray:
    """Unsupervised: a mixture of k independent-Bernoulli bit profiles fitted by EM on the name
    clusters (each weighted by its members), the best of a few random starts by likelihood;
    returns each cluster's component."""
    best: tuple[float, np.ndarray] | None = None
    for seed in range(restarts):
        rng = np.random.default_rng(seed)
        resp = rng.dirichlet(np.ones(k), size=len(n))
        for _ in range(iters):
            p, share = _fit_groups(x_sum, n, resp)
            ll = _bernoulli_loglik(x_sum, n, p) + share[None, :]
            top = ll.max(axis=1, keepdims=True)
            resp = np.exp(ll - top)
            total = float((top[:, 0] + np.log(resp.sum(axis=1))).sum())
            resp /= resp.sum(axis=1, keepdims=True)
        if best is None or total > best[0]:
            best = (total, np.argmax(resp, axis=1))
    assert best is not None
    return best[1]


KNOWN_SHARE = 0.1


def language_attack(view: HubView, public: PublicList, truth: Truth,
                    true_groups: Sequence[Group], how: str = "mixture") -> LanguageResult:
    """An attacker at the linkage unit (sex only next to the name encodings) that infers
    language groups from the names' bigram structure, then runs the attacks conditioned on
    (sex, language group), as the hub layout's attacker conditions on (sex, citizenship).

    1. Language groups from the public list (``language_groups``): citizenships whose names
       overlap cannot be told apart by names at all.
    2. Cluster each sex's name filters (the cluster step: one cluster per name, mostly).
    3. Give each cluster a language group:
       ``mixture``: unsupervised, a mixture of independent-Bernoulli bit profiles (one per
       language group) fitted by EM on the clusters, its components matched one-to-one to the
       public list's groups by their shares of the records (Hungarian on the share gap);
       ``known``: semi-supervised, an attacker who knows the true group of a random tenth of
       the clusters (e.g. from a colluding partner) trains the same bit profiles on them and
       classifies the rest;
       ``oracle``: an upper bound no attacker has, every cluster's true (majority) group: what
       any language inference could give at best.
    4. ``best_attack`` with the groups (sex, inferred language group) and the public list
       merged to the same groups.

    ``view``/``public`` are the unit's (sex-only) view and the public list by sex and
    citizenship; ``true_groups`` the records' true (sex, citizenship), for ``oracle`` and the
    accuracy only.
    """
    lang = language_groups(public)
    names = sorted(set(lang.values()))
    index = {g: i for i, g in enumerate(names)}
    merged_counts: dict[tuple[str, ...], dict[Group, Counter[Label]]] = {}
    for comps, by_group in public.counts.items():
        m: dict[Group, Counter[Label]] = defaultdict(Counter)
        for (sex, cit), counter in by_group.items():
            m[(sex, lang[cit])].update(counter)
        merged_counts[comps] = dict(m)
    lang_public = PublicList(merged_counts)
    f = view.fields[0]  # the unit schema's one name field (given + family)
    sex_view = HubView(view.fields, [(g[0], "") for g in view.groups])
    clusters = _clusters(f, sex_view, cluster_threshold(f))
    x_sum = np.stack([c.centroid * len(c.rows) for c in clusters]).astype(np.float64)
    n = np.array([len(c.rows) for c in clusters], np.float64)
    k = len(names)
    if how in ("oracle", "known"):
        target = np.zeros((len(clusters), k))
        for ci, c in enumerate(clusters):
            for r in c.rows.tolist():
                target[ci, index[lang[true_groups[r][1]]]] += 1
        resp = target / np.maximum(target.sum(axis=1, keepdims=True), 1)
        # "known": the attacker knows the true group of a random tenth of the clusters only
        # (e.g. from a colluding partner), trains on those and keeps them.
        # "oracle": every cluster's true (majority) group, as if inferred without error.
        known = np.random.default_rng(1).random(len(clusters)) < (
            KNOWN_SHARE if how == "known" else 1.0)
        p, share = _fit_groups(x_sum[known], n[known], resp[known])
        inferred = np.argmax(_bernoulli_loglik(x_sum, n, p) + share[None, :], axis=1)
        inferred[known] = np.argmax(resp[known], axis=1)
    elif how == "mixture":
        comp = _mixture(x_sum, n, k)
        got = np.bincount(comp, weights=n, minlength=k) / n.sum()
        counts = public.for_components(f.components)
        want = np.zeros(k)
        for (_, cit), counter in counts.items():
            want[index[lang[cit]]] += sum(counter.values())
        want /= want.sum()
        r, c = linear_sum_assignment(np.abs(got[:, None] - want[None, :]))
        to_lang = np.zeros(k, int)
        to_lang[r] = c
        inferred = to_lang[comp]
    else:
        raise ValueError(f"unknown language inference {how!r}")
    per_record = [""] * len(view.groups)
    for ci, c in enumerate(clusters):
        for r in c.rows.tolist():
            per_record[r] = names[inferred[ci]]
    # Records with no name value keep a group of their own (they are never labelled).
    groups = [(g[0], per_record[i]) for i, g in enumerate(view.groups)]
    has = [i for i in range(len(groups)) if f.present[i]]
    accuracy = float(np.mean([per_record[i] == lang[true_groups[i][1]] for i in has])) \
        if has else 0.0
    rates_ = best_attack(HubView(view.fields, groups), lang_public, truth)
    return LanguageResult(rates_, accuracy, k)
