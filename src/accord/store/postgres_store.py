"""The shared hub: PostgreSQL behind the same narrow `Store` interface (psycopg 3).

The stages write their SQL once, in DuckDB's dialect. Here every statement that changes the store
runs in PostgreSQL (translated by sqlglot), so PostgreSQL is the system of record: transactions,
locks and crash recovery are its own. Reads take one of three routes, decided from the statement's
syntax tree:

- portable SQL (`_PORTABLE`: the meta tables, look-ups, `SELECT * FROM records`) runs in PostgreSQL;
- DuckDB-only SQL whose translation is exact (`native_postgres`: UNNEST in the select list, list[i],
  QUALIFY inside a subquery; the stats' counts) runs in PostgreSQL too, subqueries aliased;
- the rest (list functions, integer division, a top-level QUALIFY) runs in process, in DuckDB, over
  Arrow copies of the tables it reads, taken on this connection (so inside a transaction they
  include its own writes) and kept while PostgreSQL's snapshot shows no other commit and this store
  wrote nothing. Measured: one stats run is 3-7x faster natively than through the copy
  (benchmarks/results/postgres_hub.md), hence native wherever the meaning is the same.

Arrow types round-trip exactly: PostgreSQL has no fixed-size binary or unsigned integers, so the
Arrow schema of every table written from Arrow is kept in `_accord_arrow_schemas` and results are
cast back to it. Bulk loads and large reads use COPY (CSV), never row inserts or row fetches.
Tables whose name starts with an underscore are scratch space of one transaction and are created
TEMPORARY here, so concurrent hub operations do not collide on them.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal
from uuid import UUID

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import sqlglot
from sqlglot import exp

from accord.errors import StoreError
from accord.store.base import Params, Store
from accord.store.urls import normalise_url, redact

_SCHEMAS_TABLE = "_accord_arrow_schemas"
_COPY_BATCH = 65_536
# Record-level tables: whole-table reads of these go through COPY (text CSV parsed by Arrow), which
# is several times faster than fetching rows as Python objects.
_BULK_TABLES = frozenset({"records", "persons", "linkage_encodings"})
_FETCH_BATCH = 100_000
_CHAIN_LOCK = 0x6163636F7264  # the advisory lock id of the hub's chain ("accord")

# Syntax-tree node types whose meaning is the same in DuckDB and PostgreSQL. A read made only of
# these runs in PostgreSQL; anything else (list functions, QUALIFY, UNNEST, list indexing, ...)
# runs in process in DuckDB, where the stages' SQL means exactly what it says.
_PORTABLE = frozenset({
    "Select", "From", "Where", "Column", "Identifier", "Table", "TableAlias", "Alias", "Placeholder",
    "Literal", "Star", "EQ", "NEQ", "GT", "GTE", "LT", "LTE", "And", "Or", "Not", "Is", "Null",
    "Boolean", "In", "Tuple", "Like", "Between", "Order", "Ordered", "Limit", "Offset", "Count",
    "Sum", "Min", "Max", "Avg", "Coalesce", "Cast", "DataType", "Join", "Group", "Having", "Distinct",
    "Paren", "Subquery", "DPipe", "Add", "Sub", "Mul", "Neg", "Case", "If", "Exists",
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
    return _generate(_parse(sql).copy(), with_params)


def _generate(tree: exp.Expr, with_params: bool) -> str:
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


def _exact_in_postgres(node: exp.Expr) -> bool:
    """Constructs outside `_PORTABLE` whose PostgreSQL translation means exactly the same."""
    if isinstance(node, exp.Explode):  # unnest in the select list: PostgreSQL's set-returning unnest
        holder = node.parent.parent if isinstance(node.parent, exp.Alias) else node.parent
        return isinstance(holder, exp.Select) and not isinstance(node.this, exp.Explode)
    if isinstance(node, exp.Bracket):  # list[1]: both 1-based; a single integer index only
        return (len(node.expressions) == 1 and isinstance(node.expressions[0], exp.Literal)
                and node.expressions[0].is_int)
    if isinstance(node, exp.Qualify):  # rewritten as a subquery that adds a `_w` column: exact only
        select = node.parent  # where that extra column is not itself the result
        return isinstance(select, exp.Select) and select.parent is not None
    return False


@lru_cache(maxsize=1024)
def native_postgres(sql: str, with_params: bool) -> str | None:
    """A DuckDB-only read as PostgreSQL when the translation is exact (UNNEST in the select list,
    list[i], QUALIFY inside a subquery), with the subquery aliases PostgreSQL 15 needs; None
    otherwise (list functions, integer division, ...), and the read then runs in process."""
    tree = _parse(sql).copy()
    for node in tree.walk():
        if type(node).__name__ not in _PORTABLE and not _exact_in_postgres(node):
            return None
    for i, sub in enumerate(list(tree.find_all(exp.Subquery))):
        if isinstance(sub.parent, exp.From | exp.Join) and not sub.alias:
            sub.set("alias", exp.TableAlias(this=exp.to_identifier(f"_accord_s{i}")))
    return _generate(tree, with_params)


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
    "timestamptz": pa.timestamp("us", tz="UTC"), "bytea": pa.binary(), "numeric": pa.float64(),
}


def _arrow_of_pg(type_name: str | None) -> pa.DataType | None:
    if type_name is None:
        return None
    if type_name.startswith("_"):
        inner = _ARROW_OF_PG.get(type_name[1:])
        return pa.list_(inner) if inner is not None else None
    return _ARROW_OF_PG.get(type_name)


def _to_python(value: Any) -> Any:
    # uuid and json values (if a hand-made table has them) become text, as their Arrow type says;
    # numeric (PostgreSQL's sum of integers) becomes a float, as on the COPY route
    if isinstance(value, memoryview):
        return bytes(value)
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True)
    if isinstance(value, UUID):
        return str(value)
    return value


# SQLSTATE classes whose messages name only objects (tables, columns) or the server's state, never a
# value: syntax/undefined object (42), connection (08), rollback (40), resources (53), shutdown (57).
_SAFE_MESSAGE_CLASSES = ("42", "08", "40", "53", "57")


def _safe_reason(exc: Exception) -> str:
    """Why PostgreSQL refused, without any data value (e.g. 'invalid input syntax ... "value"')."""
    state = getattr(exc, "sqlstate", None) or ""
    diag = getattr(exc, "diag", None)
    primary = getattr(diag, "message_primary", None)
    if primary and state[:2] in _SAFE_MESSAGE_CLASSES:
        return str(primary)
    return f"{type(exc).__name__}" + (f" (SQLSTATE {state})" if state else "")


class PostgresStore(Store):
    engine = "postgres"

    def __init__(self, url: str, read_only: bool = False) -> None:
        import psycopg

        super().__init__()
        self.url = normalise_url(url)
        self._psycopg = psycopg
        try:
            self._con = psycopg.connect(self.url, autocommit=True, connect_timeout=10)
        except psycopg.Error as exc:
            lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
            reason = lines[-1] if lines else type(exc).__name__
            raise StoreError(f"cannot connect to the PostgreSQL hub {redact(self.url)}: {reason}",
                             hint="check that the server runs, the database exists and the URL's "
                                  "user may connect (see docs/hub.md)") from None
        if read_only:
            self._con.execute("SET default_transaction_read_only = on")
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
            raise StoreError(f"the PostgreSQL hub refused a statement: {_safe_reason(exc)}",
                             hint="if this persists, check the server's log") from None

    def query(self, sql: str, params: Params = ()) -> pa.Table:
        pg_sql = to_postgres(sql, bool(params)) if _portable(sql) else native_postgres(sql, bool(params))
        if pg_sql is None:
            return self._query_in_process(sql, params)
        tables = _tables_read(sql)
        if _BULK_TABLES & set(tables):
            return self._cast_known(self._copy_out(pg_sql, params), tables)
        return self._cast_known(self._fetch_arrow(self._run(pg_sql, params)), tables)

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
        duck = self._duckdb()
        token = self._token()
        registered = []
        for name in _tables_read(sql):
            if not self.table_exists(name):
                continue  # DuckDB names the missing table in its own error
            cached = self._copies.get(name)
            if cached is None or cached[0] != token:
                cached = (token, self._cast_known(self._copy_out(f"SELECT * FROM {_quote(name)}", ()),
                                                  [name]))
                self._copies[name] = cached
            duck.register(name, cached[1])
            registered.append(name)
        try:
            rel = duck.sql(sql, params=list(params)) if params else duck.sql(sql)
            return rel.to_arrow_table() if rel is not None else pa.table({})
        except duckdb.Error as exc:
            raise StoreError(f"the hub could not run an analysis: {str(exc).splitlines()[0]}") from None
        finally:
            for name in registered:
                duck.unregister(name)

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

    def _duckdb(self) -> duckdb.DuckDBPyConnection:
        if self._duck is None:
            self._duck = duckdb.connect(":memory:")
        return self._duck

    def _copy(self, name: str, schema: pa.Schema, batches: Iterable[pa.RecordBatch]) -> None:
        """COPY ... FROM STDIN in CSV: DuckDB turns lists into PostgreSQL array literals and bytes
        into hex, Arrow writes the CSV (nulls unquoted-empty, empty strings quoted, as PostgreSQL
        reads them), batch by batch in memory."""
        cols = ", ".join(_quote(n) for n in schema.names)
        exprs = ", ".join(_csv_expr(f) for f in schema)
        duck = self._duckdb()
        options = pacsv.WriteOptions(include_header=False)
        with self._con.cursor() as cur, cur.copy(
                f"COPY {_quote(name)} ({cols}) FROM STDIN (FORMAT csv)") as copy:
            for batch in batches:
                if not batch.num_rows:
                    continue
                batch = _with_array_literals(batch)
                duck.register("_accord_batch", batch)
                try:
                    flat = duck.sql(f"SELECT {exprs} FROM _accord_batch").to_arrow_table()
                finally:
                    duck.unregister("_accord_batch")
                sink = io.BytesIO()
                pacsv.write_csv(flat, sink, options)
                copy.write(sink.getbuffer())

    def _copy_out(self, pg_sql: str, params: Params) -> pa.Table:
        """Run a read through COPY ... TO STDOUT (CSV) and parse it with Arrow; falls back to
        fetching rows when a result column has a type the CSV route does not handle."""
        plist = list(params) if params else None
        probe = self._run(f"SELECT * FROM ({pg_sql}) AS _accord_q LIMIT 0", params)
        names = [d.name for d in probe.description]
        kinds = [self._pg_type_name(d.type_code) for d in probe.description]
        if len(set(names)) != len(names) or any(k not in _CSV_KINDS for k in kinds):
            return self._fetch_arrow(self._run(pg_sql, params))
        select = ", ".join(_csv_out_expr(n, k) for n, k in zip(names, kinds, strict=True))
        sink = io.BytesIO()
        try:
            with self._con.cursor() as cur, cur.copy(
                    f"COPY (SELECT {select} FROM ({pg_sql}) AS _accord_q) TO STDOUT (FORMAT csv)",
                    plist) as copy:
                for chunk in copy:
                    sink.write(chunk)
        except self._psycopg.Error as exc:
            raise StoreError(f"the PostgreSQL hub refused a read: {_safe_reason(exc)}") from None
        read_types = {n: _CSV_KINDS[k] for n, k in zip(names, kinds, strict=True)}
        empty = pa.schema([pa.field(n, _final_type(k)) for n, k in zip(names, kinds, strict=True)])
        if sink.tell() == 0:
            return empty.empty_table()
        sink.seek(0)
        raw = pacsv.read_csv(sink, read_options=pacsv.ReadOptions(column_names=names, block_size=1 << 24),
                             parse_options=pacsv.ParseOptions(newlines_in_values=True),
                             convert_options=pacsv.ConvertOptions(
                                 column_types=read_types, strings_can_be_null=True,
                                 quoted_strings_can_be_null=False, null_values=[""],
                                 true_values=["t"], false_values=["f"]))
        if all(k not in _DECODED for k in kinds):
            return raw
        duck = self._duckdb()
        duck.register("_accord_raw", raw)
        try:
            exprs = ", ".join(_decode_expr(n, k) for n, k in zip(names, kinds, strict=True))
            out = duck.sql(f"SELECT {exprs} FROM _accord_raw").to_arrow_table()
        finally:
            duck.unregister("_accord_raw")
        return out.cast(empty)

    def _pg_type_name(self, oid: int) -> str:
        info = self._con.adapters.types.get(oid)
        if info is None:
            return "?"
        return "_" + info.name if oid == info.array_oid else info.name

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
                             f"{_safe_reason(exc)}") from None

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
                             f"{_safe_reason(exc)}") from None

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
            try:
                with self._con.transaction():
                    yield
            except self._psycopg.Error as exc:  # the commit (or rollback) itself failed: e.g. the
                # server restarted mid-request. Nothing of the transaction was kept.
                raise StoreError(f"the PostgreSQL hub lost the transaction: {_safe_reason(exc)}",
                                 hint="nothing was written; retry when the hub is back") from None
            self._after_commit()  # the chain's head goes outside the database (store.chain)
        finally:
            self._in_tx = False
            self._writes += 1  # a rollback undoes writes the copies may have seen

    def lock_chain(self) -> None:
        # Concurrent servers' writers each read the chain's head, then append; in READ COMMITTED
        # a transaction-scoped advisory lock makes them take turns, and every statement after it
        # sees the previous writer's commit (so a spend reads the ledger as last committed: no
        # overspend, no lost entry). SERIALIZABLE would abort and retry instead; a lock is simpler.
        self._run("SELECT pg_advisory_xact_lock(%s)", [_CHAIN_LOCK])

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


# ---- the CSV routes of COPY ----------------------------------------------------------------------
# PostgreSQL type name -> the Arrow type its CSV text is read as. Lists travel as JSON text and
# bytes as hex (decoded in DuckDB); anything else is fetched row by row instead.
_CSV_KINDS: dict[str, pa.DataType] = {
    "bool": pa.bool_(), "int2": pa.int16(), "int4": pa.int32(), "int8": pa.int64(),
    "float4": pa.float32(), "float8": pa.float64(), "text": pa.string(), "varchar": pa.string(),
    "bpchar": pa.string(), "name": pa.string(), "date": pa.date32(), "bytea": pa.string(),
    "numeric": pa.string(),
    **{f"_{k}": pa.string() for k in ("bool", "int2", "int4", "int8", "float4", "float8", "text",
                                      "varchar", "date")},
}
_DECODED = frozenset({"bytea", "numeric"} | {k for k in _CSV_KINDS if k.startswith("_")})
_DUCK_ELEMENT = {"bool": "BOOLEAN", "int2": "SMALLINT", "int4": "INTEGER", "int8": "BIGINT",
                 "float4": "FLOAT", "float8": "DOUBLE", "text": "VARCHAR", "varchar": "VARCHAR",
                 "date": "DATE"}


def _final_type(kind: str) -> pa.DataType:
    if kind == "bytea":
        return pa.binary()
    if kind == "numeric":
        return pa.float64()
    if kind.startswith("_"):
        inner = _arrow_of_pg(kind[1:])
        return pa.list_(inner if inner is not None else pa.string())
    return _CSV_KINDS[kind]


def _csv_out_expr(name: str, kind: str) -> str:
    q = _quote_ident(name)
    if kind.startswith("_"):
        return f"array_to_json({q})::text AS {q}"
    if kind == "bytea":
        return f"encode({q}, 'hex') AS {q}"
    if kind == "numeric":
        return f"{q}::text AS {q}"
    return q


def _decode_expr(name: str, kind: str) -> str:
    q = _quote_ident(name)
    if kind.startswith("_"):
        return f"""from_json({q}, '["{_DUCK_ELEMENT[kind[1:]]}"]') AS {q}"""
    if kind == "bytea":
        return f"unhex({q}) AS {q}"
    if kind == "numeric":
        return f"CAST({q} AS DOUBLE) AS {q}"
    return q


def _quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _with_array_literals(batch: pa.RecordBatch) -> pa.RecordBatch:
    columns = []
    for f, col in zip(batch.schema, batch.columns, strict=True):
        if pa.types.is_list(f.type) or pa.types.is_large_list(f.type):
            if not (pa.types.is_string(f.type.value_type) or pa.types.is_integer(f.type.value_type)
                    or pa.types.is_floating(f.type.value_type) or pa.types.is_date(f.type.value_type)
                    or pa.types.is_boolean(f.type.value_type)):
                raise StoreError(f"the PostgreSQL hub cannot hold lists of {f.type.value_type}")
            col = _pg_array_literals(col)
        columns.append(col)
    return pa.RecordBatch.from_arrays(columns, names=batch.schema.names)


def _pg_array_literals(arr: pa.Array) -> pa.Array:
    """A list column as PostgreSQL array literals: {"a","b \\"q\\""}, NULL elements unquoted."""
    # the offsets and values as stored (a batch may be a slice, and null slots may hold values)
    start, end = arr.offsets[0].as_py(), arr.offsets[-1].as_py()
    values = pc.cast(arr.values.slice(start, end - start), pa.string())
    escaped = pc.replace_substring(pc.replace_substring(values, "\\", "\\\\"), '"', '\\"')
    quoted = pc.fill_null(pc.binary_join_element_wise('"', escaped, '"', ""), "NULL")
    offsets = pc.cast(pc.subtract(arr.offsets, start), pa.int32())
    items = pa.ListArray.from_arrays(offsets, quoted, mask=arr.is_null())
    return pc.binary_join_element_wise("{", pc.binary_join(items, ","), "}", "")


def _csv_expr(f: pa.Field) -> str:
    """DuckDB expression giving a column as PostgreSQL's CSV COPY reads it (lists are done in Arrow
    by `_pg_array_literals` before)."""
    q = _quote_ident(f.name)
    t = f.type
    if pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_fixed_size_binary(t):
        return f"CASE WHEN {q} IS NULL THEN NULL ELSE '\\x' || hex({q}) END AS {q}"
    return q
