"""Local (cell) suppression of the outliers left at the chosen generalisation.

After the search, the records in classes that fail k (or l) are the outliers. Rather than
blanking whole records, the fewest quasi-identifier cells are set to ``*`` so that the outliers
form classes of their own that pass, the greedy way sdcMicro's ``localSuppression`` works: one
column at a time, the column whose suppression lets the most outlier records pass (ties: the one
leaving the fewest classes, then the later, least important, column of ``--qi``).

``*`` is read conservatively, as a value of its own: a record with ``*`` in a cell is grouped only
with records that have ``*`` in the same cells and the same other values (it does not "match
anything", which would let one record hide in several classes at once and is not what an
adversary who sees the file is bound to assume). Every released combination of values, ``*``
included, therefore occurs at least k times: the plain k-anonymity of the released file, which
the independent check measures. A record whose every cell ends up suppressed counts as a
suppressed record, exactly as under record suppression.

Written by hand: sdcMicro (R) has no Python counterpart, and its ``*``-matches-anything reading
is weaker than the guarantee wanted here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from accord.release.anonymise.engine import (
    CodeArray,
    IntArray,
    PrivacyModel,
    Problem,
    _dense_codes,
    _group,
)
from accord.release.anonymise.nodes import diverse

BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class Suppression:
    """Which cells of which distinct tuples are suppressed at the chosen node."""

    cells: BoolArray  # (m, q): cell c of tuple t is written as '*'
    records: BoolArray  # (m,): every cell suppressed (a suppressed record)

    def cell_count(self, weight: IntArray) -> int:
        return int((self.cells.sum(axis=1) * weight).sum())

    def touched(self, weight: IntArray) -> int:
        return int(weight[self.cells.any(axis=1)].sum())


def _passing(gen: list[CodeArray], cards: list[int], weight: IntArray,
             sens: npt.NDArray[np.int32], sens_cards: tuple[int, ...], model: PrivacyModel,
             mask: list[bool]) -> tuple[BoolArray, int]:
    """Which rows are in a passing class when the columns in ``mask`` are starred."""
    cols = [g for g, m in zip(gen, mask, strict=True) if not m]
    cc = [c for c, m in zip(cards, mask, strict=True) if not m]
    if not cols:
        cols, cc = [np.zeros(len(weight), dtype=np.int32)], [1]
    key, size = _dense_codes(cols, cc)
    cls, n_cls = _group(key, size)
    ok = np.bincount(cls, weights=weight, minlength=n_cls) >= model.k
    if model.l > 1:
        for s, card in enumerate(sens_cards):
            pk = cls * card + sens[:, s]
            upk, inv = np.unique(pk, return_inverse=True)
            cnt = np.bincount(inv.reshape(-1), weights=weight, minlength=len(upk))
            ok &= diverse(upk // card, cnt, n_cls, model.l, model.l_kind)
    return np.asarray(ok[cls]), n_cls


def local_suppression(problem: Problem, levels: tuple[int, ...], tuple_fails: BoolArray,
                      model: PrivacyModel) -> Suppression:
    """Greedy cell suppression of the failing tuples (see the module docstring)."""
    q, m = len(levels), len(problem.weight)
    cells = np.zeros((m, q), dtype=bool)
    idx = np.flatnonzero(tuple_fails)
    top = [enc.cardinality(h) == 1 for enc, h in zip(problem.hierarchies, levels, strict=True)]
    # Columns already '*' for everyone cost nothing and are the same for every record.
    mask = list(top)
    gen = [problem.hierarchies[c].maps[h][problem.base_columns[c][idx]]
           for c, h in enumerate(levels)]
    cards = [problem.hierarchies[c].cardinality(h) for c, h in enumerate(levels)]
    weight, sens = problem.weight[idx], problem.sens[idx]
    while len(idx) and not all(mask):
        best: tuple[float, int, int] | None = None
        best_ok: BoolArray | None = None
        for c in range(q):
            if mask[c]:
                continue
            trial = [*mask]
            trial[c] = True
            ok, n_cls = _passing(gen, cards, weight, sens, problem.sens_cardinality, model,
                                 trial)
            score = (float(weight[ok].sum()), -n_cls, c)
            if best is None or score > best:
                best, best_ok = score, ok
        assert best is not None and best_ok is not None
        mask[best[2]] = True
        suppressed_now = np.array([c for c in range(q) if mask[c] and not top[c]], dtype=np.int64)
        cells[np.ix_(idx, suppressed_now)] = True
        keep = ~best_ok
        idx, weight, sens = idx[keep], weight[keep], sens[keep]
        gen = [g[keep] for g in gen]
    cells[idx] = [not t for t in top]
    # A record starred in every column is a suppressed record, whichever step got it there.
    records = tuple_fails & cells[:, [not t for t in top]].all(axis=1)
    return Suppression(cells=cells, records=records)


def record_suppression(problem: Problem, levels: tuple[int, ...], tuple_fails: BoolArray
                       ) -> Suppression:
    """Every failing tuple suppressed whole (ARX's record suppression)."""
    top = np.array([enc.cardinality(h) == 1 for enc, h in
                    zip(problem.hierarchies, levels, strict=True)])
    cells = np.zeros((len(problem.weight), len(levels)), dtype=bool)
    cells[tuple_fails] = ~top
    return Suppression(cells=cells, records=tuple_fails.copy())
