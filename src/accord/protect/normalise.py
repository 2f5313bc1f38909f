"""Normalisation of identifiers before they are keyed: identical at every partner.

Vectorised with Arrow's compute kernels (Unicode normalisation and RE2 regexes in C++): the
scalar helpers below call the same kernels, so there is exactly one definition of each rule.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

# Letters that lower-casing and accent stripping leave alone but that partners spell both ways.
_FOLDS = (("ß", "ss"), ("ø", "o"), ("ł", "l"), ("đ", "d"), ("ı", "i"), ("æ", "ae"), ("œ", "oe"), ("ς", "σ"))
_APOSTROPHES = r"['\x{2018}\x{2019}\x{2bc}\x{60}\x{b4}]"
_SPACE, _DROP = 32, 255


def _ascii_table() -> np.ndarray:
    # What `normalise_names` does to each ASCII character: letters lower-cased, digits kept,
    # apostrophes dropped, everything else a space.
    lut = np.full(128, _SPACE, np.uint8)
    for c in range(128):
        if chr(c).isalnum():
            lut[c] = ord(chr(c).lower())
    lut[[ord("'"), ord("`")]] = _DROP
    return lut


_ASCII = _ascii_table()


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
    x = _as_array(values)
    if pa.types.is_string(x.type) and pc.all(pc.string_is_ascii(x)).as_py() is not False:
        return _normalise_ascii(x)
    x = pc.utf8_lower(pc.utf8_normalize(x, "NFKC"))
    x = pc.replace_substring_regex(pc.utf8_normalize(x, "NFKD"), r"\pM", "")
    for src, dst in _FOLDS:
        x = pc.replace_substring(x, src, dst)
    x = pc.replace_substring_regex(x, _APOSTROPHES, "")
    x = pc.replace_substring_regex(x, r"[^\pL\pN]+", " ")
    return pc.fill_null(pc.utf8_trim_whitespace(x), "")


def utf8_buffers(values: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """(offsets, bytes) of a string array without nulls: value i is bytes[offsets[i]:offsets[i+1]]."""
    s = values.cast(pa.string())
    n = len(s)
    if n == 0:
        return np.zeros(1, np.int64), np.empty(0, np.uint8)
    offsets = np.frombuffer(s.buffers()[1], np.int32, count=n + 1, offset=4 * s.offset)
    offsets = offsets.astype(np.int64)
    if offsets[-1] == offsets[0]:
        return offsets - offsets[0], np.empty(0, np.uint8)
    data = np.frombuffer(s.buffers()[2], np.uint8, count=int(offsets[-1]))[offsets[0]:]
    return offsets - offsets[0], data


def _normalise_ascii(values: pa.Array) -> pa.Array:
    """`normalise_names` of ASCII strings, by a byte table over Arrow's data buffer.

    On ASCII, Unicode normalisation, accent stripping and the folds change nothing, and letters
    and digits are [A-Za-z0-9]: the rule is a table of bytes plus collapsing and trimming spaces.
    Most exports are ASCII, and the regex kernels cost more than the rest of encoding. A property
    test checks this path against the general one.
    """
    n = len(values)
    offsets, data = utf8_buffers(pc.fill_null(values, ""))
    if len(data) == 0:
        return pa.array([""] * n, pa.string())
    c = _ASCII[data]
    owner = np.repeat(np.arange(n, dtype=np.int64), np.diff(offsets))
    keep = c != _DROP
    c, owner = c[keep], owner[keep]
    space = c == _SPACE
    # A space stays only after a non-space of the same value (collapses runs, drops leading ones)
    after_char = np.zeros(len(c), bool)
    after_char[1:] = ~space[:-1] & (owner[1:] == owner[:-1])
    keep = ~space | after_char
    c, owner = c[keep], owner[keep]
    # ... and not as the value's last character (trailing).
    last = np.ones(len(c), bool)
    last[:-1] = owner[1:] != owner[:-1]
    keep = ~((c == _SPACE) & last)
    c, owner = c[keep], owner[keep]
    new_offsets = np.zeros(n + 1, np.int32)
    np.cumsum(np.bincount(owner, minlength=n), out=new_offsets[1:])
    return pa.StringArray.from_buffers(n, pa.py_buffer(new_offsets), pa.py_buffer(c.tobytes()))


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
    """`normalise_names` of one value (the same kernels: there is one definition)."""
    return _scalar(normalise_names, text)


def normalise_code(text: str | None) -> str:
    return _scalar(normalise_codes, text)


def normalise_phone(text: str | None) -> str:
    return _scalar(normalise_phones, text)
