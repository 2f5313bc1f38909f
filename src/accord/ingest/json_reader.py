"""Kobo/ODK JSON exports, streamed: memory stays flat whatever the number of submissions.

Why a scanner of our own: the streaming JSON parsers at hand were not safe on hostile files
(ijson's C backend crashed the interpreter on a number of thousands of digits, refused 25-digit
integers, silently turned a broken emoji into '?' and used gigabytes on deeply nested arrays).
Python's own `json` is exact and safe on one submission at a time, so the file is cut into
submissions by a vectorised scan of its bytes (string state, escapes and nesting depth with
numpy), the depth is checked before anything is parsed, and each submission is parsed alone,
numbers kept as written.

Two passes: the first learns every column (Kobo omits unanswered questions, so a column can
first appear in the last submission) and checks the whole file before any row is mapped; the
second yields chunks of submissions as tables of text.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from accord.errors import InputFileError
from accord.ingest.raw import RawTable, drop_blank_rows, string_column

READ_BYTES = 16 << 20
CHUNK_SUBMISSIONS = 50_000
MAX_DEPTH = 64  # Kobo nests groups and repeats a few levels deep; 64 is far beyond any form


@dataclass
class _ScanState:
    in_string: bool = False
    backslashes: int = 0  # length of the backslash run that ended the previous buffer
    depth: int = 0
    item_depth: int = 1  # depth of the submissions array's items (1: a list, 2: {"results": [...]})
    commas: int = 0  # commas between submissions
    wrapper_containers: int = 0  # containers directly inside a {"results": ...} object


def _refuse(path: Path, what: str) -> InputFileError:
    return InputFileError(f"{path.name} is not a Kobo/ODK submission export: {what}",
                          hint="download the submissions again as JSON from Kobo/ODK (a list of submission "
                          "objects, or an object with a 'results' list)")


_STRUCTURAL = np.array([ord(c) for c in "{}[],"], dtype=np.uint8)
_OPENERS = np.array([ord("{"), ord("[")], dtype=np.uint8)
_CLOSERS = np.array([ord("}"), ord("]")], dtype=np.uint8)


def _structure(buf: np.ndarray, st: _ScanState) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Structural characters outside strings in `buf`: positions, bytes, and the depth after each.

    A quote is escaped when an odd run of backslashes precedes it; unescaped quotes toggle the
    string state; brackets count only outside strings. `st` carries the state to the next buffer.
    """
    quotes = np.flatnonzero(buf == ord('"'))
    bs = np.flatnonzero(buf == ord("\\"))
    run = np.zeros(len(quotes), dtype=np.int64)
    if len(quotes) and len(bs):
        new_run = np.ones(len(bs), dtype=bool)
        new_run[1:] = bs[1:] != bs[:-1] + 1
        starts = np.maximum.accumulate(np.where(new_run, bs, 0))  # start of the run of each backslash
        i = np.minimum(np.searchsorted(bs, quotes - 1), len(bs) - 1)
        hit = bs[i] == quotes - 1
        run[hit] = quotes[hit] - starts[i[hit]]
        run[hit & (starts[i] == 0) & (bs[0] == 0)] += st.backslashes
    if len(quotes) and st.backslashes:
        run[quotes == 0] = st.backslashes  # preceded only by the run that ended the last buffer
    real = quotes[run % 2 == 0]
    found = np.flatnonzero(np.isin(buf, _STRUCTURAL))
    outside = (np.searchsorted(real, found) + int(st.in_string)) % 2 == 0
    found = found[outside]
    chars = buf[found]
    delta = np.where(np.isin(chars, _OPENERS), 1, np.where(np.isin(chars, _CLOSERS), -1, 0))
    depth = st.depth + np.cumsum(delta)
    st.in_string = bool((len(real) + int(st.in_string)) % 2)
    not_bs = np.flatnonzero(buf != ord("\\"))
    tail = len(buf) - 1 - int(not_bs[-1]) if len(not_bs) else len(buf)
    st.backslashes = st.backslashes + tail if tail == len(buf) else tail
    if len(depth):
        st.depth = int(depth[-1])
    return found, chars, depth


MAX_SUBMISSION_BYTES = 64 << 20


def _submission_spans(path: Path) -> Iterator[bytes]:
    """The bytes of each submission object, in order; the file's structure is checked on the way."""
    st = _ScanState()
    carry: bytes | None = None  # bytes of a submission that started in an earlier buffer
    first = True
    spans = 0
    with path.open("rb") as fh:
        while block := fh.read(READ_BYTES):
            if first:
                block = block.removeprefix(b"\xef\xbb\xbf")
                head = block.lstrip()
                if not head:
                    continue
                if head[:1] not in (b"[", b"{"):
                    raise _refuse(path, "it does not start with '[' or '{'")
                st.item_depth = 1 if head[:1] == b"[" else 2
                first = False
            buf = np.frombuffer(block, dtype=np.uint8)
            found, chars, depth = _structure(buf, st)
            if len(depth) and int(depth.max()) > MAX_DEPTH:
                raise _refuse(path, f"it nests more than {MAX_DEPTH} levels deep")
            if len(depth) and int(depth.min()) < 0:
                raise _refuse(path, "its brackets do not balance")
            item = st.item_depth
            is_open = np.isin(chars, _OPENERS)
            is_close = np.isin(chars, _CLOSERS)
            if item == 2:
                st.wrapper_containers += int((is_open & (depth == 2)).sum())
                if bool((is_open & (depth == 2) & (chars == ord("{"))).any()):
                    raise _refuse(path, "its 'results' is not a list")
                if st.wrapper_containers > 1:
                    raise _refuse(path, "its top-level object holds more than the 'results' list")
            st.commas += int(((chars == ord(",")) & (depth == item)).sum())
            opens = found[is_open & (depth == item + 1)].tolist()
            closes = found[is_close & (depth == item)].tolist()
            o = 0
            for c in closes:
                if o < len(opens) and opens[o] < c:
                    spans += 1
                    yield block[opens[o]:c + 1]
                    o += 1
                elif carry is not None:
                    spans += 1
                    yield carry + block[:c + 1]
                    carry = None
            if o < len(opens):
                carry = block[opens[o]:]
            elif carry is not None:
                carry += block
            if carry is not None and len(carry) > MAX_SUBMISSION_BYTES:
                raise _refuse(path, f"a submission is larger than {MAX_SUBMISSION_BYTES >> 20} MB")
    if first:
        raise InputFileError(f"{path.name} is empty", hint="export the data again; the file has no submissions")
    if st.in_string or st.depth != 0 or carry is not None:
        raise _refuse(path, "it ends in the middle of a submission (truncated download?)")
    if spans and st.commas != spans - 1:
        raise _refuse(path, "some items of the submissions list are not objects")


def _parse(span: bytes, index: int, path: Path) -> dict[str, Any]:
    # Numbers stay as written (no float rounding, no limit on digits); invalid UTF-8 becomes
    # U+FFFD, which the mapping quarantines as undecodable text instead of refusing the file.
    try:
        obj = json.loads(span.decode("utf-8", errors="replace"), parse_int=str, parse_float=str,
                         parse_constant=str)
    except (json.JSONDecodeError, RecursionError, ValueError):
        raise _refuse(path, f"submission {index:,} is not valid JSON") from None
    if not isinstance(obj, dict):
        raise _refuse(path, f"submission {index:,} is not an object")
    return obj


def _submissions(path: Path) -> Iterator[dict[str, Any]]:
    for i, span in enumerate(_submission_spans(path), start=1):
        yield _parse(span, i, path)


def _check_top_level(path: Path) -> None:
    """A `{...}` document must hold its submissions in a 'results' list (Kobo's API shape)."""
    with path.open("rb") as fh:
        head = fh.read(1 << 20).removeprefix(b"\xef\xbb\xbf").lstrip()
    if head[:1] == b"{" and b'"results"' not in head:
        raise _refuse(path, "an object without a 'results' list of submissions near its start")


def read_columns(path: Path) -> tuple[list[str], int]:
    """Every column (first-seen order) and the number of submissions: the first pass."""
    _check_top_level(path)
    columns: dict[str, None] = {}
    n = 0
    for record in _submissions(path):
        n += 1
        for k in record:
            if k not in columns:
                columns[k] = None
    if n == 0:
        raise InputFileError(f"{path.name} has no submissions", hint="export again when data exist")
    return list(columns), n


def iter_kobo_json(path: Path, columns: list[str] | None = None,
                   chunk: int = CHUNK_SUBMISSIONS) -> Iterator[RawTable]:
    cols = columns if columns is not None else read_columns(path)[0]
    batch: list[dict[str, Any]] = []
    start = 1
    for record in _submissions(path):
        batch.append(record)
        if len(batch) >= chunk:
            yield _table(cols, batch, start)
            start += len(batch)
            batch = []
    if batch:
        yield _table(cols, batch, start)


def _table(columns: list[str], records: list[dict[str, Any]], start: int) -> RawTable:
    import pyarrow as pa

    data = {c: string_column([_json_text(r.get(c)) for r in records]) for c in columns}
    table = pa.table(data)
    lines = np.arange(start, start + len(records), dtype=np.int64)  # submission index
    table, lines, blanks = drop_blank_rows(table, lines)
    return RawTable(columns, table, lines, [], blanks)


def _json_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, list | dict):
        return json.dumps(value, ensure_ascii=False)
    return str(value)
