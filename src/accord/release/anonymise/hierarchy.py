"""Generalisation hierarchies in ARX's CSV format, and their integer encoding.

An ARX hierarchy file has one row per original value, the most specific level first and the
fully suppressed value (``*``) last, e.g. ``39;35-39;30-39;*``. We turn each hierarchy into one
integer array per level that maps the code of an original value to the code of its ancestor at
that level, so generalising a column is a single ``numpy.take``.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from accord.errors import AccordError

SUPPRESSED = "*"


class HierarchyError(AccordError):
    """A generalisation hierarchy is missing, malformed or does not cover the data."""


@dataclass(frozen=True)
class Hierarchy:
    """One column's hierarchy: ``rows[i][h]`` is value ``i`` generalised to level ``h``."""

    column: str
    rows: tuple[tuple[str, ...], ...]

    @property
    def height(self) -> int:
        """Number of levels, level 0 (the original value) included."""
        return len(self.rows[0])

    def labels(self, level: int) -> list[str]:
        return [r[level] for r in self.rows]


@dataclass(frozen=True)
class EncodedHierarchy:
    """Integer form of a hierarchy restricted to the values that occur in the data.

    ``maps[h]`` maps a base code (index into ``values``) to a code at level ``h``;
    ``names[h][code]`` is that code's label; ``leaves[h][code]`` the number of original values
    (of the hierarchy, not only those in the data) under it, for the generalisation-intensity loss.
    """

    column: str
    values: tuple[str, ...]
    maps: tuple[npt.NDArray[np.int32], ...]
    names: tuple[tuple[str, ...], ...]
    leaves: tuple[npt.NDArray[np.int64], ...]
    domain_size: int

    @property
    def height(self) -> int:
        return len(self.maps)

    def cardinality(self, level: int) -> int:
        return len(self.names[level])


def make_hierarchy(column: str, rows: Sequence[Sequence[str]]) -> Hierarchy:
    """Check and freeze a hierarchy given as rows of labels (most specific first)."""
    clean = [tuple(str(c).strip() for c in r) for r in rows if any(str(c).strip() for c in r)]
    if not clean:
        raise HierarchyError(f"the hierarchy of column '{column}' is empty",
                             hint="Give one row per value: value;level1;...;*")
    height = len(clean[0])
    if any(len(r) != height for r in clean):
        raise HierarchyError(
            f"the hierarchy of column '{column}' has rows with different numbers of levels",
            hint="Every row must have the same number of ';'-separated levels.")
    if len({r[0] for r in clean}) != len(clean):
        raise HierarchyError(f"the hierarchy of column '{column}' lists a value twice",
                             hint="Each original value must appear on exactly one row.")
    # A label at level h must always generalise to the same label at level h+1, else the
    # hierarchy is not a tree and class counts at higher levels would be meaningless.
    for h in range(1, height - 1):
        parent: dict[str, str] = {}
        for r in clean:
            if parent.setdefault(r[h], r[h + 1]) != r[h + 1]:
                raise HierarchyError(
                    f"the hierarchy of column '{column}' is not a tree at level {h}",
                    hint="A group label must have the same parent on every row.")
    return Hierarchy(column=column, rows=tuple(clean))


def read_arx_hierarchy(path: Path, column: str, sep: str = ";") -> Hierarchy:
    """Read one ARX hierarchy CSV file."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            rows = list(csv.reader(fh, delimiter=sep))
    except OSError as err:
        raise HierarchyError(f"cannot read hierarchy file {path.name}",
                             hint="Check the path and permissions.") from err
    return make_hierarchy(column, rows)


def find_hierarchy_file(directory: Path, column: str) -> Path | None:
    """ARX names files ``<anything>_hierarchy_<column>.csv``; plain ``<column>.csv`` works too."""
    plain = directory / f"{column}.csv"
    if plain.is_file():
        return plain
    matches = sorted(directory.glob(f"*_hierarchy_{column}.csv"))
    return matches[0] if matches else None


def load_hierarchies(directory: Path, columns: Sequence[str], sep: str = ";"
                     ) -> dict[str, Hierarchy]:
    """Load one hierarchy per quasi-identifier from an ARX-style folder."""
    if not directory.is_dir():
        raise HierarchyError(f"hierarchy folder {directory} does not exist",
                             hint="Pass --hierarchies DIR with one CSV per quasi-identifier.")
    out: dict[str, Hierarchy] = {}
    for col in columns:
        path = find_hierarchy_file(directory, col)
        if path is None:
            raise HierarchyError(
                f"no hierarchy for quasi-identifier '{col}' in {directory}",
                hint=f"Add {col}.csv or <name>_hierarchy_{col}.csv (ARX format).")
        out[col] = read_arx_hierarchy(path, col, sep)
    return out


def encode_column(hierarchy: Hierarchy, column: pa.Array | pa.ChunkedArray
                  ) -> tuple[EncodedHierarchy, npt.NDArray[np.int32]]:
    """Encode a data column against its hierarchy: returns the encoding and per-row base codes.

    Missing values (null) match a hierarchy row whose first cell is empty. Only the count of
    values the hierarchy lacks is reported, never the values themselves.
    """
    index = {r[0]: i for i, r in enumerate(hierarchy.rows)}
    strings = pc.fill_null(pc.cast(column, pa.string()), "")
    encoded = pc.dictionary_encode(strings).combine_chunks() if isinstance(
        strings, pa.ChunkedArray) else pc.dictionary_encode(strings)
    dictionary = [str(v) for v in encoded.dictionary.to_pylist()]
    used = np.unique(encoded.indices.to_numpy(zero_copy_only=False)) if len(encoded) else \
        np.zeros(0, dtype=np.int64)
    uniq = sorted(dictionary[i] for i in used)
    missing = [u for u in uniq if u not in index]
    if missing:
        raise HierarchyError(
            f"{len(missing)} distinct value(s) of column '{hierarchy.column}' are not in its "
            "hierarchy",
            hint="Add a row for every value that occurs (missing values as an empty first cell).")
    position = {u: i for i, u in enumerate(uniq)}
    remap = np.array([position.get(d, -1) for d in dictionary], dtype=np.int32)
    inverse = remap[encoded.indices.to_numpy(zero_copy_only=False)] if len(dictionary) else \
        np.zeros(len(encoded), dtype=np.int32)
    rows = [hierarchy.rows[index[u]] for u in uniq]
    all_counts = [dict(zip(*np.unique(np.array(hierarchy.labels(h), dtype=str),
                                      return_counts=True), strict=True))
                  for h in range(hierarchy.height)]
    maps: list[npt.NDArray[np.int32]] = []
    names: list[tuple[str, ...]] = []
    leaves: list[npt.NDArray[np.int64]] = []
    for h in range(hierarchy.height):
        labels, codes = np.unique(np.array([r[h] for r in rows], dtype=str), return_inverse=True)
        maps.append(codes.astype(np.int32).reshape(-1))
        names.append(tuple(str(x) for x in labels))
        leaves.append(np.array([int(all_counts[h][lab]) for lab in labels], dtype=np.int64))
    enc = EncodedHierarchy(column=hierarchy.column, values=tuple(uniq), maps=tuple(maps),
                           names=tuple(names), leaves=tuple(leaves),
                           domain_size=len(hierarchy.rows))
    return enc, inverse.astype(np.int32)
