"""Tokens of identifier values: what goes into a field's Bloom filter.

The per-value functions (`qgrams`, `year_tokens`, `date_tokens`, `value_tokens`) define the
tokens. The vectorised ones compute the same tokens for all distinct values of a column at once
(property tests check that they agree) with Arrow kernels and numpy, and return them as
`TokenPairs`: no Python loop runs per value or per token, except to parse dates written with
non-ASCII digits.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from accord.protect.encoding.normalise import (
    ParsedDate,
    normalise_name,
    parse_date,
    split_codes,
    split_codes_many,
)
from accord.protect.encoding.schema import FieldKind, FieldSpec
from accord.protect.normalise import normalise_names, utf8_buffers

_SPACE = 32
SALT_SEP = "\x1f"  # between a salt and a token; a normalised salt cannot contain it
_ISO = r"^\s*(?P<y>\d{4})(?:-(?P<m>\d{1,2})(?:-(?P<d>\d{1,2}))?)?\s*$"
_COMPACT = r"^\s*(?P<y>\d{4})(?P<m>\d{2})(?P<d>\d{2})\s*$"
# The unordered date token is hashed under this many names: bit positions of one token come
# from one HMAC by double hashing (an arithmetic progression modulo the filter size), and two
# tokens whose progressions share a step overlap in most positions (about 4 in 10,000 pairs of
# different dates at one token); with independent repeats that needs all of them to collide.
UNORDERED_REPEATS = 4
_DMY = r"^\s*(?P<d>\d{1,2})[./](?P<m>\d{1,2})[./](?P<y>\d{4})\s*$"


# ------------------------------------------------------------------ the definition, per value
def qgrams(text: str, q: int, by_word: bool) -> set[str]:
    """Padded q-grams; per word (order-free) for names, of the whole string for text."""
    pad = "_" * (q - 1)
    parts = text.split() if by_word else ([text] if text else [])
    out: set[str] = set()
    for w in parts:
        p = f"{pad}{w}{pad}"
        out.update(p[i : i + q] for i in range(len(p) - q + 1))
    return out


def year_tokens(year: int | None) -> set[str]:
    # Two offset two-year buckets: years one apart share one of three tokens.
    if year is None:
        return set()
    return {f"y{year}", f"a{year // 2}", f"b{(year + 1) // 2}"}


def date_tokens(d: ParsedDate) -> set[str]:
    if d.year is None:
        return set()
    if d.month is None or d.day is None:
        return {f"Y{d.year}"}
    lo, hi = sorted((d.month, d.day))
    return {
        f"Y{d.year}", f"M{d.month}", f"D{d.day}", f"YM{d.year}-{d.month}",
        f"MD{d.month}-{d.day}", f"P{lo}-{hi}", f"YP{d.year}-{lo}-{hi}",
        f"F{d.year}-{d.month}-{d.day}",
    }


def unordered_date_tokens(d: ParsedDate) -> set[str]:
    """The token of a full date's year with its day and month in canonical (sorted) order: a
    date and its day/month swap share it, and nothing else of the same year does (the date
    filter cannot tell a swap from the same month: both share three of its eight tokens)."""
    if d.year is None or d.month is None or d.day is None:
        return set()
    lo, hi = sorted((d.month, d.day))
    return {f"U{i}:{d.year}-{lo}-{hi}" for i in range(UNORDERED_REPEATS)}


def value_tokens(spec: FieldSpec, raw: str | None) -> set[str]:
    """Tokens of one raw (un-normalised) value of a name, text, code or year field."""
    if spec.kind is FieldKind.NAME:
        return qgrams(normalise_name(raw), spec.ngram, by_word=True)
    if spec.kind is FieldKind.TEXT:
        return qgrams(normalise_name(raw), spec.ngram, by_word=False)
    if spec.kind is FieldKind.CODE:
        return {f"c{c}" for c in split_codes(raw)}
    if spec.kind is FieldKind.YEAR:
        return year_tokens(parse_date(raw).year)
    return date_tokens(parse_date(raw))


# ------------------------------------------------------------------ vectorised, all values at once
@dataclass(frozen=True)
class TokenPairs:
    """The tokens of n values as (value row, token) pairs over a vocabulary of distinct tokens."""

    owner: np.ndarray  # int64: row of the value
    token: np.ndarray  # int64: index into vocab
    vocab: list[str]

    @classmethod
    def from_sets(cls, sets: Sequence[Iterable[str]]) -> TokenPairs:
        index: dict[str, int] = {}
        owner: list[int] = []
        token: list[int] = []
        for i, ts in enumerate(sets):
            for t in ts:
                token.append(index.setdefault(t, len(index)))
                owner.append(i)
        return cls(np.array(owner, np.int64), np.array(token, np.int64), list(index))

    @classmethod
    def from_arrow(cls, owner: np.ndarray, tokens: pa.Array) -> TokenPairs:
        enc = pc.dictionary_encode(tokens)
        return cls(owner.astype(np.int64),
                   enc.indices.to_numpy(zero_copy_only=False).astype(np.int64),
                   enc.dictionary.to_pylist())

    def sets(self, n: int) -> list[set[str]]:
        """Per value, its set of tokens (for tests and debugging)."""
        out: list[set[str]] = [set() for _ in range(n)]
        for o, t in zip(self.owner.tolist(), self.token.tolist(), strict=True):
            out[o].add(self.vocab[t])
        return out


def _code_points(strings: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """The code points of all strings, concatenated (uint32), and each one's string."""
    strings = pc.fill_null(strings, "")
    offsets, raw = utf8_buffers(strings)
    if len(raw) == 0:
        return np.empty(0, np.uint32), np.empty(0, np.int64)
    owner = np.arange(len(strings), dtype=np.int64)
    if int(raw.max()) < 128:
        return raw.astype(np.uint32), np.repeat(owner, np.diff(offsets))
    # UTF-8 to UTF-32 by the C codecs: one decode of the whole buffer, no per-value work.
    cps = np.frombuffer(raw.tobytes().decode("utf-8").encode("utf-32-le"), "<u4")
    lens = pc.utf8_length(strings).to_numpy(zero_copy_only=False).astype(np.int64)
    return cps, np.repeat(owner, lens)


def _distinct_rows(windows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct rows of a (m, q) code point array and each row's index among them.

    The letters in use are few: code points are ranked in that small alphabet (a lookup table,
    not a sort) and a q-gram becomes one number below alphabet**q, deduplicated with another
    table. np.unique (a sort) only when that space is too large for a table.
    """
    m, q = windows.shape
    if m == 0:
        return np.empty((0, q), np.uint32), np.empty(0, np.int64)
    seen = np.zeros(int(windows.max()) + 1, bool)
    seen[windows.ravel()] = True
    alphabet = np.flatnonzero(seen).astype(np.uint32)
    size = len(alphabet)
    if size**q > 1 << 20:  # the tables would cost more memory than a sort costs time
        uniq, token = np.unique(windows, axis=0, return_inverse=True)
        return uniq, token.ravel().astype(np.int64)
    rank = np.cumsum(seen, dtype=np.int64) - 1
    code = np.zeros(m, np.int64)
    for j in range(q):
        code = code * size + rank[windows[:, j]]
    used = np.zeros(size**q, bool)
    used[code] = True
    codes = np.flatnonzero(used)
    token = (np.cumsum(used, dtype=np.int64) - 1)[code]
    digits = [(codes // size ** (q - 1 - j)) % size for j in range(q)]
    return np.stack([alphabet[d] for d in digits], axis=1), token


def qgram_pairs(norm: pa.Array, q: int, by_word: bool) -> TokenPairs:
    """`qgrams` of every normalised string, from one array of code points and numpy windows."""
    cps, owner = _code_points(norm)
    # Pad (q-1 underscores) before the first and after the last character of each word (name)
    # or string (text), by spacing the characters out in a buffer pre-filled with the pad.
    new = np.ones(len(cps), bool)
    new[1:] = owner[1:] != owner[:-1]
    end = np.ones(len(cps), bool)
    end[:-1] = new[1:]
    if by_word:
        space = cps == _SPACE
        new[1:] |= space[:-1]
        end[:-1] |= space[1:]
        new &= ~space
        end &= ~space
    width = 1 + (q - 1) * (new.astype(np.int64) + end)
    at = np.cumsum(width) - width + (q - 1) * new
    buf = np.full(int(width.sum()), ord("_"), np.uint32)
    buf[at] = cps
    buf_owner = np.repeat(owner, width)
    last = max(len(buf) - q + 1, 0)
    first = np.flatnonzero(buf_owner[:last] == buf_owner[q - 1 : q - 1 + last])
    windows = buf[first[:, None] + np.arange(q)]
    win_owner = buf_owner[first]
    if by_word:  # a window across a space would join two words
        keep = ~(windows == _SPACE).any(axis=1)
        win_owner, windows = win_owner[keep], windows[keep]
    uniq, token = _distinct_rows(windows)
    vocab = np.ascontiguousarray(uniq.astype("<u4")).view(f"<U{q}").ravel().tolist()
    return TokenPairs(win_owner, token, vocab)


def parse_dates(values: pa.Array) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(year, month, day) int arrays, 0 where unknown, by the rules of `parse_date`."""
    values = pc.fill_null(values, "")
    if pc.all(pc.string_is_ascii(values)).as_py() is False:
        # Digits of other scripts (Python's int() reads them; RE2's \d does not): per value.
        parsed = [parse_date(v) for v in values.to_pylist()]
        return (np.array([p.year or 0 for p in parsed], np.int64),
                np.array([p.month or 0 for p in parsed], np.int64),
                np.array([p.day or 0 for p in parsed], np.int64))
    n = len(values)
    y, m, d = (np.zeros(n, np.int64) for _ in range(3))
    done = np.zeros(n, bool)
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


def _text(a: np.ndarray) -> pa.Array:
    return pa.array(a).cast(pa.string())


def date_token_pairs(y: np.ndarray, m: np.ndarray, d: np.ndarray) -> TokenPairs:
    """`date_tokens` of parsed dates."""
    rows = np.arange(len(y), dtype=np.int64)
    has_y, has_full = y > 0, m > 0
    lo, hi = np.minimum(m, d), np.maximum(m, d)
    parts: list[tuple[np.ndarray, pa.Array]] = [
        (has_y, pc.binary_join_element_wise("Y", _text(y), ""))]
    templates = [
        ("M", [m]), ("D", [d]), ("YM", [y, m]), ("MD", [m, d]), ("P", [lo, hi]),
        ("YP", [y, lo, hi]), ("F", [y, m, d]),
    ]
    for prefix, cols in templates:
        joined = pc.binary_join_element_wise(*[_text(c) for c in cols], "-")
        parts.append((has_full, pc.binary_join_element_wise(prefix, joined, "")))
    owners = np.concatenate([rows[mask] for mask, _ in parts])
    return TokenPairs.from_arrow(owners, pa.concat_arrays([a.filter(pa.array(mask))
                                                           for mask, a in parts]))


def unordered_token_pairs(y: np.ndarray, m: np.ndarray, d: np.ndarray) -> TokenPairs:
    """`unordered_date_tokens` of parsed dates."""
    rows = np.flatnonzero((y > 0) & (m > 0))
    lo, hi = np.minimum(m[rows], d[rows]), np.maximum(m[rows], d[rows])
    joined = pc.binary_join_element_wise(_text(y[rows]), _text(lo), _text(hi), "-")
    return TokenPairs.from_arrow(
        np.tile(rows, UNORDERED_REPEATS),
        pa.concat_arrays([pc.binary_join_element_wise(f"U{i}:", joined, "")
                          for i in range(UNORDERED_REPEATS)]))


def year_token_pairs(y: np.ndarray) -> TokenPairs:
    """`year_tokens` of years (0: unknown)."""
    rows = np.flatnonzero(y > 0)
    yy = y[rows]
    toks = pa.concat_arrays([pc.binary_join_element_wise(p, _text(v), "")
                             for p, v in (("y", yy), ("a", yy // 2), ("b", (yy + 1) // 2))])
    return TokenPairs.from_arrow(np.concatenate([rows, rows, rows]), toks)


def code_token_pairs(values: pa.Array) -> TokenPairs:
    """`value_tokens` of a code field."""
    return TokenPairs.from_sets([[f"c{c}" for c in cs]
                                 for cs in split_codes_many(values.to_pylist())])


def salted(pairs: TokenPairs, salts: pa.Array) -> TokenPairs:
    """Prefix each value's tokens with its (normalised) salt, where it has one."""
    if len(pairs.owner) == 0:
        return pairs
    s = salts.take(pa.array(pairs.owner))
    t = pa.array(pairs.vocab, pa.string()).take(pa.array(pairs.token))
    joined = pc.if_else(pc.equal(s, ""), t, pc.binary_join_element_wise(s, t, SALT_SEP))
    return TokenPairs.from_arrow(pairs.owner, joined)


def field_tokens(spec: FieldSpec, values: pa.Array) -> TokenPairs:
    """Tokens of distinct raw values of a name, text, code or year field (dates: see Encoder)."""
    if spec.kind in (FieldKind.NAME, FieldKind.TEXT):
        return qgram_pairs(normalise_names(values), spec.ngram, spec.kind is FieldKind.NAME)
    if spec.kind is FieldKind.CODE:
        return code_token_pairs(values)
    return year_token_pairs(parse_dates(values)[0])
