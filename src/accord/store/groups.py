"""The engine seam of the releases' group-bys: where rows are counted by key.

Every release counts rows by a key: protected tables (cells of a GROUP BY), differentially
private tables (people per cell), disclosure risk (records per equivalence class, values per
class for l-diversity, people per class) and anonymisation (records per distinct tuple, the
reduction the lattice search starts from). The stage logic builds the keys and reads the
counts; a ``GroupEngine`` only counts, the way a ``Store`` only stores. The embedded engine
counts on this machine (numpy, or the store's own SQL); the Spark engine
(``accord.store.spark_groups``) counts in Spark partitions. Counting is exact and order-free, so
both give the same numbers, and the logic above them is one piece.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from accord.store.base import Store

IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class Groups:
    """Distinct keys (ascending), the rows holding each, and on request the first row of each
    and each row's group (as ``np.unique`` returns them)."""

    values: IntArray
    counts: IntArray
    first: IntArray | None = None
    inverse: IntArray | None = None


class GroupEngine(Protocol):
    @property
    def name(self) -> str: ...

    def unique(self, key: npt.NDArray[np.integer], *, first: bool = False,
               inverse: bool = False) -> Groups:
        """Distinct values of an integer key with their row counts (``np.unique``'s order)."""
        ...

    def bincount(self, key: npt.NDArray[np.integer], size: int) -> IntArray:
        """Rows per key value 0..size-1 (keys are in range)."""
        ...

    def count_query(self, store: Store, select: str, params: Sequence[Any],
                    keys: Sequence[str]) -> pa.Table:
        """Rows of a store query counted by its key columns: the keys and ``n``."""
        ...


def group_by_sql(select: str, keys: Sequence[str]) -> str:
    cols = ", ".join(keys)
    return f"SELECT {cols}, count(*) AS n FROM ({select}) GROUP BY {cols}"


@dataclass(frozen=True)
class EmbeddedGroups:
    """Counting on this machine: numpy for keys in memory, the store's SQL for a query."""

    name: str = "embedded"

    def unique(self, key: npt.NDArray[np.integer], *, first: bool = False,
               inverse: bool = False) -> Groups:
        unique: Any = np.unique  # its overloads want literal flags; ours are the caller's
        out = unique(key, return_index=first, return_inverse=inverse, return_counts=True)
        values, rest = out[0], list(out[1:])
        f = rest.pop(0).astype(np.int64) if first else None
        inv = rest.pop(0).astype(np.int64).reshape(-1) if inverse else None
        return Groups(values.astype(np.int64), rest.pop(0).astype(np.int64), f, inv)

    def bincount(self, key: npt.NDArray[np.integer], size: int) -> IntArray:
        return np.bincount(key, minlength=size).astype(np.int64)

    def count_query(self, store: Store, select: str, params: Sequence[Any],
                    keys: Sequence[str]) -> pa.Table:
        # The GROUP BY runs where the rows are (DuckDB or PostgreSQL): nothing leaves the store.
        return store.query(group_by_sql(select, keys), list(params))


EMBEDDED = EmbeddedGroups()
