"""The data side of the search: distinct tuples, node evaluation, information loss.

The table is reduced once to its distinct (quasi-identifier, sensitive) tuples with counts, as
ARX does; every lattice node is then evaluated on those tuples with vectorised numpy group-bys
(``bincount`` on a mixed-radix key when the key space is small, ``unique`` otherwise).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Literal

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from accord.release.anonymise.hierarchy import EncodedHierarchy, Hierarchy, encode_column

IntArray = npt.NDArray[np.int64]
LKind = Literal["distinct", "entropy"]
Metric = Literal["entropy", "loss"]

# Above this many possible keys a dense bincount would waste memory; fall back to sorting.
_DENSE_LIMIT = 1 << 24


@dataclass(frozen=True)
class PrivacyModel:
    """k-anonymity, optionally l-diversity of each sensitive column, with a suppression limit."""

    k: int
    l: int = 1  # noqa: E741 - the literature's name
    l_kind: LKind = "distinct"
    max_suppression: float = 0.0

    @property
    def monotone(self) -> bool:
        # With record suppression, k-anonymity and distinct l-diversity stay monotone under
        # generalisation (a merged class fails only if every part failed); entropy l-diversity
        # does not (a diverse class merged with a skewed one can fail), so no tagging for it.
        return self.l <= 1 or self.l_kind == "distinct"


@dataclass(frozen=True)
class Problem:
    """A table reduced to distinct tuples, ready for lattice search."""

    qi: tuple[str, ...]
    sensitive: tuple[str, ...]
    hierarchies: tuple[EncodedHierarchy, ...]
    base: npt.NDArray[np.int32]  # (m, q) base codes of each distinct tuple
    sens: npt.NDArray[np.int32]  # (m, s) codes of the sensitive values
    sens_cardinality: tuple[int, ...]
    weight: IntArray  # (m,) number of records per tuple
    row_tuple: IntArray  # (n,) tuple of each input row
    entropy_cell: tuple[tuple[npt.NDArray[np.float64], ...], ...]  # [c][h][base code]
    intensity_cell: tuple[tuple[npt.NDArray[np.float64], ...], ...]

    @cached_property
    def base_columns(self) -> tuple[npt.NDArray[np.int32], ...]:
        # Contiguous copies: column access in the hot loop is then a plain gather.
        return tuple(np.ascontiguousarray(self.base[:, c]) for c in range(self.base.shape[1]))

    @property
    def n(self) -> int:
        return int(self.weight.sum())

    @property
    def heights(self) -> tuple[int, ...]:
        return tuple(h.height for h in self.hierarchies)

    def level_totals(self, metric: Metric) -> list[npt.NDArray[np.float64]]:
        """Per column, the loss of the whole column at each level with nothing suppressed."""
        cells = self.entropy_cell if metric == "entropy" else self.intensity_cell
        out = []
        for c, per_level in enumerate(cells):
            counts = np.bincount(self.base[:, c], weights=self.weight,
                                 minlength=len(per_level[0]))
            out.append(np.array([float((counts * lv).sum()) for lv in per_level]))
        return out


def _dense_codes(columns: Sequence[npt.NDArray[np.int32]], cards: Sequence[int]
                 ) -> tuple[IntArray, int]:
    """Combine code columns into one dense int64 key (0..K-1); returns (key, K)."""
    key = np.zeros(len(columns[0]) if columns else 0, dtype=np.int64)
    size = 1
    for col, card in zip(columns, cards, strict=True):
        if size * card >= (1 << 62):
            uniq, inv = np.unique(key, return_inverse=True)
            key, size = inv.astype(np.int64).reshape(-1), len(uniq)
        key = key * card + col
        size *= card
    return key, size


def _codes(column: pa.ChunkedArray | pa.Array) -> tuple[npt.NDArray[np.int32], int]:
    strings = pc.fill_null(pc.cast(column, pa.string()), "")
    enc = pc.dictionary_encode(strings)
    if isinstance(enc, pa.ChunkedArray):
        enc = enc.combine_chunks()
    return enc.indices.to_numpy(zero_copy_only=False).astype(np.int32), max(len(enc.dictionary), 1)


def build_problem(table: pa.Table, qi: Sequence[str], sensitive: Sequence[str],
                  hierarchies: dict[str, Hierarchy]) -> Problem:
    """Encode the table and reduce it to distinct tuples."""
    encs: list[EncodedHierarchy] = []
    cols: list[npt.NDArray[np.int32]] = []
    for name in qi:
        enc, codes = encode_column(hierarchies[name], table.column(name))
        encs.append(enc)
        cols.append(codes)
    sens_cols, sens_cards = [], []
    for name in sensitive:
        codes, card = _codes(table.column(name))
        sens_cols.append(codes)
        sens_cards.append(card)
    cards = [e.cardinality(0) for e in encs] + sens_cards
    key, _ = _dense_codes(cols + sens_cols, cards)
    uniq, first, inv, counts = np.unique(key, return_index=True, return_inverse=True,
                                         return_counts=True)
    del uniq
    base = np.stack([c[first] for c in cols], axis=1).astype(np.int32) if cols else \
        np.zeros((len(first), 0), dtype=np.int32)
    sens = np.stack([c[first] for c in sens_cols], axis=1).astype(np.int32) if sens_cols else \
        np.zeros((len(first), 0), dtype=np.int32)
    weight = counts.astype(np.int64)
    ent, inten = [], []
    for c, enc in enumerate(encs):
        freq = np.bincount(base[:, c], weights=weight, minlength=enc.cardinality(0))
        per_e, per_i = [], []
        for h in range(enc.height):
            gfreq = np.bincount(enc.maps[h], weights=freq, minlength=enc.cardinality(h))
            with np.errstate(divide="ignore", invalid="ignore"):
                e = -np.log2(np.where(freq > 0, freq / gfreq[enc.maps[h]], 1.0))
            per_e.append(np.maximum(e, 0.0))
            denom = max(enc.domain_size - 1, 1)
            per_i.append((enc.leaves[h][enc.maps[h]] - 1) / denom)
        ent.append(tuple(per_e))
        inten.append(tuple(per_i))
    return Problem(qi=tuple(qi), sensitive=tuple(sensitive), hierarchies=tuple(encs), base=base,
                   sens=sens, sens_cardinality=tuple(sens_cards), weight=weight,
                   row_tuple=inv.astype(np.int64).reshape(-1), entropy_cell=tuple(ent),
                   intensity_cell=tuple(inten))


def class_of_tuples(problem: Problem, levels: Sequence[int]) -> tuple[IntArray, int]:
    """Equivalence class (dense id) of each distinct tuple at a node; returns (ids, classes)."""
    gen = [enc.maps[h][col] for col, enc, h in
           zip(problem.base_columns, problem.hierarchies, levels, strict=True)]
    cards = [enc.cardinality(h) for enc, h in zip(problem.hierarchies, levels, strict=True)]
    key, size = _dense_codes(gen, cards)
    if size <= _DENSE_LIMIT and size <= 8 * max(len(key), 1):
        present = np.zeros(size, dtype=bool)
        present[key] = True
        dense = np.cumsum(present) - 1
        return dense[key], int(present.sum())
    uniq, inv = np.unique(key, return_inverse=True)
    return inv.astype(np.int64).reshape(-1), len(uniq)


def failing_classes(problem: Problem, cls: IntArray, n_classes: int, model: PrivacyModel
                    ) -> tuple[npt.NDArray[np.bool_], IntArray]:
    """Which classes violate k (or l); returns (fails per class, size per class)."""
    sizes = np.bincount(cls, weights=problem.weight, minlength=n_classes).astype(np.int64)
    fails = sizes < model.k
    if model.l > 1:
        for s, card in enumerate(problem.sens_cardinality):
            fails |= ~diverse_classes(cls, n_classes, problem.sens[:, s], card, problem.weight,
                                      model.l, model.l_kind)
    return fails, sizes


def diverse_classes(cls: IntArray, n_classes: int, sens: npt.NDArray[np.int32], card: int,
                    weight: IntArray, l: int, kind: LKind) -> npt.NDArray[np.bool_]:  # noqa: E741
    """Whether each class holds at least l distinct (or entropy-l) sensitive values."""
    pair = cls * card + sens
    upair, inv = np.unique(pair, return_inverse=True)
    pair_counts = np.bincount(inv.reshape(-1), weights=weight, minlength=len(upair))
    pair_cls = upair // card
    if kind == "distinct":
        distinct = np.bincount(pair_cls, minlength=n_classes)
        return np.asarray(distinct >= l)
    totals = np.bincount(pair_cls, weights=pair_counts, minlength=n_classes)
    p = pair_counts / totals[pair_cls]
    entropy = np.bincount(pair_cls, weights=-p * np.log(p), minlength=n_classes)
    return np.asarray(entropy >= np.log(l) - 1e-12)


@dataclass(frozen=True)
class NodeResult:
    levels: tuple[int, ...]
    anonymous: bool
    suppressed: int  # records whose quasi-identifiers are suppressed
    loss: float  # value of the optimised metric (suppressed records count as fully generalised)
    tuple_suppressed: npt.NDArray[np.bool_]
    classes: int


def evaluate(problem: Problem, levels: Sequence[int], model: PrivacyModel, metric: Metric,
             level_totals: Sequence[npt.NDArray[np.float64]]) -> NodeResult:
    """Evaluate one lattice node: privacy model with suppression, and information loss."""
    cls, n_classes = class_of_tuples(problem, levels)
    fails, _ = failing_classes(problem, cls, n_classes, model)
    tup_fail = fails[cls]
    suppressed = int(problem.weight[tup_fail].sum())
    anonymous = suppressed <= int(np.floor(model.max_suppression * problem.n + 1e-9))
    loss = float(sum(t[h] for t, h in zip(level_totals, levels, strict=True)))
    if suppressed:
        cells = problem.entropy_cell if metric == "entropy" else problem.intensity_cell
        w = problem.weight[tup_fail]
        for c, h in enumerate(levels):
            b = problem.base_columns[c][tup_fail]
            top = len(cells[c]) - 1
            # Elementwise then sum, not `@`: BLAS threads thrash on a busy two-core machine.
            loss += float((w * (cells[c][top][b] - cells[c][h][b])).sum())
    return NodeResult(levels=tuple(int(x) for x in levels), anonymous=anonymous,
                      suppressed=suppressed, loss=loss, tuple_suppressed=tup_fail,
                      classes=int(n_classes - fails.sum()))
