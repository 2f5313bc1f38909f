"""Driver-side tables sent to Spark's executors as files they read (the Spark engines of linkage
and of the releases' counts). pyspark is imported only when a table is shipped."""

from __future__ import annotations

import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pyarrow as pa


class Shipment:
    """Driver-side Arrow tables made into DataFrames whose partitions read them from files the
    driver serves (``SparkContext.addFile``), removed from the driver's disk on ``close``.

    ``createDataFrame`` of a local table keeps it as rows in the driver JVM and sends them inside
    the tasks: the 4.2 M candidate codes of 100k x 100k became two tasks of 100 MB each, and
    the scoring join's first stage stalled in garbage collection of a 2 GB heap (old generation
    full, back-to-back full collections). A file is streamed from disk by the driver's file
    server, each partition reads its own part, and the JVM heap never holds the rows.
    """

    def __init__(self, session: Any, rows_per_part: int = 1 << 20) -> None:
        self.session, self.rows_per_part = session, rows_per_part
        local = session.sparkContext.getConf().get("spark.local.dir")
        self.dir = Path(tempfile.mkdtemp(prefix="accord-ship-",
                                         dir=local.split(",")[0] if local else None))

    def table(self, table: pa.Table) -> Any:
        from pyspark.sql.pandas.types import from_arrow_schema, to_arrow_schema

        sc = self.session.sparkContext
        spark_schema = from_arrow_schema(table.schema)
        # The Arrow types Spark expects back from a partition (large or dictionary strings
        # become plain strings, as createDataFrame would make them).
        table = table.cast(to_arrow_schema(spark_schema))
        tag = uuid.uuid4().hex
        # At least two parts a core, so that the stage reading them keeps every core busy.
        parts = max(2 * sc.defaultParallelism, -(-table.num_rows // self.rows_per_part))
        rows = max(1, -(-table.num_rows // parts))
        names = []
        for k, start in enumerate(range(0, max(table.num_rows, 1), rows)):
            name = f"accord-{tag}-{k}.arrow"
            with pa.OSFile(str(self.dir / name), "wb") as sink, \
                    pa.ipc.new_file(sink, table.schema) as writer:
                writer.write_table(table.slice(start, rows))
            sc.addFile(str(self.dir / name))
            names.append(name)
        return (self.session.range(0, len(names), 1, len(names))
                .mapInArrow(_read_parts(names), spark_schema))

    def close(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)


def _read_parts(names: list[str]) -> Callable[..., Iterator[pa.RecordBatch]]:
    def read(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        from pyspark import SparkFiles

        for batch in batches:
            for part in batch.column("id").to_pylist():
                with pa.OSFile(SparkFiles.get(names[part]), "rb") as source:
                    t = pa.ipc.open_file(source).read_all()
                yield from t.combine_chunks().to_batches(max_chunksize=1 << 16)

    return read


@contextmanager
def shipment(session: Any) -> Iterator[Shipment]:
    ship = Shipment(session)
    try:
        yield ship
    finally:
        ship.close()
