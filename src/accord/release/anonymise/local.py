"""Local (cell) suppression of the outliers left at the chosen generalisation.

After the search, the records in classes that fail k (or l) are the outliers. Rather than
blanking whole records, few quasi-identifier cells are set to ``*`` so that the outliers form
classes of their own that pass, greedily as sdcMicro's ``localSuppression`` does: the pattern of
starred columns that lets the most outlier records pass is applied first (ties: the one leaving
the fewest classes, then the later, less important, columns of ``--qi``); see
``local_suppression`` for the order in which patterns are tried.

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

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import combinations

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
from accord.release.anonymise.nodes import people_per_class, recorded_diverse

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


def _passing(problem: Problem, gen: list[CodeArray], cards: list[int], weight: IntArray,
             sens: npt.NDArray[np.int32], model: PrivacyModel, mask: list[bool]
             ) -> tuple[BoolArray, int]:
    """Which rows are in a passing class when the columns in ``mask`` are starred (k in people
    when the problem knows them, l over recorded values)."""
    cols = [g for g, m in zip(gen, mask, strict=True) if not m]
    cc = [c for c, m in zip(cards, mask, strict=True) if not m]
    if not cols:
        cols, cc = [np.zeros(len(weight), dtype=np.int32)], [1]
    key, size = _dense_codes(cols, cc)
    cls, n_cls = _group(key, size)

    def pairs(s: int) -> tuple[IntArray, IntArray, IntArray]:
        card = problem.sens_cardinality[s]
        pk = cls * card + sens[:, s]
        upk, inv = np.unique(pk, return_inverse=True)
        cnt = np.bincount(inv.reshape(-1), weights=weight, minlength=len(upk)).astype(np.int64)
        return upk // card, upk % card, cnt

    if problem.people:
        ok = people_per_class(*pairs(sens.shape[1] - 1), n_cls) >= model.k
    else:
        ok = np.bincount(cls, weights=weight, minlength=n_cls) >= model.k
    if model.l > 1:
        for s in range(problem.n_sensitive):
            ok &= recorded_diverse(problem, s, *pairs(s), n_cls, model)
    return np.asarray(ok[cls]), n_cls


class _Outliers:
    """The outlier tuples not yet fixed, with their generalised codes at the chosen node."""

    def __init__(self, problem: Problem, levels: tuple[int, ...], model: PrivacyModel,
                 tuple_fails: BoolArray) -> None:
        self.problem, self.model = problem, model
        self.idx = np.flatnonzero(tuple_fails)
        self.gen = [problem.hierarchies[c].maps[h][problem.base_columns[c][self.idx]]
                    for c, h in enumerate(levels)]
        self.cards = [problem.hierarchies[c].cardinality(h) for c, h in enumerate(levels)]
        self.weight, self.sens = problem.weight[self.idx], problem.sens[self.idx]

    def trial(self, mask: list[bool]) -> tuple[BoolArray, tuple[float, int]]:
        """Who passes with the columns in ``mask`` starred, and (records passing, -classes)."""
        ok, n_cls = _passing(self.problem, self.gen, self.cards, self.weight, self.sens,
                             self.model, mask)
        return ok, (float(self.weight[ok].sum()), -n_cls)

    def fix(self, cells: BoolArray, columns: Sequence[int], ok: BoolArray) -> None:
        """Star ``columns`` of the passing outliers and drop them from the set."""
        cells[np.ix_(self.idx[ok], np.asarray(columns, dtype=np.int64))] = True
        keep = ~ok
        self.idx, self.weight, self.sens = self.idx[keep], self.weight[keep], self.sens[keep]
        self.gen = [g[keep] for g in self.gen]


def local_suppression(problem: Problem, levels: tuple[int, ...], tuple_fails: BoolArray,
                      model: PrivacyModel) -> Suppression:
    """Greedy cell suppression of the failing tuples (see the module docstring).

    First patterns of one, then two starred columns, each tried on every outlier left, the one
    fixing the most records applied first (exhaustive over those 8 + 28 patterns for 8 columns);
    what is left then stars one more column at a time, cumulatively, until everything passes or
    every cell is starred.
    """
    q, m = len(levels), len(problem.weight)
    cells = np.zeros((m, q), dtype=bool)
    top = [enc.cardinality(h) == 1 for enc, h in zip(problem.hierarchies, levels, strict=True)]
    free = [c for c in range(q) if not top[c]]
    out = _Outliers(problem, levels, model, tuple_fails)
    for size in (1, 2):
        while len(out.idx):
            best: tuple[tuple[float, int, tuple[int, ...]], BoolArray] | None = None
            for pattern in combinations(free, size):
                mask = [top[c] or c in pattern for c in range(q)]
                ok, score = out.trial(mask)
                # Ties go to the less important (later) columns of --qi.
                key = (*score, tuple(sorted(pattern, reverse=True)))
                if score[0] > 0 and (best is None or key > best[0]):
                    best = (key, ok)
            if best is None:
                break
            out.fix(cells, best[0][2], best[1])
    # Columns already '*' for everyone cost nothing and are the same for every record.
    mask = list(top)
    while len(out.idx) and not all(mask):
        choice: tuple[tuple[float, int, int], BoolArray] | None = None
        for c in free:
            if mask[c]:
                continue
            ok, score = out.trial([*mask[:c], True, *mask[c + 1:]])
            if choice is None or (*score, c) > choice[0]:
                choice = ((*score, c), ok)
        assert choice is not None
        mask[choice[0][2]] = True
        out.fix(cells, [c for c in free if mask[c]], choice[1])
    cells[out.idx] = [not t for t in top]
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
