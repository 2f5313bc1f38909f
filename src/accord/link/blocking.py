"""Candidate generation: Hamming locality-sensitive hashing (bit sampling) on the encodings.

Why by hand: blocking libraries (recordlinkage, Splink) block on clear-text values, and anonlink's
blocklib has no release since 2023. Each band's key is r bits sampled from a record's blocking
filter; records of the two sides that share a key in any band become candidates. A pair whose
filters agree on a share s of bits collides in a band with probability s**r, so r is chosen from
the data (random pairs' bit agreement) to keep chance collisions per band near a budget, and the
number of bands so that pairs agreeing on `target_agreement` of their bits are found with
probability `target_recall`. (MinHash was tried first: Bloom filters are dense, random pairs
have Jaccard near 0.25, and MinHash could not separate them.)

The blocking filter OR-s the name fields of one hash domain, so swapped given and family names
give the same filter, and concatenates the other fields.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from accord.link.encodings import EncodedSet
from accord.protect.encoding.schema import FieldKind


@dataclass(frozen=True)
class BlockingConfig:
    target_agreement: float = 0.85  # share of bits a hard true pair still agrees on
    target_recall: float = 0.995  # chance such a pair becomes a candidate
    pairs_per_band: float = 1.0  # chance collisions per band, per record of the larger side
    max_rows: int = 62
    max_bands: int = 200
    # A bucket with more pairs than this (a very common name) is skipped in that band: the other
    # passes (dates, text) still find its true pairs, and the candidate count stays bounded.
    max_bucket_pairs: int = 2_000
    seed: int = 20261127
    # One LSH pass per group of field kinds: names, dates, text. A pair is found if it is close
    # in any of them, e.g. names the q-grams cannot bridge (another transliteration) but the
    # same birth date.
    passes: tuple[tuple[FieldKind, ...], ...] = (
        (FieldKind.NAME,),
        (FieldKind.DATE,),
        (FieldKind.TEXT,),
    )


def blocking_filter(s: EncodedSet, kinds: tuple[FieldKind, ...]) -> np.ndarray:
    """(n, words) uint64: name fields of a domain OR-ed, the other filters concatenated."""
    parts: list[np.ndarray] = []
    names: dict[str, np.ndarray] = {}
    for spec in s.info.schema.fields:
        if spec.kind not in kinds:
            continue
        w = s.fields[spec.name].words
        if spec.kind is FieldKind.NAME:
            prev = names.get(spec.hash_domain)
            names[spec.hash_domain] = w.copy() if prev is None else prev | w
        else:
            parts.append(w)
    return np.concatenate([*names.values(), *parts], axis=1)


def _bits(words: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """(n, len(positions)) uint64 0/1 of the given bit positions."""
    w = words[:, positions // 64]
    return (w >> (positions % 64).astype(np.uint64)) & np.uint64(1)


def _band_keys(words: np.ndarray, positions: np.ndarray) -> np.ndarray:
    bits = _bits(words, positions)
    shifts = np.arange(len(positions), dtype=np.uint64)
    return (bits << shifts).sum(axis=1, dtype=np.uint64).view(np.int64)


def _band_pairs(ka: np.ndarray, kb: np.ndarray, cap: int) -> np.ndarray:
    """Codes a*len(kb)+b of pairs sharing a key (buckets above `cap` pairs skipped)."""
    oa = np.argsort(ka, kind="stable")
    ob = np.argsort(kb, kind="stable")
    ua, sta, ca = np.unique(ka[oa], return_index=True, return_counts=True)
    ub, stb, cb = np.unique(kb[ob], return_index=True, return_counts=True)
    _, ia, ib = np.intersect1d(ua, ub, assume_unique=True, return_indices=True)
    na, nb = ca[ia], cb[ib]
    size = na.astype(np.int64) * nb
    keep = size <= cap
    ia, ib, na, nb, size = ia[keep], ib[keep], na[keep], nb[keep], size[keep]
    total = int(size.sum())
    if total == 0:
        return np.empty(0, dtype=np.int64)
    g = np.repeat(np.arange(len(size)), size)
    within = np.arange(total, dtype=np.int64) - np.repeat(np.cumsum(size) - size, size)
    a = oa[sta[ia][g] + within // nb[g]]
    b = ob[stb[ib][g] + within % nb[g]]
    return a.astype(np.int64) * len(kb) + b


@dataclass(frozen=True)
class BlockingPlan:
    rows: int
    bands: int
    random_agreement: float


def plan(fa: np.ndarray, fb: np.ndarray, config: BlockingConfig) -> BlockingPlan:
    """Choose rows and bands from the bit agreement of random pairs."""
    rng = np.random.default_rng(config.seed)
    k = 20_000
    xa = rng.integers(0, len(fa), k)
    xb = rng.integers(0, len(fb), k)
    nbits = fa.shape[1] * 64
    diff = np.bitwise_count(fa[xa] ^ fb[xb]).sum(axis=1)
    p = float(np.clip(1.0 - diff.mean() / nbits, 0.05, 0.95))
    budget = config.pairs_per_band * max(len(fa), len(fb))
    want = budget / max(1.0, float(len(fa)) * len(fb))
    rows = 1 if want >= 1 else math.ceil(math.log(want) / math.log(p))
    rows = int(min(max(rows, 1), config.max_rows))
    hit = config.target_agreement**rows
    bands = math.ceil(math.log(1 - config.target_recall) / math.log(max(1e-12, 1 - hit)))
    return BlockingPlan(rows, int(min(max(bands, 1), config.max_bands)), p)


def candidate_pairs(a: EncodedSet, b: EncodedSet,
                    config: BlockingConfig | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Indices (ia, ib) of candidate pairs, each pair once."""
    cfg = config or BlockingConfig()
    rng = np.random.default_rng(cfg.seed + 1)
    codes: list[np.ndarray] = []
    present = {f.kind for f in a.info.schema.fields}
    for kinds in cfg.passes:
        if not present & set(kinds):
            continue
        fa, fb = blocking_filter(a, kinds), blocking_filter(b, kinds)
        pl = plan(fa, fb, cfg)
        nbits = fa.shape[1] * 64
        for _ in range(pl.bands):
            pos = rng.choice(nbits, size=pl.rows, replace=False).astype(np.int64)
            codes.append(_band_pairs(_band_keys(fa, pos), _band_keys(fb, pos),
                                     cfg.max_bucket_pairs))
    allc = np.unique(np.concatenate(codes)) if codes else np.empty(0, np.int64)
    return allc // len(b), allc % len(b)


def all_pairs(a: EncodedSet, b: EncodedSet) -> tuple[np.ndarray, np.ndarray]:
    """Every pair (for small inputs, and to measure blocking recall)."""
    ia = np.repeat(np.arange(len(a), dtype=np.int64), len(b))
    ib = np.tile(np.arange(len(b), dtype=np.int64), len(a))
    return ia, ib
