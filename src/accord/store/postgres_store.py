"""The shared hub: PostgreSQL behind the same narrow `Store` interface (psycopg 3).

The stages write their SQL once, in DuckDB's dialect. Here every statement that changes the store
runs in PostgreSQL (translated by sqlglot), so PostgreSQL is the system of record: transactions,
locks and crash recovery are its own. Reads take one of two routes, decided from the statement's
syntax tree (`_portable`):

- portable SQL (the meta tables, look-ups, `SELECT * FROM records`) runs in PostgreSQL;
- DuckDB-only analytics (QUALIFY, list functions, UNNEST, list indexing: the stats, overlap and
  person-level queries) runs in process, in DuckDB, over Arrow copies of the tables it reads,
  taken on this connection (so inside a transaction they include its own writes). The copies are
  kept while PostgreSQL's snapshot shows no other commit and this store wrote nothing, so a run of
  twenty stats tables reads the records once (benchmarks/results/postgres_hub.md has the figures).

Arrow types round-trip exactly: PostgreSQL has no fixed-size binary or unsigned integers, so the
Arrow schema of every table written from Arrow is kept in `_accord_arrow_schemas` and results are
cast back to it. Bulk loads use COPY in binary format, never row inserts. Tables whose name starts
with an underscore are scratch space of one transaction and are created TEMPORARY here, so
concurrent hub operations do not collide on them.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import sqlglot
from sqlglot import exp

from accord.errors import StoreError
from accord.store.base import Params, Store
from accord.store.urls import normalise_url, redact

_SCHEMAS_TABLE = "_accord_arrow_schemas"
_COPY_BATCH = 65_536
_FETCH_BATCH = 100_000

# Syntax-tree node types whose meaning is the same in DuckDB and PostgreSQL. A read made only of
# these runs in PostgreSQL; anything else (list functions, QUALIFY, UNNEST, list indexing, ...)
# runs in process in DuckDB, where the stages' SQL means exactly what it says.
_PORTABLE = frozenset({
    "Select", "From", "Where", "Column", "Identifier", "Table", "TableAlias", "Alias", "Placeholder",
    "Literal", "Star", "EQ", "NEQ", "GT", "GTE", "LT", "LTE", "And", "Or", "Not", "Is", "Null",
    "Boolean", "In", "Tuple", "Like", "Between", "Order", "Ordered", "Limit", "Offset", "Count",
    "Sum", "Min", "Max", "Avg", "Coalesce", "Cast", "DataType", "Join", "Group", "Having", "Distinct",
    "Paren", "Subquery", "DPipe", "Add", "Sub", "Mul", "Div", "Neg", "Case", "If", "Exists",
    "Union", "Var", "Window", "RowNumber", "Lower", "Upper", "Length",
})


def _quote(name: str) -> str:
    if not name.replace("_", "").isalnum():
        raise StoreError(f"invalid table name '{name}'")
    return f'"{name}"'


# ---- SQL: translation and routing ----------------------------------------------------------------
@lru_cache(maxsize=1024)
def _parse(sql: str) -> exp.Expr:
    try:
        return sqlglot.parse_one(sql, read="duckdb")
    except sqlglot.errors.ParseError as err:
        raise StoreError(f"the store cannot parse a statement: {str(err).splitlines()[0]}") from None


@lru_cache(maxsize=1024)
def to_postgres(sql: str, with_params: bool) -> str:
    """DuckDB-dialect SQL as PostgreSQL, with psycopg's `%s` placeholders."""
    tree = _parse(sql).copy()
    marker = "accord_param_7f3c"
    tree = tree.transform(lambda n: exp.var(marker) if isinstance(n, exp.Placeholder) else n)
    out = tree.sql(dialect="postgres")
    if with_params:  # psycopg reads % as the start of a placeholder when parameters are given
        out = out.replace("%", "%%")
    return out.replace(marker, "%s")


@lru_cache(maxsize=1024)
def _portable(sql: str) -> bool:
    tree = _parse(sql)
    for node in tree.walk():
        if type(node).__name__ not in _PORTABLE:
            return False
        # PostgreSQL 15 needs an alias on every subquery in FROM; DuckDB does not.
        if isinstance(node, exp.Subquery) and isinstance(node.parent, exp.From | exp.Join) \
                and not node.alias:
            return False
    return True


@lru_cache(maxsize=1024)
def _tables_read(sql: str) -> tuple[str, ...]:
    tree = _parse(sql)
    ctes = {c.alias_or_name for c in tree.find_all(exp.CTE)}
    return tuple(sorted({t.name for t in tree.find_all(exp.Table) if t.name and t.name not in ctes}))


# ---- types ---------------------------------------------------------------------------------------
def _pg_type(t: pa.DataType) -> str:
    """PostgreSQL column type for an Arrow type (exact types come back from `_accord_arrow_schemas`)."""
    if pa.types.is_dictionary(t):
        return _pg_type(t.value_type)
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return "text"
    if pa.types.is_boolean(t):
        return "boolean"
    if pa.types.is_int8(t) or pa.types.is_int16(t) or pa.types.is_uint8(t):
        return "smallint"
    if pa.types.is_int32(t) or pa.types.is_uint16(t):
        return "integer"
    if pa.types.is_int64(t) or pa.types.is_uint32(t):
        return "bigint"
    if pa.types.is_uint64(t) or pa.types.is_decimal(t):
        return "numeric"
    if pa.types.is_float16(t) or pa.types.is_float32(t):
        return "real"
    if pa.types.is_float64(t):
        return "double precision"
    if pa.types.is_date(t):
        return "date"
    if pa.types.is_timestamp(t):
        return "timestamptz" if t.tz else "timestamp"
    if pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_fixed_size_binary(t):
        return "bytea"
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        inner = t.value_type
        if pa.types.is_list(inner) or pa.types.is_large_list(inner):
            raise StoreError("the PostgreSQL hub cannot hold lists of lists")
        return f"{_pg_type(inner)}[]"
    raise StoreError(f"the PostgreSQL hub has no column type for Arrow {t}")


_ARROW_OF_PG: dict[str, pa.DataType] = {
    "bool": pa.bool_(), "int2": pa.int16(), "int4": pa.int32(), "int8": pa.int64(),
    "float4": pa.float32(), "float8": pa.float64(), "text": pa.string(), "varchar": pa.string(),
    "bpchar": pa.string(), "name": pa.string(), "json": pa.string(), "jsonb": pa.string(),
    "uuid": pa.string(), "date": pa.date32(), "timestamp": pa.timestamp("us"),
    "timestamptz": pa.timestamp("us", tz="UTC"), "bytea": pa.binary(),
}


def _arrow_of_pg(type_name: str | None) -> pa.DataType | None:
    if type_name is None:
        return None
    if type_name.startswith("_"):
        inner = _ARROW_OF_PG.get(type_name[1:])
        return pa.list_(inner) if inner is not None else None
    return _ARROW_OF_PG.get(type_name)


def _to_python(value: Any) -> Any:
    # uuid and json values (if a hand-made table has them) become text, as their Arrow type says
    if value is None or isinstance(value, str | int | float | bool | bytes | list):
        return value
    if isinstance(value, memoryview):
        return bytes(value)
    return value


class PostgresStore(Store):
    engine = "postgres"

    def __init__(self, url: str, read_only: bool = False) -> None:
        import psycopg

        self.url = normalise_url(url)
        self._psycopg = psycopg
        try:
            self._con = psycopg.connect(self.url, autocommit=True, connect_timeout=10)
        except psycopg.Error as exc:
            reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
            raise StoreError(f"cannot connect to the PostgreSQL hub {redact(self.url)}: {reason}",
                             hint="check that the server runs, the database exists and the URL's "
                                  "user may connect (see docs/hub.md)") from None
        if read_only:
            self._con.execute("SET default_transaction_read_only = on")
        self._in_tx = False
        self._writes = 0  # bumped by every change made through this store
        self._duck: duckdb.DuckDBPyConnection | None = None
        self._copies: dict[str, tuple[tuple[str, int], pa.Table]] = {}
        self._temp_schemas: dict[str, pa.Schema] = {}

    # ---- running SQL --------------------------------------------------------------------------
    def _run(self, sql: str, params: Params = ()) -> Any:
        """Execute PostgreSQL SQL; database errors become StoreError (never with values)."""
        try:
            return self._con.execute(sql, list(params) if params else None)
        except self._psycopg.Error as exc:
            diag = getattr(exc, "diag", None)
            primary = getattr(diag, "message_primary", None) or type(exc).__name__
            raise StoreError(f"the PostgreSQL hub refused a statement: {primary}",
                             hint="if this persists, check the server's log") from None

    def query(self, sql: str, params: Params = ()) -> pa.Table:
        if not _portable(sql):
            return self._query_in_process(sql, params)
        tables = _tables_read(sql)
        cur = self._run(to_postgres(sql, bool(params)), params)
        return self._cast_known(self._fetch_arrow(cur), tables)

    def execute(self, sql: str, params: Params = ()) -> None:
        self._writes += 1
        self._run(to_postgres(sql, bool(params)), params)

    def _fetch_arrow(self, cur: Any) -> pa.Table:
        if cur.description is None:
            return pa.table({})
        names = [d.name for d in cur.description]
        types: list[pa.DataType | None] = []
        for d in cur.description:
            info = self._con.adapters.types.get(d.type_code)
            if info is None:
                types.append(None)
            elif d.type_code == info.array_oid:  # the registry answers an array's oid with its element
                types.append(_arrow_of_pg("_" + info.name))
            else:
                types.append(_arrow_of_pg(info.name))
        batches = []
        while True:
            rows = cur.fetchmany(_FETCH_BATCH)
            if not rows:
                break
            cols = list(zip(*rows, strict=True))
            arrays = [pa.array([_to_python(v) for v in col], type=t) if t is not None
                      else pa.array([_to_python(v) for v in col])
                      for col, t in zip(cols, types, strict=True)]
            batches.append(pa.table(arrays, names=names))
        if not batches:
            return pa.schema([pa.field(n, t or pa.string()) for n, t in zip(names, types, strict=True)]
                             ).empty_table()
        return pa.concat_tables(batches, promote_options="permissive") if len(batches) > 1 else batches[0]

    # ---- exact Arrow types --------------------------------------------------------------------
    def _stored_schema(self, name: str) -> pa.Schema | None:
        if name in self._temp_schemas:
            return self._temp_schemas[name]
        if not self.table_exists(_SCHEMAS_TABLE):
            return None
        cur = self._run(f"SELECT arrow_schema FROM {_SCHEMAS_TABLE} WHERE table_name = %s", [name])
        row = cur.fetchone()
        return pa.ipc.read_schema(pa.py_buffer(bytes(row[0]))) if row else None

    def _remember_schema(self, name: str, schema: pa.Schema) -> None:
        if name.startswith("_"):
            self._temp_schemas[name] = schema
            return
        self._run(f"CREATE TABLE IF NOT EXISTS {_SCHEMAS_TABLE} (table_name TEXT PRIMARY KEY, "
                  "arrow_schema BYTEA NOT NULL)")
        self._run(f"INSERT INTO {_SCHEMAS_TABLE} VALUES (%s, %s) ON CONFLICT (table_name) "
                  "DO UPDATE SET arrow_schema = EXCLUDED.arrow_schema",
                  [name, schema.remove_metadata().serialize().to_pybytes()])

    def _cast_known(self, table: pa.Table, tables: Iterable[str]) -> pa.Table:
        """Give columns named like a column of a table written from Arrow that table's exact type."""
        known: dict[str, pa.DataType] = {}
        for name in tables:
            schema = self._stored_schema(name)
            if schema is not None:
                for f in schema:
                    known.setdefault(f.name, f.type)
        if not known:
            return table
        fields = []
        for f in table.schema:
            want = known.get(f.name)
            fields.append(pa.field(f.name, want) if want is not None and want != f.type
                          and _castable(f.type, want) else f)
        target = pa.schema(fields)
        return table if target == table.schema else table.cast(target)

    # ---- in-process analytics -----------------------------------------------------------------
    def _token(self) -> tuple[str, int]:
        """Unchanged exactly while no other transaction committed and this store wrote nothing."""
        snapshot = self._run("SELECT pg_current_snapshot()::text").fetchone()[0]
        return str(snapshot), self._writes

    def _query_in_process(self, sql: str, params: Params) -> pa.Table:
        if self._duck is None:
            self._duck = duckdb.connect(":memory:")
        token = self._token()
        registered = []
        for name in _tables_read(sql):
            if not self.table_exists(name):
                continue  # DuckDB names the missing table in its own error
            cached = self._copies.get(name)
            if cached is None or cached[0] != token:
                cur = self._run(f"SELECT * FROM {_quote(name)}")
                cached = (token, self._cast_known(self._fetch_arrow(cur), [name]))
                self._copies[name] = cached
            self._duck.register(name, cached[1])
            registered.append(name)
        try:
            rel = self._duck.sql(sql, params=list(params)) if params else self._duck.sql(sql)
            return rel.to_arrow_table() if rel is not None else pa.table({})
        except duckdb.Error as exc:
            raise StoreError(f"the hub could not run an analysis: {str(exc).splitlines()[0]}") from None
        finally:
            for name in registered:
                self._duck.unregister(name)

    # ---- writing ------------------------------------------------------------------------------
    def _create(self, name: str, schema: pa.Schema, replace: bool) -> None:
        q = _quote(name)
        cols = ", ".join(f"{_quote(f.name)} {_pg_type(f.type)}" for f in schema)
        temp = "TEMPORARY " if name.startswith("_") else ""
        if replace:
            self._run(f"DROP TABLE IF EXISTS {q}")
        self._run(f"CREATE {temp}TABLE IF NOT EXISTS {q} ({cols})")
        if {"partner", "record_key"} <= set(schema.names) and not temp:
            # updates and withdrawals find a partner's records by key; so do the joins of link
            self._run(f'CREATE INDEX IF NOT EXISTS {_quote(name + "_partner_key")} ON {q} '
                      '("partner", "record_key")')
        self._remember_schema(name, schema)

    def _copy(self, name: str, schema: pa.Schema, batches: Iterable[pa.RecordBatch]) -> None:
        cols = ", ".join(_quote(n) for n in schema.names)
        types = [_pg_type(f.type) for f in schema]
        with self._con.cursor() as cur, cur.copy(
                f"COPY {_quote(name)} ({cols}) FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(types)
            for batch in batches:
                columns = [c.to_pylist() for c in batch.columns]
                for row in zip(*columns, strict=True):
                    copy.write_row(row)

    def write_table(self, name: str, table: pa.Table,
                    mode: Literal["replace", "append", "create"] = "append") -> None:
        self._writes += 1
        try:
            with self._con.transaction():  # a table is written whole or not at all
                if mode == "replace" or not self.table_exists(name):
                    self._create(name, table.schema, replace=mode == "replace")
                if mode != "create" and table.num_rows:
                    self._copy(name, table.schema, table.to_batches(_COPY_BATCH))
        except self._psycopg.Error as exc:
            raise StoreError(f"the PostgreSQL hub refused the rows for {name}: "
                             f"{type(exc).__name__}") from None

    def append_parquet(self, name: str, path: Path) -> None:
        # streamed batch by batch: a large contribution is never held whole in memory
        self._writes += 1
        source = pq.ParquetFile(path)
        schema = source.schema_arrow
        try:
            with self._con.transaction():
                if not self.table_exists(name):
                    self._create(name, schema, replace=False)
                self._copy(name, schema, source.iter_batches(batch_size=_COPY_BATCH))
        except self._psycopg.Error as exc:
            raise StoreError(f"the PostgreSQL hub refused the rows for {name}: "
                             f"{type(exc).__name__}") from None

    def table_exists(self, name: str) -> bool:
        row = self._run("SELECT to_regclass(%s) IS NOT NULL", [_quote(name)]).fetchone()
        return bool(row and row[0])

    @contextmanager
    def transaction(self) -> Iterator[None]:
        if self._in_tx:  # nested use joins the outer transaction, as on DuckDB
            yield
            return
        self._in_tx = True
        try:
            with self._con.transaction():
                yield
        finally:
            self._in_tx = False
            self._writes += 1  # a rollback undoes writes the copies may have seen

    def close(self) -> None:
        if self._duck is not None:
            self._duck.close()
        self._con.close()


def _castable(got: pa.DataType, want: pa.DataType) -> bool:
    if pa.types.is_binary(got):
        return pa.types.is_fixed_size_binary(want) or pa.types.is_large_binary(want)
    if pa.types.is_list(got) and (pa.types.is_list(want) or pa.types.is_large_list(want)):
        return _castable(got.value_type, want.value_type) or got.value_type == want.value_type
    if pa.types.is_integer(got):
        return pa.types.is_integer(want)
    if pa.types.is_floating(got):
        return pa.types.is_floating(want)
    if pa.types.is_string(got):
        return pa.types.is_large_string(want) or pa.types.is_dictionary(want)
    return False
