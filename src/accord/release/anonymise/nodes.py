"""Evaluating lattice nodes: roll-up from a finer node's classes, privacy verdict, loss.

A node is evaluated from a *snapshot* of any finer node already evaluated (its equivalence
classes: generalised codes, sizes, sensitive-value counts): generalising the finer node's classes
and grouping them gives the coarser node's classes, so the cost is the number of classes of the
source, not of the tuples (ARX's roll-up). The distinct tuples are the snapshot of the bottom
node, so every node can be reached.

Grouping during the search sorts one int64 key per source class (the mixed-radix code of the
generalised values, with the record count in the low digits) and reads the runs: a plain
``np.sort`` is several times faster than ``np.unique(return_inverse=True)``, and the search never
needs to know which source class went where. The final node is re-evaluated from the tuples with
the inverse, to know which records fail.

The loss of a node is the loss with nothing suppressed (a sum of per-column totals) plus, per
column, the suppressed records per generalised value times the extra loss of raising that value
to the top (``Problem.delta``). The suppressed counts are exact integers, so a node's loss is
bit-identical however it was reached.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from accord.release.anonymise.engine import (
    CodeArray,
    FloatArray,
    IntArray,
    LKind,
    Metric,
    PrivacyModel,
    Problem,
    _dense_codes,
    _group,
)

BoolArray = npt.NDArray[np.bool_]
Pairs = tuple[IntArray, CodeArray, IntArray]  # (class, sensitive value, records)
_INT64_LIMIT = 1 << 62


class Snapshot:
    """The equivalence classes of an evaluated node, enough to roll up to any coarser node.

    Classes are held either as explicit code columns, or as sorted mixed-radix keys decoded
    on demand (most snapshots are never used as a source, so most are never decoded).
    """

    def __init__(self, levels: tuple[int, ...], weight: IntArray, pairs: tuple[Pairs, ...],
                 codes: tuple[CodeArray, ...] | None = None,
                 keys: IntArray | None = None, cards: Sequence[int] = (),
                 complete: bool = True) -> None:
        self.levels, self.weight, self.pairs = levels, weight, pairs
        # False: the sensitive pairs were not built (the node failed on k alone); such a
        # snapshot gives the right verdict but cannot be a roll-up source.
        self.complete = complete
        self._codes, self._keys, self._cards = codes, keys, tuple(cards)

    @property
    def size(self) -> int:
        return len(self.weight)

    def codes_of(self, mask: BoolArray | None = None) -> tuple[CodeArray, ...]:
        """Per column, the code of each class (of the classes in ``mask``)."""
        if self._codes is not None:
            return self._codes if mask is None else tuple(c[mask] for c in self._codes)
        assert self._keys is not None
        keys = self._keys if mask is None else self._keys[mask]
        out: list[CodeArray] = []
        stride = 1
        for card in reversed(self._cards):
            if card == 1:
                out.append(np.zeros(len(keys), dtype=np.int32))
                continue
            out.append(((keys // stride) % card).astype(np.int32))
            stride *= card
        decoded = tuple(reversed(out))
        if mask is None:
            self._codes = decoded
        return decoded


def base_snapshot(problem: Problem) -> Snapshot:
    """The distinct tuples as the (not necessarily minimal) partition of the bottom node."""
    idx = np.arange(len(problem.weight), dtype=np.int64)
    pairs = tuple((idx, np.ascontiguousarray(problem.sens[:, s]), problem.weight)
                  for s in range(problem.sens.shape[1]))
    return Snapshot(levels=(0,) * len(problem.qi), weight=problem.weight, pairs=pairs,
                    codes=problem.base_columns)


def _generalise(problem: Problem, src: Snapshot, levels: Sequence[int]
                ) -> tuple[list[CodeArray], list[int]]:
    gen = [problem.lift[c][(f, h)][col] for c, (col, f, h) in
           enumerate(zip(src.codes_of(), src.levels, levels, strict=True))]
    cards = [enc.cardinality(h) for enc, h in zip(problem.hierarchies, levels, strict=True)]
    return gen, cards


def roll_up(problem: Problem, src: Snapshot, levels: Sequence[int]
            ) -> tuple[Snapshot, IntArray]:
    """Classes of the node ``levels`` (at or above ``src``); also the class of each src class."""
    gen, cards = _generalise(problem, src, levels)
    key, size = _dense_codes(gen, cards)
    cls, n_classes = _group(key, size)
    weight = np.bincount(cls, weights=src.weight, minlength=n_classes).astype(np.int64)
    codes = []
    for g in gen:
        out = np.empty(n_classes, dtype=np.int32)
        out[cls] = g  # every member of a class has the same code: any write wins
        codes.append(out)
    pairs = []
    for (p_cls, p_val, p_cnt), card in zip(src.pairs, problem.sens_cardinality, strict=True):
        pk = cls[p_cls] * card + p_val
        upk, inv = np.unique(pk, return_inverse=True)
        cnt = np.bincount(inv.reshape(-1), weights=p_cnt, minlength=len(upk)).astype(np.int64)
        pairs.append((upk // card, (upk % card).astype(np.int32), cnt))
    snap = Snapshot(levels=tuple(int(x) for x in levels), weight=weight, pairs=tuple(pairs),
                    codes=tuple(codes))
    return snap, cls


def _distinct(key: IntArray, count: IntArray, size: int) -> tuple[IntArray, IntArray]:
    """Distinct keys (sorted) and the summed counts of each: a bincount when the key space is
    small, else one sort of key*W + count."""
    if size <= 4 * max(len(key), 1):
        counts = np.bincount(key, weights=count, minlength=size)
        keys = np.flatnonzero(counts)
        return keys, counts[keys].astype(np.int64)
    return _runs(key, count)


def _runs(key: IntArray, count: IntArray) -> tuple[IntArray, IntArray]:
    """Distinct keys (sorted) and the summed counts of each, by one sort of key*W + count."""
    width = int(count.max(initial=0)) + 1
    packed = np.sort(key * width + count)
    k_sorted = packed // width
    c_sorted = packed - k_sorted * width
    start = np.empty(len(packed), dtype=bool)
    if len(packed):
        start[0] = True
        np.not_equal(k_sorted[1:], k_sorted[:-1], out=start[1:])
    starts = np.flatnonzero(start)
    return k_sorted[starts], np.add.reduceat(c_sorted, starts) if len(starts) else c_sorted[:0]


def roll_up_sorted(problem: Problem, src: Snapshot, levels: Sequence[int],
                   k_first: tuple[int, int] | None = None) -> Snapshot:
    """``roll_up`` without the inverse, by sorting (the search's fast path).

    ``k_first = (k, most records that may be suppressed)``: with sensitive attributes, group
    the classes alone first and stop there when k alone already fails more records than that
    (l can only fail more): the node is not anonymous, and the (class, value) pairs, the larger
    half of the work, are not built. Such a snapshot is marked incomplete.
    """
    if src.levels == (0,) * len(levels) and src.size == len(problem.weight):
        gen, cards = problem.base_key_columns(levels)  # from the tuples: cached pairs
    else:
        gen, cards = _generalise(problem, src, levels)  # type: ignore[assignment]
    size = 1
    for card in cards:
        size *= card if card > 1 else 1
    width = int(src.weight.max(initial=0)) + 1
    s_max = max(problem.sens_cardinality, default=1)
    if size * s_max * width >= _INT64_LIMIT:
        return roll_up(problem, src, levels)[0]  # the key would overflow: group by unique
    key, _ = _dense_codes(gen, cards)
    lv = tuple(int(x) for x in levels)
    if not src.pairs:
        keys, weight = _distinct(key, src.weight, size)
        return Snapshot(levels=lv, weight=weight, pairs=(), keys=keys,
                        cards=_cards(problem, lv))
    if k_first is not None:
        keys, weight = _distinct(key, src.weight, size)
        if int(weight[weight < k_first[0]].sum()) > k_first[1]:
            return Snapshot(levels=lv, weight=weight, pairs=(), keys=keys,
                            cards=_cards(problem, lv), complete=False)
    pairs = []
    keys = weight = np.zeros(0, dtype=np.int64)
    for n, ((p_cls, p_val, p_cnt), card) in enumerate(
            zip(src.pairs, problem.sens_cardinality, strict=True)):
        pk, cnt = _distinct(key[p_cls] * card + p_val, p_cnt, size * card)
        ck = pk // card
        start = np.empty(len(ck), dtype=bool)
        start[:1] = True
        np.not_equal(ck[1:], ck[:-1], out=start[1:])
        p_new = np.cumsum(start) - 1
        if n == 0:
            # Every class has at least one value of every attribute, so the classes (sorted
            # keys) are the same whichever attribute they are read from.
            starts = np.flatnonzero(start)
            keys, weight = ck[starts], np.add.reduceat(cnt, starts)
        pairs.append((p_new.astype(np.int64), (pk % card).astype(np.int32), cnt))
    return Snapshot(levels=lv, weight=weight, pairs=tuple(pairs), keys=keys,
                    cards=_cards(problem, lv))


def _cards(problem: Problem, levels: Sequence[int]) -> list[int]:
    return [enc.cardinality(h) for enc, h in zip(problem.hierarchies, levels, strict=True)]


def class_people(problem: Problem, snap: Snapshot) -> IntArray:
    """People per class: the records, unless the problem knows people (then every record of
    person code 0 counts, and each other person code once). An incomplete snapshot has no
    pairs; its record counts are an upper bound, enough for the verdict it was cut short on."""
    if not problem.people or not snap.pairs:
        return snap.weight
    p_cls, p_val, p_cnt = snap.pairs[-1]
    return people_per_class(p_cls, p_val, p_cnt, snap.size)


def people_per_class(p_cls: IntArray, p_val: npt.NDArray[np.integer], p_cnt: IntArray,
                     n_classes: int) -> IntArray:
    single = p_val == 0
    return (np.bincount(p_cls[single], weights=p_cnt[single], minlength=n_classes)
            + np.bincount(p_cls[~single], minlength=n_classes)).astype(np.int64)


def recorded_diverse(problem: Problem, s: int, p_cls: IntArray, p_val: npt.NDArray[np.integer],
                     p_cnt: IntArray, n_classes: int, model: PrivacyModel) -> BoolArray:
    """l-diversity of attribute ``s`` over its recorded values only: "not recorded" is not a
    value a class can be diverse in (a class of one recorded value and blanks is 1-diverse)."""
    rec = p_val != problem.sens_missing[s]
    return diverse(p_cls[rec], p_cnt[rec], n_classes, model.l, model.l_kind)


def failing(problem: Problem, snap: Snapshot, model: PrivacyModel) -> BoolArray:
    """Which classes violate k (people, or records) or l (recorded values)."""
    fails = class_people(problem, snap) < model.k
    if model.l > 1 and snap.pairs:
        for s in range(problem.n_sensitive):
            p_cls, p_val, p_cnt = snap.pairs[s]
            fails |= ~recorded_diverse(problem, s, p_cls, p_val, p_cnt, snap.size, model)
    return np.asarray(fails)


def diverse(p_cls: IntArray, p_cnt: IntArray, n_classes: int, l: int,  # noqa: E741
            kind: LKind) -> BoolArray:
    """Whether each class holds at least l distinct (or entropy-l) sensitive values."""
    if kind == "distinct":
        return np.asarray(np.bincount(p_cls, minlength=n_classes) >= l)
    totals = np.bincount(p_cls, weights=p_cnt, minlength=n_classes)
    p = p_cnt / totals[p_cls]
    entropy = np.bincount(p_cls, weights=-p * np.log(p), minlength=n_classes)
    return np.asarray(entropy >= np.log(l) - 1e-12)


@dataclass(frozen=True)
class NodeResult:
    levels: tuple[int, ...]
    anonymous: bool
    suppressed: int  # records in failing classes (suppressed, or cell-suppressed later)
    loss: float  # the optimised metric, suppressed records as fully generalised (inf if not
    # anonymous: the loss of a node that cannot be released is never needed)
    extra: float  # the part of ``loss`` due to suppression
    # Per column, suppressed records per generalised value (for bounds on the nodes below).
    suppressed_by_value: tuple[FloatArray, ...]
    class_fails: BoolArray  # per class of the snapshot
    classes: int


def judge(problem: Problem, snap: Snapshot, model: PrivacyModel, metric: Metric,
          level_totals: Sequence[FloatArray]) -> NodeResult:
    """Privacy model with record suppression, and information loss, of an evaluated node."""
    fails = failing(problem, snap, model)
    w = snap.weight[fails]
    suppressed = int(w.sum())
    anonymous = suppressed <= int(np.floor(model.max_suppression * problem.n + 1e-9))
    loss = float(sum(t[h] for t, h in zip(level_totals, snap.levels, strict=True)))
    extra = 0.0
    by_value: list[FloatArray] = []
    if suppressed and anonymous:
        delta = problem.delta(metric)
        wf = w.astype(np.float64)
        for c, (h, codes) in enumerate(zip(snap.levels, snap.codes_of(fails), strict=True)):
            per_value = np.bincount(codes, weights=wf, minlength=len(delta[c][h])).astype(
                np.float64)
            by_value.append(per_value)
            # Elementwise then sum, not `@`: BLAS threads thrash on a busy two-core machine.
            extra += float((per_value * delta[c][h]).sum())
    return NodeResult(levels=snap.levels, anonymous=anonymous, suppressed=suppressed,
                      loss=loss + extra if anonymous else float("inf"), extra=extra,
                      suppressed_by_value=tuple(by_value), class_fails=fails,
                      classes=int(snap.size - fails.sum()))


def class_of_tuples(problem: Problem, levels: Sequence[int]) -> tuple[IntArray, int]:
    """Equivalence class (dense id) of each distinct tuple at a node; returns (ids, classes)."""
    snap, cls = roll_up(problem, base_snapshot(problem), levels)
    return cls, snap.size


def evaluate(problem: Problem, levels: Sequence[int], model: PrivacyModel, metric: Metric,
             level_totals: Sequence[FloatArray]) -> tuple[NodeResult, BoolArray]:
    """Evaluate one node from the tuples; also returns which tuples fail."""
    snap, cls = roll_up(problem, base_snapshot(problem), levels)
    res = judge(problem, snap, model, metric, level_totals)
    return res, res.class_fails[cls]
