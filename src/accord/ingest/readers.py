"""Read partner exports (CSV, XLSX, Kobo/ODK JSON) into tables of strings, or reject the file.

Every cell comes out as text: typing is the mapping's job, so that a bad value becomes a
quarantined row with a reason instead of a parser exception. Structural problems that make the
file unreadable as a whole (empty, binary, not the format the mapping says, duplicate headers)
reject the batch. Every format is read in chunks, so memory stays flat whatever the file's size.
"""

from __future__ import annotations

import codecs
import csv
import io
import os
import stat
import tempfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from accord.errors import InputFileError, MappingError
from accord.ingest.json_reader import iter_kobo_json
from accord.ingest.json_reader import read_columns as read_kobo_columns
from accord.ingest.raw import (
    RawTable,
    StructuralError,
    check_header,
    drop_blank_rows,
    empty_table,
    visible,
)
from accord.ingest.xlsx_reader import iter_xlsx, read_xlsx_header
from accord.input_files import refuse_special_file

__all__ = ["RawTable", "StructuralError", "check_header", "detect_format", "iter_table", "read_header",
           "read_table", "visible"]

SNIFF_BYTES = 64 * 1024
DELIMITERS = (",", ";", "\t", "|")
FORMATS = ("csv", "xlsx", "kobo_json")
_ZIP = b"PK\x03\x04"
_OLE = b"\xd0\xcf\x11\xe0"  # legacy .xls / .doc
_DESCRIBE = {"csv": "CSV text", "xlsx": "an XLSX workbook", "kobo_json": "JSON"}


def check_export_path(path: Path) -> None:
    """The export must be a readable regular file (not a directory, a device or a pipe)."""
    try:
        st = path.stat()
    except FileNotFoundError:
        raise InputFileError(f"no such file: {path}", hint="check the path of the export") from None
    except OSError as exc:
        raise InputFileError(f"cannot read {path}: {exc.strerror}", hint="check the path and its permissions") from None
    if stat.S_ISDIR(st.st_mode):
        raise InputFileError(f"{path} is a directory, not an export file",
                             hint="give the path of the CSV, XLSX or JSON file inside it")
    refuse_special_file(path, "export")  # a device or a pipe: the rule of every input read whole
    if not os.access(path, os.R_OK):
        raise InputFileError(f"cannot read {path}: permission denied", hint="check the file's permissions")


def _content_kind(path: Path) -> str:
    """What the first bytes say the file is: xlsx (a zip), xls (legacy), kobo_json or csv (text)."""
    with path.open("rb") as fh:
        head = fh.read(4096)
    if head.startswith(_ZIP):
        return "xlsx"
    if head.startswith(_OLE):
        return "xls"
    text = head.removeprefix(codecs.BOM_UTF8).lstrip()
    if text[:1] in (b"[", b"{"):
        return "kobo_json"
    return "csv"


def detect_format(path: Path, declared: str | None) -> str:
    """The export's format: declared by the mapping or taken from the name, and checked against the
    first bytes, so that a mapping made for another partner's export says so."""
    if declared and declared not in FORMATS:
        raise InputFileError(f"unknown source format '{declared}'", hint=f"use one of: {', '.join(FORMATS)}")
    check_export_path(path)
    content = _content_kind(path)
    suffix = path.suffix.lower()
    if content == "xls" or (not declared and suffix in (".xls", ".ods")):
        raise InputFileError(f"{path.name}: legacy .xls/.ods workbooks are not supported",
                             hint="save the sheet as .xlsx or CSV (UTF-8) and ingest that")
    if declared:
        if (declared == "xlsx") != (content == "xlsx"):
            raise MappingError(
                f"the mapping is for {_DESCRIBE[declared]} exports (source.format: {declared}), "
                f"but {path.name} is {_DESCRIBE[content]}",
                hint="is this the right mapping for this export? Each partner's export has its own mapping")
        if declared == "kobo_json" and content != "kobo_json":
            raise MappingError(f"the mapping is for Kobo/ODK JSON exports, but {path.name} is not JSON",
                               hint="is this the right mapping for this export? Each partner's export has its own "
                               "mapping")
        return declared
    by_name = "xlsx" if suffix in (".xlsx", ".xlsm") else "kobo_json" if suffix == ".json" else "csv"
    if by_name == "xlsx" and content != "xlsx":
        raise InputFileError(f"{path.name} is named .xlsx but is not an XLSX workbook (it is {_DESCRIBE[content]})",
                             hint="open it in a spreadsheet program and save it again as .xlsx, or rename it")
    if by_name != "xlsx" and content == "xlsx":
        raise InputFileError(f"{path.name} is an XLSX workbook with a {suffix or 'missing'} extension",
                             hint="rename it to .xlsx (or set source.format: xlsx in the mapping)")
    return by_name


# --------------------------------------------------------------------------- CSV


@dataclass(frozen=True)
class EncodingChoice:
    """The encoding a CSV is read with, and the evidence: counts only, never text."""

    encoding: str
    undecodable: int = 0  # byte sequences that are not in `encoding` (become U+FFFD: cells quarantined)
    notice: str | None = None

    @property
    def needs_copy(self) -> bool:
        return self.encoding not in ("utf-8", "utf-8-sig") or self.undecodable > 0


def _utf8_evidence(path: Path) -> tuple[int, int]:
    """(non-ASCII characters that decode as UTF-8, byte sequences that do not), over the whole file."""
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    valid = invalid = 0
    with path.open("rb") as fh:
        while True:
            chunk = fh.read(8 << 20)
            text = decoder.decode(chunk, final=not chunk)
            bad = text.count("\ufffd") - chunk.count(b"\xef\xbf\xbd")  # U+FFFD written as such is valid
            non_ascii = len(text) - len(text.encode("ascii", "ignore"))
            invalid += max(bad, 0)
            valid += non_ascii - max(bad, 0)
            if not chunk:
                break
    return valid, invalid


def _count_undecodable(path: Path, encoding: str) -> int:
    decoder = codecs.getincrementaldecoder(encoding)(errors="replace")
    n = 0
    with path.open("rb") as fh:
        while True:
            chunk = fh.read(8 << 20)
            n += decoder.decode(chunk, final=not chunk).count("\ufffd")
            if not chunk:
                return n


def _detect_encoding(path: Path, declared: str) -> EncodingChoice:
    """Decide the file's encoding from the whole file, with evidence.

    Real exports are UTF-8 or Windows-1252 (Excel's "CSV" on Windows). A file whose non-ASCII
    text is mostly valid UTF-8 is UTF-8, even with a few stray bytes (one pasted cp1252 character
    must not re-read every name in the file, which would change their pseudonyms); the stray bytes
    become U+FFFD and the cells that hold them are quarantined.
    """
    with path.open("rb") as fh:
        head = fh.read(SNIFF_BYTES)
    if not head.strip(b" \r\n\t\xef\xbb\xbf"):
        raise InputFileError(f"{path.name} is empty", hint="export the data again; the file has no rows")
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return EncodingChoice("utf-16")
    if b"\x00" in head:
        raise InputFileError(f"{path.name} is not a text table (it contains binary data)",
                             hint="export the sheet as CSV or XLSX; is this the right file?")
    if declared != "auto":
        try:
            name = codecs.lookup(declared).name
        except LookupError:
            raise InputFileError(f"unknown encoding '{declared}' in the mapping",
                                 hint="use utf-8, cp1252 or latin-1, or 'auto'") from None
        bad = _count_undecodable(path, name)
        notice = _undecodable_notice(bad, name) if bad else None
        if name not in ("utf-8", "utf-8-sig"):
            valid, invalid = _utf8_evidence(path)
            if valid and not invalid:
                # Every non-ASCII character is valid UTF-8: read as a one-byte encoding, each of them
                # becomes two wrong characters, and the names' pseudonyms change.
                notice = ((notice + "; ") if notice else "") + (
                    f"the mapping says {declared}, but the file's {valid:,} non-ASCII character(s) are all valid "
                    "UTF-8: if it is UTF-8, set source.encoding to utf-8 (or auto) and ingest again")
        return EncodingChoice(name, bad, notice)
    valid, invalid = _utf8_evidence(path)
    utf8 = "utf-8-sig" if head.startswith(codecs.BOM_UTF8) else "utf-8"
    if invalid == 0:
        return EncodingChoice(utf8)
    if valid > invalid:
        return EncodingChoice(utf8, invalid, _undecodable_notice(invalid, "UTF-8")
                              + f" (the file's other {valid:,} non-ASCII characters are UTF-8)")
    bad = _count_undecodable(path, "cp1252")
    notice = _undecodable_notice(bad, "Windows-1252") if bad else None
    if valid:
        notice = ((notice + "; ") if notice else "") + (
            f"the file was read as Windows-1252, but {valid:,} character(s) in it look like UTF-8: "
            "check the quarantine report and the source system's export settings")
    return EncodingChoice("cp1252", bad, notice)


def _undecodable_notice(n: int, encoding: str) -> str:
    return (f"{n:,} byte sequence(s) are not valid {encoding}: they read as U+FFFD and the cells that hold "
            "them are quarantined (undecodable_text)")


def _sniff_delimiter(header_line: str, declared: str | None) -> str:
    if declared:
        return declared
    counts = {d: next(csv.reader([header_line], delimiter=d), []).__len__() for d in DELIMITERS}
    best = max(DELIMITERS, key=lambda d: counts[d])
    return best if counts[best] > 1 else ","


def _header_and_delimiter(path: Path, encoding: str, declared: str | None) -> tuple[list[str], str]:
    with path.open("r", encoding=encoding, newline="", errors="replace") as fh:
        first = fh.readline()
    delimiter = _sniff_delimiter(first.rstrip("\r\n"), declared)
    header = next(csv.reader([first], delimiter=delimiter), [])
    return header, delimiter


def _utf8_copy(path: Path, encoding: str) -> Path:
    """A UTF-8 copy for Arrow's reader; bytes not in `encoding` become U+FFFD (counted beforehand)."""
    fd, tmp = tempfile.mkstemp(suffix=".csv", prefix="accord-transcode-")
    with os.fdopen(fd, "w", encoding="utf-8", newline="") as out, path.open(
        "r", encoding=encoding, newline="", errors="replace"
    ) as src:
        while chunk := src.read(4 * 1024 * 1024):
            out.write(chunk)
    return Path(tmp)


def read_csv_header(path: Path, encoding: str = "auto", delimiter: str | None = None) -> list[str]:
    enc = _detect_encoding(path, encoding)
    header, _ = _header_and_delimiter(path, enc.encoding, delimiter)
    return check_header(header, path.name)


def read_csv(path: Path, encoding: str = "auto", delimiter: str | None = None) -> RawTable:
    """The whole CSV as one table (the pipeline streams it with `iter_csv` instead)."""
    chunks = list(iter_csv(path, encoding, delimiter))
    if not chunks:  # a header and nothing else
        columns = read_csv_header(path, encoding, delimiter)
        return RawTable(columns, empty_table(columns), np.zeros(0, dtype=np.int64))
    first = chunks[0]
    return RawTable(first.columns, pa.concat_tables([c.table for c in chunks]),
                    np.concatenate([c.line_numbers for c in chunks]),
                    [e for c in chunks for e in c.structural_errors], sum(c.blank_rows for c in chunks),
                    encoding=first.encoding, delimiter=first.delimiter,
                    notices=sum((c.notices for c in chunks), Counter()))


CHUNK_BYTES = 64 << 20


def iter_csv(path: Path, encoding: str = "auto", delimiter: str | None = None,
             chunk_bytes: int | None = None) -> Iterator[RawTable]:
    """Read a CSV in chunks of about ``chunk_bytes``, so memory stays flat on large exports.

    Serial on purpose: only the serial reader knows the line numbers of ragged rows, and the work
    after reading (mapping, hashing) is where the cores are used.
    """
    choice = _detect_encoding(path, encoding)
    enc = choice.encoding
    header, delim = _header_and_delimiter(path, enc, delimiter)
    columns = check_header(header, path.name)
    source = _utf8_copy(path, enc) if choice.needs_copy else path
    bad: list[StructuralError] = []
    notices: Counter[str] = Counter({choice.notice: 1} if choice.notice else {})

    def on_invalid(row: Any) -> str:
        bad.append(StructuralError(
            line=row.number,
            reason=f"row has {row.actual_columns} cells, the header has {row.expected_columns}",
            text=row.text,
            cells=row.actual_columns,
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
            table, lines, blanks = drop_blank_rows(table, lines)
            yield RawTable(columns, table, lines, new_bad, blanks, encoding=enc, delimiter=delim,
                           notices=notices)
            notices = Counter()
        if len(bad) > reported or notices:
            yield RawTable(columns, empty_table(columns), np.zeros(0, dtype=np.int64), bad[reported:], 0,
                           encoding=enc, delimiter=delim, notices=notices)
    except (pa.ArrowInvalid, UnicodeDecodeError):
        # Arrow's message quotes the offending row: only the fact is shown.
        raise InputFileError(f"{path.name} cannot be read as a table (unbalanced quotes or a broken row)",
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


def read_header(path: Path, fmt: str, encoding: str, delimiter: str | None,
                sheet: str | int | None) -> list[str]:
    """Column names only, so a mapping can be checked before any row is read."""
    check_export_path(path)
    if fmt == "csv":
        return read_csv_header(path, encoding, delimiter)
    if fmt == "xlsx":
        return read_xlsx_header(path, sheet)
    return read_kobo_columns(path)[0]


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
               sheet: str | int | None, columns: list[str] | None = None) -> Iterator[RawTable]:
    """The export in chunks, whatever its format (`columns`: the header already read, for JSON)."""
    if fmt == "csv":
        yield from prefetch(iter_csv(path, encoding, delimiter))
    elif fmt == "xlsx":
        # Not prefetched: warnings are captured while the workbook is read, and the capture is
        # process-wide, so it must not run while the mapping works in another thread.
        yield from iter_xlsx(path, sheet)
    else:
        yield from iter_kobo_json(path, columns)


def read_table(path: Path, fmt: str, encoding: str, delimiter: str | None,
               sheet: str | int | None) -> RawTable:
    """The whole export as one table (tests and small files; the pipeline uses `iter_table`)."""
    chunks = list(iter_table(path, fmt, encoding, delimiter, sheet))
    if fmt == "csv" and not chunks:
        return read_csv(path, encoding, delimiter)
    first = chunks[0]
    return RawTable(first.columns, pa.concat_tables([c.table for c in chunks]),
                    np.concatenate([c.line_numbers for c in chunks]),
                    [e for c in chunks for e in c.structural_errors], sum(c.blank_rows for c in chunks),
                    encoding=first.encoding, delimiter=first.delimiter,
                    notices=sum((c.notices for c in chunks), Counter()))


def read_xlsx(path: Path, sheet: str | int | None = None) -> RawTable:
    return read_table(path, "xlsx", "auto", None, sheet)


def read_kobo_json(path: Path) -> RawTable:
    return read_table(path, "kobo_json", "auto", None, None)


def sniff_text(text: str) -> str:
    """Delimiter of a small CSV text (used by tests and the mapping helper)."""
    return _sniff_delimiter(io.StringIO(text).readline(), None)
