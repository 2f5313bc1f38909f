"""Normalisation of identifiers before they are keyed: identical at every partner.

Vectorised with Arrow's compute kernels (Unicode normalisation and RE2 regexes in C++): the
scalar helpers below call the same kernels, so there is exactly one definition of each rule.
"""

from __future__ import annotations

from collections.abc import Callable

import pyarrow as pa
import pyarrow.compute as pc

# Letters that lower-casing and accent stripping leave alone but that partners spell both ways.
_FOLDS = (("ß", "ss"), ("ø", "o"), ("ł", "l"), ("đ", "d"), ("ı", "i"), ("æ", "ae"), ("œ", "oe"), ("ς", "σ"))
_APOSTROPHES = r"['\x{2018}\x{2019}\x{2bc}\x{60}\x{b4}]"


def _as_array(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    return values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values


def on_distinct(fn: Callable[[pa.Array], pa.Array], values: pa.Array | pa.ChunkedArray) -> pa.Array:
    """Apply a normaliser to the distinct values only: names repeat, so this saves most of the work."""
    encoded = pc.dictionary_encode(_as_array(values))
    return pc.take(fn(encoded.dictionary), encoded.indices)


def normalise_names(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    """NFKC, lower case, strip accents, drop apostrophes, other punctuation to spaces, collapse spaces.

    Non-Latin scripts are kept as letters (not deleted), so a name written in Arabic script still
    identifies its bearer; transliteration variants are the linkage step's business.
    """
    x = pc.utf8_lower(pc.utf8_normalize(_as_array(values), "NFKC"))
    x = pc.replace_substring_regex(pc.utf8_normalize(x, "NFKD"), r"\pM", "")
    for src, dst in _FOLDS:
        x = pc.replace_substring(x, src, dst)
    x = pc.replace_substring_regex(x, _APOSTROPHES, "")
    x = pc.replace_substring_regex(x, r"[^\pL\pN]+", " ")
    return pc.fill_null(pc.utf8_trim_whitespace(x), "")


def normalise_codes(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    """Case and document numbers: letters and digits only, upper case."""
    x = pc.utf8_upper(pc.utf8_normalize(_as_array(values), "NFKC"))
    return pc.fill_null(pc.replace_substring_regex(x, r"[^\pL\pN]+", ""), "")


def normalise_phones(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    """Digits only, without leading zeros (trunk prefixes differ between partners)."""
    x = pc.replace_substring_regex(pc.utf8_normalize(_as_array(values), "NFKC"), r"\D+", "")
    return pc.fill_null(pc.utf8_ltrim(x, "0"), "")


def _scalar(fn: Callable[[pa.Array], pa.Array], text: str | None) -> str:
    out = fn(pa.array([text], pa.string()))
    return str(out[0].as_py())


def normalise_name(text: str | None) -> str:
    return _scalar(normalise_names, text)


def normalise_code(text: str | None) -> str:
    return _scalar(normalise_codes, text)


def normalise_phone(text: str | None) -> str:
    return _scalar(normalise_phones, text)
