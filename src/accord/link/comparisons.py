"""Comparison vectors: for each candidate pair and field, a discrete agreement level.

Level 0 always means "no information" (a value missing on either side, or a date rule that says
the date cannot be trusted); it contributes nothing to the Fellegi-Sunter score. The other levels
are Dice bands, best first, then "disagree".
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from accord.link.encodings import EncodedSet, dice
from accord.protect.encoding.bloom import UNORDERED_SUFFIX, YEAR_SUFFIX
from accord.protect.encoding.normalise import DateQuality
from accord.protect.encoding.schema import EncodingSchema, FieldKind, FieldSpec

# Year levels used by the date rule (year-only or defaulted dates): equal, one apart, else.
_YEAR_LEVELS = (0.8, 0.3)
# Birth years from reported ages (EncodedSet.birth_years), used where the date is unknown: years
# apart at most this much (an age is reported in whole years at a registration date, so one
# person's estimates differ by up to about a year, more when the age itself is a guess). Within
# half a year is a level of its own: on the simulator 65 % of true pairs' estimates are that
# close against 1.9 % of random pairs, while 0.5-1.5 years apart is hardly more common among
# true pairs than among random ones, so one level up to 1.5 years diluted the close ones
# (benchmarks/results/linksim.md).
_AGE_YEAR_LEVELS = (0.5, 1.5, 7.0)
# Full dates of the same year in the lowest band whose Dice is at least this: they share the
# unordered month/day token as well (day and month swapped) or the month. Random same-year dates
# share only the year token and land below it in the default date filter (128 bits, 6 hashes
# per token: median Dice 0.38, 90th percentile 0.46; swapped dates: median 0.51, 5th percentile
# 0.45, measured at the default hardening).
_PARTIAL_DICE = 0.44
# Dates whose day and month are swapped (format 4): the unordered date filter (the year with day
# and month sorted) agrees at this Dice. Equal tokens score a median 0.75 at the default
# randomised response (one in 200,000 below 0.5), different ones a median 0.06 (none of 200,000
# above 0.43). Unlike the partial level, whose u is that of any same-year date of the same month
# or day (about one random same-year pair in eight), only a swap gets here (about one in 1,000).
_SWAP_DICE = 0.5
SWAP_LABEL = "day/month swapped, year equal"
_ROUGH = {DateQuality.DEFAULT_JAN_1.value, DateQuality.YEAR_ONLY.value}

# The hardening at which the Dice thresholds above and the kinds' default levels were chosen
# (the default schema of format 3). A schema with other settings gets them moved to where the
# same plain filters would score under its settings (`follow_hardening`): more randomised
# response lowers equal values' Dice, more diffusion pulls every Dice towards one half, so
# fixed thresholds would push near-equal values into lower levels or unrelated ones into
# "partial agreement".
REFERENCE_FLIP = 0.02
REFERENCE_DIFFUSION = 3  # name fields; no other kind is diffused


def expected_dice(plain: np.ndarray | float, fill: float, mixing: int,
                  flip: float) -> np.ndarray:
    """Expected Dice of two hardened filters whose plain Bloom filters are each a fraction
    `fill` full and have Dice `plain`, when each hardened bit is the XOR of `mixing` plain bits
    (diffusion; 1 = none) and then flipped with probability `flip`.

    Bits are taken as independent. With s = E(-1)^bit: one bit has s = (1-2p)(1-2f)^k, a pair
    of bits s = (1-2p)^2 (1-4(f-c))^k where c = plain * fill is the chance both plain bits are
    set, and Dice = P(both set) / P(one set) = (1 - 2 s_1 + s_2) / (2 (1 - s_1)).
    """
    c = np.asarray(plain, dtype=np.float64) * fill
    s1 = (1 - 2 * flip) * (1 - 2 * fill) ** mixing
    s2 = (1 - 2 * flip) ** 2 * (1 - 4 * (fill - c)) ** mixing
    return np.asarray((1 - 2 * s1 + s2) / (2 * (1 - s1)))


def plain_fill(observed: float, mixing: int, flip: float) -> float:
    """The plain filters' fill from the hardened filters' (the inverse of one bit's chance)."""
    x = 1 - 2 * (observed - flip) / (1 - 2 * flip)  # = (1 - 2 fill) ** mixing
    return float((1 - min(max(x, 1e-9), 1.0) ** (1 / mixing)) / 2)


def follow_hardening(thresholds: tuple[float, ...], observed_fill: float, mixing: int,
                     flip: float, reference_mixing: int) -> tuple[float, ...]:
    """Dice thresholds chosen at the reference hardening, moved to a schema's: each threshold
    is read as the plain Dice that scores it at the reference settings, and replaced by what
    that plain Dice scores at the schema's (the identity at the reference settings)."""
    if mixing == reference_mixing and flip == REFERENCE_FLIP:
        return thresholds
    fill = plain_fill(observed_fill, mixing, flip)
    # Plain Dice from chance (unrelated values share about `fill` of their bits) to equality:
    # both curves rise there (below chance, an even `mixing` would not be monotone), and a
    # threshold below chance at the reference stays at chance.
    grid = np.linspace(fill, 1.0, 2001)
    ref = expected_dice(grid, fill, reference_mixing, REFERENCE_FLIP)
    now = expected_dice(grid, fill, mixing, flip)
    return tuple(round(float(np.interp(t, ref, now)), 4) for t in thresholds)


def linkage_fill(a: EncodedSet, b: EncodedSet, name: str) -> float:
    """Share of set bits of a column over the present filters of both sides."""
    if a.linkage_fill is not None:  # a part of a linkage: the whole linkage's share
        return a.linkage_fill[name]
    ones, n = 0, 0
    for s in (a, b):
        f = s.fields[name]
        ones += int(f.ones[f.present].sum())
        n += int(f.present.sum()) * f.words.shape[1] * 64
    return ones / n if n else 0.5


def field_levels(a: EncodedSet, b: EncodedSet, spec: FieldSpec,
                 thresholds: tuple[float, ...] | None = None,
                 column: str | None = None) -> tuple[float, ...]:
    """The Dice thresholds used for one field (its levels, or `thresholds` on `column`, e.g.
    the year filter of a date) under the schema's hardening. Levels written in the schema file
    are the user's own for that schema and are used as written."""
    if thresholds is None:
        if spec.levels is not None:
            return spec.levels
        thresholds = spec.dice_levels
    hardening = a.info.schema.hardening
    named = spec.kind is FieldKind.NAME
    mixing = max(1, hardening.diffusion) if named else 1
    ref_mixing = REFERENCE_DIFFUSION if named else 1
    return follow_hardening(thresholds, linkage_fill(a, b, column or spec.name), mixing,
                            hardening.flip_probability, ref_mixing)


@dataclass(frozen=True)
class Comparison:
    field: str
    labels: tuple[str, ...]  # one per level, level 0 = "null"
    top: int  # the level meaning "agrees exactly" (frequency adjustment applies there)


def comparisons(schema: EncodingSchema) -> list[Comparison]:
    out: list[Comparison] = []
    for f in schema.fields:
        bands = [f"dice>={t:g}" for t in f.dice_levels] + ["else"]
        if f.kind is FieldKind.DATE:
            year = ["year equal", "year +/-1", "year differs"]
            age = [f"age year +/-{t:g}" for t in _AGE_YEAR_LEVELS] + ["age year differs"]
            partial = f"dice>={_PARTIAL_DICE:g}, year equal"
            out.append(Comparison(f.name, ("null", *bands, *year, *age, partial, SWAP_LABEL), 1))
        else:
            out.append(Comparison(f.name, ("null", *bands), 1))
    return out


def _bands(d: np.ndarray, thresholds: tuple[float, ...]) -> np.ndarray:
    # thresholds best first -> level 1 for >= thresholds[0], ..., len+1 for below all
    lvl = np.full(len(d), len(thresholds) + 1, dtype=np.int8)
    for i, t in reversed(list(enumerate(thresholds))):
        lvl[d >= t - 1e-6] = i + 1
    return lvl


def _present(a: EncodedSet, b: EncodedSet, name: str, ia: np.ndarray,
             ib: np.ndarray) -> np.ndarray:
    return a.fields[name].present[ia] & b.fields[name].present[ib]


def _name_dices(a: EncodedSet, b: EncodedSet, specs: list[FieldSpec], ia: np.ndarray,
                ib: np.ndarray) -> dict[str, np.ndarray]:
    """Dice per name field, comparing given with family name where that fits better (swaps)."""
    out = {s.name: dice(a.fields[s.name], b.fields[s.name], ia, ib) for s in specs}
    by_domain: dict[str, list[FieldSpec]] = {}
    for s in specs:
        by_domain.setdefault(s.hash_domain, []).append(s)
    for group in by_domain.values():
        if len(group) < 2:
            continue
        f1, f2 = group[0].name, group[1].name
        x12 = dice(a.fields[f1], b.fields[f2], ia, ib)
        x21 = dice(a.fields[f2], b.fields[f1], ia, ib)
        swapped = (x12 + x21) > (out[f1] + out[f2]) + 0.2
        out[f1] = np.where(swapped, x12, out[f1])
        out[f2] = np.where(swapped, x21, out[f2])
    return out


def comparison_levels(a: EncodedSet, b: EncodedSet, ia: np.ndarray,
                      ib: np.ndarray) -> np.ndarray:
    """(pairs, fields) int8 matrix of levels, fields in schema order."""
    schema = a.info.schema
    names = [f for f in schema.fields if f.kind is FieldKind.NAME]
    name_d = _name_dices(a, b, names, ia, ib)
    gamma = np.zeros((len(ia), len(schema.fields)), dtype=np.int8)
    for j, f in enumerate(schema.fields):
        present = _present(a, b, f.name, ia, ib)
        d = name_d[f.name] if f.name in name_d else dice(a.fields[f.name], b.fields[f.name],
                                                         ia, ib)
        lvl = _bands(d, field_levels(a, b, f))
        if f.kind is FieldKind.DATE:
            lvl = _date_levels(a, b, f, ia, ib, lvl)
            unknown = _quality_in(a, b, f.name, ia, ib, {DateQuality.UNKNOWN.value})
            present = present & ~unknown
            gamma[:, j] = np.where(present, lvl, 0)
            _age_levels(a, b, f, ia, ib, gamma[:, j])
            continue
        gamma[:, j] = np.where(present, lvl, 0)
    return gamma


def _age_levels(a: EncodedSet, b: EncodedSet, f: FieldSpec, ia: np.ndarray, ib: np.ndarray,
                out: np.ndarray) -> None:
    """Where the birth date says nothing, compare birth years estimated from reported ages."""
    if a.birth_years is None or b.birth_years is None:
        return
    diff = np.abs(a.birth_years[ia] - b.birth_years[ib])
    use = (out == 0) & ~np.isnan(diff)
    if not use.any():
        return
    base = 1 + len(f.dice_levels) + 1 + 3  # null, bands, else, three year levels
    lvl = np.full(int(use.sum()), base + len(_AGE_YEAR_LEVELS), dtype=np.int8)
    d = diff[use]
    for i, t in reversed(list(enumerate(_AGE_YEAR_LEVELS))):
        lvl[d <= t] = base + i
    out[use] = lvl


def _quality_in(a: EncodedSet, b: EncodedSet, name: str, ia: np.ndarray, ib: np.ndarray,
                qualities: set[str]) -> np.ndarray:
    """Pairs where either date's quality is one of `qualities`. Tested per record, then indexed:
    comparing the string codes per pair costs seconds at tens of millions of pairs."""
    wanted = list(qualities)
    return np.isin(a.quality[name], wanted)[ia] | np.isin(b.quality[name], wanted)[ib]


def _date_levels(a: EncodedSet, b: EncodedSet, f: FieldSpec, ia: np.ndarray, ib: np.ndarray,
                 full: np.ndarray) -> np.ndarray:
    """The rule for defaulted (1 January) and year-only dates: compare only their years."""
    rough = _quality_in(a, b, f.name, ia, ib, _ROUGH)
    yname = f.name + YEAR_SUFFIX
    base = len(f.dice_levels) + 1  # last full-date level index
    out = full.copy()
    # Full dates in the lowest band that share their year: the same month, the same day, or day
    # and month swapped (the unordered month/day token). Among random pairs this is rare, among
    # re-registrations of one person it is mostly a swap; it gets its own level (the last).
    partial = ~rough & (full == len(f.dice_levels))
    year_levels = field_levels(a, b, f, _YEAR_LEVELS, yname)
    if partial.any():
        idx = np.flatnonzero(partial)
        (partial_dice,) = field_levels(a, b, f, (_PARTIAL_DICE,))
        close = dice(a.fields[f.name], b.fields[f.name], ia[idx], ib[idx]) >= partial_dice
        idx = idx[close]
        same_year = dice(a.fields[yname], b.fields[yname], ia[idx], ib[idx]) >= \
            year_levels[0] - 1e-6
        idx = idx[same_year]
        out[idx] = base + 3 + len(_AGE_YEAR_LEVELS) + 1 + 1
    # Full dates that are not equal but whose year with day and month sorted is: day and month
    # swapped (a swap shares three of the date filter's eight tokens, as a date of the same month
    # does, so it lands in a band below the top one, mostly the lowest).
    swap = np.flatnonzero(~rough & (full >= 2) & (full <= len(f.dice_levels)))
    if len(swap):
        uname = f.name + UNORDERED_SUFFIX
        (swap_dice,) = field_levels(a, b, f, (_SWAP_DICE,), uname)
        hit = dice(a.fields[uname], b.fields[uname], ia[swap], ib[swap]) >= swap_dice - 1e-6
        out[swap[hit]] = base + 3 + len(_AGE_YEAR_LEVELS) + 1 + 2
    if rough.any():
        yd = dice(a.fields[yname], b.fields[yname], ia[rough], ib[rough])
        out[rough] = _bands(yd, year_levels) + base
    return out
