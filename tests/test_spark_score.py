"""The Spark engine's scoring plan, without Spark: the record-grouped passes of
`spark_score.competition_plan`, each run per record in candidate order with the same kernel,
give `pair_log_odds` to the last bit; and EM on candidates read pattern by pattern
(`Candidates`) is EM on the arrays."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from accord.link.fellegi_sunter import (
    PairChunks,
    PairLevels,
    _others,
    fit,
    fit_on,
    pair_log_odds,
    pair_odds,
)
from accord.link.spark_score import _kept_after, competition_plan


def _run_plan(log_bf: np.ndarray, ia: np.ndarray, ib: np.ndarray, n: tuple[int, int],
              matches: float, rounds: int) -> np.ndarray:
    """The plan as the Spark engine runs it, with each pass split into partitions by record
    (a partition holds whole records, their pairs sorted by candidate code)."""
    log_x, x = pair_odds(log_bf, *n, matches)
    cols: dict[str, np.ndarray] = {}
    plan = competition_plan(rounds)
    for (side, outs), kept in zip(plan, _kept_after(plan, rounds), strict=True):
        key = ia if side == "a" else ib
        made = {o: np.empty(len(x)) for o, _ in outs}
        for part in range(3):  # records spread over 3 partitions
            pos = np.flatnonzero(key % 3 == part)
            pos = pos[np.lexsort((pos, key[pos]))]  # by record, then candidate order
            if not len(pos):
                continue
            _, local = np.unique(key[pos], return_inverse=True)
            for out, src in outs:
                v = x[pos] if src is None else x[pos] / (1.0 + cols[src][pos])
                made[out][pos] = _others(v, local.ravel().astype(np.int64), int(local.max()) + 1)
        cols = {c: (made[c] if c in made else cols[c]) for c in kept}
    return log_x - np.log1p(cols[f"r{rounds}"]) - np.log1p(cols[f"c{rounds}"])


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 12), st.integers(0, 2**32 - 1), st.integers(5, 40))
def test_plan_gives_pair_log_odds_exactly(rounds: int, seed: int, n_rec: int) -> None:
    rng = np.random.default_rng(seed)
    codes = np.unique(rng.integers(0, n_rec * n_rec, 4 * n_rec))  # candidate (code) order
    ia, ib = codes // n_rec, codes % n_rec
    log_bf = rng.normal(0, 8, len(codes))
    want = pair_log_odds(log_bf, ia, ib, n_rec, n_rec, n_rec / 3, rounds=rounds)
    got = _run_plan(log_bf, ia, ib, (n_rec, n_rec), n_rec / 3, rounds)
    assert np.array_equal(want, got)


def test_plan_passes() -> None:
    # One round: three passes (B, A, B); ten: both chains advance in each pass, 12 not 21.
    assert [s for s, _ in competition_plan(1)] == ["b", "a", "b"]
    assert len(competition_plan(10)) == 12
    assert _kept_after(competition_plan(10), 10)[-1] == ["c10", "r10"]


class _Fetched(PairLevels):
    """Candidates that count what EM asks pair by pair (as the Spark engine fetches)."""

    fetched: set[int]

    def pairs_of(self, wanted: np.ndarray) -> PairChunks:
        self.fetched = getattr(self, "fetched", set()) | set(np.flatnonzero(wanted).tolist())
        return super().pairs_of(wanted)


def test_em_on_candidates_is_em_on_arrays() -> None:
    rng = np.random.default_rng(3)
    n = 400
    codes = np.unique(rng.integers(0, n * n, 30 * n))
    ia, ib = codes // n, codes % n
    codes = np.union1d(codes, np.arange(n) * (n + 1))  # the true pairs (i, i)
    ia, ib = codes // n, codes % n
    chance = [0.0, 0.02, 0.05, 0.13, 0.8]  # non-matches mostly disagree
    gamma = rng.choice(5, (len(codes), 5), p=chance).astype(np.int8)
    gamma[ia == ib] = 1  # true pairs agree
    random_gamma = rng.choice(5, (20000, 5), p=chance).astype(np.int8)
    levels = [5] * 5
    one = fit(gamma, random_gamma, levels, pairs=(ia, ib), sizes=(n, n), independent=(4,),
              sample_records=150)
    cands = _Fetched(gamma, ia, ib)
    two = fit_on(cands, random_gamma, levels, sizes=(n, n), independent=(4,),
                 sample_records=150)
    assert one.matches == two.matches and one.iterations == two.iterations
    assert all(np.array_equal(x, y) for x, y in zip(one.m, two.m, strict=True))
    assert cands.fetched  # EM weighed some patterns pair by pair ...
    assert len(cands.fetched) < len(np.unique(gamma, axis=0))  # ... not all of them


class _Shared:
    """What a partition reads of a broadcast: its ``value``."""

    def __init__(self, value: object) -> None:
        self.value = value


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 11), st.integers(0, 2**32 - 1), st.integers(6, 40), st.booleans())
def test_pattern_table_and_passes_give_the_embedded_scores_exactly(
        rounds: int, seed: int, n_rec: int, compete: bool) -> None:
    """The Spark engine's own pass functions, fed partitions by record in a shuffled row order
    and split into batches, with each pair's odds looked up from its pattern (not carried),
    give `pair_log_odds` and `weights_of` to the last bit (and the levels decode from their
    pattern codes)."""
    from dataclasses import replace

    import pyarrow as pa

    from accord.link.fellegi_sunter import FSModel, _codes
    from accord.link.match import weights_of
    from accord.link.spark_score import (
        _alone_fn,
        _final_fn,
        _pass_fn,
        pattern_levels,
        pattern_odds,
    )

    rng = np.random.default_rng(seed)
    n_a, n_b = n_rec, n_rec + 3
    codes = np.unique(rng.integers(0, n_a * n_b, 4 * n_rec))
    ia, ib = codes // n_b, codes % n_b
    n_levels = [3, 4, 2, 5]
    gamma = np.stack([rng.integers(0, k, len(codes)) for k in n_levels], axis=1).astype(np.int8)
    m = [rng.dirichlet(np.ones(k)) for k in n_levels]
    u = [rng.dirichlet(np.ones(k)) for k in n_levels]
    model = FSModel(m, u, prior=0.01, iterations=1, converged=True, matches=n_rec / 3,
                    independent=tuple(range(len(n_levels))))
    log_bf = model.log_bayes_factor(gamma)
    want = weights_of(pair_log_odds(log_bf, ia, ib, n_a, n_b, model.matches, compete=compete,
                                    rounds=rounds), model)

    pcode = _codes(gamma, n_levels)
    pcodes = np.unique(pcode)
    assert np.array_equal(pattern_levels(pcode, n_levels), gamma)
    table = _Shared(pattern_odds(pcodes, n_levels, model, (n_a, n_b), compete))
    light = replace(model, m=[], u=[], labels=[])
    rows = pa.table({"code": pa.array(codes), "pcode": pa.array(pcode)})

    def partitions(t: pa.Table, key: np.ndarray) -> list[list[pa.RecordBatch]]:
        out = []
        for part in range(3):  # whole records a partition, rows in any order, 2 batches
            pos = rng.permutation(np.flatnonzero(key % 3 == part))
            half = len(pos) // 2
            out.append([t.take(pa.array(p)).to_batches()[0] if len(p) else
                        t.slice(0, 0).to_batches()[0] for p in (pos[:half], pos[half:])
                        if len(p)])
        return out

    if compete:
        plan = competition_plan(rounds)
        for (side, outs), kept in zip(plan, _kept_after(plan, rounds), strict=True):
            c = rows.column("code").to_numpy()
            fn = _pass_fn(side, outs, ["code", "pcode", *kept], (n_a, n_b), table)
            got = [b for part in partitions(rows, c // n_b if side == "a" else c % n_b)
                   for b in fn(iter(part))]
            rows = pa.Table.from_batches(got)
        final = _final_fn(rounds, table, light, 0.0, weights_of)
    else:
        final = _alone_fn(table, light, 0.0, weights_of)
    out = pa.Table.from_batches(list(final(iter(rows.to_batches()))))
    order = np.argsort(out.column("code").to_numpy())
    assert np.array_equal(out.column("code").to_numpy()[order], codes)
    assert np.array_equal(out.column("weight").to_numpy()[order], want[0])
    assert np.array_equal(out.column("prob").to_numpy()[order], want[1])
