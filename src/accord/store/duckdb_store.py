"""The embedded default: one DuckDB file, no server."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Literal

import duckdb
import pyarrow as pa

from accord.errors import StoreError
from accord.store.base import Params, Store


def _quote(name: str) -> str:
    if not name.replace("_", "").isalnum():
        raise StoreError(f"invalid table name '{name}'")
    return f'"{name}"'


# A path that is a directory, an empty or foreign file: what to give instead.
_HUB_HINT = ("point --hub (or $ACCORD_HUB) at the file `accord hub add` created, or at a new path "
             "ending in .duckdb")


class DuckDBStore(Store):
    engine = "duckdb"

    def __init__(self, path: Path | str, read_only: bool = False) -> None:
        super().__init__()
        self.path = Path(path) if str(path) != ":memory:" else None
        try:
            self._con = duckdb.connect(str(path), read_only=read_only)
        except duckdb.IOException as exc:
            msg = str(exc).splitlines()[0]
            if "lock" in msg.lower():
                raise StoreError(f"the hub {path} is in use by another Accord process",
                                 hint="wait for it to finish, then try again") from None
            raise StoreError(f"cannot open the hub {path}: {msg}", hint=_HUB_HINT) from None
        except duckdb.Error as exc:
            raise StoreError(f"{path} is not a usable DuckDB hub file ({type(exc).__name__})",
                             hint=_HUB_HINT) from None
        if self.path is not None and self._con.execute(
                "SELECT path FROM duckdb_databases() WHERE database_name = current_database()"
        ).fetchall() in ([], [(None,)]):
            # DuckDB opens an existing .csv, .parquet or .json file as an in-memory database
            # with a view of the file: a hub "added to" there kept nothing, silently.
            self._con.close()
            raise StoreError(f"{path} is not a hub file (not a DuckDB database)", hint=_HUB_HINT)

    def query(self, sql: str, params: Params = ()) -> pa.Table:
        rel = self._con.sql(sql, params=list(params)) if params else self._con.sql(sql)
        return rel.to_arrow_table() if rel is not None else pa.table({})

    def execute(self, sql: str, params: Params = ()) -> None:
        # DuckDB 2 keeps a statement's result open until it is read; read it so the connection
        # is free for the next statement.
        self._con.execute(sql, list(params)).fetchall()

    def write_table(self, name: str, table: pa.Table,
                    mode: Literal["replace", "append", "create"] = "append") -> None:
        q = _quote(name)
        view = f"_accord_src_{name}"
        self._con.register(view, table)
        try:
            if mode == "replace":
                self.execute(f"CREATE OR REPLACE TABLE {q} AS SELECT * FROM {view}")
            elif mode == "create" or not self.table_exists(name):
                self.execute(f"CREATE TABLE IF NOT EXISTS {q} AS SELECT * FROM {view} LIMIT 0")
                if mode != "create":
                    self.execute(f"INSERT INTO {q} SELECT * FROM {view}")
            else:
                self.execute(f"INSERT INTO {q} BY NAME SELECT * FROM {view}")
        finally:
            self._con.unregister(view)

    def append_parquet(self, name: str, path: Path) -> None:
        # DuckDB reads the file itself, in parallel and without holding it in Python memory.
        q = _quote(name)
        if not self.table_exists(name):
            self.execute(f"CREATE TABLE {q} AS SELECT * FROM read_parquet(?) LIMIT 0", [str(path)])
        self.execute(f"INSERT INTO {q} BY NAME SELECT * FROM read_parquet(?)", [str(path)])

    def table_exists(self, name: str) -> bool:
        row = self._con.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = ?", [name]
        ).fetchall()[0]
        return bool(row and row[0])

    @contextmanager
    def transaction(self) -> Iterator[None]:
        if self._in_tx:  # nested use joins the outer transaction
            yield
            return
        self.execute("BEGIN TRANSACTION")
        self._in_tx = True
        try:
            yield
        except BaseException:
            self.execute("ROLLBACK")
            raise
        else:
            self.execute("COMMIT")
            self._after_commit()
        finally:
            self._in_tx = False

    def close(self) -> None:
        self._con.close()
