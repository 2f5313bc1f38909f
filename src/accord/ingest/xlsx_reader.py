"""XLSX exports, read in chunks of rows, after a check that the workbook is not a decompression bomb.

openpyxl parses the sheet as a stream (read-only mode) but holds the shared strings in memory, and
an XLSX is a zip: a few megabytes can inflate to gigabytes. The zip's own directory says how big
each part is once inflated, so a bomb is refused before a byte is parsed. Library warnings are
captured while reading (openpyxl's quote cell values) and become counted notices that name
columns, never values.
"""

from __future__ import annotations

import re
import warnings
import zipfile
from array import array
from collections import Counter
from collections.abc import Generator, Iterator, Sequence
from datetime import date, datetime, time
from pathlib import Path
from typing import IO, Any, overload

import numpy as np
import pyarrow as pa

from accord.errors import AccordError, InputFileError
from accord.ingest.raw import RawTable, StructuralError, check_header, string_column, visible

CHUNK_ROWS = 50_000
# Limits on what the workbook inflates to. A real export's XML compresses 5-30 times; a bomb
# compresses hundreds of times. Shared strings are held in memory whole, so they have a cap of
# their own.
MAX_RATIO = 100
RATIO_APPLIES_ABOVE = 64 << 20
MAX_INFLATED = 6 << 30
MAX_SHARED_STRINGS = 1 << 30

_DATE_WARNING = re.compile(r"Cell ([A-Z]{1,3})\d+ is marked as a date")
DATE_NOTICE = ("cells of column {column} are formatted as dates but hold numbers that are not dates "
               "(phone or ID numbers?); they read as a spreadsheet error and their rows are quarantined "
               "if the column is mapped: format the column as text in the workbook")
WARNING_NOTICE = ("warnings from the spreadsheet library while reading the workbook (not shown: they can "
                  "quote cell values)")


def _refuse_unreadable(path: Path, why: str = "") -> InputFileError:
    return InputFileError(f"{path.name} is not a readable XLSX workbook{why}",
                          hint="open it in a spreadsheet program and save it again as .xlsx (or export CSV UTF-8)")


def check_workbook_size(path: Path) -> None:
    """Refuse a workbook whose parts inflate beyond the limits, before anything is parsed."""
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError):
        raise _refuse_unreadable(path) from None
    total = 0
    for info in infos:
        total += info.file_size
        ratio = info.file_size / max(info.compress_size, 1)
        if info.file_size > RATIO_APPLIES_ABOVE and ratio > MAX_RATIO:
            raise InputFileError(
                f"{path.name} looks like a decompression bomb: one part inflates {ratio:,.0f} times "
                f"to {info.file_size / 2**20:,.0f} MB",
                hint="a real export does not compress like this; ask the partner for a CSV (UTF-8) export")
        if info.filename.lower().endswith("sharedstrings.xml") and info.file_size > MAX_SHARED_STRINGS:
            raise InputFileError(
                f"{path.name}'s text table inflates to {info.file_size / 2**20:,.0f} MB "
                f"(limit {MAX_SHARED_STRINGS >> 20:,} MB)",
                hint="export the sheet as CSV (UTF-8): CSV is read in chunks of any size")
    if total > MAX_INFLATED:
        raise InputFileError(
            f"{path.name} inflates to {total / 2**30:,.1f} GB (limit {MAX_INFLATED >> 30} GB)",
            hint="export the sheet as CSV (UTF-8): CSV is read in chunks of any size")


class SharedStrings(Sequence[str]):
    """A workbook's text table held compactly: UTF-8 bytes in one buffer and an offset per string.

    openpyxl keeps the table as a list of Python strings parsed with ElementTree's iterparse, and
    the parsed `<si>` elements stay attached to the root even once cleared: about 150 bytes per
    string on top of its text, 0.9 GB for the 306 MB table of a 1,000,000-row export (measured in
    benchmarks/results/ingest_memory.md). Here a string costs its UTF-8 bytes plus 8, and a cell
    read decodes its slice. openpyxl has no option for this; it only indexes the table, so any
    sequence of strings will do.
    """

    def __init__(self) -> None:
        self._data = bytearray()
        self._ends = array("q")

    def append(self, text: str) -> None:
        # A lone surrogate (a broken emoji) cannot be UTF-8: kept as such, string_column marks it.
        self._data += text.encode("utf-8", "surrogatepass")
        self._ends.append(len(self._data))

    def __len__(self) -> int:
        return len(self._ends)

    @overload
    def __getitem__(self, index: int) -> str: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[str]: ...

    def __getitem__(self, index: int | slice) -> str | Sequence[str]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        if index < 0:
            index += len(self._ends)
        end = self._ends[index]  # IndexError for a cell pointing past the table, as with a list
        start = self._ends[index - 1] if index else 0
        return self._data[start:end].decode("utf-8", "surrogatepass")


def read_shared_strings(source: IO[bytes]) -> SharedStrings:
    """The text of every `<si>` of a sharedStrings part, as openpyxl's `read_string_table` reads it
    (plain text and rich-text runs, phonetic guides left out), without keeping parsed elements."""
    from openpyxl.xml.constants import SHEET_MAIN_NS
    from openpyxl.xml.functions import iterparse  # openpyxl's choice: defusedxml's when installed

    si, t, r = (f"{{{SHEET_MAIN_NS}}}{tag}" for tag in ("si", "t", "r"))
    strings = SharedStrings()
    root = None
    for event, node in iterparse(source, events=("start", "end")):
        if root is None:
            root = node
            continue
        if event != "end" or node.tag != si:
            continue
        parts: list[str] = []
        for child in node:
            if child.tag == t:
                parts.append(child.text or "")
            elif child.tag == r:
                run = child.find(t)
                if run is not None:
                    parts.append(run.text or "")
        # openpyxl drops this escape prefix too; kept identical so both readers agree.
        strings.append("".join(parts).replace("x005F_", ""))
        root.clear()  # detach the parsed <si>: the cause of openpyxl's per-string overhead
    return strings


def _load_workbook(path: Path) -> Any:
    """openpyxl's `load_workbook(read_only=True, data_only=True)` with the compact text table."""
    from openpyxl.reader.excel import SHARED_STRINGS, ExcelReader

    class CompactReader(ExcelReader):
        def read_strings(self) -> None:
            ct = self.package.find(SHARED_STRINGS)
            if ct is not None:
                with self.archive.open(ct.PartName[1:]) as src:
                    self.shared_strings = read_shared_strings(src)

    reader = CompactReader(path, read_only=True, data_only=True)
    reader.read()
    return reader.wb


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


def _select(wb: Any, sheet: str | int | None, path: Path) -> Any:
    names = wb.sheetnames
    # Sheet names are never shown: partners name sheets after clients or places.
    where = (f"the workbook has {len(names)} sheet(s), at positions 1-{len(names)} (names not shown: "
             "they can name people)")
    if sheet is None:
        return wb.worksheets[0]
    if isinstance(sheet, int) or (isinstance(sheet, str) and sheet.isdigit() and sheet not in names):
        pos = int(sheet)
        if not 1 <= pos <= len(names):
            raise InputFileError(f"{path.name} has no sheet at position {pos}",
                                 hint=f"{where}; set source.sheet in the mapping to a position or an exact name")
        return wb.worksheets[pos - 1]
    if sheet not in names:
        raise InputFileError(f"{path.name} has no sheet with the name given in the mapping",
                             hint=f"{where}; set source.sheet in the mapping to a position or an exact name")
    return wb[sheet]


def _rows(path: Path, sheet: str | int | None, notices: Counter[str]) -> Generator[tuple[int, list[str]], None, None]:
    """(sheet row, cell texts) per row. Warnings are captured per row and counted in `notices`;
    any failure of the parser on a malformed workbook becomes a refusal naming only its type."""
    check_workbook_size(path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            wb = _load_workbook(path)
        except Exception:  # openpyxl raises many types on a damaged zip or XML: none is the user's to read
            raise _refuse_unreadable(path) from None
        _count_warnings(caught, notices)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            ws = _select(wb, sheet, path)
        _count_warnings(caught, notices)
        it = ws.iter_rows(values_only=True)
        i = 0
        while True:
            # Rows are read a thousand at a time inside one warning capture (a capture per row costs
            # more than the row).
            batch: list[tuple[Any, ...]] = []
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                try:
                    for row in it:
                        batch.append(row)
                        if len(batch) == 1000:
                            break
                except AccordError:
                    raise
                except Exception as exc:  # malformed sheet XML (e.g. raw control characters)
                    raise _refuse_unreadable(path, f": its sheet XML is malformed ({type(exc).__name__})") from None
            if caught:
                _count_warnings(caught, notices)
            for row in batch:
                i += 1
                yield i, [_cell_text(v) for v in row]
            if len(batch) < 1000:
                break
    finally:
        wb.close()


def _count_warnings(caught: list[warnings.WarningMessage], notices: Counter[str]) -> None:
    for w in caught:
        m = _DATE_WARNING.match(str(w.message))
        if m:
            notices[DATE_NOTICE.replace("{column}", "@" + m.group(1))] += 1
        else:
            notices[WARNING_NOTICE] += 1


def _name_columns(notices: Counter[str], columns: list[str]) -> Counter[str]:
    """Date-warning notices carry a column letter; give them the column's (visible) name."""
    from openpyxl.utils import column_index_from_string

    out: Counter[str] = Counter()
    for text, n in notices.items():
        m = re.search(r"column @([A-Z]{1,3}) ", text)
        if m:
            idx = column_index_from_string(m.group(1)) - 1
            name = visible(columns[idx]) if idx < len(columns) else f"(unnamed, sheet column {m.group(1)})"
            text = text.replace(f"@{m.group(1)}", name)
        out[text] += n
    return out


def read_xlsx_header(path: Path, sheet: str | int | None) -> list[str]:
    return next(iter_xlsx(path, sheet, header_only=True)).columns


def iter_xlsx(path: Path, sheet: str | int | None = None, header_only: bool = False,
              chunk_rows: int = CHUNK_ROWS) -> Iterator[RawTable]:
    notices: Counter[str] = Counter()
    rows = _rows(path, sheet, notices)
    header: list[str] | None = None
    for _line, values in rows:
        if any(v.strip() for v in values):
            header = values
            break
    if header is None:
        raise InputFileError(f"{path.name} is empty", hint="the sheet has no rows")
    # Trailing empty header cells are formatting, not columns.
    while header and not header[-1].strip():
        header.pop()
    columns = check_header(header, path.name)
    if header_only:
        rows.close()
        yield RawTable(columns, pa.table({c: pa.array([], pa.string()) for c in columns}),
                       np.zeros(0, dtype=np.int64))
        return
    width = len(columns)
    data: list[list[str]] = [[] for _ in columns]
    lines: list[int] = []
    bad: list[StructuralError] = []
    blanks = 0

    def flush() -> RawTable:
        nonlocal data, lines, bad, blanks
        table = pa.table({c: string_column(col) for c, col in zip(columns, data, strict=True)})
        raw = RawTable(columns, table, np.asarray(lines, dtype=np.int64), bad, blanks,
                       notices=_name_columns(notices, columns))
        data, lines, bad, blanks = [[] for _ in columns], [], [], 0
        notices.clear()  # the row reader keeps counting into the same Counter
        return raw

    for line, values in rows:
        if not any(v.strip() for v in values):
            blanks += 1
            continue
        extra = [v for v in values[width:] if v.strip()]
        if extra:
            bad.append(StructuralError(line, f"row has values beyond the {width} named columns",
                                       "\t".join(values), cells=len(values)))
        else:
            values = (values + [""] * width)[:width]
            for j, v in enumerate(values):
                data[j].append(v)
            lines.append(line)
        if len(lines) >= chunk_rows:
            yield flush()
    yield flush()
