"""Comparison vectors: for each candidate pair and field, a discrete agreement level.

Level 0 always means "no information" (a value missing on either side, or a date rule that says
the date cannot be trusted); it contributes nothing to the Fellegi-Sunter score. The other levels
are Dice bands, best first, then "disagree".
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from accord.link.encodings import EncodedSet, dice
from accord.protect.encoding.bloom import YEAR_SUFFIX
from accord.protect.encoding.normalise import DateQuality
from accord.protect.encoding.schema import EncodingSchema, FieldKind, FieldSpec

# Year levels used by the date rule (year-only or defaulted dates): equal, one apart, else.
_YEAR_LEVELS = (0.8, 0.3)
# Birth years from reported ages (EncodedSet.birth_years), used where the date is unknown: years
# apart at most this much (an age is reported in whole years at a registration date, so one
# person's estimates differ by up to about a year, more when the age itself is a guess).
_AGE_YEAR_LEVELS = (1.5, 7.0)
# Full dates of the same year in the lowest band whose Dice is at least this: they share the
# unordered month/day token as well (day and month swapped) or the month. Random same-year dates
# share only the year token and land below it in the default date filter (128 bits, 6 hashes
# per token: median Dice 0.38, 90th percentile 0.46; swapped dates: median 0.51, 5th percentile
# 0.45, measured at the default hardening).
_PARTIAL_DICE = 0.44
_ROUGH = {DateQuality.DEFAULT_JAN_1.value, DateQuality.YEAR_ONLY.value}


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
            out.append(Comparison(f.name, ("null", *bands, *year, *age, partial), 1))
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
        lvl = _bands(d, f.dice_levels)
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
    if partial.any():
        idx = np.flatnonzero(partial)
        close = dice(a.fields[f.name], b.fields[f.name], ia[idx], ib[idx]) >= _PARTIAL_DICE
        idx = idx[close]
        same_year = dice(a.fields[yname], b.fields[yname], ia[idx], ib[idx]) >= \
            _YEAR_LEVELS[0] - 1e-6
        idx = idx[same_year]
        out[idx] = base + 3 + len(_AGE_YEAR_LEVELS) + 1 + 1
    if rough.any():
        yd = dice(a.fields[yname], b.fields[yname], ia[rough], ib[rough])
        out[rough] = _bands(yd, _YEAR_LEVELS) + base
    return out
