"""The Spark engine of the releases' group-bys (see ``accord.store.groups``).

Keys travel to Spark as Arrow files the partitions read, are counted by ``groupBy`` in partitions (a shuffle by
key, partial counts combined), and only the distinct keys and their counts come back: for the
releases, the distinct keys are few (table cells, equivalence classes, distinct tuples) however
many the rows. Counts of integers and of strings are exact in any order, so the numbers are the
embedded engine's; ``np.unique``'s order (ascending key, first row = smallest row number) is
restored on the driver. The session is made and checked by ``accord.link.spark`` (Java,
secrets); this module only needs one, and imports pyspark only when it counts.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from accord.store.base import Store
from accord.store.groups import Groups, IntArray
from accord.store.spark_ship import shipment


@dataclass(frozen=True)
class SparkGroups:
    session: Any  # pyspark.sql.SparkSession (typed loosely: pyspark is optional)
    name: str = "spark"

    def _count(self, table: pa.Table, count: Callable[[Any], Any]) -> pa.Table:
        """``count`` of the table as a DataFrame, collected. The table reaches the executors as
        files they read (`accord.store.spark_ship.Shipment`), not as rows in the driver's heap."""
        with shipment(self.session) as ship:
            return count(ship.table(table)).toArrow()

    def unique(self, key: npt.NDArray[np.integer], *, first: bool = False,
               inverse: bool = False) -> Groups:
        from pyspark.sql import functions as F

        key = np.asarray(key, dtype=np.int64).reshape(-1)
        n = len(key)
        if n == 0:
            empty = np.zeros(0, dtype=np.int64)
            return Groups(empty, empty, empty if first else None, empty if inverse else None)
        cols: dict[str, Any] = {"k": pa.array(key)}
        aggs = [F.count(F.lit(1)).alias("n")]
        if first:
            cols["i"] = pa.array(np.arange(n, dtype=np.int64))
            aggs.append(F.min("i").alias("f"))
        out = self._count(pa.table(cols), lambda df: df.groupBy("k").agg(*aggs))
        values = out.column("k").to_numpy().astype(np.int64)
        order = np.argsort(values, kind="stable")  # Spark's order is a partition's, not ours
        values = values[order]
        counts = out.column("n").to_numpy().astype(np.int64)[order]
        f = out.column("f").to_numpy().astype(np.int64)[order] if first else None
        # Each row's group: its key's place among the distinct keys (binary search, no shuffle).
        inv = np.searchsorted(values, key).astype(np.int64) if inverse else None
        return Groups(values, counts, f, inv)

    def bincount(self, key: npt.NDArray[np.integer], size: int) -> IntArray:
        g = self.unique(key)
        out = np.zeros(size, dtype=np.int64)
        out[g.values] = g.counts
        return out

    def count_query(self, store: Store, select: str, params: Sequence[Any],
                    keys: Sequence[str]) -> pa.Table:
        rows = store.query(select, list(params)).select(list(keys))
        if rows.num_rows == 0:
            return pa.table({**{k: pa.array([], pa.string()) for k in keys},
                             "n": pa.array([], pa.int64())})
        return self._count(rows, lambda df: df.groupBy(*keys).count()
                           .withColumnRenamed("count", "n"))
