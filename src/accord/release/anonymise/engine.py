"""The data side of the search: distinct tuples, node evaluation by roll-up, information loss.

The table is reduced once to its distinct (quasi-identifier, sensitive) tuples with counts, as
ARX does. A lattice node is evaluated from a *snapshot* of any finer node already evaluated (its
equivalence classes: generalised codes, sizes, sensitive-value counts): generalising a finer
node's classes and grouping them gives the coarser node's classes, so the cost is the number of
classes of the source, not the number of tuples (ARX's roll-up). The distinct tuples are the
snapshot of the bottom node, so every node can be reached.

The information loss of a node is computed the same way whatever the source: the loss with
nothing suppressed (a sum of per-column totals) plus, per column, the suppressed records per
generalised value times the extra loss of raising that value to the top. Both metrics' extra loss
depends only on the generalised value (see ``Problem.delta``), and the suppressed counts are
exact integers, so a node's loss is bit-identical however it was reached.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Literal, cast

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from accord.release.anonymise.hierarchy import EncodedHierarchy, Hierarchy, encode_column
from accord.store.groups import EMBEDDED, GroupEngine

IntArray = npt.NDArray[np.int64]
CodeArray = npt.NDArray[np.int32]
FloatArray = npt.NDArray[np.float64]
LKind = Literal["distinct", "entropy"]
Metric = Literal["entropy", "loss"]

# Above this many possible keys a dense bincount would waste memory; fall back to sorting.
_DENSE_LIMIT = 1 << 24
_PAIR_MEMORY = 1 << 30
MULTI_SEP = "|"


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
    """A table reduced to distinct tuples, ready for lattice search.

    ``sensitive`` names the sensitive *attributes* the model checks: a plain column, or one flag
    per code of a multi-valued column (``<column>__<code>``, values 1 / 0 / empty).
    ``sens_missing`` is the code of "not recorded" of each attribute (-1 if it never occurs):
    l counts recorded values only. With ``people``, ``sens`` has one more column after the
    attributes: the person of each tuple (0 = a person with one record, p > 0 = one of the
    people with several records), so that k can count people, not records.
    """

    qi: tuple[str, ...]
    sensitive: tuple[str, ...]
    hierarchies: tuple[EncodedHierarchy, ...]
    base: CodeArray  # (m, q) base codes of each distinct tuple
    sens: CodeArray  # (m, s) codes of the sensitive attributes
    sens_cardinality: tuple[int, ...]
    weight: IntArray  # (m,) number of records per tuple
    row_tuple: IntArray  # (n,) tuple of each input row
    entropy_cell: tuple[tuple[FloatArray, ...], ...]  # [c][h][base code]
    intensity_cell: tuple[tuple[FloatArray, ...], ...]
    sens_missing: tuple[int, ...] = ()
    people: bool = False

    @property
    def n_sensitive(self) -> int:
        return len(self.sensitive)

    @cached_property
    def n_people(self) -> int:
        return people_count(self.sens[:, -1], self.weight) if self.people else self.n

    @cached_property
    def base_columns(self) -> tuple[CodeArray, ...]:
        # Contiguous copies: column access in the hot loop is then a plain gather.
        return tuple(np.ascontiguousarray(self.base[:, c]) for c in range(self.base.shape[1]))

    @cached_property
    def n(self) -> int:
        return int(self.weight.sum())

    @property
    def heights(self) -> tuple[int, ...]:
        return tuple(h.height for h in self.hierarchies)

    @cached_property
    def lift(self) -> tuple[dict[tuple[int, int], CodeArray], ...]:
        """Per column, (from level, to level) -> code map between two levels of the hierarchy."""
        out = []
        for enc in self.hierarchies:
            maps: dict[tuple[int, int], CodeArray] = {}
            for f in range(enc.height):
                for h in range(f, enc.height):
                    arr = np.zeros(enc.cardinality(f), dtype=np.int32)
                    arr[enc.maps[f]] = enc.maps[h]
                    maps[(f, h)] = arr
            out.append(maps)
        return tuple(out)

    @cached_property
    def _paired(self) -> dict[tuple[int, int, int, int], CodeArray]:
        return {}  # filled lazily by ``base_key_columns``; bounded by ``_PAIR_MEMORY``

    def base_key_columns(self, levels: Sequence[int]
                         ) -> tuple[list[npt.NDArray[np.integer]], list[int]]:
        """The tuples' generalised codes at a node, two columns combined into one code.

        Evaluating a node from the tuples is the search's main cost; with the combined codes
        of each pair of columns cached, building a node's key takes half the passes and no
        gathers (the cache holds at most ``_PAIR_MEMORY`` bytes).
        """
        cols: list[npt.NDArray[np.integer]] = []
        cards: list[int] = []
        m = len(self.weight)
        for a in range(0, len(levels), 2):
            if a + 1 == len(levels):
                enc, h = self.hierarchies[a], levels[a]
                cols.append(self._gen(a, h))
                cards.append(enc.cardinality(h))
                continue
            b = a + 1
            ha, hb = levels[a], levels[b]
            ca, cb = self.hierarchies[a].cardinality(ha), self.hierarchies[b].cardinality(hb)
            key = (a, ha, b, hb)
            hit = self._paired.get(key)
            if hit is None:
                combined = self._gen(a, ha).astype(np.int64) * cb + self._gen(b, hb)
                if ca * cb < (1 << 31) and (len(self._paired) + 1) * m * 4 <= _PAIR_MEMORY:
                    hit = combined.astype(np.int32)
                    self._paired[key] = hit
                else:
                    cols.append(combined)
                    cards.append(ca * cb)
                    continue
            cols.append(hit)
            cards.append(ca * cb)
        return cols, cards

    def _gen(self, c: int, h: int) -> CodeArray:
        return self.hierarchies[c].maps[h][self.base_columns[c]]

    def delta(self, metric: Metric) -> tuple[tuple[FloatArray, ...], ...]:
        """Per column and level, the extra loss of suppressing one record, per generalised value.

        Non-uniform entropy: top - level h = log2(freq(top value) / freq(value at h)); intensity:
        the difference of the leaf counts. Both depend only on the value at h, and both shrink as h
        grows (which the search's inherited bounds rely on).
        """
        return self._delta_entropy if metric == "entropy" else self._delta_intensity

    def _make_delta(self, cells: tuple[tuple[FloatArray, ...], ...]
                    ) -> tuple[tuple[FloatArray, ...], ...]:
        out = []
        for enc, per_level in zip(self.hierarchies, cells, strict=True):
            top = per_level[-1]
            levels = []
            for h in range(enc.height):
                d = np.zeros(enc.cardinality(h))
                d[enc.maps[h]] = np.maximum(top - per_level[h], 0.0)
                levels.append(d)
            out.append(tuple(levels))
        return tuple(out)

    def min_delta(self, metric: Metric) -> tuple[dict[tuple[int, int], FloatArray], ...]:
        """Per column, (f, h) -> for each value at level h, the least extra loss of suppressing
        a record at level f below it (a lower bound for any record under that value)."""
        return self._min_delta_entropy if metric == "entropy" else self._min_delta_intensity

    def _make_min_delta(self, metric: Metric) -> tuple[dict[tuple[int, int], FloatArray], ...]:
        out = []
        for enc, lift, per_level in zip(self.hierarchies, self.lift, self.delta(metric),
                                        strict=True):
            maps: dict[tuple[int, int], FloatArray] = {}
            for (f, h), up in lift.items():
                arr = np.full(enc.cardinality(h), np.inf)
                np.minimum.at(arr, up, per_level[f])
                maps[(f, h)] = arr
            out.append(maps)
        return tuple(out)

    @cached_property
    def _min_delta_entropy(self) -> tuple[dict[tuple[int, int], FloatArray], ...]:
        return self._make_min_delta("entropy")

    @cached_property
    def _min_delta_intensity(self) -> tuple[dict[tuple[int, int], FloatArray], ...]:
        return self._make_min_delta("loss")

    @cached_property
    def _delta_entropy(self) -> tuple[tuple[FloatArray, ...], ...]:
        return self._make_delta(self.entropy_cell)

    @cached_property
    def _delta_intensity(self) -> tuple[tuple[FloatArray, ...], ...]:
        return self._make_delta(self.intensity_cell)

    def level_totals(self, metric: Metric) -> list[FloatArray]:
        """Per column, the loss of the whole column at each level with nothing suppressed."""
        cells = self.entropy_cell if metric == "entropy" else self.intensity_cell
        out = []
        for c, per_level in enumerate(cells):
            counts = np.bincount(self.base[:, c], weights=self.weight,
                                 minlength=len(per_level[0]))
            out.append(np.array([float((counts * lv).sum()) for lv in per_level]))
        return out


def _dense_codes(columns: Sequence[npt.NDArray[np.integer]], cards: Sequence[int]
                 ) -> tuple[IntArray, int]:
    """Combine code columns into one dense int64 key (0..K-1); returns (key, K)."""
    key = np.zeros(len(columns[0]) if columns else 0, dtype=np.int64)
    size = 1
    for col, card in zip(columns, cards, strict=True):
        if card == 1:
            continue  # a fully generalised column adds nothing to the key
        if size * card >= (1 << 62):
            uniq, inv = np.unique(key, return_inverse=True)
            key, size = inv.astype(np.int64).reshape(-1), len(uniq)
        key *= card
        key += col
        size *= card
    return key, size


def _group(key: IntArray, size: int) -> tuple[IntArray, int]:
    """Dense group id (0..G-1) of each key; returns (ids, G)."""
    if size <= _DENSE_LIMIT and size <= 8 * max(len(key), 1):
        present = np.zeros(size, dtype=bool)
        present[key] = True
        dense = np.cumsum(present, dtype=np.int64) - 1
        return dense[key], int(dense[-1] + 1) if size else 0
    uniq, inv = np.unique(key, return_inverse=True)
    return inv.astype(np.int64).reshape(-1), len(uniq)


def people_count(person: npt.NDArray[np.integer], weight: IntArray) -> int:
    """Distinct people among tuples: every record of code 0 is a person of its own, each other
    code is one person however many records it has."""
    single = person == 0
    return int(weight[single].sum()) + len(np.unique(person[~single]))


def person_codes(people: Sequence[str | None]) -> tuple[CodeArray, int]:
    """Per record, 0 for a person with one record (or no person id), else a dense id 1..P of the
    people with several records; returns (codes, P + 1). Only repeated people need an id, so
    the distinct tuples stay few where most people have one record."""
    arr = pa.array(people, type=pa.string())
    enc = pc.dictionary_encode(pc.fill_null(arr, ""))
    idx = enc.indices.to_numpy(zero_copy_only=False).astype(np.int64)
    counts = np.bincount(idx, minlength=len(enc.dictionary))
    blank = [i for i, v in enumerate(enc.dictionary.to_pylist()) if v == ""]
    counts[blank] = 0  # a record without a person id is a person of its own
    repeated = counts >= 2
    dense = np.zeros(len(counts), dtype=np.int32)
    dense[repeated] = np.arange(1, int(repeated.sum()) + 1, dtype=np.int32)
    return dense[idx], int(repeated.sum()) + 1


def _codes(column: pa.ChunkedArray | pa.Array) -> tuple[CodeArray, list[str]]:
    strings = pc.fill_null(pc.cast(column, pa.string()), "")
    enc = pc.dictionary_encode(strings)
    if isinstance(enc, pa.ChunkedArray):
        enc = enc.combine_chunks()
    return (enc.indices.to_numpy(zero_copy_only=False).astype(np.int32),
            [str(v) for v in enc.dictionary.to_pylist()])


def flag_attributes(column: pa.ChunkedArray | pa.Array, name: str
                    ) -> list[tuple[str, CodeArray, int]]:
    """A multi-valued column ('a|b' per record) as one sensitive attribute per code.

    Each flag is 1 (the record has the code), 0 (it has others) or empty (nothing recorded, code
    2). Flags with fewer than two *recorded* values in the whole table (a code nobody, or every
    recorded person, has) are left out: no generalisation can hide what the table as a whole
    shows (documented; drop the field if that is itself sensitive).
    """
    codes, dictionary = _codes(column)
    sets = [set(v.split(MULTI_SEP)) - {""} for v in dictionary]
    out = []
    for code in sorted(set().union(*sets) if sets else set()):
        per_entry = np.array([2 if not s else int(code in s) for s in sets], dtype=np.int32)
        flag = per_entry[codes]
        values = np.unique(flag)
        if len(values[values != 2]) > 1:
            out.append((f"{name}__{code}", flag, 3))
    return out


def build_problem(table: pa.Table, qi: Sequence[str], sensitive: Sequence[str],
                  hierarchies: dict[str, Hierarchy], multi_valued: Sequence[str] = (),
                  people: Sequence[str | None] | None = None,
                  weights: Mapping[str, float] | None = None,
                  groups: GroupEngine = EMBEDDED) -> Problem:
    """Encode the table and reduce it to distinct tuples.

    Columns of ``sensitive`` also named in ``multi_valued`` hold sets ('a|b') and are checked
    per flag (see ``flag_attributes``). A plain sensitive column recorded for no one is left
    out (a column with one recorded value is kept: it can only be released with l = 1). ``people``: the person of
    each record (linked across partners), so that k counts people. ``weights``: per
    quasi-identifier, a factor on its information loss (ARX's attribute weights; default 1), so
    the optimal node keeps the information of heavy columns first.
    """
    encs: list[EncodedHierarchy] = []
    cols: list[CodeArray] = []
    for name in qi:
        enc, codes = encode_column(hierarchies[name], table.column(name))
        encs.append(enc)
        cols.append(codes)
    sens_names: list[str] = []
    sens_cols: list[CodeArray] = []
    sens_cards: list[int] = []
    sens_missing: list[int] = []
    for name in sensitive:
        if name in multi_valued:
            for flag_name, flag, card in flag_attributes(table.column(name), name):
                sens_names.append(flag_name)
                sens_cols.append(flag)
                sens_cards.append(card)
                sens_missing.append(2)
        else:
            codes, dictionary = _codes(table.column(name))
            missing = dictionary.index("") if "" in dictionary else -1
            if len(dictionary) - (missing >= 0) == 0:
                continue  # nothing recorded for anyone: nothing a class could reveal
            sens_names.append(name)
            sens_cols.append(codes)
            sens_cards.append(max(len(dictionary), 1))
            sens_missing.append(missing)
    if people is not None:
        if len(people) != table.num_rows:
            raise ValueError("one person per record is needed")
        person, card = person_codes(people)
        sens_cols.append(person)
        sens_cards.append(card)
    cards = [e.cardinality(0) for e in encs] + sens_cards
    key, _ = _dense_codes(cols + sens_cols, cards)
    # The reduction to distinct tuples (records per tuple) is the engine's: the lattice search
    # then works on the tuples, which are few however many the records.
    g = groups.unique(key, first=True, inverse=True)
    first, inv, counts = cast(IntArray, g.first), cast(IntArray, g.inverse), g.counts
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
        w = float((weights or {}).get(qi[c], 1.0))
        ent.append(tuple(e * w for e in per_e))
        inten.append(tuple(i * w for i in per_i))
    return Problem(qi=tuple(qi), sensitive=tuple(sens_names), hierarchies=tuple(encs), base=base,
                   sens=sens, sens_cardinality=tuple(sens_cards), weight=weight,
                   row_tuple=inv.astype(np.int64).reshape(-1), entropy_cell=tuple(ent),
                   intensity_cell=tuple(inten), sens_missing=tuple(sens_missing),
                   people=people is not None)
