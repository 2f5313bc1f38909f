"""CSV output that spreadsheet programs cannot execute.

A cell starting with = + - @ (or a tab/carriage return) is run as a formula by Excel and
LibreOffice. Every CSV Accord writes goes through here, which prefixes such cells with an
apostrophe (OWASP's advice), so the text is shown, not run.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def neutralise(value: Any) -> Any:
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        # Plain negative numbers are data, not formulas.
        try:
            float(value)
            return value
        except ValueError:
            return "'" + value
    return value


def write_csv(path: Path, header: Sequence[str], rows: Iterable[Sequence[Any]],
              delimiter: str = ",") -> int:
    n = 0
    with path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh, delimiter=delimiter, lineterminator="\n")
        w.writerow([neutralise(h) for h in header])
        for row in rows:
            w.writerow(["" if v is None else neutralise(v) for v in row])
            n += 1
    return n


def neutralise_array(values: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """The same rule as `neutralise`, on a whole string column."""
    starts = pc.match_substring_regex(values, r"^[=+\-@\t\r]")
    numeric = pc.match_substring_regex(values, r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")
    risky = pc.and_(pc.fill_null(starts, False), pc.invert(pc.fill_null(numeric, False)))
    return pc.if_else(risky, pc.binary_join_element_wise("'", values, ""), values)


def write_arrow_csv(path: Path, table: pa.Table, delimiter: str = ",") -> None:
    """Write an Arrow table as CSV, neutralising every text column."""
    cols = {}
    for name in table.column_names:
        col = table[name]
        cols[neutralise(name)] = neutralise_array(col) if pa.types.is_string(col.type) else col
    pacsv.write_csv(pa.table(cols), path, write_options=pacsv.WriteOptions(delimiter=delimiter))
