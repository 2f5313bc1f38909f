"""Name agreement weighed by how common the name is, from look-alikes among the candidates
(accord.link.frequency), through the model, `match_sets` and `accord match`."""

from __future__ import annotations

import csv
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from accord.cli.main import app
from accord.link import MatchConfig, match_sets
from accord.link.fellegi_sunter import FSModel
from accord.link.frequency import BUCKETS, SPLIT, FrequencySplit, frequency_split
from accord.protect.encoding import LinkageSecret, new_linkage_secret
from tests.linkage_data import FIELDS, encode_rows, generate

SECRET = LinkageSecret(b"frequency-test-secret-32-bytes!!")
NAME, CODES = 0, (2,)


def _gamma(rows: list[tuple[int, int, int]]) -> np.ndarray:
    """(name level, date level, code level) per pair."""
    return np.asarray(rows, dtype=np.int8)


def test_look_alikes_are_the_other_close_candidates_of_either_record() -> None:
    # A0 is close to B0 and B1; A1 to B1; B2 is close to nobody. Code disagreement (level 2)
    # makes a pair no look-alike.
    ia = np.array([0, 0, 1, 1, 2])
    ib = np.array([0, 1, 1, 2, 0])
    gamma = _gamma([(1, 0, 1), (2, 0, 1), (1, 0, 1), (4, 0, 1), (1, 0, 2)])
    ones = np.zeros(len(ia))
    split = frequency_split(gamma, ia, ib, ones, gamma, ia, ib, True, ones, (3, 3), NAME, CODES)
    assert split.counts_a.tolist() == [2, 1, 0]
    assert split.counts_b.tolist() == [1, 2, 0]
    # (A0, B0): A0's other close candidate B1 -> 1 look-alike; (A1, B2) is not close itself
    # (name level 4), but counts A1's close candidate B1 -> 1.
    assert split.buckets(gamma, ia, ib, True).tolist() == [1, 2, 1, 1, 1]


def test_the_factor_favours_rare_names_and_penalises_common_ones() -> None:
    # Clear matches (probability 1) have no look-alike; clear non-matches at the same name
    # level have many (common names): the factor is P(bucket | match) / P(bucket | non-match).
    n_match, n_common = 50, 40
    ia = np.concatenate([np.arange(n_match), np.full(n_common, n_match)])
    ib = np.concatenate([np.arange(n_match), n_match + np.arange(n_common)])
    gamma = _gamma([(1, 1, 1)] * (n_match + n_common))
    prob = np.concatenate([np.ones(n_match), np.zeros(n_common)])
    split = frequency_split(gamma, ia, ib, prob, gamma, ia, ib, True, prob,
                            (n_match + 1, n_match + n_common), NAME, CODES)
    row = split.log_ratio[SPLIT.index(1)]
    assert row[0] > np.log(10)  # no look-alike: strong evidence for a match
    assert row[-1] < -np.log(10)  # 8+ look-alikes: against
    adj = split.adjustment(gamma, ia, ib)
    assert adj[0] == pytest.approx(row[0]) and adj[-1] == pytest.approx(row[-1])
    # A pair whose names are not close is left alone.
    assert split.adjustment(_gamma([(4, 1, 1)]), ia[:1], ib[:1]).tolist() == [0.0]


def test_a_rare_name_never_outweighs_a_clearly_disagreeing_birth_date() -> None:
    boost = np.zeros((len(SPLIT), len(BUCKETS)))
    boost[:, 0], boost[:, 3:] = 3.0, -3.0
    split = FrequencySplit(NAME, CODES, np.zeros(2, np.int64), np.array([0, 9]), boost)
    m = [np.array([0.01, 0.7, 0.2, 0.09]), np.array([0.05, 0.9, 0.05]), np.array([0.01, 0.98, 0.01])]
    u = [np.array([0.01, 0.01, 0.1, 0.88]), np.array([0.05, 0.05, 0.9]), np.array([0.01, 0.5, 0.49])]
    base = FSModel(m, u, 1e-3, 1, True, independent=(1,))
    model = replace(base, frequency=split)
    # date agrees / clearly disagrees (m/u = 0.056); rare name (no look-alike) / common (9 less itself)
    gamma = _gamma([(1, 1, 1), (1, 2, 1), (1, 2, 1)])
    ia, ib = np.array([0, 0, 1]), np.array([0, 0, 1])
    delta = model.pair_log_bayes_factor(gamma, ia, ib) - base.log_bayes_factor(gamma)
    assert delta.tolist() == pytest.approx([3.0, 0.0, -3.0])
    assert model.clearly_disagree(gamma).tolist() == [False, True, True]


def _undated(rows: list[dict[str, str]]) -> list[dict[str, str]]:
    return [{**r, "dob": ""} for r in rows]


@pytest.fixture(scope="module")
def with_twins() -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """Migrant-like rows, plus a rare-named person in both files without a birth date, and a
    common name shared by five people of A, one of them also in B, all without birth dates."""
    a_rows, b_rows, _ = generate(600, seed=5)
    rare = {"given": "Zebulon", "family": "Quixotte", "sex": "male", "citizenship": "ER",
            "dob": ""}
    common = {"given": "Mariam", "family": "Tesfamariam", "sex": "female",
              "citizenship": "ER", "dob": ""}
    a_rows = [*a_rows, {**rare, "id": "a-rare"},
              *({**common, "id": f"a-common{i}"} for i in range(5))]
    b_rows = [*b_rows, {**rare, "id": "b-rare"}, {**common, "id": "b-common"}]
    return a_rows, b_rows


def _score(result: object, a_ids: list[str], b_ids: list[str], x: str, y: str) -> float:
    ia, ib, score = (getattr(result, k) for k in ("ia", "ib", "score"))
    for i, j, s in zip(ia.tolist(), ib.tolist(), score.tolist(), strict=True):
        if a_ids[i] == x and b_ids[j] == y:
            return float(s)
    return 0.0


def test_match_sets_links_a_rare_undated_name_and_weighs_it_above_a_common_one(
        with_twins: tuple) -> None:
    a_rows, b_rows = with_twins
    a, b = encode_rows(a_rows, SECRET, 1), encode_rows(b_rows, SECRET, 2)
    on = match_sets(a, b, MatchConfig())
    off = match_sets(a, b, MatchConfig(name_frequency=False))
    a_ids, b_ids = a.ids.tolist(), b.ids.tolist()
    rare_on = _score(on, a_ids, b_ids, "a-rare", "b-rare")
    rare_off = _score(off, a_ids, b_ids, "a-rare", "b-rare")
    assert on.model.frequency is not None and off.model.frequency is None
    assert rare_on >= 0.5  # linked: a name nobody else has, no birth date needed
    assert rare_on >= rare_off
    # The common name: whichever of the five is linked gets less than the rare name.
    common = max(_score(on, a_ids, b_ids, f"a-common{i}", "b-common") for i in range(5))
    assert common < rare_on
    summary = on.model.summary()["name_look_alikes"]
    assert isinstance(summary, dict) and summary["look_alike_buckets"][0] == "0"


def test_cli_match_json_shows_the_look_alike_factors(tmp_path: Path,
                                                      with_twins: tuple) -> None:
    runner = CliRunner()
    key = tmp_path / "link.key"
    new_linkage_secret(key)
    outs = []
    for name, rows in zip("ab", with_twins, strict=True):
        path = tmp_path / f"{name}.csv"
        with path.open("w", newline="", encoding="utf-8") as fh:
            w = csv.DictWriter(fh, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)
        out = tmp_path / f"{name}.parquet"
        res = runner.invoke(app, ["encode", str(path), "--id", "id", "--fields", FIELDS,
                                  "--secret-file", str(key), "--out", str(out)])
        assert res.exit_code == 0, res.output
        outs.append(out)
    pairs = tmp_path / "pairs.csv"
    res = runner.invoke(app, ["match", str(outs[0]), str(outs[1]), "--json", "--out", str(pairs)])
    assert res.exit_code == 0, res.output
    factors = json.loads(res.output)["model"]["name_look_alikes"]["log2_factor"]
    assert set(factors) == {f"level {lv}" for lv in SPLIT}
    with pairs.open(encoding="utf-8") as fh:
        linked = {(r["id_a"], r["id_b"]) for r in csv.DictReader(fh)}
    assert ("a-rare", "b-rare") in linked


def test_the_factor_applies_where_every_pair_is_compared(with_twins: tuple) -> None:
    # With blocking the look-alikes are only those blocking kept; the factor is left out there
    # (measured: it cost F1 at 100k), and the model is main's.
    a_rows, b_rows = with_twins
    a, b = encode_rows(a_rows, SECRET, 1), encode_rows(b_rows, SECRET, 2)
    blocked = match_sets(a, b, MatchConfig(exhaustive_below=0))
    assert blocked.candidates < len(a) * len(b)
    assert blocked.model.frequency is None
    assert "name_look_alikes" not in blocked.model.summary()
