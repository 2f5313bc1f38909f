"""Protection against differencing: two releases of one table from different data versions.

If a table published last month said 412 and today's says 415, three records were added and
their characteristics can be read off the cells that moved by one, two or three. So every
published cell is remembered, and a cell whose value differs from any earlier published value of
the same cell by 1 to threshold-1 is hidden now (then complementary suppression makes sure it
cannot be recomputed from today's margins). Differences of threshold or more are treated like a
cell of that size: a group, not a person. A cell that is zero now cannot be hidden by suppression
(zeros are structural); its disappearance is reported by `cells_at_risk` with value 0 so callers
can say so.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import pyarrow as pa

from accord.store import Store

PUBLISHED_SQL = """CREATE TABLE IF NOT EXISTS published_cells (
    release_id VARCHAR NOT NULL, data_version VARCHAR NOT NULL, table_id VARCHAR NOT NULL,
    cell VARCHAR NOT NULL, value BIGINT NOT NULL)"""


def record_published(store: Store, release_id: str, data_version: str, table_id: str,
                     cells: Mapping[str, int | None]) -> None:
    """Remember the values that were shown (suppressed cells are not stored: nobody saw them)."""
    store.execute(PUBLISHED_SQL)
    rows = [(release_id, data_version, table_id, cell, int(v)) for cell, v in cells.items() if v is not None]
    if rows:
        names = ["release_id", "data_version", "table_id", "cell", "value"]
        store.write_table("published_cells", pa.table({n: [r[i] for r in rows] for i, n in enumerate(names)}))


def earlier_values(store: Store, table_id: str, data_version: str) -> dict[str, set[int]]:
    """Every value each cell of this table was published with, from other data versions."""
    if not store.table_exists("published_cells"):
        return {}
    rows = store.query("SELECT DISTINCT cell, value FROM published_cells WHERE table_id = ? AND data_version <> ?",
                       [table_id, data_version]).to_pylist()
    out: dict[str, set[int]] = {}
    for r in rows:
        out.setdefault(r["cell"], set()).add(int(r["value"]))
    return out


def cells_at_risk(current: Mapping[str, int], earlier: Mapping[str, Iterable[int]], threshold: int) -> set[str]:
    """Cells whose value moved by 1..threshold-1 from some earlier published value."""
    return {cell for cell, value in current.items()
            if any(0 < abs(value - before) < threshold for before in earlier.get(cell, ()))}
