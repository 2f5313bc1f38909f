"""Driver-side tables sent to Spark's executors as files they read (the Spark engines of linkage
and of the releases' counts). pyspark is imported only when a table is shipped.

The files hold encodings (candidate codes, blocking records), so none outlives its run. A
shipment's directory lives as long as its SparkContext (executors fetch every added file at their
next task, so a file removed earlier fails a later job: see ``Shipment``): it is removed by
``release_shipped`` when the context Accord started stops, or when the interpreter exits, on every
normal and error path; a driver killed outright (SIGKILL, out of memory)
cannot remove its own, so every new shipment first removes the directories of owners that are
gone. Ownership is an exclusive ``flock`` on the directory's lock file, held while the owner
lives and released by the kernel when it dies (whatever its PID or PID namespace): a directory
whose lock can be taken is stale, one whose lock is held is a live run's and is left alone.
"""

from __future__ import annotations

import fcntl
import gc
import os
import shutil
import tempfile
import time
import uuid
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from accord.errors import AccordError

PREFIX = "accord-ship-"
# A directory is made under this name and renamed to PREFIX... only once its lock is held, so a
# PREFIX directory without a held lock is never one being set up by a live process.
_CLAIMING = ".accord-ship-new-"
_LOCK = ".owner.lock"
_CLAIM_GRACE_SECONDS = 600.0  # an unrenamed claim older than this was left by a crash


def _take_lock(path: Path, create: bool) -> int | None:
    """The fd of ``path`` locked exclusively for this open file, or None if another holds it (or
    it is not there to take, or not ours to open)."""
    try:
        fd = os.open(path, os.O_RDWR | (os.O_CREAT if create else 0) | os.O_NOFOLLOW, 0o600)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    return fd


def _release(directory: Path, fd: int) -> None:
    """Remove ``directory`` then let go of its lock (in that order: never unlocked and present)."""
    shutil.rmtree(directory, ignore_errors=True)
    with suppress(OSError):
        os.close(fd)


def remove_stale(base: Path) -> list[Path]:
    """Remove the shipment directories under ``base`` whose owners are gone (their lock can be
    taken); those of live processes, of other users and of an older Accord (no lock file: no
    way to tell) are left. Returns what was removed."""
    removed: list[Path] = []
    try:
        entries = list(base.iterdir())
    except OSError:
        return removed
    uid = os.getuid()
    for entry in entries:
        claiming = entry.name.startswith(_CLAIMING)
        if not (claiming or entry.name.startswith(PREFIX)):
            continue
        try:
            st = entry.lstat()
        except OSError:
            continue
        if not entry.is_dir() or entry.is_symlink() or st.st_uid != uid:
            continue
        if claiming and time.time() - st.st_mtime < _CLAIM_GRACE_SECONDS:
            continue  # maybe being set up right now
        fd = _take_lock(entry / _LOCK, create=False)
        if fd is None:
            if claiming and not (entry / _LOCK).exists():  # a crash before its lock: empty
                shutil.rmtree(entry, ignore_errors=True)
                removed.append(entry)
            continue
        _release(entry, fd)
        removed.append(entry)
    return removed


class ShipDirError(AccordError):
    """The shipment directory cannot be made, locked or written under Spark's local directory."""


SPARK_LOCAL_DIR = "spark.local.dir"


@dataclass(frozen=True)
class LocalDirs:
    """Spark's local (scratch) directories on the driver and the setting that named them."""

    dirs: tuple[str, ...]
    setting: str = SPARK_LOCAL_DIR

    @classmethod
    def of(cls, listed: str | None, setting: str = SPARK_LOCAL_DIR, sep: str = ",") -> LocalDirs:
        return cls(tuple(d.strip() for d in (listed or "").split(sep) if d.strip()), setting)


def configured_local_dirs(getenv: Callable[[str], str | None], local_dir: str | None) -> LocalDirs:
    """The directories Spark itself uses, in Spark's order (``Utils.getConfiguredLocalDirs``):
    a YARN container's LOCAL_DIRS, then SPARK_EXECUTOR_DIRS, then SPARK_LOCAL_DIRS, and only then
    ``spark.local.dir``. Following only the setting put the shipped encodings outside Spark's
    scratch (or failed on a spark.local.dir Spark never used) whenever the environment set one."""
    if getenv("CONTAINER_ID") and getenv("LOCAL_DIRS"):
        return LocalDirs.of(getenv("LOCAL_DIRS"), "LOCAL_DIRS (of the YARN container)")
    if getenv("SPARK_EXECUTOR_DIRS"):
        return LocalDirs.of(getenv("SPARK_EXECUTOR_DIRS"), "SPARK_EXECUTOR_DIRS", os.pathsep)
    if getenv("SPARK_LOCAL_DIRS"):
        return LocalDirs.of(getenv("SPARK_LOCAL_DIRS"), "SPARK_LOCAL_DIRS")
    return LocalDirs.of(local_dir)


def _ship_hint(setting: str) -> str:
    if setting != SPARK_LOCAL_DIR:  # an environment variable, which Spark reads before the setting
        return (f"set {setting.split()[0]} to existing directories this user can write (comma-separated; "
                "the first that works is used), with room for the shipped encodings: Spark uses it "
                "before spark.local.dir")
    return ("set spark.local.dir (--spark-conf spark.local.dir=DIR; of several, comma-separated, "
            "the first that works is used) to an existing directory this user can write, with "
            "room for the shipped encodings; without it the system's temporary directory "
            "(TMPDIR) is used (SPARK_LOCAL_DIRS, when set, comes before both, as in Spark)")


def _where(base: Path, setting: str | None) -> str:
    """The directory setting a message names (the user's own setting, never a record)."""
    return (f"{setting} {base}" if setting
            else f"the system's temporary directory {base} (spark.local.dir is not set)")


def _ship_error(what: str, base: Path, setting: str | None, exc: OSError | None) -> ShipDirError:
    why = f": {exc.strerror or type(exc).__name__}" if exc is not None else ""
    return ShipDirError(f"cannot {what} the files shipped to Spark under {_where(base, setting)}"
                        f"{why}", hint=_ship_hint(setting or SPARK_LOCAL_DIR))


class ShipDir:
    """A directory of files to ship, owned (locked) by this process until ``close``. Stale
    directories of dead owners under the same ``base`` are removed first. A ``base`` that cannot
    hold it is a ``ShipDirError`` naming the setting, not an OSError on a path the user never
    gave."""

    def __init__(self, base: Path | str | None = None, setting: str = SPARK_LOCAL_DIR) -> None:
        self.base = Path(base) if base else Path(tempfile.gettempdir())
        given = setting if base else None  # what the messages name
        self.removed_stale = remove_stale(self.base)
        try:
            claim = Path(tempfile.mkdtemp(prefix=_CLAIMING, dir=self.base))
        except OSError as exc:
            raise _ship_error("make a directory for", self.base, given, exc) from exc
        fd = _take_lock(claim / _LOCK, create=True)
        if fd is None:  # our own new directory: only a broken file system refuses the lock
            shutil.rmtree(claim, ignore_errors=True)
            raise _ship_error("lock a directory for", self.base, given, None)
        self.path = self.base / (PREFIX + claim.name.removeprefix(_CLAIMING))
        try:
            os.rename(claim, self.path)
        except OSError as exc:
            _release(claim, fd)
            raise _ship_error("make a directory for", self.base, given, exc) from exc
        self.setting = given
        # Removed on close, or when this object is collected or the interpreter exits.
        self._finalizer = weakref.finalize(self, _release, self.path, fd)

    def write_error(self, exc: OSError) -> ShipDirError:
        """What a shipped file that cannot be written (a full disk) is said as."""
        return _ship_error("write", self.base, self.setting, exc)

    def close(self) -> None:
        self._finalizer()

    @property
    def closed(self) -> bool:
        return not self._finalizer.alive


class Shipment:
    """Driver-side Arrow tables made into DataFrames whose partitions read them from files the
    driver serves (``SparkContext.addFile``; in local mode the executors read the driver's own
    files, which they can reach, instead of copies), removed from the driver's disk on ``close``.

    ``createDataFrame`` of a local table keeps it as rows in the driver JVM and sends them inside
    the tasks: the 4.2 M candidate codes of 100k x 100k became two tasks of 100 MB each, and
    the scoring join's first stage stalled in garbage collection of a 2 GB heap (old generation
    full, back-to-back full collections). A file is streamed from disk by the driver's file
    server, each partition reads its own part, and the JVM heap never holds the rows.

    The files are in the context's one ``ShipDir`` under the first of Spark's local directories
    that can hold it (the system's temporary directory if none is set). They stay as long as the
    SparkContext, not the shipment: every executor fetches every file ever added to the context
    at its next task, whatever job the task belongs to (an executor that ran none of this
    shipment's tasks, one added later, or, in local mode, any task after a shipment whose job
    failed before reading it), and a file gone from the driver fails that task. Spark's own
    shuffle files hold the same rows for the context's life, so this keeps nothing longer than
    Spark does. :func:`release_shipped` removes them when the context stops
    (`accord.link.spark.spark_engine` calls it); at interpreter exit they go too,
    and after a killed driver the next shipment removes them.
    """

    def __init__(self, session: Any, rows_per_part: int = 1 << 20) -> None:
        self.session, self.rows_per_part = session, rows_per_part
        self.ship_dir = _context_dir(session.sparkContext)

    @property
    def dir(self) -> Path:
        return self.ship_dir.path

    @property
    def direct(self) -> str | None:
        """The directory tasks read the shipped files from themselves (local mode: the
        executors share the driver's disk), or None: the executors fetch copies (`addFile`).
        In local mode addFile copied each file into Spark's userFiles directory first (at
        addFile and at the executor's next task): the same bytes twice on one disk (~7 GB at
        10M a side: codes and every blocking pass's records)."""
        return str(self.dir) if str(self.session.sparkContext.master).startswith("local") else None

    def _publish(self, name: str) -> None:
        if self.direct is None:
            self.session.sparkContext.addFile(str(self.dir / name))

    def array(self, values: np.ndarray) -> ShippedArray:
        """``values`` as a file every task can memory-map (`ShippedArray`)."""
        name = f"accord-{uuid.uuid4().hex}.npy"
        try:
            np.save(self.dir / name, np.ascontiguousarray(values), allow_pickle=False)
        except OSError as exc:
            raise self.ship_dir.write_error(exc) from exc
        self._publish(name)
        return ShippedArray(name, self.direct, tuple(values.shape))

    def table(self, table: pa.Table) -> Any:
        return self.rows(table.schema, table.num_rows, lambda start, stop:
                         table.slice(start, stop - start))

    def rows(self, schema: pa.Schema, num_rows: int,
             part: Callable[[int, int], pa.Table]) -> Any:
        """A DataFrame of ``num_rows`` rows that ``part(start, stop)`` makes a slice at a time
        (of ``schema``): each file is written from its own slice, so the driver never holds
        the whole table (blocking's records at 10M a side would be gigabytes)."""
        from pyspark.sql.pandas.types import from_arrow_schema, to_arrow_schema

        sc = self.session.sparkContext
        spark_schema = from_arrow_schema(schema)
        # The Arrow types Spark expects back from a partition (large or dictionary strings
        # become plain strings, as createDataFrame would make them).
        target = to_arrow_schema(spark_schema)
        tag = uuid.uuid4().hex
        # At least two parts a core, so that the stage reading them keeps every core busy.
        parts = max(2 * sc.defaultParallelism, -(-num_rows // self.rows_per_part))
        rows = max(1, -(-num_rows // parts))
        names = []
        for k, start in enumerate(range(0, max(num_rows, 1), rows)):
            name = f"accord-{tag}-{k}.arrow"
            piece = part(start, min(start + rows, num_rows)).cast(target)
            try:
                with pa.OSFile(str(self.dir / name), "wb") as sink, \
                        pa.ipc.new_file(sink, target) as writer:
                    writer.write_table(piece)
            except OSError as exc:
                raise self.ship_dir.write_error(exc) from exc
            del piece
            self._publish(name)
            names.append(name)
        return (self.session.range(0, len(names), 1, len(names))
                .mapInArrow(_read_parts(names, self.direct), spark_schema))


# The context's Python object carries the one directory of all its shipments (an attribute, not
# a registry of this module): it must outlive each shipment and go with the context.
_HELD = "_accord_ship_dir"


def _context_dir(sc: Any) -> ShipDir:
    """The SparkContext's shipment directory (one lock, one stale sweep), made on first use in
    the first of Spark's local directories that can hold it (Spark too skips a listed directory
    it cannot create, and starts if any one works)."""
    held: ShipDir | None = getattr(sc, _HELD, None)
    if held is None or held.closed:
        held = ship_dir_in(configured_local_dirs(_driver_env(sc), sc.getConf().get(SPARK_LOCAL_DIR)))
        setattr(sc, _HELD, held)
    return held


def _driver_env(sc: Any) -> Callable[[str], str | None]:
    """The driver JVM's environment, which Spark reads (its launcher may have set SPARK_LOCAL_DIRS
    from spark-env.sh); this process's where the JVM cannot be asked."""
    def getenv(name: str) -> str | None:
        try:
            value = sc._jvm.System.getenv(name)
        except Exception:  # no JVM gateway here (a remote session): the same variables as ours
            return os.environ.get(name)
        return None if value is None else str(value)

    return getenv


def ship_dir_in(local_dirs: LocalDirs | str | None) -> ShipDir:
    """A ``ShipDir`` in the first of ``local_dirs`` (or of a ``spark.local.dir`` setting:
    comma-separated) that can hold one; the system's temporary directory if none is set.
    None can: a ``ShipDirError`` naming the first."""
    local = local_dirs if isinstance(local_dirs, LocalDirs) else LocalDirs.of(local_dirs)
    if not local.dirs:
        return ShipDir(None)
    failed: list[ShipDirError] = []
    for base in local.dirs:
        try:
            return ShipDir(base, local.setting)
        except ShipDirError as exc:
            failed.append(exc)
    if len(failed) == 1:
        raise failed[0]
    raise ShipDirError(f"{failed[0].message}; nor under the other {len(failed) - 1} "
                       f"directories of {local.setting}", hint=_ship_hint(local.setting))


def release_shipped(sc: Any) -> int:
    """Remove the shipped files of the SparkContext ``sc``, once it has stopped (or when no
    executor can still fetch them). Returns how many directories went (0 or 1)."""
    held: ShipDir | None = getattr(sc, _HELD, None)
    if held is None or held.closed:
        return 0
    held.close()
    return 1


def _shipped_path(name: str, folder: str | None) -> str:
    """Where a task finds a shipped file: in ``folder`` (local mode: the driver's own
    directory) or among the executor's copies (``SparkFiles``)."""
    if folder:
        return os.path.join(folder, name)
    from pyspark import SparkFiles

    return str(SparkFiles.get(name))


@dataclass(frozen=True)
class ShippedArray:
    """A numpy array shipped as one ``.npy`` file, which a task opens memory-mapped and reads
    the rows it needs from (`Shipment.array`): the pages are the operating system's, shared by
    every worker on a machine, and no row travels in a shuffle."""

    name: str
    folder: str | None
    shape: tuple[int, ...]

    def open(self) -> np.ndarray:
        return np.load(_shipped_path(self.name, self.folder), mmap_mode="r")


def _read_parts(names: list[str], folder: str | None) -> Callable[..., Iterator[pa.RecordBatch]]:
    """A partition's reader of its shipped files (see `_shipped_path`)."""
    def read(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            for part in batch.column("id").to_pylist():
                with pa.OSFile(_shipped_path(names[part], folder), "rb") as source:
                    t = pa.ipc.open_file(source).read_all()
                yield from t.combine_chunks().to_batches(max_chunksize=1 << 16)

    return read


def release_finished(sc: Any) -> None:
    """Collect the driver JVM's garbage now. Spark's ContextCleaner removes a shuffle's files
    (and a dropped checkpoint's blocks) only once the JVM has collected the plan objects that
    referenced them, by default on a periodic collection every 30 minutes: at 10M a side the
    finished passes' files would fill the disk before that. A remote driver (no gateway here)
    is left to its own collections. Python's collection first: pyspark's DataFrames sit in
    reference cycles, and the JVM keeps the plans of Python objects not yet collected."""
    gc.collect()
    with suppress(Exception):
        sc._jvm.System.gc()


def drop_checkpoint(frame: Any) -> None:
    """Remove a locally checkpointed DataFrame's blocks now; the frame, and anything planned
    from it and not itself checkpointed since, can no longer be read. Not left to Spark's
    ContextCleaner: the driver JVM was seen to keep the levels' checkpoint and the last two
    checkpoints of a run of passes referenced after scoring returned (no Python object held
    them; the cause inside the JVM was not found), which at 10M a side is ~5 GB of the local
    disk each. A frame whose plan is not a checkpoint, or a remote driver's, is left alone."""
    jdf = getattr(frame, "_jdf", None)
    if jdf is None:
        return
    plan = jdf.queryExecution().analyzed()
    if plan.getClass().getSimpleName() != "LogicalRDD":
        return
    from py4j.protocol import Py4JError

    rdd = plan.rdd()
    try:
        # The context's removal, not RDD.unpersist: the same blocks go, without the warning
        # (meant for lineage that might be recomputed) that a user would read as a fault.
        rdd.context().unpersistRDD(rdd.id(), False)
    except Py4JError:  # a Spark without it (the method is Spark-internal)
        rdd.unpersist(False)


@contextmanager
def shipment(session: Any) -> Iterator[Shipment]:
    """A shipment for the work in the block; its files stay with the context (see
    ``Shipment``), so leaving the block removes nothing."""
    yield Shipment(session)
