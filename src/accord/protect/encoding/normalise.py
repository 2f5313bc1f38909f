"""Normalisation of identifiers before encoding: identical at every partner.

Every partner must turn the same person into the same tokens, whatever its export looked like, so
these functions are deliberately simple and deterministic (no locale, no guessing of scripts).
They run once per distinct value (names repeat), not once per record.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from dataclasses import dataclass
from enum import StrEnum

_APOSTROPHES = re.compile(r"[\u0027\u2018\u2019\u02bc\u0060\u00b4]")
# Letters that have no Unicode decomposition to a base letter.
_FOLD = str.maketrans({"ø": "o", "ł": "l", "đ": "d", "ı": "i", "æ": "ae", "œ": "oe", "ß": "ss"})
_ASCII_PUNCT = str.maketrans({chr(c): " " for c in range(128) if not chr(c).isalnum()})
_CODE_SPLIT = re.compile(r"[;,|/\s]+")
_ISO = re.compile(r"^\s*(\d{4})(?:-(\d{1,2})(?:-(\d{1,2}))?)?\s*$")
_COMPACT = re.compile(r"^\s*(\d{4})(\d{2})(\d{2})\s*$")
_DMY = re.compile(r"^\s*(\d{1,2})[./](\d{1,2})[./](\d{4})\s*$")


def normalise_name(text: str | None) -> str:
    """NFKC, case-fold, strip accents, drop apostrophes, punctuation to spaces, collapse spaces.

    Non-Latin letters are kept as letters: a partner writing Arabic script and one writing a Latin
    transliteration will not match on this field, which is a known limit (see docs/linkage.md).
    """
    if not text:
        return ""
    if text.isascii():
        # Fast path (most exports): same result as the general path below for ASCII input.
        return " ".join(_APOSTROPHES.sub("", text).lower().translate(_ASCII_PUNCT).split())
    t = unicodedata.normalize("NFKC", text).casefold()
    t = "".join(ch for ch in unicodedata.normalize("NFKD", t) if not unicodedata.combining(ch))
    t = t.translate(_FOLD)
    t = _APOSTROPHES.sub("", t)
    t = "".join(ch if ch.isalnum() else " " for ch in t)
    return " ".join(t.split())


def normalise_code(text: str | None) -> str:
    """Codes and numbers: letters and digits only, upper case."""
    if not text:
        return ""
    t = unicodedata.normalize("NFKC", text).upper()
    return "".join(ch for ch in t if ch.isalnum())


def split_codes(text: str | None) -> list[str]:
    """A multi-valued code cell ("SY; IQ") as its normalised, sorted, distinct codes."""
    if not text:
        return []
    return sorted({c for c in (normalise_code(p) for p in _CODE_SPLIT.split(text)) if c})


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
