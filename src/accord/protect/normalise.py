"""Normalisation of identifiers before they are keyed: identical at every partner.

Applied to distinct values only (names repeat a lot), so it stays cheap on large exports.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable

import pyarrow as pa
import pyarrow.compute as pc

_APOSTROPHES = re.compile(r"[\u0027\u2018\u2019\u02bc\u0060\u00b4]")
_NON_ALNUM = re.compile(r"[^0-9a-z]+")
_DIGITS = re.compile(r"\D+")
_UNDECOMPOSABLE = str.maketrans({"ø": "o", "ł": "l", "đ": "d", "ı": "i", "æ": "ae", "œ": "oe"})


def normalise_name(text: str | None) -> str:
    """NFKC, case-fold, strip accents, drop apostrophes, punctuation to spaces, collapse spaces."""
    if not text:
        return ""
    t = unicodedata.normalize("NFKC", text).casefold()
    t = "".join(ch for ch in unicodedata.normalize("NFKD", t) if not unicodedata.combining(ch))
    # Letters with no decomposition (ø, ł, ß->ss handled by casefold) are mapped by hand.
    t = t.translate(_UNDECOMPOSABLE)
    t = _APOSTROPHES.sub("", t)
    # Non-Latin scripts are kept (as letters) rather than deleted: only punctuation is removed.
    t = "".join(ch if ch.isalnum() else " " for ch in t)
    return " ".join(t.split())


def normalise_code(text: str | None) -> str:
    """Case numbers and document numbers: letters and digits only, upper case."""
    if not text:
        return ""
    t = unicodedata.normalize("NFKC", text).upper()
    return "".join(ch for ch in t if ch.isalnum())


def normalise_phone(text: str | None) -> str:
    if not text:
        return ""
    return _DIGITS.sub("", unicodedata.normalize("NFKC", text)).lstrip("0")


def normalise_column(values: pa.Array | pa.ChunkedArray, fn: Callable[[str | None], str]) -> pa.Array:
    """Apply a normaliser to the distinct values of a string column."""
    encoded = pc.dictionary_encode(values)
    if isinstance(encoded, pa.ChunkedArray):
        encoded = encoded.combine_chunks()
    uniques = encoded.dictionary.to_pylist()
    normalised = pa.array([fn(u) for u in uniques], pa.string())
    return pc.take(normalised, encoded.indices)
