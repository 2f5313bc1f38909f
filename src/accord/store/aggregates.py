"""Aggregate tables in the hub: one table, `aggregates`, each source's rows replaced as a whole."""

from __future__ import annotations

import pyarrow as pa

from accord.store.base import Store


def add_aggregates(store: Store, table: pa.Table, source: str, actor: str = "hub") -> int:
    """Store ``table`` (accord.ingest.aggregates.SCHEMA) as ``source``; earlier rows of it are replaced."""
    rows = table.append_column("source", pa.array([source] * table.num_rows, pa.string()))
    store.ensure_meta()
    with store.transaction():
        if store.table_exists("aggregates"):
            store.execute("DELETE FROM aggregates WHERE source = ?", [source])
            store.write_table("aggregates", rows, mode="append")
        else:
            store.write_table("aggregates", rows, mode="create")
            store.write_table("aggregates", rows, mode="append")
        store.audit(actor, "tables.ingest", {"source": source, "rows": table.num_rows})
    return table.num_rows
