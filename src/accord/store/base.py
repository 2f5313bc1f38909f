"""The store interface. Stages call these methods only; each engine implements a few primitives.

Splink's shape: the flow lives here in concrete methods, engines supply `query`, `execute`,
`write_table`, `transaction`. SQL is written in DuckDB's dialect with bound parameters; an engine
whose dialect differs translates it (the PostgreSQL backend will use sqlglot).
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


@dataclass(frozen=True)
class AddOutcome:
    batch_id: str
    partner: str
    added: int
    replaced: int
    duplicate: bool


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class Store(ABC):
    """A hub store. Use as a context manager or call ``close()``."""

    engine: str = "abstract"

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

    def scalar(self, sql: str, params: Params = ()) -> Any:
        t = self.query(sql, params)
        return t.column(0)[0].as_py() if t.num_rows else None

    def data_version(self) -> str:
        """Changes whenever the data change: a digest of the batches currently in the store."""
        if not self.table_exists("batches"):
            return "empty"
        ids = self.query("SELECT batch_id, replaced FROM batches ORDER BY batch_id").to_pylist()
        h = hashlib.sha256(json.dumps(ids, sort_keys=True).encode())
        return h.hexdigest()[:16]

    def batches(self) -> list[dict[str, Any]]:
        if not self.table_exists("batches"):
            return []
        return self.query("SELECT * FROM batches ORDER BY added_at, batch_id").to_pylist()

    def audit(self, actor: str, action: str, detail: dict[str, Any]) -> None:
        self.ensure_meta()
        self.execute("INSERT INTO audit VALUES (?, ?, ?, ?)",
                     [now_iso(), actor, action, json.dumps(detail, sort_keys=True, default=str)])

    def record_release(self, kind: str, parameters: dict[str, Any], results: dict[str, Any],
                       actor: str) -> str:
        """Every release is on record: method, parameters, data version, results, who ran it."""
        self.ensure_meta()
        release_id = f"{kind}-{uuid.uuid4().hex[:12]}"
        self.execute(
            "INSERT INTO releases VALUES (?, ?, ?, ?, ?, ?, ?)",
            [release_id, kind, now_iso(), actor, self.data_version(),
             json.dumps(parameters, sort_keys=True, default=str),
             json.dumps(results, sort_keys=True, default=str)],
        )
        return release_id

    def releases(self) -> list[dict[str, Any]]:
        if not self.table_exists("releases"):
            return []
        return self.query("SELECT * FROM releases ORDER BY created_at").to_pylist()
