"""One definition of name normalisation, for pseudonyms and linkage encodings alike."""

from __future__ import annotations

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from accord.protect import normalise as protect_normalise
from accord.protect.encoding import normalise as encoding_normalise
from accord.protect.encoding.tokens import code_token_pairs, value_tokens
from accord.protect.normalise import normalise_name, normalise_names, on_distinct

# Outputs of the pseudonyms' normaliser before the two normalisers were merged (commit 18a080b):
# pseudonyms are HMACs of these strings, so equal outputs mean unchanged pseudonyms.
PINNED = [
    ("  José-María  O'Neill ", "jose maria oneill"),
    ("ＭＯＨＡＭＭＥＤ", "mohammed"),
    ("Nguyễn Thị", "nguyen thi"),
    ("Søren Łukasz", "soren lukasz"),
    ("STRAßE", "strasse"),
    ("ΟΔΥΣΣΕΥΣ", "οδυσσευσ"),
    ("राम कुमार", "रम कमर"),
    ("محمد عبد الله", "محمد عبد الله"),
    ("İstanbul", "istanbul"),
    ("Ꭰ Cherokee", "ꭰ cherokee"),
    ("ᾈ", "α"),
    ("O’Brien ʼAli", "obrien ali"),
    ("a\tb\nc", "a b c"),
    ("ǅemal", "dzemal"),
    ("Æsa Œuvre", "aesa oeuvre"),
    ("Đorđe", "dorde"),
    ("ﬁnn", "finn"),
    ("李 小龙", "李 小龙"),
    ("٣ abc", "٣ abc"),
    ("x__y--z", "x y z"),
    ("", ""),
]

ascii_text = st.text(alphabet=st.characters(max_codepoint=127), max_size=30)
any_text = st.one_of(st.none(), st.text(max_size=30), ascii_text)


def test_the_encoder_uses_the_same_definition() -> None:
    assert encoding_normalise.normalise_name is protect_normalise.normalise_name
    assert encoding_normalise.normalise_code is protect_normalise.normalise_code


@pytest.mark.parametrize(("raw", "want"), PINNED)
def test_outputs_are_those_pseudonyms_were_made_with(raw: str, want: str) -> None:
    assert normalise_name(raw) == want
    assert normalise_names(pa.array([raw, "é"])).to_pylist()[0] == want  # the Unicode path


def test_pinned_outputs_in_one_batch() -> None:
    raws = [r for r, _ in PINNED]
    assert normalise_names(pa.array(raws)).to_pylist() == [w for _, w in PINNED]


@given(st.lists(any_text, max_size=12))
@settings(max_examples=200, deadline=None)
def test_arrow_path_equals_single_value_path(values: list[str | None]) -> None:
    # A batch takes the Unicode kernels as soon as one value is not ASCII; a single ASCII value
    # takes the byte table. Both must give every value the same result.
    batch = normalise_names(pa.array(values, pa.string())).to_pylist()
    assert batch == [normalise_name(v) for v in values]


@given(st.lists(ascii_text, max_size=12))
@settings(max_examples=120, deadline=None)
def test_ascii_byte_table_equals_unicode_kernels(values: list[str]) -> None:
    fast = normalise_names(pa.array(values, pa.string())).to_pylist()
    general = normalise_names(pa.array([*values, "é"], pa.string())).to_pylist()[:-1]
    assert fast == general


@given(st.lists(any_text, min_size=1, max_size=12), st.integers(0, 11))
@settings(max_examples=60, deadline=None)
def test_chunks_slices_and_distinct_values_do_not_matter(values: list[str | None],
                                                         cut: int) -> None:
    want = [normalise_name(v) for v in values]
    arr = pa.array(values, pa.string())
    cut = min(cut, len(values))
    chunked = pa.chunked_array([arr.slice(0, cut), arr.slice(cut)], pa.string())
    assert normalise_names(chunked).to_pylist() == want
    assert normalise_names(arr.slice(cut)).to_pylist() == want[cut:]
    assert pa.compute.fill_null(on_distinct(normalise_names, arr), "").to_pylist() == want


@given(st.text(max_size=30))
@settings(max_examples=200, deadline=None)
def test_output_shape(text: str) -> None:
    out = normalise_name(text)
    assert out == out.strip() and "  " not in out
    assert not any(c.isascii() and not c.isalnum() and c != " " for c in out)
    assert out == normalise_name(out)  # idempotent


@given(st.lists(st.one_of(st.none(), st.text(max_size=12),
                          st.text(alphabet=st.sampled_from("SYiqfm ;,|/-ß"), max_size=10)),
                max_size=8))
@settings(max_examples=100, deadline=None)
def test_codes_in_one_batch_equal_codes_one_by_one(values: list[str | None]) -> None:
    from accord.protect.encoding.schema import FieldKind, FieldSpec

    spec = FieldSpec(name="c", kind=FieldKind.CODE)
    got = code_token_pairs(pa.array(values, pa.string())).sets(len(values))
    assert got == [value_tokens(spec, v) for v in values]
