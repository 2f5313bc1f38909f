"""Bloom-filter encodings of identifier fields, keyed with the linkage secret and hardened.

Why by hand: clkhash does this (one record at a time, in Python) but pins an old `cryptography`
and is unmaintained. Here each field is tokenised once per *distinct* value (names, dates and
codes repeat) with Arrow kernels and numpy (`tokens`), each distinct token is hashed once, and
a value's filter is the OR of its tokens' filters; records take their rows from that small
table; name filters are then diffused (each bit the XOR of a few key-chosen bits, so no bit
belongs to one q-gram and the bit count says nothing of the name's length), and randomised
response (BLIP) is applied per record, so that equal values do not give equal encodings. A name
field may encode several columns (given and family name) as one name. Why each step: the attack
harness in tests/attacks/ and docs/linkage.md, Hardening. Fields are tokenised and filled on two
threads (Arrow and numpy release the GIL) while the calling thread hashes.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets as _secrets
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from accord.protect.encoding.normalise import DateQuality
from accord.protect.encoding.schema import EncodingSchema, FieldKind, FieldSpec
from accord.protect.encoding.secrets import LinkageSecret
from accord.protect.encoding.tokens import (
    SALT_SEP,
    TokenPairs,
    date_token_pairs,
    field_tokens,
    parse_dates,
    salted,
    unordered_token_pairs,
    year_token_pairs,
)
from accord.protect.normalise import normalise_names, on_distinct

YEAR_BITS = 64
YEAR_HASHES = 6
QUALITY_SUFFIX = "__quality"
YEAR_SUFFIX = "__year"
# A date's year with day and month in canonical order (format 4): one token, so a swap of day
# and month agrees there and (nearly) nothing else does. 256 bits; the token is hashed under
# `tokens.UNORDERED_REPEATS` (4) names with 4 hashes each, 16 positions (docs/linkage.md).
UNORDERED_SUFFIX = "__unordered"
UNORDERED_BITS = 256
UNORDERED_HASHES = 4
_BLOCK = 64  # SHA-256's block size, for HMAC's padded keys
_THREADS = 2


class _Hasher:
    """k bit positions per token by double hashing of one HMAC-SHA256 (Kirsch-Mitzenmacher)."""

    def __init__(self, key: bytes, bits: int, k: int) -> None:
        key = (hashlib.sha256(key).digest() if len(key) > _BLOCK else key).ljust(_BLOCK, b"\0")
        # RFC 2104 with the two padded-key blocks hashed once here, not once per token as
        # hmac.digest does: the same HMAC-SHA256 (a test checks it against `hmac`) at half the
        # cost. Hashing is the largest single cost when nearly every value is distinct.
        self._inner = hashlib.sha256(bytes(b ^ 0x36 for b in key))
        self._outer = hashlib.sha256(bytes(b ^ 0x5C for b in key))
        self._bits = np.uint64(bits)
        self._steps = np.arange(k, dtype=np.uint64)
        self._index: dict[str, int] = {}
        self._table = np.empty((0, k), dtype=np.int64)

    def _hmac(self, message: bytes) -> bytes:
        inner = self._inner.copy()
        inner.update(message)
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.digest()

    def positions(self, vocab: list[str]) -> np.ndarray:
        """(len(vocab), k) bit positions of distinct tokens, hashing the ones not seen before."""
        index = self._index
        new = [t for t in vocab if t not in index]
        if new:
            raw = b"".join(map(self._hmac, (t.encode("utf-8") for t in new)))
            d = np.frombuffer(raw, dtype="<u8").reshape(len(new), 4)
            h1, h2 = d[:, :1], d[:, 1:2] | np.uint64(1)
            with np.errstate(over="ignore"):
                pos = ((h1 + self._steps[None, :] * h2) % self._bits).astype(np.int64)
            base = len(index)
            index.update((t, base + i) for i, t in enumerate(new))
            self._table = np.concatenate([self._table, pos])
        rows = np.fromiter((index[t] for t in vocab), dtype=np.int64, count=len(vocab))
        return self._table[rows]


def _filters(pairs: TokenPairs, positions: np.ndarray, n: int,
             bits: int) -> tuple[np.ndarray, np.ndarray]:
    """Packed filters (n, bits/8) of n values from their token pairs; and which have any token.

    Each distinct token's filter is built once; a value's filter is the OR of its tokens' filters
    (one reduceat over 64-bit words), so the bits are scattered once per token, not per value.
    """
    v, k = positions.shape
    dense = np.zeros((v, bits), dtype=bool)
    dense[np.repeat(np.arange(v), k), positions.ravel()] = True
    patterns = np.packbits(dense, axis=1).view(np.uint64)
    out = np.zeros((n, bits // 64), np.uint64)
    owner, token = pairs.owner, pairs.token
    breaks = np.flatnonzero(owner[1:] < owner[:-1]) + 1
    if 0 < len(breaks) <= 16 and not np.any(owner[1:] == owner[:-1]):
        # A few runs, each with every value at most once (dates: one run per kind of token).
        for o, t in zip(np.split(owner, breaks), np.split(token, breaks), strict=True):
            out[o] |= patterns[t]
    elif len(owner):
        if len(breaks):
            order = np.argsort(owner, kind="stable")
            owner, token = owner[order], token[order]
        starts = np.flatnonzero(np.r_[True, owner[1:] != owner[:-1]])
        out[owner[starts]] = np.bitwise_or.reduceat(patterns[token], starts, axis=0)
    return out.view(np.uint8), np.bincount(pairs.owner, minlength=n)[:n] > 0


def diffusion_map(key: bytes, bits: int, t: int) -> np.ndarray:
    """(bits, t): the distinct input bits XOR-ed into each output bit, from HMAC-SHA256 under
    the domain key (two bytes per draw, repeated values skipped), so that every partner derives
    the same map whatever its numpy version (a seeded Generator's stream may change)."""
    out = np.empty((bits, t), np.int64)
    for j in range(bits):
        chosen: list[int] = []
        block = 0
        while len(chosen) < t:
            d = hmac.digest(key, f"accord-diffusion/{bits}/{j}/{block}".encode("ascii"), "sha256")
            for i in range(0, len(d), 2):
                pos = int.from_bytes(d[i : i + 2], "little") % bits
                if pos not in chosen:
                    chosen.append(pos)
                if len(chosen) == t:
                    break
            block += 1
        out[j] = chosen
    return out


def _diffuse(packed: np.ndarray, mix: np.ndarray, chunk: int = 1 << 14) -> np.ndarray:
    """Each output bit the XOR of the input bits ``mix[j]`` (a linear map over GF(2))."""
    out = np.empty_like(packed)
    for s in range(0, len(packed), chunk):
        dense = np.unpackbits(packed[s : s + chunk], axis=1)
        out[s : s + chunk] = np.packbits(np.bitwise_xor.reduce(dense[:, mix], axis=2), axis=1)
    return out


def _flip(packed: np.ndarray, present: np.ndarray, p: float, rng: np.random.Generator) -> None:
    """Randomised response in place: flip each bit of present rows with probability p.

    The flipped positions are the successes of one long Bernoulli(p) sequence over all bits,
    drawn as geometric gaps (an exponential variate over -ln(1-p), floored, plus one, is exactly
    geometric): the same distribution as one coin per bit, at a fraction of the cost.
    """
    if p <= 0 or packed.size == 0:
        return
    total = packed.size * 8
    expected = total * p
    scale = -1.0 / np.log1p(-p)
    pos: list[np.ndarray] = []
    last = -1
    while last < total:
        draws = rng.standard_exponential(int(expected + 6 * expected**0.5 + 64))
        chunk = last + np.cumsum((draws * scale).astype(np.int64) + 1)
        pos.append(chunk)
        last = int(chunk[-1])
    flat = np.concatenate(pos)
    flat = flat[flat < total]
    # np.packbits is big-endian within a byte: bit c sits at 7 - c % 8 of byte c // 8. The
    # positions are strictly increasing, so the flips of one byte are adjacent: OR-ed into one
    # mask per byte (reduceat), then XOR-ed in with unique indices (a third of the CPU of
    # np.bitwise_xor.at, the same bits).
    if len(flat):
        byte = flat >> 3
        starts = np.flatnonzero(np.r_[True, byte[1:] != byte[:-1]])
        masks = np.bitwise_or.reduceat((128 >> (flat & 7)).astype(np.uint8), starts)
        packed.reshape(-1)[byte[starts]] ^= masks
    packed[~present] = 0  # missing values stay empty (they are stored as nulls)


def _as_strings(col: pa.ChunkedArray | pa.Array) -> pa.Array:
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks()
    if pa.types.is_list(col.type) or pa.types.is_large_list(col.type):
        return pc.binary_join(col, ";")
    if pa.types.is_date(col.type) or pa.types.is_timestamp(col.type):
        return pc.strftime(col, "%Y-%m-%d")
    if not pa.types.is_string(col.type):
        return pc.cast(col, pa.string())
    return col


def _joined(parts: list[pa.Array]) -> pa.Array:
    """The words of several name columns as one value (null when all are missing)."""
    if len(parts) == 1:
        return parts[0]
    joined = pc.utf8_trim_whitespace(
        pc.binary_join_element_wise(*[pc.fill_null(p, "") for p in parts], " "))
    return pc.if_else(pc.equal(joined, ""), pa.scalar(None, pa.string()), joined)


def _dictionary(values: pa.Array) -> tuple[pa.Array, np.ndarray]:
    enc = pc.dictionary_encode(values)
    idx = enc.indices.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
    return enc.dictionary, idx


def _fixed_binary(packed: np.ndarray, present: np.ndarray) -> pa.Array:
    n, nbytes = packed.shape
    validity = pa.array(present).buffers()[1] if not present.all() else None
    data = pa.py_buffer(np.ascontiguousarray(packed).tobytes())
    return pa.FixedSizeBinaryArray.from_buffers(pa.binary(nbytes), n, [validity, data])


@dataclass(frozen=True)
class _Plan:
    """One filter column to build: the distinct values' tokens and each record's value row."""

    name: str
    kind: FieldKind
    domain: str
    bits: int
    k: int
    pairs: TokenPairs
    n_values: int
    idx: np.ndarray  # per record, the row of its distinct value (-1: missing)


@dataclass(frozen=True)
class _Tokenised:
    plans: list[_Plan]
    extra: dict[str, pa.Array]  # columns that are not filters (a date's quality)


class Encoder:
    """Encodes tables of identifiers with one schema and one secret (partner side)."""

    def __init__(self, schema: EncodingSchema, secret: LinkageSecret,
                 rng: np.random.Generator | None = None) -> None:
        self.schema = schema
        self.fingerprint = schema.fingerprint()
        self.check_value = secret.check_value(self.fingerprint)
        self._secret = secret
        self._rng = rng or np.random.default_rng(_secrets.randbits(128))
        self._hashers: dict[tuple[str, int, int], _Hasher] = {}
        self._maps: dict[tuple[str, int], np.ndarray] = {}

    def _hasher(self, domain: str, bits: int, k: int) -> _Hasher:
        key = (domain, bits, k)
        if key not in self._hashers:
            self._hashers[key] = _Hasher(self._secret.domain_key(domain), bits, k)
        return self._hashers[key]

    def _diffusion(self, plan: _Plan) -> np.ndarray | None:
        t = self.schema.hardening.diffusion
        if t <= 0:
            return None
        key = (plan.domain, plan.bits)
        if key not in self._maps:
            self._maps[key] = diffusion_map(self._secret.domain_key(plan.domain), plan.bits, t)
        return self._maps[key]

    def required_columns(self) -> list[str]:
        cols: list[str] = []
        for f in self.schema.fields:
            cols.extend(f.sources)
            if f.salt:
                cols.append(f.salt)
        return list(dict.fromkeys(cols))

    def encode(self, table: pa.Table) -> pa.Table:
        """One row of encodings per input row (no identifier columns are copied)."""
        p = self.schema.hardening.flip_probability
        with ThreadPoolExecutor(_THREADS) as pool:
            tokenised = [pool.submit(self._tokenise, spec, table) for spec in self.schema.fields]
            fields: list[_Tokenised] = []
            built = []
            for future in tokenised:
                fields.append(future.result())
                for plan in fields[-1].plans:
                    # Hashing stays on this thread (the hashers' caches are shared between fields
                    # of one domain; hashlib holds the GIL for short messages anyway) while the
                    # pool tokenises later fields and builds the filters of earlier ones.
                    pos = self._hasher(plan.domain, plan.bits, plan.k).positions(plan.pairs.vocab)
                    mix = self._diffusion(plan) if plan.kind is FieldKind.NAME else None
                    built.append(pool.submit(self._build, plan, pos, p, self._rng.spawn(1)[0],
                                             mix))
            columns = iter([b.result() for b in built])
        out: dict[str, pa.Array] = {}
        for f in fields:
            out.update((x.name, next(columns)) for x in f.plans)
            out.update(f.extra)
        return pa.table(out)

    def _tokenise(self, spec: FieldSpec, table: pa.Table) -> _Tokenised:
        values = _joined([_as_strings(table[c]) for c in spec.sources])
        if spec.salt:
            salt = on_distinct(normalise_names, pc.fill_null(_as_strings(table[spec.salt]), ""))
            values = pc.binary_join_element_wise(values, salt, SALT_SEP)
        dictionary, idx = _dictionary(values)
        salts: pa.Array | None = None
        if spec.salt:
            # A normalised salt has no separator in it: the last one splits value and salt.
            parts = pc.split_pattern(dictionary, SALT_SEP, max_splits=1, reverse=True)
            dictionary, salts = pc.list_element(parts, 0), pc.list_element(parts, 1)
        n = len(dictionary)

        def plan(name: str, domain: str, bits: int, k: int, pairs: TokenPairs) -> _Plan:
            return _Plan(name, spec.kind, domain, bits, k, pairs if salts is None else salted(pairs, salts),
                         n, idx)

        if spec.kind is not FieldKind.DATE:
            return _Tokenised([plan(spec.name, spec.hash_domain, spec.n_bits, spec.n_hashes,
                                    field_tokens(spec, dictionary))], {})
        y, m, d = parse_dates(dictionary)
        return _Tokenised(
            [plan(spec.name, spec.hash_domain, spec.n_bits, spec.n_hashes,
                  date_token_pairs(y, m, d)),
             plan(spec.name + YEAR_SUFFIX, spec.hash_domain + "/year", YEAR_BITS, YEAR_HASHES,
                  year_token_pairs(y)),
             plan(spec.name + UNORDERED_SUFFIX, spec.hash_domain + "/unordered", UNORDERED_BITS,
                  UNORDERED_HASHES, unordered_token_pairs(y, m, d))],
            {spec.name + QUALITY_SUFFIX: _quality(spec, table, y, m, d, idx)})

    @staticmethod
    def _build(plan: _Plan, positions: np.ndarray, p: float,
               rng: np.random.Generator, mix: np.ndarray | None = None) -> pa.Array:
        """Record rows from the distinct values' filters (diffused), then randomised response."""
        uniq, known = _filters(plan.pairs, positions, plan.n_values, plan.bits)
        if mix is not None:
            uniq = _diffuse(uniq, mix)
        # A trailing all-zero, unknown row for idx -1 (missing values).
        rows = np.concatenate([uniq, np.zeros((1, uniq.shape[1]), np.uint8)])
        present = np.append(known, False)[plan.idx]
        packed = rows[plan.idx]
        _flip(packed, present, p, rng)
        return _fixed_binary(packed, present)


_QUALITY_ORDER = (DateQuality.UNKNOWN, DateQuality.YEAR_ONLY, DateQuality.DEFAULT_JAN_1,
                  DateQuality.EXACT)


def _quality(spec: FieldSpec, table: pa.Table, y: np.ndarray, m: np.ndarray, d: np.ndarray,
             idx: np.ndarray) -> pa.Array:
    """The date quality of each record, by the rules of `parse_date`."""
    code = np.where(y == 0, 0, np.where(m == 0, 1, np.where((m == 1) & (d == 1), 2, 3)))
    code = np.append(code, 0)[idx]  # missing: unknown
    quality = pa.array([q.value for q in _QUALITY_ORDER], pa.string()).take(pa.array(code))
    if spec.quality_column and spec.quality_column in table.column_names:
        # The partner's own record of the date's quality wins where it is given.
        given = _as_strings(table[spec.quality_column])
        allowed = pc.fill_null(pc.is_in(given, value_set=pa.array([q.value for q in DateQuality])),
                               False)
        quality = pc.if_else(allowed, given, quality)
    return quality


LinkageEncoderFn = Callable[[pa.Table], pa.Table]


def make_linkage_encoder(schema: EncodingSchema, secret: LinkageSecret) -> LinkageEncoderFn:
    """The protect step's seam: normalised identifiers of a batch in, encodings out."""
    encoder = Encoder(schema, secret)
    return encoder.encode
