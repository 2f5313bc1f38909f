"""Lay a published table out as 2-D grids (one per layer of a third dimension) for display."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from accord.research.stats import StatTable

SUPPRESSED_MARK = "s"
TOTAL_LABEL = "Total"


@dataclass(frozen=True)
class Grid:
    caption: str
    row_title: str
    col_labels: tuple[str, ...]
    rows: tuple[tuple[str, tuple[int | None, ...]], ...]


def cell_text(value: int | None) -> str:
    return SUPPRESSED_MARK if value is None else f"{value:,}"


def _two_d(caption: str, table: StatTable, block: list[Any]) -> Grid:
    rows_dim, cols_dim = table.dims[0], table.dims[1]
    labels = (*rows_dim.labels, TOTAL_LABEL)
    return Grid(caption, rows_dim.title, (*cols_dim.labels, TOTAL_LABEL),
                tuple((label, tuple(row)) for label, row in zip(labels, block, strict=True)))


def grids(table: StatTable) -> list[Grid]:
    """1-D: one column; 2-D: rows x columns; 3-D: one grid per category of the third dimension."""
    dims = table.dims
    if len(dims) == 1:
        labels = (*dims[0].labels, TOTAL_LABEL)
        rows = tuple((label, (v,)) for label, v in zip(labels, table.published, strict=True))
        return [Grid("", dims[0].title, (table.unit.capitalize(),), rows)]
    if len(dims) == 2:
        return [_two_d("", table, table.published)]
    layer_labels = (*dims[2].labels, TOTAL_LABEL)
    out = []
    for k, label in enumerate(layer_labels):
        block = [[col[k] for col in row] for row in table.published]
        out.append(_two_d(f"{dims[2].title}: {label}", table, block))
    return out
