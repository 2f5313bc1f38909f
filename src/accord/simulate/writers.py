"""Writing exports the way partners' tools write them (CSV in several dialects, XLSX, Kobo JSON).

CSV goes through pyarrow's writer in batches (fast, bounded memory); encodings other than UTF-8 are
produced by re-encoding each batch. XLSX uses openpyxl's write-only mode, which is slow, so large
exports are written as CSV instead (the caller decides and says so).
"""

from __future__ import annotations

import codecs
import datetime as dt
import io
import json
import unicodedata
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv

BATCH = 100_000
Tick = Callable[[int], None]


def _fold(err: UnicodeError) -> tuple[str, int]:
    # Characters Windows-1252 cannot hold (e.g. Vietnamese "ạ") lose their accent, as an old
    # case-management database would store them; nothing becomes "?".
    if not isinstance(err, UnicodeEncodeError):
        raise err
    bad = err.object[err.start:err.end]
    plain = unicodedata.normalize("NFKD", bad).encode("ascii", "ignore").decode("ascii")
    return plain, err.end


codecs.register_error("accord_fold", _fold)


def write_csv(cols: dict[str, pa.Array], path: Path, delimiter: str = ",",
              encoding: str = "utf-8", blank_rows: int = 3, tick: Tick | None = None) -> None:
    table = pa.table(cols)
    utf8 = encoding.lower().replace("_", "-") in ("utf-8", "utf8")
    with path.open("wb") as out:
        if encoding.lower() == "utf-8-sig":
            out.write(codecs.BOM_UTF8)
        for start in range(0, max(table.num_rows, 1), BATCH):
            chunk = table.slice(start, BATCH)
            buf = io.BytesIO()
            pacsv.write_csv(chunk, buf, pacsv.WriteOptions(
                include_header=start == 0, delimiter=delimiter, quoting_style="needed"))
            data = buf.getvalue()
            if not utf8:
                target = "utf-8" if encoding.lower() == "utf-8-sig" else encoding
                data = data.decode("utf-8").encode(target, errors="accord_fold")
            out.write(data)
            if tick:
                tick(chunk.num_rows)
        # Spreadsheet round trips leave rows of empty cells at the end of many real exports.
        out.write((delimiter * (len(cols) - 1) + "\n").encode("ascii") * blank_rows)


def write_xlsx(cols: dict[str, pa.Array], path: Path, sheet: str,
               date_columns: tuple[str, ...] = (), int_columns: tuple[str, ...] = (),
               tick: Tick | None = None) -> None:
    from openpyxl import Workbook

    wb = Workbook(write_only=True)
    ws = wb.create_sheet(sheet)
    names = list(cols)
    ws.append(names)
    n = len(next(iter(cols.values()))) if cols else 0
    for start in range(0, n, BATCH):
        values = []
        for name in names:
            col = cols[name].slice(start, BATCH).to_pylist()
            if name in date_columns:
                col = [_as_date(v) for v in col]
            elif name in int_columns:
                col = [int(v) if v is not None and v.lstrip("-").isdigit() else v for v in col]
            values.append(col)
        for row in zip(*values, strict=True):
            ws.append(list(row))
        if tick:
            tick(len(values[0]) if values else 0)
    for _ in range(2):
        ws.append([None] * len(names))
    wb.save(path)


def _as_date(value: str | None) -> dt.date | str | None:
    # Real Kobo XLSX exports hold dates as Excel dates; a value that is not a date stays text.
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        return value


def write_kobo_json(cols: dict[str, pa.Array], path: Path, tick: Tick | None = None) -> None:
    """A JSON list of submission objects, keys as Kobo's API gives them (group paths)."""
    names = list(cols)
    n = len(next(iter(cols.values()))) if cols else 0
    with path.open("w", encoding="utf-8") as out:
        out.write("[")
        first = True
        for start in range(0, n, BATCH):
            columns = [cols[name].slice(start, BATCH).to_pylist() for name in names]
            for row in zip(*columns, strict=True):
                obj: dict[str, Any] = dict(zip(names, row, strict=True))
                out.write(("\n" if first else ",\n") + json.dumps(obj, ensure_ascii=False))
                first = False
            if tick:
                tick(len(columns[0]) if columns else 0)
        out.write("\n]\n")
