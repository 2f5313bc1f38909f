"""Issue 11, format 4: a day/month swap of the birth date agrees at a level of its own (the
unordered date filter), a random date of the same year does not get there, and encodings of
format 3 (no such filter) are refused."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from accord.cli.main import app
from accord.link import EncodedSet, match_sets
from accord.link.comparisons import SWAP_LABEL, comparison_levels, comparisons
from accord.protect.encoding import (
    Encoder,
    EncodingInfo,
    EncodingSchemaError,
    LinkageSecret,
    new_linkage_secret,
    parse_date,
    schema_from_fields,
    write_encodings,
)
from accord.protect.encoding.bloom import UNORDERED_SUFFIX
from accord.protect.encoding.schema import SCHEMA_FORMAT_VERSION, schema_from_dict
from accord.protect.encoding.tokens import unordered_date_tokens
from tests.linkage_data import FIELDS, encode_rows, generate, stamp_format_version, write_csv

SECRET = LinkageSecret(b"d" * 32)
PARTIAL = "dice>=0.44, year equal"


def _row(pid: str, given: str, family: str, dob: str) -> dict[str, str]:
    return {"id": pid, "given": given, "family": family, "dob": dob, "sex": "female",
            "citizenship": "SY"}


def _dob_levels(a: EncodedSet, b: EncodedSet, ia: np.ndarray, ib: np.ndarray) -> list[str]:
    comp = comparisons(a.info.schema)
    col = [c.field for c in comp].index("dob")
    return [comp[col].labels[x] for x in comparison_levels(a, b, ia, ib)[:, col]]


def test_unordered_token_is_the_year_with_day_and_month_sorted() -> None:
    assert SCHEMA_FORMAT_VERSION == 4
    swap = unordered_date_tokens(parse_date("1990-07-03"))
    assert swap == unordered_date_tokens(parse_date("03/07/1990")) == \
        unordered_date_tokens(parse_date("1990-03-07"))
    assert swap == {f"U{i}:1990-3-7" for i in range(4)}
    assert unordered_date_tokens(parse_date("1990")) == set()  # year only: no such filter
    assert unordered_date_tokens(parse_date("1991-03-07")) != swap


def test_swap_level_iff_day_and_month_are_swapped() -> None:
    """2,000 random dates of the same year (a different month and day) against 600 swaps, at
    the default randomised response: the swap level is given to every swap and to none of the
    others (the filters' Dice: equal tokens median 0.75, different ones 0.06)."""
    rng = np.random.default_rng(4)
    a_rows, b_rows, kinds = [], [], []
    for i in range(2600):
        y, m, d = int(rng.integers(1950, 2010)), int(rng.integers(1, 13)), int(rng.integers(1, 29))
        if i < 600:
            d = int(rng.choice([x for x in range(1, 13) if x != m]))
            m2, d2 = d, m
        else:
            m2 = int(rng.choice([x for x in range(1, 13) if x not in (m, d)]))
            d2 = int(rng.choice([x for x in range(1, 29) if x not in (m, d, m2)]))
        a_rows.append(_row(f"a{i}", "Amina", "Haddad", f"{y}-{m:02d}-{d:02d}"))
        b_rows.append(_row(f"b{i}", "Amina", "Haddad", f"{y}-{m2:02d}-{d2:02d}"))
        kinds.append(i < 600)
    a, b = encode_rows(a_rows, SECRET, 1), encode_rows(b_rows, SECRET, 2)
    idx = np.arange(len(a_rows))
    levels = _dob_levels(a, b, idx, idx)
    is_swap = np.array([lv == SWAP_LABEL for lv in levels])
    assert is_swap.tolist() == kinds


def test_swapped_date_links_and_a_random_same_year_date_does_not_gain() -> None:
    """Among migrant-like records, re-registrations with day and month swapped are linked on
    names + swap, and the swap level carries far more evidence than the partial level (which a
    date of the same year and month reaches); a same-year date of another month and day gets
    neither level and counts against the pair."""
    a_rows, b_rows, truth = generate(900, seed=17)
    extra_a = [_row("xa", "Zebulon", "Quaxley", "1987-04-09"),
               _row("ya", "Philippa", "Oxenbridge", "1983-05-11")]
    extra_b = [_row("xb", "Zebulon", "Quaxley", "1987-09-04"),     # day/month swapped
               _row("yb", "Philippa", "Oxenbridge", "1983-10-22")]  # same year, random date
    a = encode_rows(a_rows + extra_a, SECRET, 1)
    b = encode_rows(b_rows + extra_b, SECRET, 2)
    r = match_sets(a, b)
    found = set(zip(a.ids[r.ia].tolist(), b.ids[r.ib].tolist(), strict=True))
    assert ("xa", "xb") in found
    swaps = [(x, y) for x, y, k in truth if k == "day_month_swap"]
    assert sum(p in found for p in swaps) / len(swaps) > 0.95
    ia, ib = np.array([len(a_rows), len(a_rows) + 1]), np.array([len(b_rows), len(b_rows) + 1])
    got = _dob_levels(a, b, ia, ib)
    assert got[0] == SWAP_LABEL and got[1] not in (SWAP_LABEL, PARTIAL)
    # The model: the swap level's u is a small fraction of the partial level's, its Bayes
    # factor many times larger; the random date of the same year is evidence against.
    labels = list(comparisons(a.info.schema)[1].labels)
    swap, partial, other = labels.index(SWAP_LABEL), labels.index(PARTIAL), labels.index(got[1])
    m, u = r.model.m[1], r.model.u[1]
    assert u[swap] < u[partial] / 20
    assert m[swap] / u[swap] > 20 * m[partial] / u[partial]
    assert m[other] < u[other]


def test_cli_encode_and_match_link_swapped_dates(tmp_path: Path) -> None:
    a_rows, b_rows, truth = generate(400, seed=23)
    runner = CliRunner()
    key = tmp_path / "link.key"
    new_linkage_secret(key)
    outs = []
    for name, rows in (("a", a_rows), ("b", b_rows)):
        write_csv(tmp_path / f"{name}.csv", rows)
        out = tmp_path / f"{name}.parquet"
        res = runner.invoke(app, ["encode", str(tmp_path / f"{name}.csv"), "--id", "id",
                                  "--fields", FIELDS, "--secret-file", str(key),
                                  "--out", str(out)])
        assert res.exit_code == 0, res.output
        assert "dob" + UNORDERED_SUFFIX in pq.read_schema(out).names
        outs.append(out)
    pairs = tmp_path / "pairs.csv"
    res = runner.invoke(app, ["match", str(outs[0]), str(outs[1]), "--json", "--out", str(pairs)])
    assert res.exit_code == 0, res.output
    levels = json.loads(res.output)["model"]["fields"][1]["levels"]
    assert levels[-1] == SWAP_LABEL
    with pairs.open(encoding="utf-8") as fh:
        got = {(r["id_a"], r["id_b"]) for r in csv.DictReader(fh)}
    swaps = [(x, y) for x, y, k in truth if k == "day_month_swap"]
    assert swaps and sum(p in got for p in swaps) / len(swaps) > 0.95


def test_format_3_schemas_and_encodings_are_refused(tmp_path: Path) -> None:
    """Format 3 has no unordered date filter: its schemas and encoding files are refused with a
    clear message (exit 2), naming no record value."""
    old = {"format_version": 3, "name": "t", "fields": [{"name": "dob", "kind": "date"}]}
    with pytest.raises(EncodingSchemaError, match=r"format_version 3.*made again"):
        schema_from_dict(old)
    schema = schema_from_fields("given:name,dob:date")
    enc = Encoder(schema, SECRET)
    table = enc.encode(pa.table({"given": ["Amina"], "dob": ["1990-03-07"]}))
    table = table.drop_columns(["dob" + UNORDERED_SUFFIX]).add_column(0, "id", pa.array(["1"]))
    path = tmp_path / "old.parquet"
    write_encodings(path, table, EncodingInfo(schema, enc.fingerprint, enc.check_value))
    stamp_format_version(path, 3)
    res = CliRunner().invoke(app, ["match", str(path), str(path), "--out",
                                   str(tmp_path / "p.csv")])
    assert res.exit_code == 2
    assert "format_version 3" in res.output and "made again" in res.output
    assert "Amina" not in res.output and "1990" not in res.output
