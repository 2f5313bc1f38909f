"""The encoder's bits against a plain, record-by-record implementation of the documented format.

The encoder is vectorised (distinct values, numpy q-grams, HMAC with precomputed pads, one
reduceat per field); this file re-states the format in a few obvious lines and checks that every
filter is the same, so no speed-up can change what an encoding means.
"""

from __future__ import annotations

import hmac

import numpy as np
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from accord.protect.encoding import Encoder, LinkageSecret
from accord.protect.encoding.bloom import (
    UNORDERED_BITS,
    UNORDERED_HASHES,
    UNORDERED_SUFFIX,
    YEAR_BITS,
    YEAR_HASHES,
    YEAR_SUFFIX,
    _Hasher,
)
from accord.protect.encoding.normalise import parse_date
from accord.protect.encoding.schema import EncodingSchema, FieldKind, schema_from_dict
from accord.protect.encoding.tokens import (
    date_tokens,
    unordered_date_tokens,
    value_tokens,
    year_tokens,
)
from accord.protect.normalise import normalise_name
from tests.linkage_data import stamp_format_version

SECRET = LinkageSecret(b"format-test-secret-of-32-bytes!!")


def reference_diffusion(key: bytes, bits: int, t: int) -> list[list[int]]:
    """Output bit j XORs the first t distinct values of 2-byte little-endian words mod bits of
    HMAC-SHA256(key, "accord-diffusion/{bits}/{j}/{block}"), blocks 0, 1, ... as needed."""
    out = []
    for j in range(bits):
        chosen: list[int] = []
        block = 0
        while len(chosen) < t:
            d = hmac.digest(key, f"accord-diffusion/{bits}/{j}/{block}".encode(), "sha256")
            for i in range(0, 32, 2):
                v = int.from_bytes(d[i:i + 2], "little") % bits
                if v not in chosen and len(chosen) < t:
                    chosen.append(v)
            block += 1
        out.append(chosen)
    return out


def reference_filter(tokens: set[str], key: bytes, bits: int, k: int,
                     diffusion: int = 0) -> bytes | None:
    """k positions per token: (h1 + i*h2 mod 2^64) mod bits, h1, h2 from HMAC-SHA256(key, token);
    then, for name fields, diffusion."""
    if not tokens:
        return None
    arr = np.zeros(bits, bool)
    for t in tokens:
        d = hmac.digest(key, t.encode("utf-8"), "sha256")
        h1 = int.from_bytes(d[:8], "little")
        h2 = int.from_bytes(d[8:16], "little") | 1
        for i in range(k):
            arr[(h1 + i * h2) % 2**64 % bits] = True
    if diffusion:
        mix = reference_diffusion(key, bits, diffusion)
        arr = np.array([np.logical_xor.reduce(arr[m]) for m in mix])
    return np.packbits(arr).tobytes()


def reference_encode(schema: EncodingSchema, rows: list[dict[str, str | None]]) -> dict[str,
                                                                                       list]:
    out: dict[str, list] = {}
    for spec in schema.fields:
        key = SECRET.domain_key(spec.hash_domain)
        col, year_col, unordered_col = [], [], []
        for row in rows:
            parts = [row.get(c) for c in spec.sources]
            words = " ".join(p for p in parts if p is not None).strip()
            raw = words if any(p is not None for p in parts) and (len(parts) == 1 or words) \
                else None
            salt = normalise_name(row.get(spec.salt)) if spec.salt and raw is not None else ""

            def salted(tokens: set[str], s: str = salt) -> set[str]:
                return {f"{s}\x1f{t}" for t in tokens} if s else tokens

            if raw is None:
                col.append(None)
                year_col.append(None)
                unordered_col.append(None)
            elif spec.kind is FieldKind.DATE:
                d = parse_date(raw)
                col.append(reference_filter(salted(date_tokens(d)), key, spec.n_bits,
                                            spec.n_hashes))
                year_col.append(reference_filter(
                    salted(year_tokens(d.year)), SECRET.domain_key(spec.hash_domain + "/year"),
                    YEAR_BITS, YEAR_HASHES))
                # format 4: the year with day and month sorted, under four names
                unordered_col.append(reference_filter(
                    salted(unordered_date_tokens(d)),
                    SECRET.domain_key(spec.hash_domain + "/unordered"), UNORDERED_BITS,
                    UNORDERED_HASHES))
            else:
                diffusion = schema.hardening.diffusion if spec.kind is FieldKind.NAME else 0
                col.append(reference_filter(salted(value_tokens(spec, raw)), key, spec.n_bits,
                                            spec.n_hashes, diffusion))
        out[spec.name] = col
        if spec.kind is FieldKind.DATE:
            out[spec.name + YEAR_SUFFIX] = year_col
            out[spec.name + UNORDERED_SUFFIX] = unordered_col
    return out


SCHEMA = schema_from_dict({
    "name": "t", "hardening": {"flip_probability": 0.0, "diffusion": 3},
    "fields": [
        {"name": "full_name", "columns": ["given", "family"], "kind": "name",
         "domain": "full"},
        {"name": "given", "kind": "name"},
        {"name": "family", "kind": "name"},
        {"name": "family3", "column": "family", "kind": "name", "ngram": 3, "domain": "f3"},
        {"name": "address", "kind": "text"},
        {"name": "dob", "kind": "date"},
        {"name": "born", "column": "dob", "kind": "year"},
        {"name": "citizenship", "kind": "code"},
        {"name": "given_salted", "column": "given", "kind": "name", "salt": "family",
         "domain": "salted"},
        {"name": "dob_salted", "column": "dob", "kind": "date", "salt": "family",
         "domain": "salted_dob"},
    ]})

names = st.one_of(st.none(), st.text(max_size=12),
                  st.text(alphabet=st.sampled_from("abcAB éøß'-. ") , max_size=10),
                  st.sampled_from(["Mohammed Ali", "Nguyễn Thị", "राम", "", "  "]))
dates = st.one_of(st.none(), st.dates().map(lambda d: d.isoformat()),
                  st.dates().map(lambda d: d.strftime("%d/%m/%Y")),
                  st.text(alphabet="0123456789-/ ٢", max_size=10), st.just("1990-01-01"))
codes = st.one_of(st.none(), st.text(alphabet=st.sampled_from("SYiq;, /ß"), max_size=8))
records = st.fixed_dictionaries({"given": names, "family": names, "address": names,
                                 "dob": dates, "citizenship": codes})


@given(st.lists(records, min_size=1, max_size=8))
@settings(max_examples=40, deadline=None)
def test_encoder_bits_equal_the_reference(rows: list[dict[str, str | None]]) -> None:
    table = pa.Table.from_pylist(rows, schema=pa.schema(
        [(c, pa.string()) for c in ("given", "family", "address", "dob", "citizenship")]))
    got = Encoder(SCHEMA, SECRET, np.random.default_rng(0)).encode(table)
    for name, want in reference_encode(SCHEMA, rows).items():
        assert got[name].to_pylist() == want, name


def test_hmac_with_precomputed_pads_is_hmac() -> None:
    tokens = ["ab", "_a", "Y1990", "é", "", "x" * 200]
    for key in (b"k" * 16, b"k" * 32, b"k" * 64, b"k" * 100):  # short, block-sized, hashed
        pos = _Hasher(key, 256, 7).positions(tokens)
        for t, row in zip(tokens, pos, strict=True):
            d = hmac.digest(key, t.encode(), "sha256")
            h1, h2 = int.from_bytes(d[:8], "little"), int.from_bytes(d[8:16], "little") | 1
            assert row.tolist() == [(h1 + i * h2) % 2**64 % 256 for i in range(7)]


def test_randomised_response_flips_at_the_set_rate_and_spares_missing_values() -> None:
    p, n = 0.1, 3000
    schema = schema_from_dict({"name": "t", "hardening": {"flip_probability": p},
                               "fields": [{"name": "given", "kind": "name"}]})
    plain = schema_from_dict({"name": "t", "hardening": {"flip_probability": 0.0},
                              "fields": [{"name": "given", "kind": "name"}]})
    table = pa.table({"given": pa.array(["Amina Yusuf", None] * (n // 2), pa.string())})
    noisy = Encoder(schema, SECRET, np.random.default_rng(1)).encode(table)["given"]
    clean = Encoder(plain, SECRET).encode(table)["given"]
    assert noisy.null_count == clean.null_count == n // 2
    a = np.frombuffer(b"".join(v for v in noisy.to_pylist() if v is not None), np.uint8)
    b = np.frombuffer(b"".join(v for v in clean.to_pylist() if v is not None), np.uint8)
    flipped = np.unpackbits(a ^ b).mean()
    assert abs(flipped - p) < 0.005  # 384,000 bits: the standard error is 0.0005
    rows = np.unpackbits(a ^ b).reshape(n // 2, -1).sum(axis=1)
    assert len(set(rows.tolist())) > 10  # rows get independent noise, not one shared pattern


def test_qgrams_of_a_large_alphabet_take_the_sorting_path() -> None:
    from accord.protect.encoding.tokens import qgram_pairs, qgrams

    # 300 distinct letters: 300**4 q-grams do not fit a lookup table, so np.unique is used.
    letters = [chr(0x4E00 + i) for i in range(300)] + ["𠀀", "a"]
    values = ["".join(letters[i:i + 7]) + " " + "".join(letters[i + 7:i + 9])
              for i in range(0, 293, 3)]
    for q in (1, 2, 4):
        got = qgram_pairs(pa.array(values), q, by_word=True).sets(len(values))
        assert got == [qgrams(v, q, by_word=True) for v in values]


@given(st.lists(names, min_size=1, max_size=8), st.integers(0, 8), st.integers(1, 3))
@settings(max_examples=60, deadline=None)
def test_qgrams_of_sliced_arrays(values: list[str | None], cut: int, q: int) -> None:
    from accord.protect.encoding.tokens import qgram_pairs, qgrams
    from accord.protect.normalise import normalise_names

    norm = normalise_names(pa.array(values, pa.string())).slice(min(cut, len(values)))
    got = qgram_pairs(norm, q, by_word=True).sets(len(norm))
    assert got == [qgrams(v, q, by_word=True) for v in norm.to_pylist()]


def test_format_2_schemas_and_encodings_are_refused(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Format 3 diffuses names and encodes them together: format-2 encodings must be made again
    (they are also the ones the attack harness labels, tests/attacks/test_linkage_privacy.py)."""

    import pytest
    from typer.testing import CliRunner

    from accord.cli.main import app
    from accord.protect.encoding import EncodingInfo, EncodingSchemaError, write_encodings

    old = {"format_version": 2, "name": "t", "fields": [{"name": "given", "kind": "name"}]}
    with pytest.raises(EncodingSchemaError, match=r"format_version 2.*made again"):
        schema_from_dict(old)
    schema = schema_from_dict({"name": "t", "fields": [{"name": "given", "kind": "name"}]})
    enc = Encoder(schema, SECRET)
    table = enc.encode(pa.table({"given": ["Amina"]})).add_column(0, "id", pa.array(["1"]))
    path = tmp_path / "old.parquet"
    write_encodings(path, table, EncodingInfo(schema, enc.fingerprint, enc.check_value))
    stamp_format_version(path, 2)
    res = CliRunner().invoke(app, ["match", str(path), str(path), "--out",
                                   str(tmp_path / "p.csv")])
    assert res.exit_code == 2
    assert "format_version 2" in res.output and "made again" in res.output
    assert "Amina" not in res.output
