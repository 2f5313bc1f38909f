"""Tables over time: a cell that moved by less than the threshold since an earlier release is
hidden now, so that two releases cannot be subtracted to single out the records added between
them (the rule and the memory of published cells are ``accord.release.differencing``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from accord.release.differencing import cells_at_risk, earlier_values, record_published
from accord.research.specs import Dim
from accord.store import Store

TOTAL_KEY = "*"


def cell_keys(dims: tuple[Dim, ...]) -> dict[tuple[int, ...], str]:
    """A stable name for every cell of a table with margins: codes joined, '*' for a total."""
    shape = tuple(len(d.codes) + 1 for d in dims)
    keys: dict[tuple[int, ...], str] = {}
    for idx in np.ndindex(*shape):
        parts = [TOTAL_KEY if i == len(d.codes) else d.codes[i]
                 for i, d in zip(idx, dims, strict=True)]
        keys[tuple(int(i) for i in idx)] = "|".join(parts)
    return keys


def moved_cells(store: Store, table_id: str, dims: tuple[Dim, ...], ext: np.ndarray,
                data_version: str, threshold: int) -> tuple[np.ndarray, int]:
    """Cells to hide because they moved by 1..threshold-1 since an earlier data version, and
    how many such cells are now 0 (suppression cannot hide a zero; the caller says so)."""
    mask = np.zeros(ext.shape, dtype=bool)
    earlier = earlier_values(store, table_id, data_version)
    if not earlier:
        return mask, 0
    keys = cell_keys(dims)
    risky = cells_at_risk({k: int(ext[idx]) for idx, k in keys.items()}, earlier, threshold)
    zeros = 0
    for idx, key in keys.items():
        if key in risky:
            if ext[idx] > 0:
                mask[idx] = True
            else:
                zeros += 1
    return mask, zeros


def published_cells(dims: tuple[Dim, ...], values: list[Any]) -> dict[str, int | None]:
    arr = np.array(values, dtype=object)
    return {key: (None if arr[idx] is None else int(arr[idx]))
            for idx, key in cell_keys(dims).items()}


def remember(store: Store, release_id: str, data_version: str,
             tables: list[tuple[str, tuple[Dim, ...], list[Any]]]) -> None:
    """Store what this release showed, for the differencing check of later releases."""
    for table_id, dims, values in tables:
        record_published(store, release_id, data_version, table_id, published_cells(dims, values))
