"""Vectorised normalisation and q-grams for ASCII values (Arrow compute kernels).

Same result as `normalise_name` + `qgrams` (a property test checks it); values that are not ASCII
take the per-value Python path, where Unicode normalisation needs it.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from accord.protect.encoding.normalise import normalise_name

_SEP = " "


def normalise_names_arrow(values: pa.Array) -> pa.Array:
    """`normalise_name` over a string array; nulls become ""."""
    values = pc.fill_null(values, "")
    ascii_ = pc.string_is_ascii(values)
    fast = pc.utf8_lower(pc.replace_substring_regex(values, r"['`]", ""))
    fast = pc.utf8_trim(pc.replace_substring_regex(fast, r"[^a-z0-9]+", " "), " ")
    if pc.all(ascii_).as_py() is not False:
        return fast
    slow = pa.array([None if a else normalise_name(v) for v, a in
                     zip(values.to_pylist(), ascii_.to_pylist(), strict=True)], pa.string())
    return pc.if_else(ascii_, fast, slow)


def qgram_pairs(norm: pa.Array, q: int, by_word: bool) -> tuple[np.ndarray, np.ndarray,
                                                                 list[str]] | None:
    """(owner row, token index, token vocabulary) of the padded q-grams of ASCII strings.

    Returns None when some string is not ASCII (the caller then uses the Python path).
    """
    if pc.any(pc.invert(pc.string_is_ascii(norm))).as_py():
        return None
    pad = "_" * (q - 1)
    padded = (pc.replace_substring(norm, _SEP, pad + _SEP + pad) if by_word else norm)
    padded = pc.binary_join_element_wise(pad, padded, pad, "")
    nonempty = pc.greater(pc.utf8_length(norm), 0).to_numpy(zero_copy_only=False)
    lengths = pc.utf8_length(padded).to_numpy(zero_copy_only=False)
    owners: list[np.ndarray] = []
    grams: list[pa.Array] = []
    rows = np.arange(len(norm), dtype=np.int64)
    longest = int(lengths.max()) if len(lengths) else 0
    for i in range(max(0, longest - q + 1)):
        ok = nonempty & (lengths >= i + q)
        if not ok.any():
            break
        sl = pc.utf8_slice_codeunits(padded.filter(pa.array(ok)), i, i + q)
        own = rows[ok]
        if by_word:
            keep = pc.invert(pc.match_substring(sl, _SEP)).to_numpy(zero_copy_only=False)
            sl, own = sl.filter(pa.array(keep)), own[keep]
        owners.append(own)
        grams.append(sl)
    if not grams:
        return np.empty(0, np.int64), np.empty(0, np.int64), []
    enc = pc.dictionary_encode(pa.concat_arrays(grams))
    return (np.concatenate(owners), enc.indices.to_numpy(zero_copy_only=False).astype(np.int64),
            enc.dictionary.to_pylist())


_ISO = r"^\s*(?P<y>\d{4})(?:-(?P<m>\d{1,2})(?:-(?P<d>\d{1,2}))?)?\s*$"
_COMPACT = r"^\s*(?P<y>\d{4})(?P<m>\d{2})(?P<d>\d{2})\s*$"
_DMY = r"^\s*(?P<d>\d{1,2})[./](?P<m>\d{1,2})[./](?P<y>\d{4})\s*$"


def parse_dates_arrow(values: pa.Array) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(year, month, day) int arrays, 0 where unknown, by the rules of `parse_date`.

    `parse_date` also applies NFKC first; callers use this only for ASCII input, where NFKC
    changes nothing.
    """
    n = len(values)
    y = np.zeros(n, np.int64)
    m = np.zeros(n, np.int64)
    d = np.zeros(n, np.int64)
    done = np.zeros(n, bool)
    values = pc.fill_null(values, "")
    for pattern in (_ISO, _COMPACT, _DMY):
        ex = pc.extract_regex(values, pattern)
        ok = pc.is_valid(ex).to_numpy(zero_copy_only=False) & ~done
        if not ok.any():
            continue
        for name, out in (("y", y), ("m", m), ("d", d)):
            part = pc.struct_field(ex, name)
            num = pc.cast(pc.if_else(pc.equal(part, ""), None, part), pa.int64())
            out[ok] = pc.fill_null(num, 0).to_numpy(zero_copy_only=False)[ok]
        done |= ok
    valid_y = (y >= 1850) & (y <= 2100)
    full = valid_y & (m >= 1) & (m <= 12) & (d >= 1) & (d <= 31)
    y[~valid_y] = 0
    m[~full] = 0
    d[~full] = 0
    return y, m, d


def date_token_pairs(y: np.ndarray, m: np.ndarray, d: np.ndarray) -> tuple[np.ndarray, np.ndarray,
                                                                           list[str]]:
    """(owner, token index, vocabulary) of `date_tokens` for parsed dates."""
    rows = np.arange(len(y), dtype=np.int64)
    has_y, has_full = y > 0, m > 0
    lo, hi = np.minimum(m, d), np.maximum(m, d)

    def s(a: np.ndarray) -> pa.Array:
        return pa.array(a).cast(pa.string())

    parts: list[tuple[np.ndarray, pa.Array]] = [(has_y, pc.binary_join_element_wise("Y", s(y), ""))]
    templates = [
        ("M", [m]), ("D", [d]), ("YM", [y, m]), ("MD", [m, d]), ("P", [lo, hi]),
        ("YP", [y, lo, hi]), ("F", [y, m, d]),
    ]
    for prefix, cols in templates:
        joined = pc.binary_join_element_wise(*[s(c) for c in cols], "-")
        parts.append((has_full, pc.binary_join_element_wise(prefix, joined, "")))
    owners = [rows[mask] for mask, _ in parts]
    toks = [arr.filter(pa.array(mask)) for mask, arr in parts]
    enc = pc.dictionary_encode(pa.concat_arrays(toks))
    return (np.concatenate(owners), enc.indices.to_numpy(zero_copy_only=False).astype(np.int64),
            enc.dictionary.to_pylist())


def year_token_pairs(y: np.ndarray) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(owner, token index, vocabulary) of `year_tokens`."""
    rows = np.flatnonzero(y > 0)
    yy = y[rows]
    toks = pa.concat_arrays([
        pc.binary_join_element_wise(p, pa.array(v).cast(pa.string()), "")
        for p, v in (("y", yy), ("a", yy // 2), ("b", (yy + 1) // 2))])
    enc = pc.dictionary_encode(toks)
    return (np.concatenate([rows, rows, rows]),
            enc.indices.to_numpy(zero_copy_only=False).astype(np.int64), enc.dictionary.to_pylist())
