"""Matching encodings: Dice, blocking, Fellegi-Sunter/EM, threshold, one-to-one, clustering."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from accord.cli.main import app
from accord.link import ClusterRecord, EncodedSet, MatchConfig, cluster_records, match_sets
from accord.link.blocking import candidate_pairs
from accord.link.encodings import BitField, dice
from accord.link.evaluate import pair_scores, pairs_from_clusters
from accord.protect.encoding import (
    Encoder,
    EncodingFileError,
    EncodingInfo,
    LinkageSecret,
    new_linkage_secret,
    schema_from_fields,
)
from tests.linkage_data import FIELDS, encode_rows, generate, write_csv

SECRET = LinkageSecret(b"k" * 32)


def _encode(rows: list[dict[str, str]], flip: float = 0.02, seed: int = 0) -> EncodedSet:
    return encode_rows(rows, SECRET, seed, flip)


@pytest.fixture(scope="module")
def generated() -> tuple[EncodedSet, EncodedSet, list[tuple[str, str, str]]]:
    a_rows, b_rows, truth = generate(700, seed=3)
    return _encode(a_rows, seed=1), _encode(b_rows, seed=2), truth


# ------------------------------------------------------------------ Dice
def _bitfield(rows: list[bytes]) -> BitField:
    return BitField.from_arrow(pa.array(rows, pa.binary(16)), "x")


@given(st.lists(st.tuples(st.binary(min_size=16, max_size=16),
                          st.binary(min_size=16, max_size=16)), min_size=1, max_size=20))
@settings(max_examples=150, deadline=None)
def test_dice_is_symmetric_and_bounded(pairs: list[tuple[bytes, bytes]]) -> None:
    a = _bitfield([p[0] for p in pairs])
    b = _bitfield([p[1] for p in pairs])
    idx = np.arange(len(pairs))
    ab, ba = dice(a, b, idx, idx), dice(b, a, idx, idx)
    assert np.array_equal(ab, ba)
    assert ((ab >= 0) & (ab <= 1)).all()
    same = dice(a, a, idx, idx)
    assert np.allclose(same[a.ones[idx] > 0], 1.0)


def test_dice_value() -> None:
    a = _bitfield([bytes([0b1111] + [0] * 15)])
    b = _bitfield([bytes([0b0011] + [0] * 15)])
    assert dice(a, b, np.array([0]), np.array([0]))[0] == pytest.approx(2 * 2 / 6)


# ------------------------------------------------------------------ matching
def test_match_finds_hard_pairs_with_automatic_threshold(generated: tuple) -> None:
    a, b, truth = generated
    result = match_sets(a, b)
    assert result.automatic
    pred = list(zip(a.ids[result.ia], b.ids[result.ib], strict=True))
    scores = pair_scores(pred, [(x, y) for x, y, _ in truth])
    assert scores.precision > 0.97 and scores.recall > 0.85, scores.as_dict()
    # one-to-one
    assert len(set(result.ia.tolist())) == len(result.ia)
    assert len(set(result.ib.tolist())) == len(result.ib)
    # swapped names and transliterations are found
    found = set(pred)
    for kind in ("swap", "transliteration", "compound"):
        pairs = [(x, y) for x, y, k in truth if k == kind]
        assert sum(p in found for p in pairs) / len(pairs) > 0.9, kind


def test_lsh_blocking_keeps_almost_all_true_pairs(generated: tuple) -> None:
    a, b, truth = generated
    ia, ib = candidate_pairs(a, b)
    cand = set(zip(a.ids[ia].tolist(), b.ids[ib].tolist(), strict=True))
    assert len(cand) < len(a) * len(b) / 5  # it does prune
    kept = sum((x, y) in cand for x, y, _ in truth) / len(truth)
    assert kept > 0.97


def test_blocked_and_exhaustive_matching_agree(generated: tuple) -> None:
    a, b, _ = generated
    full = match_sets(a, b, MatchConfig(exhaustive_below=10**12))
    lsh = match_sets(a, b, MatchConfig(exhaustive_below=0))
    p_full = set(zip(full.ia.tolist(), full.ib.tolist(), strict=True))
    p_lsh = set(zip(lsh.ia.tolist(), lsh.ib.tolist(), strict=True))
    # EM is fitted on different pair sets, so a few borderline pairs may differ
    assert len(p_full ^ p_lsh) <= 0.05 * len(p_full)


def test_given_threshold_is_used(generated: tuple) -> None:
    a, b, _ = generated
    auto = match_sets(a, b)
    strict = match_sets(a, b, MatchConfig(threshold=0.999999))
    assert not strict.automatic and strict.threshold == 0.999999
    assert (strict.score >= 0.999999).all()
    assert len(strict.ia) < len(auto.ia)


def test_encodings_with_other_secret_or_schema_are_refused(generated: tuple) -> None:
    a, _, _ = generated
    rows = [{"id": "1", "given": "Ali", "family": "Khan", "dob": "1990", "sex": "male",
             "citizenship": "AF"}]
    other_secret = Encoder(schema_from_fields(FIELDS, 0.02), LinkageSecret(b"z" * 32))
    t = pa.Table.from_pylist(rows)
    enc = other_secret.encode(t).append_column("id", t["id"])
    b = EncodedSet.from_table(enc, EncodingInfo(other_secret.schema, other_secret.fingerprint,
                                                other_secret.check_value))
    with pytest.raises(EncodingFileError, match="secrets"):
        match_sets(a, b)
    other_schema = Encoder(schema_from_fields(FIELDS, 0.05), SECRET)
    enc = other_schema.encode(t).append_column("id", t["id"])
    c = EncodedSet.from_table(enc, EncodingInfo(other_schema.schema, other_schema.fingerprint,
                                                other_schema.check_value))
    with pytest.raises(EncodingFileError, match="schemas"):
        match_sets(a, c)


# ------------------------------------------------------------------ CLI
def test_cli_encode_and_match(tmp_path: Path) -> None:
    a_rows, b_rows, truth = generate(300, seed=9)
    runner = CliRunner()
    key, other = tmp_path / "link.key", tmp_path / "other.key"
    new_linkage_secret(key)
    new_linkage_secret(other)
    outs = []
    for name, rows, k in (("a", a_rows, key), ("b", b_rows, key), ("c", b_rows, other)):
        write_csv(tmp_path / f"{name}.csv", rows)
        out = tmp_path / f"{name}.parquet"
        res = runner.invoke(app, ["encode", str(tmp_path / f"{name}.csv"), "--id", "id",
                                  "--fields", FIELDS, "--secret-file", str(k),
                                  "--out", str(out)])
        assert res.exit_code == 0, res.output
        outs.append(out)
    pairs = tmp_path / "pairs.csv"
    res = runner.invoke(app, ["match", str(outs[0]), str(outs[1]), "--out", str(pairs)])
    assert res.exit_code == 0, res.output
    with pairs.open(encoding="utf-8") as fh:
        got = list(csv.DictReader(fh))
    assert list(got[0]) == ["id_a", "id_b", "score"]
    assert len({r["id_a"] for r in got}) == len(got) == len({r["id_b"] for r in got})
    assert all(0.5 <= float(r["score"]) <= 1 for r in got)
    s = pair_scores([(r["id_a"], r["id_b"]) for r in got], [(x, y) for x, y, _ in truth])
    assert s.f1 > 0.85
    res = runner.invoke(app, ["match", str(outs[0]), str(outs[2]), "--out", str(pairs), "--overwrite"])
    assert res.exit_code == 2
    assert "different linkage secrets" in res.output


def test_cli_match_all_pairs_and_formula_ids_neutralised(tmp_path: Path) -> None:
    a_rows, b_rows, _ = generate(60, seed=3)
    runner = CliRunner()
    key = tmp_path / "link.key"
    new_linkage_secret(key)
    outs = []
    for name, rows in (("a", a_rows), ("b", b_rows)):
        rows = [{**r, "id": "=" + str(r["id"])} for r in rows]  # ids a spreadsheet would run
        write_csv(tmp_path / f"{name}.csv", rows)
        out = tmp_path / f"{name}.parquet"
        res = runner.invoke(app, ["encode", str(tmp_path / f"{name}.csv"), "--id", "id", "--fields", FIELDS,
                                  "--secret-file", str(key), "--out", str(out)])
        assert res.exit_code == 0, res.output
        outs.append(out)
    pairs = tmp_path / "pairs.csv"
    res = runner.invoke(app, ["match", str(outs[0]), str(outs[1]), "--all-pairs", "--json", "--out", str(pairs)])
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["candidate_pairs"] == len(a_rows) * len(b_rows)
    with pairs.open(encoding="utf-8") as fh:
        got = list(csv.DictReader(fh))
    assert got and all(r["id_a"].startswith("'=") and r["id_b"].startswith("'=") for r in got)


# ------------------------------------------------------------------ clustering
records_strategy = st.lists(
    st.tuples(st.sampled_from(["p1", "p2", "p3"]), st.sampled_from([None, "x", "y", "z"])),
    min_size=2, max_size=25)


@given(records_strategy, st.data())
@settings(max_examples=200, deadline=None)
def test_clustering_never_joins_two_records_of_one_partner(
        recs: list[tuple[str, str | None]], data: st.DataObject) -> None:
    records = [ClusterRecord(p, s) for p, s in recs]
    n = len(records)
    edges = data.draw(st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)),
                               max_size=60))
    ei = np.array([e[0] for e in edges], dtype=np.int64)
    ej = np.array([e[1] for e in edges], dtype=np.int64)
    sc = np.array(data.draw(st.lists(st.floats(0, 1), min_size=len(edges),
                                     max_size=len(edges))), dtype=float)
    labels = cluster_records(records, ei, ej, sc)
    for c in set(labels.tolist()):
        members = [records[i] for i in np.flatnonzero(labels == c)]
        by_partner: dict[str, set[str | None]] = {}
        counts: dict[str, int] = {}
        for r in members:
            by_partner.setdefault(r.partner, set()).add(r.pseudonym)
            counts[r.partner] = counts.get(r.partner, 0) + 1
        for p, pseud in by_partner.items():
            if counts[p] > 1:  # several records of one partner: only with one shared pseudonym
                assert len(pseud) == 1 and None not in pseud
    # records of one partner sharing a pseudonym are always one person
    for i in range(n):
        for j in range(n):
            if records[i].pseudonym and records[i] == records[j]:
                assert labels[i] == labels[j]


def test_clustering_follows_best_edges_first() -> None:
    recs = [ClusterRecord("a", None), ClusterRecord("b", None), ClusterRecord("a", None)]
    labels = cluster_records(recs, np.array([0, 2]), np.array([1, 1]), np.array([0.6, 0.9]))
    assert labels[1] == labels[2] and labels[0] != labels[1]


def test_pair_scores_and_cluster_pairs() -> None:
    s = pair_scores([("a", "b"), ("c", "d")], [("b", "a"), ("e", "f")])
    assert (s.true_positives, s.false_positives, s.false_negatives) == (1, 1, 1)
    assert s.f1 == pytest.approx(0.5)
    assert pairs_from_clusters({"1": ["x", "y", "z"], "2": ["w"]}) == {
        ("x", "y"), ("x", "z"), ("y", "z")}



def test_date_qualities_load_as_one_str_per_value() -> None:
    """A date quality repeats a handful of codes: loaded as one Python str per distinct value
    (not one a record, ~54 bytes each), equal to the file's values with nulls as unknown."""
    import pyarrow.compute as pc

    from accord.link.encodings import EncodedSet
    from accord.protect.encoding import Encoder, EncodingInfo, LinkageSecret, schema_from_fields
    from accord.protect.encoding.bloom import QUALITY_SUFFIX
    from tests.linkage_data import FIELDS, generate

    rows, _, _ = generate(300, seed=5)
    for r in rows[::7]:
        r["dob"] = ""  # missing dates: no quality, loaded as unknown
    schema = schema_from_fields(FIELDS)
    enc = Encoder(schema, LinkageSecret(b"q" * 32), np.random.default_rng(1))
    t = pa.Table.from_pylist(rows)
    out = enc.encode(t).append_column("id", t["id"])
    s = EncodedSet.from_table(out, EncodingInfo(schema, enc.fingerprint, enc.check_value))
    assert s.quality
    for name, q in s.quality.items():
        want = pc.fill_null(out[name + QUALITY_SUFFIX], "unknown").to_pylist()
        assert q.dtype == object and q.tolist() == want
        assert len({id(v) for v in q}) == len(set(want)) < len(q)
        assert "unknown" in want and all(isinstance(v, str) for v in q)
