"""The hub store: one narrow interface, engines swapped underneath (DuckDB by default)."""

from accord.store.base import AddOutcome, Store
from accord.store.duckdb_store import DuckDBStore
from accord.store.hub import add_contribution, open_store

__all__ = ["AddOutcome", "DuckDBStore", "Store", "add_contribution", "open_store"]
