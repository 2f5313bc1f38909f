"""Protected tables to take away: one CSV per table (optionally with HXL hashtags) and one XLSX.

Only what the protection published leaves here: the values of a ``StatTable`` (the DP draw's
post-processed counts, or the suppressed table), with hidden cells written as the page's mark
(``<10`` or ``s``), never the counts underneath. Every cell is labelled with the standard's
labels; codes go in their own column so a reader can join on them.

``table_rows`` and ``hxl_tags`` are small on purpose so other exports (SDMX, the standard's own
release files) can reuse them.
"""

from __future__ import annotations

import base64
import io
import re
from collections.abc import Iterator
from itertools import product
from pathlib import Path
from typing import Any

from accord.release.datapackage import write_datapackage
from accord.research.grid import TOTAL_LABEL
from accord.research.stats import StatsResult, StatTable
from accord.safe_csv import neutralise, write_csv

TOTAL_CODE = "_total"
VALUE_COLUMN = "Value"
STATUS_COLUMN = "Status"

# HXL 1.1 hashtags for the dimensions the standard's tables use; anything else is an indicator
# dimension named by its attribute. Kept as data so the standard's export can extend it.
HXL_DIMENSIONS: dict[str, str] = {
    "sex": "#affected+sex",
    "gender": "#affected+sex",
    "age_band": "#affected+age",
    "citizenship": "#country",
    "country": "#country",
    "partner": "#org",
    "year": "#date+year",
}


def mark_for(result: StatsResult) -> str:
    """How a hidden cell is written: ``<threshold`` for DP (a small noisy count), ``s`` else."""
    return f"<{result.rules.threshold}" if result.method == "dp" else "s"


def header(table: StatTable) -> list[str]:
    cols: list[str] = []
    for d in table.dims:
        cols += [d.title, f"{d.title} (code)"]
    return [*cols, VALUE_COLUMN, STATUS_COLUMN]


def _attr(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower()) or "dim"


def hxl_tags(table: StatTable) -> list[str]:
    """The HXL hashtag row for ``header(table)``."""
    tags: list[str] = []
    for d in table.dims:
        base = HXL_DIMENSIONS.get(d.name, f"#indicator+{_attr(d.name)}")
        tags += [f"{base}+name", f"{base}+code"]
    return [*tags, "#affected+num", "#status"]


def table_rows(table: StatTable, mark: str) -> Iterator[list[Any]]:
    """Long format: one row per cell, margins included (code ``_total``, label ``Total``)."""
    axes = [[*zip(d.labels, d.codes, strict=True), (TOTAL_LABEL, TOTAL_CODE)] for d in table.dims]
    for combo in product(*(range(len(a)) for a in axes)):
        cell: Any = table.published
        for i in combo:
            cell = cell[i]
        row: list[Any] = []
        for axis, i in zip(axes, combo, strict=True):
            row += [axis[i][0], axis[i][1]]
        hidden = cell is None
        yield [*row, mark if hidden else int(cell), "hidden" if hidden else "published"]


def _file_stem(table: StatTable) -> str:
    return re.sub(r"[^a-z0-9_]+", "_", table.id.lower())


def table_csv_text(table: StatTable, mark: str, hxl: bool = False) -> str:
    import csv

    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow([neutralise(h) for h in header(table)])
    if hxl:
        w.writerow(hxl_tags(table))
    for row in table_rows(table, mark):
        w.writerow([neutralise(v) for v in row])
    return buf.getvalue()


def _sheet_name(title: str, used: set[str]) -> str:
    # Excel: at most 31 characters, none of []:*?/\ , unique within the workbook.
    base = re.sub(r"[\[\]:*?/\\]", " ", title)[:31].strip() or "Table"
    name, n = base, 2
    while name.lower() in used:
        suffix = f" ({n})"
        name, n = base[:31 - len(suffix)] + suffix, n + 1
    used.add(name.lower())
    return name


def workbook_bytes(result: StatsResult, hxl: bool = False) -> bytes:
    """One XLSX workbook: a "Read me" sheet, then one labelled sheet per table."""
    from openpyxl import Workbook
    from openpyxl.styles import Font

    mark = mark_for(result)
    wb = Workbook()
    about = wb.active
    about.title = "Read me"
    method = ("differential privacy (noisy counts, one draw per data version)"
              if result.method == "dp" else "suppression of small cells")
    for line in (["Accord protected tables"], ["Data version", result.data_version],
                 ["Counting unit", result.unit], ["Protection", method],
                 ["Hidden cells", f"written as {mark}"], *([n] for n in result.notes)):
        about.append([neutralise(v) for v in line])
    about["A1"].font = Font(bold=True)
    used = {"read me"}
    for table in result.tables:
        ws = wb.create_sheet(_sheet_name(table.title, used))
        ws.append([neutralise(table.title)])
        ws["A1"].font = Font(bold=True)
        ws.append([neutralise(h) for h in header(table)])
        for c in ws[2]:
            c.font = Font(bold=True)
        if hxl:
            ws.append(hxl_tags(table))
        for row in table_rows(table, mark):
            ws.append([neutralise(v) for v in row])
        for note in table.notes:
            ws.append([neutralise(note)])
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def write_tables(result: StatsResult, out_dir: Path, hxl: bool = False) -> list[Path]:
    """Write ``<table>.csv`` for each table and ``tables.xlsx``; return the paths written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    mark = mark_for(result)
    written = []
    for table in result.tables:
        path = out_dir / f"{_file_stem(table)}.csv"
        rows = table_rows(table, mark)
        if hxl:
            rows = iter([hxl_tags(table), *rows])
        write_csv(path, header(table), rows)
        written.append(path)
    book = out_dir / "tables.xlsx"
    book.write_bytes(workbook_bytes(result, hxl))
    written.append(book)
    written.append(write_datapackage(
        out_dir, "accord-published-tables", "Accord published tables", written,
        description=" ".join(result.notes),
        properties={"accord:method": result.method, "accord:unit": result.unit,
                    "accord:data_version": result.data_version}))
    return written


def data_uri(payload: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(payload).decode('ascii')}"


def downloads(result: StatsResult) -> list[dict[str, str]]:
    """Embedded downloads for the report: the workbook first, then one CSV per table."""
    mark = mark_for(result)
    out = [{"label": "All tables (Excel workbook)", "file": "tables.xlsx",
            "href": data_uri(workbook_bytes(result),
                             "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")}]
    for table in result.tables:
        out.append({"label": f"{table.title} (CSV)", "file": f"{_file_stem(table)}.csv",
                    "href": data_uri(table_csv_text(table, mark).encode("utf-8"),
                                     "text/csv;charset=utf-8")})
    return out
