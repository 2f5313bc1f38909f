"""The Kobo JSON scanner cuts a file into exactly the submissions `json` sees, whatever the buffer size."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accord.errors import InputFileError
from accord.ingest import json_reader

# Strings full of what confuses a scanner: quotes, backslashes, brackets, commas, non-ASCII.
tricky = st.text(alphabet=st.sampled_from(list('ab\\"{}[],: é😀\n\t')), max_size=12)
values = st.recursive(st.none() | st.booleans() | st.integers(-(10**30), 10**30) | tricky,
                      lambda inner: st.lists(inner, max_size=3) | st.dictionaries(tricky, inner, max_size=3),
                      max_leaves=8)
submissions = st.lists(st.dictionaries(tricky, values, max_size=5), min_size=1, max_size=8)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(records=submissions, wrapped=st.booleans(), ascii_only=st.booleans(),
       read_bytes=st.sampled_from([1, 2, 3, 5, 7, 64, 1 << 20]))
def test_scanner_agrees_with_json(records: list[dict[str, object]], wrapped: bool, ascii_only: bool,
                                  read_bytes: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    doc = {"count": len(records), "next": None, "results": records} if wrapped else records
    path = tmp_path / "s.json"
    path.write_text(json.dumps(doc, ensure_ascii=ascii_only), encoding="utf-8")
    monkeypatch.setattr(json_reader, "READ_BYTES", read_bytes)
    got = list(json_reader._submissions(path))
    expected = json.loads(path.read_text(encoding="utf-8"), parse_int=str, parse_float=str)
    assert got == (expected["results"] if wrapped else expected)


@pytest.mark.parametrize(("doc", "message"), [
    (b'[{"a":1}, 2]', "not objects"),
    (b"[[1]]", "not an object"),
    (b'[{"a":1}', "ends in the middle"),
    (b'{"x":[{"y":1}],"results":[]}', "more than the 'results' list"),
    (b'{"results": {"a": {"x": 1}}}', "'results' is not a list"),
    (b"[" * 100 + b"]" * 100, "levels deep"),
    (b'"x"', "does not start with"),
    (b"[]", "no submissions"),
    (b'[{"a":1} {"b":2}]', "not objects"),
])
def test_scanner_refuses_what_is_not_a_submission_list(doc: bytes, message: str, tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_bytes(doc)
    with pytest.raises(InputFileError, match=message):
        json_reader.read_columns(path)
