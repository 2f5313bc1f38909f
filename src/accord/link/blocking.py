"""Candidate generation: Hamming locality-sensitive hashing (bit sampling) on the encodings,
an LSH forest per band, streamed band by band through a compiled Dice filter, so the candidate
set never holds the chance collisions.

Why by hand: blocking libraries (recordlinkage, Splink) block on clear-text values, and anonlink's
blocklib has no release since 2023. (MinHash was tried first: Bloom filters are dense, random
pairs have Jaccard near 0.25, and MinHash could not separate them.)

Passes. A pass blocks on the filters of some kinds of field: the name fields (one filter per hash
domain, its fields OR-ed, so swapped given and family names agree), the dates, the text fields;
or, where one kind alone repeats too often (a migrant-like population shares few names; a birth
date is shared by dozens in a million), a combination: names with the year of birth and the
codes (finds defaulted, year-only and swapped dates), the full date with the codes (finds
transliterated, swapped or compound names), names with the full date (finds pairs whose codes
differ). Single-kind passes run first and only while they stay selective (the bands they would
need are counted on a trial band); a pass is skipped when one already run blocks on a subset of
its fields.

Bands. A band samples 64 bits of the pass filter in random order; records of the two sides that
share the first ``rows`` bits share a bucket, and a bucket where both sides hold more than
``max_side`` records (a common value) is split by the next bits (an LSH forest), so the work per
record stays bounded at any size while rare values keep short keys. Pairs of a bucket are kept
if every field group of the pass (names, text, dates, years, each code) has Dice >= ``min_dice``
or is missing on a side. A pair whose filters agree on a share s of bits collides in a band with
probability s**depth: rows are chosen so that a band yields about ``pairs_per_band`` chance
collisions per record (from random pairs' bit agreement), and the bands so that pairs as close
as randomised response leaves equal values (simulated, less a margin) are found with probability
``target_recall``, averaged over the bucket depths of a trial band.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, replace

import numpy as np

from accord.link.encodings import EncodedSet
from accord.link.engine import BandEngine, BandJob, EmbeddedEngine, band_buckets
from accord.protect.encoding.bloom import YEAR_SUFFIX
from accord.protect.encoding.schema import FieldKind

_K = FieldKind


@dataclass(frozen=True)
class BlockingConfig:
    # Share of bits a true pair still agrees on in the fields of one pass. None: what
    # randomised response leaves of equal values (about 1 - 2p(1-p), 0.96 at p = 0.02; less where
    # name fields are OR-ed) less a margin for small errors such as a typo: `error_margin` in a
    # pass on one kind of field (run where data are small, so cheap), `combined_margin` in a
    # pass on several (a pair with an error in one field is also found by another pass).
    target_agreement: float | None = None
    error_margin: float = 0.03
    combined_margin: float = 0.01
    target_recall: float = 0.995  # chance such a pair becomes a candidate in its pass
    pairs_per_band: float = 1.0  # chance collisions per band, per record of the larger side
    # A bucket where both sides hold more records than this is split by further bits.
    max_side: int = 8
    # Dice each field group of the pass needs for a colliding pair to be kept. Equal values
    # under randomised response score 0.55-1 in the short code and year filters (few bits, so
    # noise varies most), different ones below 0.4: `min_dice`. Names, dates and text score
    # 0.8-0.9 when equal, 0.7-0.8 with a typo, 0.5-0.65 when only one of two names is shared:
    # `min_dice_long` in a pass on several kinds (where the filter must keep the candidates few
    # at scale), `min_dice` in a pass on one kind (small data: keep more for the model to judge).
    min_dice: float = 0.5
    min_dice_long: float = 0.7
    # The first bands of each pass keep their chance collisions: the EM that weighs the fields
    # needs clear non-matches among the candidates, not only near misses.
    unfiltered_bands: int = 2
    max_bands: int = 120
    coarse_bands: int = 60  # most bands a pass on one kind of field may need to be run
    # A bucket still larger at 64 bits is skipped in that band if it pairs more records than this.
    max_bucket_pairs: int = 2_000
    seed: int = 20261127
    threads: int | None = None  # bands run at once; None = one per core
    # Records with no birth date (unknown, or no date field filled) are blocked once more, on
    # the kinds below, against every record of the other side: the passes above include the
    # date, so such a record's pairs collide only by chance, and a pass on names alone is too
    # coarse at scale. One side is only the records without a date, so the pass stays small.
    undated_pass: tuple[FieldKind, ...] = (_K.NAME, _K.CODE)
    # The bound of that pass: a bucket where the full side holds more records than this is left
    # out. Its records share names and codes (a common name at this size, about `hit` x the
    # people of that name: 4 per band at 100,000, 14 at 1,000,000 in the migrant-like
    # benchmark); an undated record among them cannot be told from the others unless all but
    # one are matched elsewhere (chance about 2**-(k-1) for k people of whom half are matched),
    # so pairing it with all of them costs candidates (linear in the population) and buys
    # coin-flip links. Work stays at most this many pairs per undated record and band.
    undated_max_side: int = 8
    # Kinds blocked on together in each pass. YEAR means year fields and the year of dates;
    # DATE the full dates. A pass made of codes alone is skipped (too few distinct values).
    passes: tuple[tuple[FieldKind, ...], ...] = (
        (_K.NAME,),
        (_K.DATE,),
        (_K.TEXT,),
        (_K.DATE, _K.CODE),
        (_K.TEXT, _K.CODE),
        (_K.NAME, _K.YEAR, _K.CODE),
        (_K.NAME, _K.DATE),
    )


def _pass_groups(s: EncodedSet, kinds: tuple[FieldKind, ...]) -> list[list[list[str]]]:
    """Field groups of a pass, each a list of parts, each part a list of OR-ed columns.

    A group is what the Dice filter checks as one: the name fields (one part per hash domain,
    its fields OR-ed, so swapped given and family names agree), the text fields, the full dates,
    the years (of year fields and of dates); each code field is a group of its own, as codes
    have few bits and a wrong one should not hide behind the others.
    """
    groups: dict[str, list[list[str]]] = {}
    domains: dict[str, list[str]] = {}
    for spec in s.info.schema.fields:
        if spec.kind is FieldKind.DATE and FieldKind.YEAR in kinds:
            groups.setdefault("year", []).append([spec.name + YEAR_SUFFIX])
        if spec.kind not in kinds:
            continue
        if spec.kind is FieldKind.NAME:
            if spec.hash_domain not in domains:
                domains[spec.hash_domain] = []
                groups.setdefault("name", []).append(domains[spec.hash_domain])
            domains[spec.hash_domain].append(spec.name)
        elif spec.kind is FieldKind.CODE:
            groups["code:" + spec.name] = [[spec.name]]
        else:
            groups.setdefault(spec.kind.value, []).append([spec.name])
    return list(groups.values())


def _thresholds(s: EncodedSet, kinds: tuple[FieldKind, ...],
                config: BlockingConfig) -> np.ndarray:
    """min Dice per field group of a pass (see BlockingConfig.min_dice), scaled down where the
    schema's randomised response leaves equal values less alike than at the flip probability
    the settings were chosen at (`_noise_factor`)."""
    out = []
    for group in _pass_groups(s, kinds):
        kind = s.info.schema.field(group[0][0]).kind if group[0][0] in {
            f.name for f in s.info.schema.fields} else FieldKind.YEAR
        long = kind in (FieldKind.NAME, FieldKind.DATE, FieldKind.TEXT)
        base = config.min_dice_long if long and len(kinds) > 1 else config.min_dice
        out.append(base * _noise_factor(s, group, config))
    return np.asarray(out, dtype=np.float64)


# The flip probability at which the Dice thresholds above were measured.
_REFERENCE_FLIP = 0.02


def _noise_factor(s: EncodedSet, group: list[list[str]], config: BlockingConfig) -> float:
    """Mean Dice of two encodings of the same values at the schema's flip probability, relative
    to that at the reference one (at most 1), simulated on a sample of the group's filters: a
    schema with more bit noise lowers the Dice filter instead of losing its true pairs."""
    p = s.info.schema.hardening.flip_probability
    if p <= _REFERENCE_FLIP or not len(s):
        return 1.0
    rng = np.random.default_rng(config.seed + 3)
    rows = rng.choice(len(s), size=min(len(s), 2_000), replace=False)

    def mean_dice(flip: float) -> float:
        def noisy() -> np.ndarray:
            parts = []
            for part in group:
                w = np.zeros((len(rows), s.fields[part[0]].words.shape[1]), dtype=np.uint64)
                for name in part:
                    f = s.fields[name]
                    bits = rng.random((len(rows), f.words.shape[1], 64)) < flip
                    flips = np.packbits(bits, axis=2, bitorder="little").view(np.uint64)[..., 0]
                    w |= np.where(f.present[rows, None], f.words[rows] ^ flips, 0)
                parts.append(w)
            return np.concatenate(parts, axis=1)

        x, y = noisy(), noisy()
        ones = np.bitwise_count(x).sum(axis=1) + np.bitwise_count(y).sum(axis=1)
        common = np.bitwise_count(x & y).sum(axis=1)
        keep = ones > 0
        return float(np.mean(2.0 * common[keep] / ones[keep])) if keep.any() else 1.0

    return min(1.0, mean_dice(p) / max(mean_dice(_REFERENCE_FLIP), 1e-9))


def _columns(s: EncodedSet, kinds: tuple[FieldKind, ...]) -> frozenset[str]:
    return frozenset(c for g in _pass_groups(s, kinds) for part in g for c in part)


def _informative(s: EncodedSet, kinds: tuple[FieldKind, ...]) -> bool:
    """A pass blocks on names, dates or text; codes and years alone have too few values."""
    present = {f.kind for f in s.info.schema.fields}
    return bool({FieldKind.NAME, FieldKind.DATE, FieldKind.TEXT} & present & set(kinds))


def blocking_filter(s: EncodedSet, kinds: tuple[FieldKind, ...]) -> tuple[np.ndarray, np.ndarray]:
    """(n, words) uint64 filter of a pass (name fields of a domain OR-ed, the other filters
    concatenated) and the word offsets where each field group starts and ends."""
    parts: list[np.ndarray] = []
    bounds = [0]
    for group in _pass_groups(s, kinds):
        for part in group:
            w = s.fields[part[0]].words
            for name in part[1:]:
                w = w | s.fields[name].words
            parts.append(w)
        bounds.append(bounds[-1] + sum(s.fields[p[0]].words.shape[1] for p in group))
    return (np.ascontiguousarray(np.concatenate(parts, axis=1)),
            np.asarray(bounds, dtype=np.int64))


def _target(s: EncodedSet, kinds: tuple[FieldKind, ...], config: BlockingConfig) -> float:
    """Bit agreement of a pass filter between two encodings of the same values.

    Randomised response flips each bit with probability p on each side; where name fields are
    OR-ed, flips of either field count. Simulated on a sample of records: flip their filters
    twice, independently, and compare (already noisy filters are as good a base as clean ones).
    """
    if config.target_agreement is not None:
        return config.target_agreement
    p = s.info.schema.hardening.flip_probability
    rng = np.random.default_rng(config.seed + 2)
    rows = rng.choice(len(s), size=min(len(s), 4_000), replace=False)

    def noisy() -> np.ndarray:
        parts = []
        for part in (p for g in _pass_groups(s, kinds) for p in g):
            w = np.zeros((len(rows), s.fields[part[0]].words.shape[1]), dtype=np.uint64)
            for name in part:
                f = s.fields[name]
                bits = rng.random((len(rows), f.words.shape[1], 64)) < p
                flips = np.packbits(bits, axis=2, bitorder="little").view(np.uint64)[..., 0]
                w |= np.where(f.present[rows, None], f.words[rows] ^ flips, 0)
            parts.append(w)
        return np.concatenate(parts, axis=1)

    x, y = noisy(), noisy()
    agree = 1.0 - np.bitwise_count(x ^ y).sum() / x.size / 64
    return float(agree) - (config.error_margin if len(kinds) == 1 else config.combined_margin)


@dataclass(frozen=True)
class BlockingPlan:
    rows: int
    bands: int
    random_agreement: float


def _bits(nbits: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    pos = rng.choice(nbits, size=min(64, nbits), replace=False).astype(np.int64)
    return pos // 64, pos % 64


def _band(fa: np.ndarray, fb: np.ndarray, rows: int, config: BlockingConfig,
          bits: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Buckets of one band (sampled ``bits``) and the key orders they index."""
    from accord.link import kernels  # numba: loaded when first needed

    word, shift = bits
    job = _job(fa, fb, np.zeros(1, dtype=np.int64), rows, config, [bits], [])
    return band_buckets(kernels.band_keys(fa, word, shift), kernels.band_keys(fb, word, shift),
                        job)


def _job(fa: np.ndarray, fb: np.ndarray, bounds: np.ndarray, rows: int, config: BlockingConfig,
         bits: list[tuple[np.ndarray, np.ndarray]], min_dice: list[np.ndarray],
         max_bucket_side: int = 0) -> BandJob:
    return BandJob(fa, fb, bounds, rows, bits, min_dice, config.max_side,
                   config.max_bucket_pairs, max_bucket_side)


def plan(fa: np.ndarray, fb: np.ndarray, config: BlockingConfig,
         target: float = 0.95) -> BlockingPlan:
    """Choose rows (the key length before splitting) from random pairs' agreement, and bands
    from the bits records share in the buckets of a trial band."""
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
    rows = int(min(max(rows, 1), min(64, nbits)))
    # Where values repeat, buckets are split deeper than `rows`: a pair must then share more
    # bits, so the bands are counted for the chance of collision averaged over the records.
    buckets, _, _ = _band(fa, fb, rows, config, _bits(nbits, rng))
    depth = np.full(1, rows)
    size = np.ones(1)
    if len(buckets):
        depth = buckets[:, 4]
        size = ((buckets[:, 1] - buckets[:, 0]) + (buckets[:, 3] - buckets[:, 2])).astype(float)
    hit = target ** depth.astype(np.float64)
    # The fewest bands whose miss chance, averaged over the records, is within the target
    # (counted up to a limit: a pass needing more is not worth running).
    limit = 4 * config.max_bands
    bands = 1
    while bands < limit and (
            np.average((1 - hit) ** bands, weights=size) > 1 - config.target_recall):
        bands += 1
    return BlockingPlan(rows, bands, p)


def _pass_pairs(fa: np.ndarray, fb: np.ndarray, bounds: np.ndarray, pl: BlockingPlan,
                config: BlockingConfig, rng: np.random.Generator, min_dice: np.ndarray,
                engine: BandEngine | None = None,
                max_bucket_side: int = 0) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Pairs kept by the bands of one pass; the bits are drawn here, the bands run by the
    engine (threads on this machine by default, or Spark partitions)."""
    n_bands = min(pl.bands, config.max_bands)
    bits = [_bits(fa.shape[1] * 64, rng) for _ in range(n_bands)]
    none = np.zeros_like(min_dice)
    thresholds = [none if band < config.unfiltered_bands else min_dice for band in range(n_bands)]
    run = engine or EmbeddedEngine(config.threads)
    yield from run.band_pairs(_job(fa, fb, bounds, pl.rows, config, bits, thresholds,
                                   max_bucket_side))


def _note(report: dict[str, object] | None, key: str, value: object) -> None:
    if report is not None:
        report[key] = value


def sorted_unique(parts: list[np.ndarray]) -> np.ndarray:
    """``np.unique(np.concatenate(parts))`` (int64 codes) with one array of the result's size
    besides the inputs: np.unique's copy, mask and result made four at once, ~9 GB of the
    candidates at 10M a side. ``parts`` is emptied, so pieces no one else holds go as soon as
    they are joined."""
    from accord.link import kernels

    x = np.concatenate(parts) if parts else np.empty(0, dtype=np.int64)
    parts.clear()
    x.sort()
    # Shrunk in place (realloc): x owns its data and nothing else views it.
    x.resize(kernels.compact_sorted(x), refcheck=False)
    return x


def candidate_codes(a: EncodedSet, b: EncodedSet, config: BlockingConfig | None = None,
                    report: dict[str, object] | None = None,
                    flush: int = 1 << 24, engine: BandEngine | None = None) -> np.ndarray:
    """Sorted distinct codes ia * len(b) + ib of the candidate pairs of all passes.

    A pass is skipped when it would need more than ``max_bands`` bands (``coarse_bands`` for a
    pass on one kind of field): its values repeat too often at this size, as names do in a
    large population. A pass is skipped when a pass already run blocks on a subset of its fields
    (it could only find the same pairs). ``report``, if given, receives each pass's plan or why
    it was skipped.
    """
    cfg = config or BlockingConfig()
    rng = np.random.default_rng(cfg.seed + 1)
    done = np.empty(0, dtype=np.int64)
    pending: list[np.ndarray] = []
    held = 0
    used: list[frozenset[str]] = []
    fallback: tuple[int, tuple[FieldKind, ...]] | None = None
    for kinds in cfg.passes:
        cols = _columns(a, kinds)
        if not cols or not _informative(a, kinds) or any(u <= cols for u in used):
            continue
        (fa, bounds), (fb, _) = blocking_filter(a, kinds), blocking_filter(b, kinds)
        pl = plan(fa, fb, cfg, _target(a, kinds, cfg))
        name = "+".join(k.value for k in kinds)
        if pl.bands > (cfg.coarse_bands if len(kinds) == 1 else cfg.max_bands):
            _note(report, name, f"skipped: would need {pl.bands} bands")
            if fallback is None or pl.bands < fallback[0]:
                fallback = (pl.bands, kinds)
            continue
        _note(report, name, {"rows": pl.rows, "bands": pl.bands})
        used.append(cols)
        for xa, xb in _pass_pairs(fa, fb, bounds, pl, cfg, rng, _thresholds(a, kinds, cfg),
                                  engine):
            pending.append(xa * len(b) + xb)
            held += len(xa)
            if held > flush:  # a true pair collides in many bands: deduplicate as we go
                parts, pending, held = [done, *pending], [], 0
                done = sorted_unique(parts)
    if not used and fallback is not None:  # no pass is selective enough: run the best one
        kinds = fallback[1]
        (fa, bounds), (fb, _) = blocking_filter(a, kinds), blocking_filter(b, kinds)
        pl = plan(fa, fb, cfg, _target(a, kinds, cfg))
        _note(report, "+".join(k.value for k in kinds), {"rows": pl.rows, "bands": cfg.max_bands})
        pending = [xa * len(b) + xb for xa, xb in
                   _pass_pairs(fa, fb, bounds, pl, cfg, rng, _thresholds(a, kinds, cfg),
                               engine)]
    undated = _undated_pairs(a, b, cfg, rng, report, engine)
    parts = [done, *pending, undated]
    del done, pending, undated
    return sorted_unique(parts)


def _undated(s: EncodedSet) -> np.ndarray:
    """Records whose every date and year field is missing or of unknown quality."""
    out = np.ones(len(s), dtype=bool)
    seen = False
    for spec in s.info.schema.fields:
        if spec.kind not in (FieldKind.DATE, FieldKind.YEAR):
            continue
        seen = True
        known = s.fields[spec.name].present.copy()
        if spec.name in s.quality:
            known &= s.quality[spec.name] != "unknown"
        out &= ~known
    return out if seen else np.zeros(len(s), dtype=bool)


def _undated_pairs(a: EncodedSet, b: EncodedSet, cfg: BlockingConfig,
                   rng: np.random.Generator, report: dict[str, object] | None,
                   engine: BandEngine | None = None) -> np.ndarray:
    """Codes of the pairs of the undated pass: undated records of A against all of B, and all
    of A against undated records of B (see BlockingConfig.undated_pass)."""
    kinds = cfg.undated_pass
    if not kinds or not _columns(a, kinds) or not _informative(a, kinds):
        return np.empty(0, dtype=np.int64)
    (fa, bounds), (fb, _) = blocking_filter(a, kinds), blocking_filter(b, kinds)
    out: list[np.ndarray] = []
    plans: list[dict[str, int]] = []
    # Every band filtered: chance collisions of this pass would be mostly same-name pairs of
    # other people (the model has its random pairs anyway).
    cfg = replace(cfg, unfiltered_bands=0)
    for side, rows in (("a", np.flatnonzero(_undated(a))), ("b", np.flatnonzero(_undated(b)))):
        if not len(rows):
            continue
        sa, sb = (fa[rows], fb) if side == "a" else (fa, fb[rows])
        pl = plan(sa, sb, cfg, _target(a, kinds, cfg))
        found: list[np.ndarray] = []
        for xa, xb in _pass_pairs(sa, sb, bounds, pl, cfg, rng, _thresholds(a, kinds, cfg),
                                  engine, cfg.undated_max_side):
            if side == "a":
                found.append(rows[xa] * len(b) + xb)
            else:
                found.append(xa * len(b) + rows[xb])
        pairs = np.unique(np.concatenate(found)) if found else np.empty(0, dtype=np.int64)
        out.append(pairs)
        plans.append({"records": len(rows), "rows": pl.rows,
                      "bands": min(pl.bands, cfg.max_bands), "pairs": len(pairs)})
    if plans:
        _note(report, "undated:" + "+".join(k.value for k in kinds), plans)
    return np.concatenate(out) if out else np.empty(0, dtype=np.int64)


def candidate_pairs(a: EncodedSet, b: EncodedSet,
                    config: BlockingConfig | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Indices (ia, ib) of candidate pairs, each pair once, ordered by ia then ib."""
    codes = candidate_codes(a, b, config)
    return codes // len(b), codes % len(b)


def all_pairs(a: EncodedSet, b: EncodedSet) -> tuple[np.ndarray, np.ndarray]:
    """Every pair (for small inputs, and to measure blocking recall)."""
    ia = np.repeat(np.arange(len(a), dtype=np.int64), len(b))
    ib = np.tile(np.arange(len(b), dtype=np.int64), len(a))
    return ia, ib
