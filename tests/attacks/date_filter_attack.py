"""What a curious hub learns from the birth-date filters of format 4 (issue 11).

The hub holds, per record, the date filter (eight tokens of the date), the year filter and,
since format 4, the unordered filter (the year with day and month sorted). Without the secret it
can still compare filters: grouping records whose filters are close (Dice) gives groups of equal
values, and counting bit-identical filters would give them at once if randomised response did
not make equal values' filters differ. This measures, on every pair of two record sets, which
pairs each attack groups, by how their birth dates relate (equal, day/month swapped, other).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from accord.link.encodings import EncodedSet, dice
from accord.protect.encoding.bloom import UNORDERED_SUFFIX
from accord.protect.encoding.normalise import parse_date

DATE_GROUP_DICE = 0.85  # the date filter's top level: equal dates
UNORDERED_GROUP_DICE = 0.5  # the unordered filter's swap level


@dataclass(frozen=True)
class DateGroupRates:
    pairs: dict[str, int]  # how many pairs of each relation (full dates on both sides)
    date_grouped: dict[str, float]  # share grouped by the date filter, per relation
    unordered_grouped: dict[str, float]  # share grouped by the unordered filter, per relation
    identical_unordered: float  # share of equal-date pairs with bit-identical unordered filters


def _relation(a: list[str], b: list[str]) -> np.ndarray:
    """(len(a), len(b)) codes: 0 other, 1 equal, 2 day/month swapped; -1 not two full dates."""
    def parts(values: list[str]) -> np.ndarray:
        out = np.zeros((len(values), 3), np.int64)
        for i, v in enumerate(values):
            d = parse_date(v)
            if d.year and d.month and d.day:
                out[i] = (d.year, d.month, d.day)
        return out

    pa_, pb = parts(a), parts(b)
    full = (pa_[:, None, 0] > 0) & (pb[None, :, 0] > 0)
    same_y = pa_[:, None, 0] == pb[None, :, 0]
    equal = same_y & (pa_[:, None, 1] == pb[None, :, 1]) & (pa_[:, None, 2] == pb[None, :, 2])
    swap = same_y & (pa_[:, None, 1] == pb[None, :, 2]) & (pa_[:, None, 2] == pb[None, :, 1]) \
        & ~equal
    rel = np.where(equal, 1, np.where(swap, 2, 0))
    return np.where(full, rel, -1)


def date_group_rates(a: EncodedSet, b: EncodedSet, dates_a: list[str], dates_b: list[str],
                     field: str = "dob") -> DateGroupRates:
    rel = _relation(dates_a, dates_b).ravel()
    ia = np.repeat(np.arange(len(a), dtype=np.int64), len(b))
    ib = np.tile(np.arange(len(b), dtype=np.int64), len(a))
    keep = rel >= 0
    ia, ib, rel = ia[keep], ib[keep], rel[keep]
    d_date = dice(a.fields[field], b.fields[field], ia, ib)
    uname = field + UNORDERED_SUFFIX
    d_unord = dice(a.fields[uname], b.fields[uname], ia, ib)
    names = {0: "other", 1: "equal", 2: "swapped"}
    pairs, by_date, by_unord = {}, {}, {}
    for code, name in names.items():
        sel = rel == code
        pairs[name] = int(sel.sum())
        by_date[name] = float((d_date[sel] >= DATE_GROUP_DICE).mean()) if sel.any() else 0.0
        by_unord[name] = float((d_unord[sel] >= UNORDERED_GROUP_DICE).mean()) if sel.any() \
            else 0.0
    eq = rel == 1
    wa, wb = a.fields[uname].words[ia[eq]], b.fields[uname].words[ib[eq]]
    identical = float((wa == wb).all(axis=1).mean()) if eq.any() else 0.0
    return DateGroupRates(pairs, by_date, by_unord, identical)
