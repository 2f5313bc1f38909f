"""What every reader hands to the mapping: a table of strings, and what it noticed on the way.

Kept apart from the readers so that the CSV, XLSX and JSON readers share one shape and one set of
rules (header checks, blank rows, how a column name is shown in a message).
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from accord.errors import InputFileError


@dataclass(frozen=True)
class StructuralError:
    """A physical row that could not be split into the header's columns."""

    line: int | None
    reason: str
    text: str  # raw text: partner side only (quarantine report), never in a contribution
    cells: int | None = None  # how many cells the row had (a count, never a value)


@dataclass
class RawTable:
    columns: list[str]
    table: pa.Table  # all columns pa.string(), "" for empty cells
    line_numbers: np.ndarray  # 1-based physical line (CSV), sheet row (XLSX) or submission (JSON)
    structural_errors: list[StructuralError] = field(default_factory=list)
    blank_rows: int = 0
    encoding: str = "utf-8"
    delimiter: str | None = None
    # What the reader noticed about the file as a whole: message -> count. Messages are fixed
    # sentences (never a value), so that they can be shown on any screen.
    notices: Counter[str] = field(default_factory=Counter)

    @property
    def num_rows(self) -> int:
        return self.table.num_rows


def empty_table(columns: list[str]) -> pa.Table:
    return pa.table({c: pa.array([], pa.string()) for c in columns})


# Characters that are invisible or look like others on screen: a header that differs from the
# mapping only by one of them must be shown so the user can see the difference.
_INVISIBLE_CATEGORIES = frozenset({"Cf", "Cc", "Zl", "Zp", "Co", "Cn", "Cs"})


def visible(name: str) -> str:
    """A column name as it can be read on screen: invisible and odd-space characters as <U+XXXX>."""
    out = []
    for ch in name:
        cat = unicodedata.category(ch)
        if cat in _INVISIBLE_CATEGORIES or (cat == "Zs" and ch != " "):
            out.append(f"<U+{ord(ch):04X}>")
        else:
            out.append(ch)
    text = "".join(out)
    if text != text.strip():  # leading/trailing spaces are invisible too
        text = repr(text)
    return text


def folded(name: str) -> str:
    """A column name without invisible characters, case or width differences (for near matches)."""
    text = unicodedata.normalize("NFKC", name)
    text = "".join(ch for ch in text if unicodedata.category(ch) not in _INVISIBLE_CATEGORIES)
    return " ".join(text.split()).casefold()


# What a cell of a record looks like and a column name does not: a number, a date or time, a
# phone number, an e-mail address. Column names are words ("age", "grp_person/phone", "Q12").
_VALUE_LIKE = re.compile(
    r"""^(?!(?:19|20)\d\d$)                                      # a year is a fair column name
        (?:[+-]?\d+(?:[.,]\d+)*                                # 42, 1.5, 1,234,567
        |\+?[\d\s().-]{7,}                                     # +66 81 234 5678, (02) 555-0101
        |\d{1,4}[-/.]\d{1,2}[-/.]\d{1,4}(?:[ T]\d{1,2}:\d{2}(?::\d{2})?\S*)?  # 2024-03-01, 01/03/2024 10:00
        |\d{1,2}:\d{2}(?::\d{2})?                                # 10:30
        |[^@\s]+@[^@\s]+\.[^@\s]+                                # someone@example.org
        )$""",
    re.VERBOSE,
)


def value_like_cells(cells: list[str]) -> int:
    """How many of the first row's cells look like record values rather than column names."""
    return sum(1 for c in cells if _VALUE_LIKE.match(c.strip()))


def first_row_is_data(cells: list[str]) -> bool:
    """Whether the first row looks like a record, not a header: at least two cells and a quarter of
    the named ones are numbers, dates, phones or e-mail addresses. Used only to explain a header
    that is already refused (duplicate names, none of the mapping's columns), never to refuse one."""
    named = [c for c in cells if c.strip()]
    n = value_like_cells(named)
    return n >= 2 and n * 4 >= len(named)


def header_missing_error(cells: list[str], source: str) -> InputFileError:
    """The refusal for an export whose first row is a record: says so plainly, shows no cell."""
    named = [c for c in cells if c.strip()]
    return InputFileError(
        f"the first row of {source} looks like data, not a header: {value_like_cells(named)} of its "
        f"{len(named)} cells are numbers, dates, phone numbers or e-mail addresses (not shown: they are "
        "a record)",
        hint="export again with the column names as the first row, or insert that row in a spreadsheet "
             "program (the names the mapping reads are its fields' `column:` entries), then ingest again")


def check_header(columns: list[str], source: str, fold_case: bool = False) -> list[str]:
    """The header's names, refused when it has none, repeats one or looks like a record.
    ``fold_case``: names that differ only in case are the same (for a reader such as DuckDB that
    does not tell them apart and would rename the second one silently)."""
    cleaned = [c.strip().lstrip("\ufeff") for c in columns]
    if not cleaned or all(c == "" for c in cleaned):
        raise InputFileError(f"{source} has no header row", hint="the first row must name the columns")
    positions: dict[str, list[int]] = {}
    for i, c in enumerate(cleaned, start=1):
        if c:
            positions.setdefault(c.casefold() if fold_case else c, []).append(i)
    dupes = [p for p in positions.values() if len(p) > 1]
    if dupes and first_row_is_data(cleaned):
        raise header_missing_error(cleaned, source)
    if dupes:
        # Positions, not names: a file without its header row has a record there (values repeat,
        # e.g. two equal dates), and a message may never quote a record.
        where = "; ".join(" and ".join(str(i) for i in p) for p in dupes[:10])
        raise InputFileError(
            f"{source} has duplicate column names (columns {where} have the same name"
            + (", ignoring case)" if fold_case else ")"),
            hint="rename the columns so that each name appears once, then export again "
            "(is the first row really the header?)",
        )
    return [c if c else f"_unnamed_{i + 1}" for i, c in enumerate(cleaned)]


def drop_blank_rows(table: pa.Table, lines: np.ndarray) -> tuple[pa.Table, np.ndarray, int]:
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


def string_column(values: list[str]) -> pa.Array:
    """Text cells as an Arrow column; characters that cannot be UTF-8 (lone surrogates from a broken
    emoji) become U+FFFD, which the mapping then quarantines as undecodable text."""
    try:
        return pa.array(values, pa.string())
    except (UnicodeEncodeError, pa.ArrowException):
        return pa.array([_SURROGATE.sub("\ufffd", v) for v in values], pa.string())


_SURROGATE = re.compile("[\ud800-\udfff]")
