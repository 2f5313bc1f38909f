"""The store interface. Stages call these methods only; each engine implements a few primitives.

Splink's shape: the flow lives here in concrete methods, engines supply `query`, `execute`,
`write_table`, `transaction`. SQL is written in DuckDB's dialect with bound parameters; an engine
whose dialect differs translates it. The audit, release and ledger statements are plain standard
SQL (named columns, ``?`` parameters); engines must call ``_after_commit()`` after each COMMIT.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from abc import ABC, abstractmethod
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import pyarrow as pa

Params = Sequence[Any]

META_TABLES_SQL = (
    """CREATE TABLE IF NOT EXISTS batches (
        batch_id VARCHAR PRIMARY KEY, partner VARCHAR NOT NULL, standard_version VARCHAR NOT NULL,
        rows_in BIGINT NOT NULL, accepted BIGINT NOT NULL, quarantined BIGINT NOT NULL,
        blank_rows BIGINT NOT NULL, replaced BIGINT NOT NULL, data_sha256 VARCHAR NOT NULL UNIQUE,
        key_id VARCHAR NOT NULL, created_at VARCHAR NOT NULL, added_at VARCHAR NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS releases (
        release_id VARCHAR PRIMARY KEY, kind VARCHAR NOT NULL, created_at VARCHAR NOT NULL,
        actor VARCHAR NOT NULL, data_version VARCHAR NOT NULL, parameters VARCHAR NOT NULL,
        results VARCHAR NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS audit (
        occurred_at VARCHAR NOT NULL, actor VARCHAR NOT NULL, action VARCHAR NOT NULL, detail VARCHAR NOT NULL)""",
)

# Named columns: the table also has ``row_order``, which the database fills.
INSERT_BATCH_SQL = (
    "INSERT INTO batches (batch_id, partner, standard_version, rows_in, accepted, quarantined, "
    "blank_rows, replaced, data_sha256, key_id, created_at, added_at) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")


@dataclass(frozen=True)
class AddOutcome:
    batch_id: str
    partner: str
    added: int
    replaced: int
    duplicate: bool


# Times are kept to the second, and ids are random: rows written in one second need another
# key for the order they were written in. Every listed table gets ``row_order`` from one hub-wide
# sequence, filled by the database at INSERT (a column default, so inserts need not name it).
ROW_ORDER = "row_order"
ROW_ORDER_SEQUENCE = "hub_row_order"


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def in_row_order(*then: str, newest_first: bool = False) -> str:
    """An ORDER BY list: the order rows were written in. Rows of a hub made before ``row_order``
    existed have none: they come first (last when newest first), by the columns ``then``."""
    if newest_first:
        return ", ".join([f"{ROW_ORDER} DESC NULLS LAST", *(f"{c} DESC" for c in then)])
    return ", ".join([f"{ROW_ORDER} NULLS FIRST", *then])


class Store(ABC):
    """A hub store. Use as a context manager or call ``close()``."""

    engine: str = "abstract"

    def __init__(self) -> None:
        """This connection's own state (engines call it first), explicit rather than cached in
        ``__dict__`` by whoever needs it: never shared between stores, gone with the store."""
        self._in_tx = False  # engines set it while a transaction is open
        # Tables seen with their ``row_order`` column outside a transaction (``has_row_order``):
        # a committed column is never dropped, so the answer holds while the store is open.
        self._row_order_ready: set[str] = set()
        # accord.store.chain's: the chain key of a hub without a key file (in memory only), and
        # the entry written in the open transaction (its witness is written after COMMIT).
        self._chain_mem_key: bytes | None = None
        self._chain_pending: tuple[int, str] | None = None

    # ---- primitives each engine implements -------------------------------------------------
    @abstractmethod
    def query(self, sql: str, params: Params = ()) -> pa.Table:
        """Run a read-only statement and return its rows."""

    @abstractmethod
    def execute(self, sql: str, params: Params = ()) -> None:
        """Run a statement that changes the store."""

    @abstractmethod
    def write_table(self, name: str, table: pa.Table,
                    mode: Literal["replace", "append", "create"] = "append") -> None:
        """Write an Arrow table into a store table (creating it from the Arrow schema if needed)."""

    def append_parquet(self, name: str, path: Path) -> None:
        """Append a Parquet file to a table. Engines that read Parquet themselves stream it instead."""
        import pyarrow.parquet as pq

        self.write_table(name, pq.read_table(path))

    @abstractmethod
    def table_exists(self, name: str) -> bool: ...

    @abstractmethod
    def transaction(self) -> AbstractContextManager[None]:
        """All statements inside commit together or not at all."""

    @abstractmethod
    def close(self) -> None: ...

    # ---- shared logic ---------------------------------------------------------------------------
    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def ensure_meta(self) -> None:
        for sql in META_TABLES_SQL:
            self.execute(sql)
        for table in ("batches", "releases", "audit"):
            self.ensure_row_order(table)

    def has_row_order(self, table: str) -> bool:
        """Whether ``table`` (which exists) has its ``row_order`` column yet. Remembered once seen
        outside a transaction (an ALTER inside one that then rolls back is undone)."""
        if table in self._row_order_ready:
            return True
        found = ROW_ORDER in self.query(f"SELECT * FROM {table} WHERE 1 = 0").column_names
        if found and not self._in_tx:
            self._row_order_ready.add(table)
        return found

    def ensure_row_order(self, table: str) -> None:
        """Give ``table`` (which exists) its ``row_order`` column, filled from the hub's sequence
        at each INSERT. The migration of an older hub: its rows keep a null ``row_order``."""
        if self.has_row_order(table):
            return
        with self.transaction():
            self.execute(f"CREATE SEQUENCE IF NOT EXISTS {ROW_ORDER_SEQUENCE}")
            self.execute(f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS {ROW_ORDER} BIGINT")
            self.execute(f"ALTER TABLE {table} ALTER COLUMN {ROW_ORDER} "
                         f"SET DEFAULT nextval('{ROW_ORDER_SEQUENCE}')")

    def order_sql(self, table: str, *then: str, newest_first: bool = False) -> str:
        """The ORDER BY list for ``table`` in the order its rows were written: ``row_order``,
        then ``then``; by ``then`` alone on an older hub read without migrating it."""
        if self.has_row_order(table):
            return in_row_order(*then, newest_first=newest_first)
        return ", ".join(f"{c} DESC" if newest_first else c for c in then)

    def scalar(self, sql: str, params: Params = ()) -> Any:
        t = self.query(sql, params)
        return t.column(0)[0].as_py() if t.num_rows else None

    def data_version(self) -> str:
        """Changes whenever the data change: a digest of the batches currently in the store."""
        if not self.table_exists("batches"):
            return "empty"
        ids = self.query("SELECT batch_id, replaced FROM batches ORDER BY batch_id").to_pylist()
        if self.table_exists("withdrawals"):  # a partner's withdrawal (accord.store.withdraw)
            ids += self.query("SELECT withdrawal_id FROM withdrawals ORDER BY withdrawal_id").to_pylist()
        h = hashlib.sha256(json.dumps(ids, sort_keys=True).encode())
        return h.hexdigest()[:16]

    def batches(self) -> list[dict[str, Any]]:
        """The batches received, each with its counts as of now: ``loaded`` (= ``accepted``, the
        records the batch brought), ``withdrawn`` (taken out since by its partner), ``superseded``
        (replaced since by a later batch of the same partner) and ``current`` (its records in the
        hub now, what releases are computed from): loaded = withdrawn + superseded + current."""
        if not self.table_exists("batches"):
            return []
        from accord.store.withdraw import withdrawn_per_batch

        rows = self.query("SELECT * FROM batches ORDER BY "
                          + self.order_sql("batches", "added_at", "batch_id")).to_pylist()
        current: dict[str, int] = {}
        if self.table_exists("records"):
            current = {str(r["batch_id"]): int(r["n"]) for r in self.query(
                "SELECT batch_id, count(*) AS n FROM records GROUP BY batch_id").to_pylist()}
        withdrawn = withdrawn_per_batch(self)
        for r in rows:
            loaded, now, gone = int(r["accepted"]), current.get(r["batch_id"], 0), withdrawn.get(r["batch_id"], 0)
            r.update(loaded=loaded, withdrawn=gone, current=now, superseded=max(0, loaded - gone - now))
        return rows

    # ---- the tamper-evident record: audit, releases (and the privacy ledger) -------------------
    # Every row written here is chained in the same transaction (see accord.store.chain); the
    # inserts name their columns and bind every value, plain SQL any engine runs.
    def audit(self, actor: str, action: str, detail: dict[str, Any]) -> None:
        self.ensure_meta()
        row = {"occurred_at": now_iso(), "actor": actor, "action": action,
               "detail": json.dumps(detail, sort_keys=True, default=str)}
        self.insert_chained("audit", row)

    def record_release(self, kind: str, parameters: dict[str, Any], results: dict[str, Any],
                       actor: str) -> str:
        """Every release is on record: method, parameters, data version, results, who ran it.

        Refused (exit 3) while the hub's chain is broken: nothing is recorded, and the caller's
        transaction rolls back."""
        self.ensure_meta()
        release_id = f"{kind}-{uuid.uuid4().hex[:12]}"
        row = {"release_id": release_id, "kind": kind, "created_at": now_iso(), "actor": actor,
               "data_version": self.data_version(),
               "parameters": json.dumps(parameters, sort_keys=True, default=str),
               "results": json.dumps(results, sort_keys=True, default=str)}
        with self.transaction():
            self.require_intact()
            self.insert_chained("releases", row)
        return release_id

    def insert_chained(self, source: str, row: dict[str, Any],
                       state: dict[str, Any] | None = None) -> None:
        """Insert ``row`` (its keys name the columns) into the chained table ``source`` and chain
        it, in one transaction. The chain's lock is taken before the INSERT, so the ``row_order``
        the database gives the row follows the chain's order between server processes."""
        with self.transaction():
            self.lock_chain()
            self.execute(f"INSERT INTO {source} ({', '.join(row)}) "
                         f"VALUES ({', '.join('?' for _ in row)})", list(row.values()))
            self.chain_append(source, row, state)

    def chain_append(self, source: str, row: dict[str, Any],
                     state: dict[str, Any] | None = None) -> None:
        """Chain a row just inserted into ``source`` (same transaction); ``state`` is the privacy
        ledger's state after it (None: unchanged)."""
        from accord.store import chain

        with self.transaction():
            chain.append(self, source, row, state, now_iso())

    def lock_chain(self) -> None:
        """Hold the hub's write lock until the current transaction ends (call inside one), so
        a writer that reads the chain's head (and the ledger's state) sees every commit before
        it. A DuckDB file is held by one process, whose writes conflict rather than interleave:
        nothing to do. PostgreSQL overrides this."""
        return None

    def require_intact(self) -> None:
        """Raise LedgerTampered (exit 3) if any chained row or chain entry was edited, deleted or
        reordered outside Accord."""
        from accord.store import chain

        # Under the write lock: the check reads the chain and each chained table in separate
        # statements, and a writer committing between them (another server process) would look
        # like a row missing from the chain. Holding the lock, no chained write can commit.
        with self.transaction():
            self.lock_chain()
            chain.require_intact(self)

    def chain_head(self) -> dict[str, Any] | None:
        """The chain's last entry ``{"seq", "mac"}``: releases write it into their output."""
        from accord.store import chain

        return chain.head(self)

    def _after_commit(self) -> None:
        """Engines call this after each COMMIT: the head is then also written outside the
        database (next to the hub key), so entries cut off the end are noticed."""
        from accord.store import chain

        chain.after_commit(self)

    def releases(self) -> list[dict[str, Any]]:
        if not self.table_exists("releases"):
            return []
        return self.query("SELECT * FROM releases ORDER BY "
                          + self.order_sql("releases", "created_at", "release_id")).to_pylist()
