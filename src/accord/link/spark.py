"""The Spark engine of linkage: the band work of blocking inside Spark partitions.

Same stage logic as on one machine (`accord.link.blocking` plans the passes and draws the band
bits; `accord.link.engine.join_band` and the compiled kernels find the pairs), distributed as:
records -> band keys of every band (``mapInArrow``) -> repartition by (band, key prefix), so a
partition holds whole top-level buckets -> the kernels per partition (``mapInArrow``) ->
distinct pair codes. A bucket's pairs depend only on its own records, so the pairs are the
embedded engine's, exactly. pyspark is an optional extra (``accord[spark]`` and Java 17); this
module imports it only when a session is started.

The linkage secret never belongs on a cluster: encodings are made at the partners. A Spark
configuration that names the secret (or a partner key) is refused before Spark starts.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from accord.errors import AccordError
from accord.link import kernels
from accord.link.engine import BandJob, join_band
from accord.protect.encoding.secrets import SECRET_KIND
from accord.protect.keys import KEY_KIND
from accord.store.spark_ship import ShippedArray, release_finished, release_shipped, shipment

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import SparkSession

    from accord.link.encodings import EncodedSet
    from accord.link.fellegi_sunter import Candidates, FSModel
    from accord.link.match import MatchConfig

INSTALL_HINT = ("install the Spark extra and Java 17: pip install 'accord[spark]' and "
                "apt-get install openjdk-17-jre-headless (or point JAVA_HOME at a Java 17 or 21)")
# Java and pyspark were found, yet the JVM stopped: most often a setting (its log, above the
# error, says which), not the install; the install hint alone sent users the wrong way.
START_HINT = ("Spark's log above says why: check the --spark-conf settings and the master (a "
              "local directory that cannot be created, in SPARK_LOCAL_DIRS or else in spark.local.dir, "
              "stops Spark); if Java or pyspark is the "
              "cause, " + INSTALL_HINT)
MIN_JAVA = 17
_SECRET_WORDS = re.compile(r"linkage[-_.]?secret|partner[-_.]?key|ACCORD_KEY_FILE", re.I)


# Settings a long linkage needs on one machine's disk (each overridden by --spark-conf):
# finished shuffles are removed when the driver JVM collects garbage (`release_finished` asks
# after each pass; the periodic collection, 30 min by default, is the fallback), and the
# checkpoints of the scoring passes are compressed as shuffles are.
RUN_DEFAULTS = (("spark.cleaner.periodicGC.interval", "5min"), ("spark.rdd.compress", "true"))


class SparkUnavailableError(AccordError):
    pass


class SecretOnClusterError(AccordError):
    pass


@dataclass(frozen=True)
class SparkSettings:
    master: str = "local[*]"
    conf: tuple[tuple[str, str], ...] = ()
    partitions: int | None = None  # partitions of the band join; None = 4 per core


def parse_conf(items: Sequence[str]) -> tuple[tuple[str, str], ...]:
    """``k=v`` strings of --spark-conf."""
    out = []
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise AccordError(f"--spark-conf needs key=value, got {item.split('=')[0]!r}",
                              hint="e.g. --spark-conf spark.executor.memory=8g")
        out.append((key.strip(), value.strip()))
    return tuple(out)


def _names_secret(value: str) -> bool:
    """A value that is (or lists) a file holding a linkage secret or partner key."""
    for part in re.split(r"[,\s]+", value):
        p = Path(part.removeprefix("file://"))
        try:
            if p.is_file() and p.stat().st_size < 1 << 16:
                head = p.read_text(encoding="utf-8", errors="ignore")
                if SECRET_KIND in head or KEY_KIND in head:
                    return True
        except OSError:
            continue
    return False


def refuse_secrets(settings: SparkSettings) -> None:
    """Refuse a Spark configuration carrying the linkage secret or a partner key: the hub and
    its cluster link encodings made at the partners and must never be able to make them."""
    for key, value in settings.conf:
        if _SECRET_WORDS.search(key) or _SECRET_WORDS.search(value) or _names_secret(value):
            raise SecretOnClusterError(
                f"the Spark setting {key} carries a linkage secret or partner key",
                hint="encodings are made at the partners (accord encode); send the cluster only "
                     "the encodings, never the secret or a key file")


def java_version(java: str | None = None) -> int | None:
    """Major version of the Java Spark would use (JAVA_HOME first, as Spark does)."""
    home = os.environ.get("JAVA_HOME")
    exe = java or (str(Path(home) / "bin" / "java") if home else shutil.which("java"))
    if not exe or not Path(exe).exists():
        return None
    try:
        out = subprocess.run([exe, "-version"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    m = re.search(r'version "(\d+)(?:\.(\d+))?', out.stderr + out.stdout)
    if not m:
        return None
    major = int(m.group(1))
    return int(m.group(2) or 0) if major == 1 else major


def check_java(java: str | None = None) -> None:
    version = java_version(java)
    if version is None:
        raise SparkUnavailableError("Spark needs Java, and none was found", hint=INSTALL_HINT)
    if version < MIN_JAVA:
        raise SparkUnavailableError(f"Spark 4 needs Java {MIN_JAVA} or later; found Java "
                                    f"{version}", hint=INSTALL_HINT)


_PANDAS_MESSAGE = "PySpark does not yet fully support pandas"
_PANDAS_WARNING = f"ignore:{_PANDAS_MESSAGE}:FutureWarning"


def start_session(settings: SparkSettings) -> SparkSession:
    """A SparkSession for the settings, or a clear error saying what to install."""
    refuse_secrets(settings)
    try:
        from pyspark.sql import SparkSession
    except ImportError as exc:
        raise SparkUnavailableError("the Spark engine needs pyspark, which is not installed",
                                    hint=INSTALL_HINT) from exc
    if not settings.master.startswith(("spark://", "yarn", "k8s://")):
        check_java()  # a cluster master checks its own Java; local mode uses ours
    builder = SparkSession.builder.master(settings.master).appName("accord")
    builder = builder.config("spark.ui.showConsoleProgress", "false")
    if settings.master.startswith("local"):
        # Local workers run this interpreter (with Accord installed), not whatever python3 is
        # first on PATH; a cluster sets its own (spark.pyspark.python, or a packed venv).
        # PySpark reads the worker interpreter from PYSPARK_PYTHON in the driver's environment
        # (spark.pyspark.python only through spark-submit); an explicit setting is kept.
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        # The driver's RPC, block manager and web UI on loopback: a local run talks to no other
        # machine, and Spark's UI (jobs, plans, settings) listened on every interface. Spark
        # reads this from the JVM's environment only; a user's own value is kept.
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
        # PySpark warns in the driver and in every worker that it does not yet fully support
        # pandas 3: the engine hands Arrow batches only (mapInArrow), never pandas frames, so
        # the warning, repeated by each worker on the terminal, says nothing about this run.
        given = os.environ.get("PYTHONWARNINGS", "")
        if _PANDAS_WARNING not in given:
            os.environ["PYTHONWARNINGS"] = ",".join(filter(None, (given, _PANDAS_WARNING)))
    warnings.filterwarnings("ignore", message=_PANDAS_MESSAGE, category=FutureWarning)
    for key, value in (*RUN_DEFAULTS, *settings.conf):  # the user's settings win
        builder = builder.config(key, value)
    try:
        return builder.getOrCreate()
    except Exception as exc:  # py4j/pyspark raise their own types for a JVM that cannot start
        raise SparkUnavailableError(f"Spark could not start ({type(exc).__name__})",
                                    hint=START_HINT) from exc


# A band row: the band, the record's key in it and the record (index * 2 + side: one column, as
# every fixed-width column is 8 bytes in Spark's rows). Not its filter: the band rows are the
# blocking's largest shuffle (each record once per band), and a filter is 8 bytes a word (~16
# words) where the rest is 20; the join reads the filters of its partition's records from the
# pass's shipped filter files instead (`ShippedArray`, memory-mapped). The key's prefix (the
# top-level bucket the rows are partitioned by) is computed by Spark from the key rather than
# carried.
_KEYED = pa.schema([("band", pa.int32()), ("key", pa.int64()), ("rec", pa.int64())])
_PAIRS = pa.schema([("ia", pa.int64()), ("ib", pa.int64())])


def task_threads() -> None:
    """Give the compiled kernels of a Python worker as many threads as its task has cores
    (``spark.task.cpus``, usually 1), not the machine's: each concurrent task has its own
    worker, and numba's parallel loops (`kernels.pair_dice`, `kernels.group_ones`) spin-wait
    for threads the other workers hold. At 30k a side on local[2] this spinning made the
    levels cost 45 µs of CPU a pair in 1,000-pair batches (1 µs with one thread). The kernels
    compute each element on its own, so the results do not depend on the thread count."""
    import numba
    from pyspark import TaskContext

    ctx = TaskContext.get()
    cpus = ctx.cpus() if ctx is not None else 1
    most = int(numba.config.NUMBA_NUM_THREADS)  # type: ignore[attr-defined]
    numba.set_num_threads(max(1, min(int(cpus), most)))


def _filters_of(rec: np.ndarray, fa: np.ndarray, fb: np.ndarray) -> np.ndarray:
    """The filters of records ``rec`` (index * 2 + side), in that order, from the two sides'
    (memory-mapped) filter arrays."""
    side, idx = rec & 1, rec >> 1
    out = np.empty((len(rec), fa.shape[1]), dtype=np.uint64)
    on_a = side == 0
    out[on_a] = fa[idx[on_a]]
    out[~on_a] = fb[idx[~on_a]]
    return out


def _keys_fn(job: BandJob, files: tuple[ShippedArray, ShippedArray]) -> Any:
    def keys(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        fa, fb = files[0].open(), files[1].open()
        na = len(fa)
        for batch in batches:
            # Positions in A then B (a range of them per partition, read in order).
            pos = batch.column("id").to_numpy()
            on_b = pos >= na
            rec = np.where(on_b, (pos - na) * 2 + 1, pos * 2).astype(np.int64)
            words = _filters_of(rec, fa, fb)
            n = len(words)
            rec_col = pa.array(rec)
            for band, (word, shift) in enumerate(job.bits):
                k = kernels.band_keys(words, word, shift)
                yield pa.RecordBatch.from_arrays([
                    pa.array(np.full(n, band, dtype=np.int32)), pa.array(k.view(np.int64)),
                    rec_col], schema=_KEYED)

    return keys


def _join_fn(job: BandJob, files: tuple[ShippedArray, ShippedArray]) -> Any:
    def join(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        task_threads()
        parts = [b for b in batches if b.num_rows]
        if not parts:
            return
        t = pa.Table.from_batches(parts)
        band = t.column("band").to_numpy()
        rec = t.column("rec").to_numpy()
        side, idx = rec & 1, rec >> 1
        key = t.column("key").to_numpy().view(np.uint64)
        words = _filters_of(rec, files[0].open(), files[1].open())
        for b in np.unique(band):
            sa = np.flatnonzero((band == b) & (side == 0))
            sb = np.flatnonzero((band == b) & (side == 1))
            if not len(sa) or not len(sb):
                continue
            fa, fb = words[sa], words[sb]
            xa, xb = join_band(key[sa], key[sb], fa, fb, kernels.group_ones(fa, job.bounds),
                               kernels.group_ones(fb, job.bounds), job, int(b))
            if len(xa):
                yield pa.RecordBatch.from_arrays([pa.array(idx[sa][xa]), pa.array(idx[sb][xb])],
                                                 schema=_PAIRS)

    return join


def _fetch_codes(codes: Any, nb: int, most: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """A pass's distinct candidate codes (a DataFrame) as (ia, ib) slices of about ``most``
    codes each, in no order (blocking deduplicates and sorts): the codes are written once to
    the executors' disks, then fetched a slice at a time by code modulo the slice count, so the
    driver (its JVM's collect and the Python arrays) never holds a whole pass."""
    from pyspark import StorageLevel

    held = codes.persist(StorageLevel.DISK_ONLY)
    try:
        total = held.count()
        slices = max(1, -(-total // max(1, most)))
        for k in range(slices):
            part = held if slices == 1 else held.filter(f"code % {slices} = {k}")
            got = part.toArrow().column("code")
            code = got.to_numpy() if got.num_chunks == 1 else got.combine_chunks().to_numpy()
            del got
            yield code // nb, code % nb
    finally:
        held.unpersist()


@dataclass(frozen=True)
class SparkEngine:
    """Band work in Spark partitions; the pairs are the embedded engine's (see module doc)."""

    session: Any  # pyspark.sql.SparkSession (typed loosely: pyspark is optional)
    partitions: int | None = None
    name: str = "spark"
    # The partners' Parquet encodings the two sets were read from (A, B): the executors then
    # read the records for scoring themselves instead of the driver shipping them.
    sources: tuple[str, str] | None = None
    # The most candidate codes the driver fetches at once (`_fetch_codes`): a pass's codes
    # come back in slices of about this many, not as one array (at 10M a side a pass holds
    # ~100 M codes: 0.8 GB an array, and the fetch made five).
    fetch_rows: int = 1 << 24

    def band_pairs(self, job: BandJob) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        from pyspark.sql import functions as F

        nb = len(job.fb)
        if not len(job.fa) or not nb or not job.bits:
            return
        # Ship the plan, not the filters: those go as two files (one write of each side's
        # array, no Arrow copy on the driver) that the tasks memory-map.
        light = replace(job, fa=job.fa[:0], fb=job.fb[:0])
        sc = self.session.sparkContext
        # A partition's band rows are all in one Python worker at once (the bucket join needs
        # a bucket's records together): at most about 2 M of them (~150 MB), so the workers'
        # memory does not grow with N (at 1M a side, 8 partitions held 9.4 M rows each; with
        # one per 2 M rows, blocking's Python workers peaked at 2.82 GB).
        rows = (len(job.fa) + nb) * len(job.bits)
        n_parts = self.partitions or max(4 * sc.defaultParallelism, -(-rows // 2_000_000))
        with shipment(self.session) as ship:
            files = (ship.array(job.fa), ship.array(job.fb))
            total = len(job.fa) + nb
            # The records' positions, 1 M a partition and two a core at least (as shipped
            # tables are cut), each partition reading its range of the filter files in order.
            n_read = max(2 * sc.defaultParallelism, -(-total // (1 << 20)))
            positions = self.session.range(0, total, 1, n_read)
            keyed = positions.mapInArrow(_keys_fn(light, files), _spark_schema(_KEYED))
            # By (band, key prefix): a partition holds whole top-level buckets. The prefix is
            # the key's top `rows` bits (unsigned), as `kernels.shared_buckets` cuts it.
            prefix = F.shiftrightunsigned(F.col("key"), 64 - job.rows)
            pairs = (keyed.repartition(n_parts, F.col("band"), prefix)
                     .mapInArrow(_join_fn(light, files), _spark_schema(_PAIRS)))
            codes = pairs.selectExpr(f"ia * {nb} + ib AS code").distinct()
            yield from _fetch_codes(codes, nb, self.fetch_rows)
            # The pass's plan dropped, so that its shuffle (the band rows: 3.8 GB for the
            # first pass at 1M a side) is removed now, not at the end of the run.
            del positions, keyed, pairs, codes
            release_finished(sc)

    def score_candidates(self, a: EncodedSet, b: EncodedSet, codes: np.ndarray,
                         fit: Callable[[Candidates], FSModel], config: MatchConfig,
                         threshold: float,
                         ) -> tuple[np.ndarray, np.ndarray, np.ndarray, FSModel]:
        """Levels, EM's pairs and scores in partitions (`accord.link.spark_score`)."""
        from accord.link.spark_score import score_on_spark

        got = score_on_spark(self.session, a, b, codes, fit, config, threshold,
                             self.partitions, self.sources)
        # Once more now that scoring's frames are gone: the last passes' shuffles and the
        # checkpoints were still held while it returned (seen in tests: 20 files left).
        release_finished(self.session.sparkContext)
        return got


def _spark_schema(schema: pa.Schema) -> str:
    names = {pa.int8(): "tinyint", pa.int32(): "int", pa.int64(): "bigint",
             pa.binary(): "binary"}
    return ", ".join(f"{f.name} {names[f.type]}" for f in schema)


@contextmanager
def spark_engine(settings: SparkSettings) -> Iterator[SparkEngine]:
    """A Spark engine for the duration of a command; a session it started is stopped (one
    already running in this process, e.g. a notebook's, is used and left running)."""
    from_before = _active_session()
    session = start_session(settings)
    try:
        # The band join's partition count: the engine's own, else --spark-conf
        # spark.sql.shuffle.partitions when given, else 4 per core.
        given = dict(settings.conf).get("spark.sql.shuffle.partitions")
        yield SparkEngine(session, settings.partitions or (int(given) if given else None))
    finally:
        if from_before is None:
            sc = session.sparkContext
            session.stop()
            release_shipped(sc)  # the shipped files outlive each shipment, not the context


def _active_session() -> Any:
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        return None
    return SparkSession.getActiveSession()
