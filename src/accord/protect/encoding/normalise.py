"""Normalisation of identifiers before encoding: identical at every partner.

Names and codes are normalised by `accord.protect.normalise` (Arrow kernels), the one definition
that pseudonyms use too; this module re-exports its single-value helpers and adds the parsing of
birth dates. Everything is deterministic (no locale, no guessing of scripts).
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from dataclasses import dataclass
from enum import StrEnum

import pyarrow as pa

from accord.protect.normalise import normalise_code, normalise_codes, normalise_name

__all__ = ["DateQuality", "ParsedDate", "normalise_code", "normalise_name", "parse_date",
           "split_codes", "split_codes_many"]

CODE_SPLIT = re.compile(r"[;,|/\s]+")
_ISO = re.compile(r"^\s*(\d{4})(?:-(\d{1,2})(?:-(\d{1,2}))?)?\s*$")
_COMPACT = re.compile(r"^\s*(\d{4})(\d{2})(\d{2})\s*$")
_DMY = re.compile(r"^\s*(\d{1,2})[./](\d{1,2})[./](\d{4})\s*$")


def split_codes_many(values: list[str | None]) -> list[list[str]]:
    """Each multi-valued code cell ("SY; IQ") as its normalised, sorted, distinct codes.

    One Arrow call for all cells: the per-value cost of a kernel call would dominate otherwise.
    """
    parts = [CODE_SPLIT.split(v) if v else [] for v in values]
    flat = normalise_codes(pa.array([p for ps in parts for p in ps], pa.string())).to_pylist()
    out: list[list[str]] = []
    at = 0
    for ps in parts:
        out.append(sorted({c for c in flat[at:at + len(ps)] if c}))
        at += len(ps)
    return out


def split_codes(text: str | None) -> list[str]:
    """A multi-valued code cell ("SY; IQ") as its normalised, sorted, distinct codes."""
    return split_codes_many([text])[0]


class DateQuality(StrEnum):
    """How far a birth date can be trusted; the codes are the standard's `dob_quality` codes."""

    EXACT = "exact"
    DEFAULT_JAN_1 = "default_jan_1"
    YEAR_ONLY = "year_only"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class ParsedDate:
    year: int | None
    month: int | None
    day: int | None
    quality: DateQuality


UNKNOWN_DATE = ParsedDate(None, None, None, DateQuality.UNKNOWN)


def parse_date(text: str | dt.date | None) -> ParsedDate:
    """Parse ISO (YYYY-MM-DD, YYYY-MM, YYYY), compact YYYYMMDD or DD/MM/YYYY.

    1 January is treated as a possible default (many registrations record an unknown birthday as
    1 January): linkage then compares only its year.
    """
    if text is None:
        return UNKNOWN_DATE
    m: int | None
    d: int | None
    if isinstance(text, dt.date):
        y, m, d = text.year, text.month, text.day
    else:
        s = unicodedata.normalize("NFKC", text)
        match = _ISO.match(s) or _COMPACT.match(s)
        if match:
            y = int(match.group(1))
            m = int(match.group(2)) if match.group(2) else None
            d = int(match.group(3)) if match.group(3) else None
        elif (dmy := _DMY.match(s)) is not None:
            d, m, y = int(dmy.group(1)), int(dmy.group(2)), int(dmy.group(3))
        else:
            return UNKNOWN_DATE
    if not 1850 <= y <= 2100:
        return UNKNOWN_DATE
    if m is None or d is None or not 1 <= m <= 12 or not 1 <= d <= 31:
        return ParsedDate(y, None, None, DateQuality.YEAR_ONLY)
    if m == 1 and d == 1:
        return ParsedDate(y, 1, 1, DateQuality.DEFAULT_JAN_1)
    return ParsedDate(y, m, d, DateQuality.EXACT)
