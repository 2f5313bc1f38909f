"""Accord's compact XLSX text table reads what openpyxl's own reader reads, string for string."""

from __future__ import annotations

import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from openpyxl.reader.strings import read_string_table

from accord.ingest.xlsx_reader import SharedStrings, read_shared_strings

NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
ITEMS = [
    "<si><t>plain</t></si>",
    '<si><t xml:space="preserve">  spaced  </t></si>',
    "<si><t/></si>",
    "<si><r><t>rich </t></r><r><rPr><b/></rPr><t>bold</t></r></si>",
    "<si><t>\u5c71\u7530</t><rPh sb=\"0\" eb=\"1\"><t>\u30e4\u30de\u30c0</t></rPh></si>",  # a phonetic guide
    "<si><t>caf\u00e9 \U0001f600 &amp; &lt;tag&gt;</t></si>",
    "<si><t>x005F_x000D_ escaped</t></si>",
]


def _xml(items: list[str]) -> bytes:
    return (f'<?xml version="1.0" encoding="UTF-8"?><sst xmlns="{NS}" count="{len(items)}">'
            + "".join(items) + "</sst>").encode("utf-8")


def test_same_strings_as_openpyxl() -> None:
    data = _xml(ITEMS)
    ours = read_shared_strings(io.BytesIO(data))
    theirs = read_string_table(io.BytesIO(data))
    assert list(ours) == list(theirs)
    assert len(ours) == len(ITEMS) and ours[-1] == theirs[-1]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=30), max_size=40))
def test_any_text_round_trips(texts: list[str]) -> None:
    from xml.sax.saxutils import escape

    items = [f'<si><t xml:space="preserve">{escape(t)}</t></si>' for t in texts]
    data = _xml(items)
    assert list(read_shared_strings(io.BytesIO(data))) == list(read_string_table(io.BytesIO(data)))


def test_index_past_the_table_is_an_index_error() -> None:
    table = SharedStrings()
    table.append("a")
    assert table[0] == "a" and table[-1] == "a" and table[0:5] == ["a"]
    with pytest.raises(IndexError):
        table[1]
