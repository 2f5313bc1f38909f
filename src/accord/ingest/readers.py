"""Read partner exports (CSV, XLSX, Kobo/ODK JSON) into a table of strings, or reject the file.

Every cell comes out as text: typing is the mapping's job, so that a bad value becomes a
quarantined row with a reason instead of a parser exception. Structural problems that make the
file unreadable as a whole (empty, binary, wrong encoding, duplicate headers) reject the batch.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from accord.errors import InputFileError

SNIFF_BYTES = 64 * 1024
DELIMITERS = (",", ";", "\t", "|")
FORMATS = ("csv", "xlsx", "kobo_json")


@dataclass(frozen=True)
class StructuralError:
    """A physical row that could not be split into the header's columns."""

    line: int | None
    reason: str
    text: str  # raw text: partner side only (quarantine report), never in a contribution


@dataclass
class RawTable:
    columns: list[str]
    table: pa.Table  # all columns pa.string(), "" for empty cells
    line_numbers: np.ndarray  # 1-based physical line (CSV) or sheet row (XLSX) per row of `table`
    structural_errors: list[StructuralError] = field(default_factory=list)
    blank_rows: int = 0
    encoding: str = "utf-8"
    delimiter: str | None = None

    @property
    def num_rows(self) -> int:
        return self.table.num_rows


def detect_format(path: Path, declared: str | None) -> str:
    if declared:
        if declared not in FORMATS:
            raise InputFileError(f"unknown source format '{declared}'",
                                 hint=f"use one of: {', '.join(FORMATS)}")
        return declared
    suffix = path.suffix.lower()
    if suffix in (".xlsx", ".xlsm"):
        return "xlsx"
    if suffix == ".json":
        return "kobo_json"
    if suffix in (".xls", ".ods"):
        raise InputFileError(f"{path.name}: {suffix} files are not supported",
                             hint="save the sheet as .xlsx or CSV (UTF-8) and ingest that")
    return "csv"


# --------------------------------------------------------------------------- CSV


def _detect_encoding(path: Path, declared: str) -> str:
    with path.open("rb") as fh:
        head = fh.read(SNIFF_BYTES)
    if not head.strip(b" \r\n\t\xef\xbb\xbf"):
        raise InputFileError(f"{path.name} is empty", hint="export the data again; the file has no rows")
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    if b"\x00" in head:
        raise InputFileError(f"{path.name} is not a text table (it contains binary data)",
                             hint="export the sheet as CSV or XLSX; is this the right file?")
    if declared != "auto":
        try:
            codecs.lookup(declared)
        except LookupError:
            raise InputFileError(f"unknown encoding '{declared}' in the mapping",
                                 hint="use utf-8, cp1252 or latin-1, or 'auto'") from None
        return declared
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    # Real exports are UTF-8 or Windows-1252 (Excel's "CSV" on Windows); decode the whole file
    # incrementally so a single bad byte at the end is not missed.
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        with path.open("rb") as fh:
            while chunk := fh.read(8 * 1024 * 1024):
                decoder.decode(chunk)
            decoder.decode(b"", final=True)
        return "utf-8"
    except UnicodeDecodeError:
        return "cp1252"


def _sniff_delimiter(header_line: str, declared: str | None) -> str:
    if declared:
        return declared
    counts = {d: next(csv.reader([header_line], delimiter=d), []).__len__() for d in DELIMITERS}
    best = max(DELIMITERS, key=lambda d: counts[d])
    return best if counts[best] > 1 else ","


def _header_and_delimiter(path: Path, encoding: str, declared: str | None) -> tuple[list[str], str]:
    with path.open("r", encoding=encoding, newline="", errors="strict") as fh:
        try:
            first = fh.readline()
        except UnicodeDecodeError:
            raise InputFileError(
                f"{path.name} is not in the declared encoding '{encoding}'",
                hint="set source.encoding in the mapping to the file's encoding (or 'auto')",
            ) from None
    delimiter = _sniff_delimiter(first.rstrip("\r\n"), declared)
    header = next(csv.reader([first], delimiter=delimiter), [])
    return header, delimiter


def check_header(columns: list[str], source: str) -> list[str]:
    cleaned = [c.strip().lstrip("\ufeff") for c in columns]
    if not cleaned or all(c == "" for c in cleaned):
        raise InputFileError(f"{source} has no header row", hint="the first row must name the columns")
    seen: dict[str, int] = {}
    dupes = []
    for c in cleaned:
        if c and c in seen:
            dupes.append(c)
        seen[c] = seen.get(c, 0) + 1
    if dupes:
        raise InputFileError(
            f"{source} has duplicate column names: {', '.join(sorted(set(dupes)))}",
            hint="rename the columns so that each name appears once, then export again",
        )
    return [c if c else f"_unnamed_{i + 1}" for i, c in enumerate(cleaned)]


def _utf8_copy(path: Path, encoding: str) -> Path:
    fd, tmp = tempfile.mkstemp(suffix=".csv", prefix="accord-transcode-")
    with os.fdopen(fd, "w", encoding="utf-8", newline="") as out, path.open(
        "r", encoding=encoding, newline="", errors="strict"
    ) as src:
        try:
            while chunk := src.read(4 * 1024 * 1024):
                out.write(chunk)
        except UnicodeDecodeError:
            os.unlink(tmp)
            raise InputFileError(
                f"{path.name} is not in the encoding '{encoding}'",
                hint="set source.encoding in the mapping to the file's encoding (or 'auto')",
            ) from None
    return Path(tmp)


def read_csv_header(path: Path, encoding: str = "auto", delimiter: str | None = None) -> list[str]:
    enc = _detect_encoding(path, encoding)
    header, _ = _header_and_delimiter(path, enc, delimiter)
    return check_header(header, path.name)


def read_csv(path: Path, encoding: str = "auto", delimiter: str | None = None) -> RawTable:
    """The whole CSV as one table (the pipeline streams it with `iter_csv` instead)."""
    chunks = list(iter_csv(path, encoding, delimiter))
    if not chunks:  # a header and nothing else
        columns = read_csv_header(path, encoding, delimiter)
        return RawTable(columns, pa.table({c: pa.array([], pa.string()) for c in columns}),
                        np.zeros(0, dtype=np.int64))
    first = chunks[0]
    return RawTable(first.columns, pa.concat_tables([c.table for c in chunks]),
                    np.concatenate([c.line_numbers for c in chunks]),
                    [e for c in chunks for e in c.structural_errors], sum(c.blank_rows for c in chunks),
                    encoding=first.encoding, delimiter=first.delimiter)


CHUNK_BYTES = 64 << 20


def iter_csv(path: Path, encoding: str = "auto", delimiter: str | None = None,
             chunk_bytes: int | None = None) -> Iterator[RawTable]:
    """Read a CSV in chunks of about ``chunk_bytes``, so memory stays flat on large exports.

    Serial on purpose: only the serial reader knows the line numbers of ragged rows, and the work
    after reading (mapping, hashing) is where the cores are used.
    """
    enc = _detect_encoding(path, encoding)
    header, delim = _header_and_delimiter(path, enc, delimiter)
    columns = check_header(header, path.name)
    source = path if enc in ("utf-8", "utf-8-sig") else _utf8_copy(path, enc)
    bad: list[StructuralError] = []

    def on_invalid(row: Any) -> str:
        bad.append(StructuralError(
            line=row.number,
            reason=f"row has {row.actual_columns} cells, the header has {row.expected_columns}",
            text=row.text,
        ))
        return "skip"

    try:
        reader = pacsv.open_csv(
            source,
            read_options=pacsv.ReadOptions(column_names=columns, skip_rows=1, use_threads=False,
                                           block_size=chunk_bytes or CHUNK_BYTES),
            parse_options=pacsv.ParseOptions(delimiter=delim, invalid_row_handler=on_invalid,
                                             newlines_in_values=True),
            convert_options=pacsv.ConvertOptions(
                column_types={c: pa.string() for c in columns},
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
        next_line = 2  # the header is line 1
        reported = 0
        for batch in reader:
            table = pa.Table.from_batches([batch])
            new_bad = bad[reported:]
            reported = len(bad)
            skipped = [b.line for b in bad if b.line is not None and b.line >= next_line]
            lines = _line_numbers(table.num_rows, skipped, start=next_line)
            if len(lines):
                next_line = int(lines[-1]) + 1
            table, lines, blanks = _drop_blank_rows(table, lines)
            yield RawTable(columns, table, lines, new_bad, blanks, encoding=enc, delimiter=delim)
        if len(bad) > reported:
            yield RawTable(columns, pa.table({c: pa.array([], pa.string()) for c in columns}),
                           np.zeros(0, dtype=np.int64), bad[reported:], 0, encoding=enc, delimiter=delim)
    except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
        raise InputFileError(f"{path.name} cannot be read as a table: {str(exc).splitlines()[0][:200]}",
                             hint="check the delimiter and quoting; set source.delimiter in the mapping") from None
    finally:
        if source != path:
            os.unlink(source)


def _line_numbers(n: int, skipped_lines: list[int], start: int = 2) -> np.ndarray:
    """Physical line of each parsed row, assuming one line per row (the header is line 1).

    Rows that span lines (quoted newlines) shift later numbers; exports rarely have them.
    """
    base = np.arange(start, n + start, dtype=np.int64)
    if not skipped_lines:
        return base
    skipped = np.sort(np.asarray(skipped_lines, dtype=np.int64))
    # Row i sits at line base[i] + (number of skipped lines before it); iterate to a fixed point.
    lines = base.copy()
    for _ in range(len(skipped) + 1):
        new = base + np.searchsorted(skipped, lines, side="right")
        if np.array_equal(new, lines):
            break
        lines = new
    return lines


def _drop_blank_rows(table: pa.Table, lines: np.ndarray) -> tuple[pa.Table, np.ndarray, int]:
    """Rows whose every cell is empty (Excel's trailing rows) are not records; they are counted apart.

    A row of whitespace-only cells is kept: it becomes a quarantined row (required fields
    missing), so it is still accounted for.
    """
    if table.num_rows == 0:
        return table, lines, 0
    total = np.zeros(table.num_rows, dtype=np.int64)
    for col in table.columns:
        total += np.asarray(pc.binary_length(col), dtype=np.int64)
    mask = total == 0
    n_blank = int(mask.sum())
    if n_blank == 0:
        return table, lines, 0
    keep = ~mask
    return table.filter(pa.array(keep)), lines[keep], n_blank


# --------------------------------------------------------------------------- XLSX


def _cell_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.date().isoformat() if value.time() == time(0) else value.isoformat(sep=" ")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _xlsx_rows(path: Path, sheet: str | None) -> Iterator[tuple[int, list[str]]]:
    from zipfile import BadZipFile

    from openpyxl import load_workbook
    from openpyxl.utils.exceptions import InvalidFileException

    try:
        wb = load_workbook(path, read_only=True, data_only=True)
    except (BadZipFile, InvalidFileException, KeyError, OSError):
        raise InputFileError(f"{path.name} is not a readable XLSX workbook",
                             hint="open it in a spreadsheet program and save it again as .xlsx") from None
    try:
        if sheet is not None and sheet not in wb.sheetnames:
            raise InputFileError(f"{path.name} has no sheet '{sheet}'",
                                 hint=f"sheets are: {', '.join(wb.sheetnames)}")
        ws = wb[sheet] if sheet else wb.worksheets[0]
        for i, row in enumerate(ws.iter_rows(values_only=True), start=1):
            yield i, [_cell_text(v) for v in row]
    finally:
        wb.close()


def read_xlsx(path: Path, sheet: str | None = None, header_only: bool = False) -> RawTable:
    rows = _xlsx_rows(path, sheet)
    header: list[str] | None = None
    for _line, values in rows:
        if any(v.strip() for v in values):
            header = values
            break
    if header is None:
        raise InputFileError(f"{path.name} is empty", hint="the first sheet has no rows")
    # Trailing empty header cells are formatting, not columns.
    while header and not header[-1].strip():
        header.pop()
    columns = check_header(header, path.name)
    width = len(columns)
    data: list[list[str]] = [[] for _ in columns]
    lines: list[int] = []
    bad: list[StructuralError] = []
    blanks = 0
    if not header_only:
        for line, values in rows:
            if not any(v.strip() for v in values):
                blanks += 1
                continue
            extra = [v for v in values[width:] if v.strip()]
            if extra:
                bad.append(StructuralError(line, f"row has values beyond the {width} named columns",
                                           "\t".join(values)))
                continue
            values = (values + [""] * width)[:width]
            for j, v in enumerate(values):
                data[j].append(v)
            lines.append(line)
    table = pa.table({c: pa.array(col, pa.string()) for c, col in zip(columns, data, strict=True)})
    return RawTable(columns, table, np.asarray(lines, dtype=np.int64), bad, blanks)


# --------------------------------------------------------------------------- Kobo / ODK JSON


def read_kobo_json(path: Path) -> RawTable:
    try:
        doc = json.loads(path.read_text(encoding="utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputFileError(f"{path.name} is not valid JSON ({type(exc).__name__})",
                             hint="download the submissions again as JSON from Kobo/ODK") from None
    records = doc.get("results") if isinstance(doc, dict) else doc
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise InputFileError(
            f"{path.name} is not a Kobo/ODK submission export",
            hint="expected a list of submission objects, or an object with a 'results' list",
        )
    if not records:
        raise InputFileError(f"{path.name} has no submissions", hint="export again when data exist")
    columns: list[str] = []
    seen: set[str] = set()
    for r in records:
        for k in r:
            if k not in seen:
                seen.add(k)
                columns.append(k)
    data = {c: [_json_text(r.get(c)) for r in records] for c in columns}
    table = pa.table({c: pa.array(v, pa.string()) for c, v in data.items()})
    lines = np.arange(1, len(records) + 1, dtype=np.int64)  # submission index
    table, lines, blanks = _drop_blank_rows(table, lines)
    return RawTable(columns, table, lines, [], blanks)


def _json_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, list | dict):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def read_header(path: Path, fmt: str, encoding: str, delimiter: str | None,
                sheet: str | None) -> list[str]:
    """Column names only, so a mapping can be checked before any row is read."""
    if not path.exists():
        raise InputFileError(f"no such file: {path}", hint="check the path of the export")
    if fmt == "csv":
        return read_csv_header(path, encoding, delimiter)
    if fmt == "xlsx":
        return read_xlsx(path, sheet, header_only=True).columns
    return read_kobo_json(path).columns


def prefetch(chunks: Iterator[RawTable]) -> Iterator[RawTable]:
    """Read the next chunk in a background thread while the caller maps and hashes this one.

    Arrow's CSV parser releases the GIL, so on two cores reading overlaps with the work after it.
    Errors raised while reading are re-raised in the caller, in order.
    """
    import queue
    import threading

    box: queue.Queue[tuple[str, object]] = queue.Queue(maxsize=1)
    stop = threading.Event()

    def pump() -> None:
        try:
            for chunk in chunks:
                if stop.is_set():
                    return
                box.put(("chunk", chunk))
            box.put(("end", None))
        except BaseException as exc:  # handed to the consumer, never lost
            box.put(("error", exc))

    worker = threading.Thread(target=pump, name="accord-csv-reader", daemon=True)
    worker.start()
    try:
        while True:
            kind, item = box.get()
            if kind == "end":
                return
            if kind == "error":
                assert isinstance(item, BaseException)
                raise item
            assert isinstance(item, RawTable)
            yield item
    finally:
        stop.set()
        while worker.is_alive():  # unblock a reader waiting to put, then let it finish
            try:
                box.get_nowait()
            except queue.Empty:
                worker.join(timeout=0.05)


def iter_table(path: Path, fmt: str, encoding: str, delimiter: str | None,
               sheet: str | None) -> Iterator[RawTable]:
    """The export in chunks: CSV streams; XLSX and JSON arrive whole (their size is bounded)."""
    if fmt == "csv":
        yield from prefetch(iter_csv(path, encoding, delimiter))
    else:
        yield read_table(path, fmt, encoding, delimiter, sheet)


def read_table(path: Path, fmt: str, encoding: str, delimiter: str | None,
               sheet: str | None) -> RawTable:
    if fmt == "csv":
        return read_csv(path, encoding, delimiter)
    if fmt == "xlsx":
        return read_xlsx(path, sheet)
    return read_kobo_json(path)


def sniff_text(text: str) -> str:
    """Delimiter of a small CSV text (used by tests and the mapping helper)."""
    return _sniff_delimiter(io.StringIO(text).readline(), None)
