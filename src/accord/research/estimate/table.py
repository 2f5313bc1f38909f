"""Capture-history tables: which combination of lists saw how many people.

A table over ``t`` lists has ``2**t - 1`` observable histories (the all-zero history, people on
no list, is the unknown we estimate). Histories absent from an input file have count zero.
Cells are held in a fixed order (by number of lists, then lexicographically) so that every
table over the same lists shares one design matrix.
"""

from __future__ import annotations

import csv
import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from accord.errors import AccordError
from accord.input_files import refuse_special_file


class CaptureTableError(AccordError):
    """A capture-history table is malformed (not 0/1, negative counts, too few lists)."""


MIN_LISTS = 2
MAX_COUNT = 10_000_000_000  # people with one history: more than live on Earth
MAX_LISTS = 12  # 4,095 cells; beyond this the two-way model space is not searchable here


def histories(n_lists: int) -> npt.NDArray[np.int8]:
    """All non-empty 0/1 histories over ``n_lists`` lists, ordered by size then lexicographically."""
    rows = [h for h in itertools.product((0, 1), repeat=n_lists) if any(h)]
    rows.sort(key=lambda h: (sum(h), tuple(-v for v in h)))
    return np.array(rows, dtype=np.int8).reshape(-1, n_lists)


@dataclass(frozen=True)
class CaptureTable:
    """Counts of people per capture history over named lists (all ``2**t - 1`` cells)."""

    lists: tuple[str, ...]
    cells: npt.NDArray[np.int8]  # (C, t) 0/1
    counts: npt.NDArray[np.int64]  # (C,)

    @property
    def n_lists(self) -> int:
        return len(self.lists)

    @property
    def observed(self) -> int:
        return int(self.counts.sum())

    def list_sizes(self) -> dict[str, int]:
        sizes = self.counts @ self.cells
        return {name: int(s) for name, s in zip(self.lists, sizes, strict=True)}

    def pair_overlaps(self) -> dict[tuple[str, str], int]:
        out: dict[tuple[str, str], int] = {}
        for i, j in itertools.combinations(range(self.n_lists), 2):
            both = self.cells[:, i] * self.cells[:, j]
            out[(self.lists[i], self.lists[j])] = int(self.counts @ both)
        return out

    def rows(self, include_zero: bool = False) -> list[dict[str, int]]:
        out = []
        for h, n in zip(self.cells, self.counts, strict=True):
            if n or include_zero:
                row = {name: int(v) for name, v in zip(self.lists, h, strict=True)}
                row["count"] = int(n)
                out.append(row)
        return out


def from_rows(
    lists: Sequence[str], patterns: npt.ArrayLike, counts: npt.ArrayLike
) -> CaptureTable:
    """Build a table from (possibly repeated, possibly partial) history rows and their counts."""
    names = tuple(str(n) for n in lists)
    pat = np.asarray(patterns, dtype=float)
    cnt = np.asarray(counts, dtype=float)
    t = len(names)
    if t < MIN_LISTS:
        raise CaptureTableError(
            f"a capture-history table needs at least {MIN_LISTS} lists; this one has {t}",
            hint="multiple systems estimation compares lists: supply 0/1 columns for 2 or more "
            "lists and a last column with the count",
        )
    if t > MAX_LISTS:
        raise CaptureTableError(
            f"{t} lists is more than the {MAX_LISTS} this estimator handles",
            hint="merge small or similar lists before estimating",
        )
    if len(set(names)) != t:
        raise CaptureTableError("list names must be distinct", hint="rename the repeated columns")
    if pat.ndim != 2 or pat.shape[1] != t or cnt.shape != (pat.shape[0],):
        raise CaptureTableError("patterns and counts do not have matching shapes")
    bad = ~np.isin(pat, (0.0, 1.0))
    if bad.any():
        r, c = np.argwhere(bad)[0]
        raise CaptureTableError(
            f"list column '{names[c]}' has a value other than 0 or 1 (data row {r + 1})",
            hint="each list column says whether the history includes that list: use 0 or 1",
        )
    if not np.all(np.isfinite(cnt)) or (cnt < 0).any() or (cnt != np.round(cnt)).any():
        r = int(np.argmax(~np.isfinite(cnt) | (cnt < 0) | (cnt != np.round(cnt))))
        raise CaptureTableError(
            f"the count column has a negative, fractional or missing value (data row {r + 1})",
            hint="the last column must be the number of people with that history (0 or more)",
        )
    if (cnt > MAX_COUNT).any():
        # Cast to int64 (1e300 wrapped to a negative count) it failed deep in the model fit.
        r = int(np.argmax(cnt > MAX_COUNT))
        raise CaptureTableError(
            f"the count column has a value above {MAX_COUNT:,} (data row {r + 1})",
            hint="the last column must be the number of people with that history",
        )
    if (pat.sum(axis=1) == 0).any() and cnt[pat.sum(axis=1) == 0].sum() > 0:
        raise CaptureTableError(
            "a row with no list marked has a positive count",
            hint="people on no list are what is estimated; remove the all-zero row",
        )
    cells = histories(t)
    weights = 1 << np.arange(t)[::-1]
    index = {int(code): k for k, code in enumerate(cells.astype(np.int64) @ weights)}
    out = np.zeros(len(cells), dtype=np.int64)
    for h, n in zip(pat.astype(np.int64) @ weights, cnt.astype(np.int64), strict=True):
        if int(h) in index:
            out[index[int(h)]] += n
    if out.sum() == 0:
        raise CaptureTableError("the table has no people in it", hint="check the count column")
    return CaptureTable(names, cells, out)


def read_counts_csv(path: Path) -> CaptureTable:
    """Read a CSV whose columns are 0/1 per list and whose last column is the count."""
    refuse_special_file(path, "table of counts")
    if not path.is_file():
        raise CaptureTableError(f"no such file: {path.name}", hint="check the path")
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.reader(fh)
            header = next(reader, None)
            data = [row for row in reader if any(cell.strip() for cell in row)]
    except (UnicodeDecodeError, csv.Error):
        raise CaptureTableError(
            f"{path.name} is not a readable UTF-8 CSV file",
            hint="save the table as CSV (UTF-8) with a header row",
        ) from None
    if not header:
        raise CaptureTableError(f"{path.name} is empty", hint="supply a header row and data")
    header = [h.strip() for h in header]
    if len(header) < MIN_LISTS + 1:
        raise CaptureTableError(
            f"{path.name} has {len(header) - 1} list column(s); at least {MIN_LISTS} are needed",
            hint="columns: one 0/1 column per list, then a last column with the count",
        )
    values = np.empty((len(data), len(header)), dtype=float)
    for r, row in enumerate(data):
        if len(row) != len(header):
            raise CaptureTableError(
                f"data row {r + 1} has {len(row)} fields, the header has {len(header)}",
                hint="every row needs one value per list and a count",
            )
        for c, cell in enumerate(row):
            try:
                values[r, c] = float(cell)
            except ValueError:
                what = "count" if c == len(header) - 1 else f"list column '{header[c]}'"
                raise CaptureTableError(
                    f"the {what} has a non-numeric value (data row {r + 1})",
                    hint="list columns hold 0 or 1 and the last column a whole number",
                ) from None
    table = from_rows(header[:-1], values[:, :-1], values[:, -1])
    _refuse_repeated_histories(values[:, :-1], path.name)
    return table


def _refuse_repeated_histories(patterns: npt.NDArray[np.float64], name: str) -> None:
    """A table of counts has one row per history. ``from_rows`` adds repeated rows up (right for
    lists merged or strata pooled in code), but in a file the second row is as likely a pasted
    duplicate, or two tables run together, as a stratum: added up, its people would be counted
    twice and the estimate inflated with nothing said. Refused; the user adds strata up on purpose."""
    first: dict[bytes, int] = {}
    for r, row in enumerate(patterns.astype(np.int8)):
        earlier = first.setdefault(row.tobytes(), r)
        if earlier != r:
            raise CaptureTableError(
                f"{name}: data rows {earlier + 1} and {r + 1} have the same capture history "
                "(its people would be counted twice)",
                hint="give one row per history: remove a duplicated row, or add up the counts of rows "
                "that are strata (e.g. one per sex) into one row")


def from_memberships(
    lists: Sequence[str], memberships: Mapping[str, set[str]] | Sequence[set[str]]
) -> CaptureTable:
    """Build a table from each person's set of lists (e.g. which partners saw them)."""
    names = list(lists)
    pos = {n: i for i, n in enumerate(names)}
    sets = memberships.values() if isinstance(memberships, Mapping) else memberships
    tally: dict[tuple[int, ...], int] = {}
    for seen in sets:
        h = [0] * len(names)
        for name in seen:
            h[pos[name]] = 1
        tally[tuple(h)] = tally.get(tuple(h), 0) + 1
    keys = list(tally)
    return from_rows(names, np.array(keys).reshape(-1, len(names)), [tally[k] for k in keys])


@dataclass(frozen=True)
class ListMerge:
    """What happened to lists with too few people before estimation."""

    merged: tuple[str, ...]  # small lists folded into one combined list
    merged_name: str | None
    flagged: tuple[str, ...]  # still too small after merging (kept, with a caveat)


def merge_small_lists(
    table: CaptureTable, min_size: int, merged_name: str = "other lists"
) -> tuple[CaptureTable, ListMerge]:
    """Fold lists with fewer than ``min_size`` people into one list ("on any of them").

    Tiny lists make the interaction terms that involve them unstable and, with no overlap at
    all, make the estimate not exist; pooling them keeps their people in the count.
    """
    sizes = table.list_sizes()
    small = [n for n in table.lists if sizes[n] < min_size]
    if len(small) < 2 or len(table.lists) - len(small) + 1 < MIN_LISTS:
        flagged = tuple(small)
        return table, ListMerge((), None, flagged)
    keep = [i for i, n in enumerate(table.lists) if n not in small]
    idx_small = [table.lists.index(n) for n in small]
    pats = np.column_stack(
        [table.cells[:, keep], table.cells[:, idx_small].max(axis=1, keepdims=True)]
    )
    names = [table.lists[i] for i in keep] + [merged_name]
    merged = from_rows(names, pats, table.counts)
    still = (merged_name,) if merged.list_sizes()[merged_name] < min_size else ()
    return merged, ListMerge(tuple(small), merged_name, still)
