"""The private part of the synthesiser: which marginals to measure, and measuring them (MST-like).

Follows McKenna, Miklau & Sheldon's MST (2021) under zCDP, with OpenDP for every random draw:

1. measure every one-way marginal (discrete Gaussian), and merge the levels whose noisy count is
   below 3 noise standard deviations into one bucket per column (fewer, better-measured cells);
2. grow a spanning tree over the columns: start from the graph of required cliques (e.g. sex x age
   x case type), and in each round let OpenDP's noisy max (Gumbel, zCDP) pick, among the pairs that
   join two different components, the pair whose true two-way marginal is worst explained by the
   one-way estimates (L1 error against an expected table built from noisy figures only, the
   total included, so that one person moves a score by at most 1); adding a bridge keeps the
   graph chordal;
3. measure every maximal clique of that chordal graph (discrete Gaussian).

The budget (rho) is split in thirds between the three steps, as in MST. Everything this module
returns is noisy; the fit and the sampling in :mod:`accord.release.synthesize.model` read nothing
else.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import lru_cache

import networkx as nx
import numpy as np
import opendp.prelude as dp

from accord.errors import ReleaseRefused
from accord.release.dp.mechanism import add_noise, calibrate
from accord.release.synthesize.model import (
    Encoded,
    Measured,
    Measurement,
    check_columns,
    marginal,
    measure_one_way,
    model_cliques,
    seeder,
)

dp.enable_features("contrib")

SELECTION_SENSITIVITY = 1.0  # L-inf sensitivity of the selection scores (see selection_score)


def _make_noisy_max(scale: float) -> dp.Measurement:
    return dp.m.make_noisy_max(dp.vector_domain(dp.atom_domain(T=float, nan=False)),
                               dp.linf_distance(T=float), dp.zero_concentrated_divergence(),
                               scale=scale)


@lru_cache(maxsize=256)
def gumbel_scale(d_in: float, rho: float) -> float:
    """The smallest Gumbel scale whose zCDP cost at sensitivity ``d_in`` fits ``rho`` (OpenDP)."""
    return float(dp.binary_search_param(_make_noisy_max, d_in=d_in, d_out=rho))


def _noisy_max(scores: np.ndarray, d_in: float, rho: float, test_seed: int | None) -> int:
    """Index of the noisy maximum of ``scores``, whose L-inf sensitivity must be <= ``d_in``."""
    scale = gumbel_scale(d_in, rho)
    make = _make_noisy_max
    if test_seed is not None:  # tests only: the same Gumbel race, reproducible, not private
        gumbel = np.random.default_rng(test_seed).gumbel(scale=scale, size=len(scores))
        return int(np.argmax(scores + gumbel))
    return int(make(scale)([float(s) for s in scores]))


def selection_score(true: np.ndarray, expected_share: np.ndarray, total_hat: float) -> float:
    """How badly the one-way estimates explain a pair's true two-way table (L1 error).

    ``expected_share`` and ``total_hat`` come from the noisy one-way marginals only, so adding or
    removing one person changes one cell of ``true`` by 1 and the score by at most 1
    (:data:`SELECTION_SENSITIVITY`, the ``d_in`` the noisy max is calibrated with).
    """
    return float(np.abs(true - total_hat * expected_share).sum())


def measure(data: Encoded, rho: float, required: Sequence[Sequence[str]] = (),
            test_seed: int | None = None) -> Measured:
    """Run the private selection and measurements with a total zCDP budget ``rho``."""
    check_columns(data)
    d = len(data.columns)
    name_to_idx = {c: i for i, c in enumerate(data.columns)}
    req = [tuple(sorted(name_to_idx[c] for c in clique)) for clique in required]
    seed = seeder(test_seed)

    # 1. one-way marginals: one person moves one cell in each -> L2^2 = d over all of them.
    first = measure_one_way(data, calibrate("gaussian", 1, d, rho / 3.0), seed, add_noise)
    one_way, groups, comp, csizes = first.measurements, first.groups, first.comp, first.csizes
    spent = first.rho

    # 2. spanning structure: required cliques first, then noisy-max bridges between components.
    graph = nx.Graph()
    graph.add_nodes_from(range(d))
    for clique in req:
        graph.add_edges_from((a, b) for i, a in enumerate(clique) for b in clique[i + 1:])
    if not nx.is_chordal(graph):
        raise ReleaseRefused("the required marginals do not form a junction tree",
                             hint="choose required column sets that chain through shared columns")
    rounds = nx.number_connected_components(graph) - 1
    est = [np.clip(m.noisy, 0, None).astype(float) for m in one_way]
    est_c = [np.bincount(groups[j], weights=est[j], minlength=csizes[j]) for j in range(d)]
    # The expected tables are built from noisy figures only (as in MST), the total included: with
    # the true total, one added person would move a score by up to 2, not 1 (issue 17).
    total_hat = float(np.mean([max(float(m.noisy.sum()), 1.0) for m in one_way]))
    selected: list[tuple[str, str]] = []
    for _ in range(rounds):
        comp_of = {n: k for k, cc in enumerate(nx.connected_components(graph)) for n in cc}
        pairs = [(a, b) for a in range(d) for b in range(a + 1, d) if comp_of[a] != comp_of[b]]
        scores = []
        for a, b in pairs:
            true = marginal(comp, csizes, (a, b)).astype(float)
            pa_, pb_ = est_c[a] / max(est_c[a].sum(), 1.0), est_c[b] / max(est_c[b].sum(), 1.0)
            scores.append(selection_score(true, np.outer(pa_, pb_), total_hat))
        a, b = pairs[_noisy_max(np.asarray(scores), SELECTION_SENSITIVITY, rho / 3.0 / rounds,
                                seed())]
        graph.add_edge(a, b)
        selected.append((data.columns[a], data.columns[b]))
    spent += rho / 3.0 if rounds else 0.0

    # 3. measure every maximal clique: one person moves one cell in each -> L2^2 = #cliques.
    cliques = sorted(tuple(sorted(c)) for c in nx.chordal_graph_cliques(graph))
    if model_cliques(cliques, csizes) is None:
        cells = max(math.prod(csizes[a] for a in c) for c in cliques)
        raise ReleaseRefused(f"a measured marginal would have {cells} cells",
                             hint="bin numeric columns or drop high-cardinality columns")
    rho3 = rho - spent
    spec3 = calibrate("gaussian", 1, len(cliques), rho3)
    measured = tuple(Measurement(c, add_noise(marginal(comp, csizes, c), spec3, seed()), spec3)
                     for c in cliques)
    spent += spec3.cost_rho()
    return Measured(data.columns, data.levels, groups, one_way, measured, spent,
                    tuple(selected))
