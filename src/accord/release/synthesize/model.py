"""Fit a decomposable graphical model to noisy marginals, and sample records from it.

Pure post-processing: the input is :class:`~accord.release.synthesize.mst.Measured` only.

Why not ``mbi``: the measured cliques here always form a junction tree (MST's tree plus required
cliques that chain through shared columns), and for such a decomposable model the distribution is
``prod(clique marginals) / prod(separator marginals)``, fitted in closed form and sampled exactly
clique by clique. mbi 2.0 installs cleanly (about 30 s) but brings JAX (about 650 MB), a heavy
runtime dependency for what is closed form here; mbi 1.1's rounding sampler (``method="round"``)
also invents correlations (see docs). Sampling here draws each record from the model's
conditionals, so no rounding artefacts arise.

Fitting: each noisy clique table is projected onto the non-negative tables with the estimated total
(Euclidean projection onto the simplex, which zeroes the cells that noise alone lifted), the
separator and one-way margins are fused by inverse-variance weighting, and each clique is raked
(iterative proportional fitting) to the fused margins so that neighbouring cliques agree.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import networkx as nx
import numpy as np

from accord.release.dp.mechanism import NoiseSpec, noise_variance
from accord.release.dp.tables import project_to_simplex
from accord.release.synthesize.mst import Measured, Measurement

__all__ = ["Model", "fit", "project_to_simplex", "sample"]

RAKE_ITERATIONS = 20


@dataclass(frozen=True)
class Model:
    columns: tuple[str, ...]
    levels: tuple[tuple[str, ...], ...]
    groups: tuple[np.ndarray, ...]
    within: tuple[np.ndarray, ...]  # per column: P(original level | compressed level), by column
    cliques: tuple[tuple[int, ...], ...]  # in sampling order
    tables: tuple[np.ndarray, ...]  # fitted clique tables (probabilities), axes = clique attrs
    total: float


@lru_cache(maxsize=4096)
def spec_variance(spec: NoiseSpec) -> float:
    """A cell's noise variance (cached: the exact discrete sum is slow at large scales)."""
    return noise_variance(spec.kind, spec.scale)


def _sum_to(m: Measurement, attrs: tuple[int, ...]) -> tuple[np.ndarray, float]:
    """Margin of a measurement over ``attrs`` (a subset) and the variance of each of its cells."""
    drop = tuple(i for i, a in enumerate(m.attrs) if a not in attrs)
    cells_summed = int(np.prod([m.noisy.shape[i] for i in drop])) if drop else 1
    summed = m.noisy.sum(axis=drop) if drop else m.noisy
    return summed.astype(float), spec_variance(m.noise) * cells_summed


def _fuse(measured: Measured, attrs: tuple[int, ...], sizes: Sequence[int]) -> np.ndarray:
    """Inverse-variance weighted estimate of the margin over ``attrs`` from every measurement."""
    num = np.zeros(tuple(sizes[a] for a in attrs))
    den = 0.0
    for m in measured.cliques:
        if set(attrs) <= set(m.attrs):
            summed, var = _sum_to(m, attrs)
            num += summed / var
            den += 1.0 / var
    if len(attrs) == 1:  # one-way tables are on original levels: compress them
        j = attrs[0]
        one = measured.one_way[j]
        summed = np.bincount(measured.groups[j], weights=one.noisy.astype(float),
                             minlength=sizes[j])
        var = spec_variance(one.noise) * float(np.bincount(measured.groups[j]).max())
        num += summed / var
        den += 1.0 / var
    return num / den


def _rake(table: np.ndarray, margins: dict[tuple[int, ...], np.ndarray]) -> np.ndarray:
    """Iterative proportional fitting of ``table`` to the given margins (axes tuples)."""
    t = table + 1e-9
    for _ in range(RAKE_ITERATIONS):
        for axes, target in margins.items():
            drop = tuple(i for i in range(t.ndim) if i not in axes)
            current = t.sum(axis=drop, keepdims=True)
            shape = [t.shape[i] if i in axes else 1 for i in range(t.ndim)]
            ratio = np.divide(target.reshape(shape), current, out=np.zeros_like(current),
                              where=current > 0)
            t = t * ratio
    return t


def fit(measured: Measured) -> Model:
    sizes = measured.compressed_sizes()
    total = float(np.mean([max(float(m.noisy.sum()), 1.0) for m in measured.one_way]))
    # The model's cliques are the maximal measured sets (the adaptive mode may measure a set
    # twice, or a subset of another) plus every column no measured set covers.
    measured_sets = {m.attrs for m in measured.cliques}
    attrs = [a for a in sorted(measured_sets) if not any(set(a) < set(b) for b in measured_sets)]
    covered = {j for a in attrs for j in a}
    attrs += [(j,) for j in range(len(sizes)) if j not in covered]
    graph = nx.Graph()
    graph.add_nodes_from(attrs)
    for i, a in enumerate(attrs):
        for b in attrs[i + 1:]:
            if set(a) & set(b):
                graph.add_edge(a, b, weight=len(set(a) & set(b)))
    tree = nx.maximum_spanning_tree(graph)
    fused1 = {j: project_to_simplex(_fuse(measured, (j,), sizes), total)
              for j in range(len(sizes))}
    fitted: dict[tuple[int, ...], np.ndarray] = {}
    for c in attrs:
        # Inverse-variance fusion of every measurement of exactly this set (one, under MST).
        table = project_to_simplex(_fuse(measured, c, sizes), total)
        targets: dict[tuple[int, ...], np.ndarray] = {(i,): fused1[a] for i, a in enumerate(c)}
        for sub in measured_sets:
            if 1 < len(sub) < len(c) and set(sub) < set(c):
                targets[tuple(c.index(a) for a in sub)] = project_to_simplex(
                    _fuse(measured, sub, sizes), total)
        for nb in tree.neighbors(c):
            sep = tuple(sorted(set(c) & set(nb)))
            if len(sep) > 1:
                axes = tuple(c.index(a) for a in sep)
                targets[axes] = project_to_simplex(_fuse(measured, sep, sizes), total)
        fitted[c] = _rake(table, targets) if table.sum() > 0 else np.full(table.shape, 1.0)
    order: list[tuple[int, ...]] = []
    for comp in nx.connected_components(tree):
        root = max(comp, key=len)
        order.extend(nx.dfs_preorder_nodes(tree, root))
    within = []
    for j, g in enumerate(measured.groups):
        # Projecting the noisy one-way counts (rather than clipping them) zeroes the levels that
        # noise alone lifted, so a merged bucket of many rare levels is not spread uniformly.
        noisy = measured.one_way[j].noisy.astype(float)
        w = project_to_simplex(noisy, max(float(noisy.sum()), 1.0))
        group_sum = np.bincount(g, weights=w, minlength=int(g.max()) + 1)
        members = np.bincount(g)
        uniform = 1.0 / members[g]
        within.append(np.where(group_sum[g] > 0, w / np.where(group_sum[g] > 0, group_sum[g], 1.0),
                               uniform))
    return Model(measured.columns, measured.levels, measured.groups, tuple(within), tuple(order),
                 tuple(fitted[c] / fitted[c].sum() for c in order), total)


def _draw(probs: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    p = probs.ravel() / probs.sum()
    return rng.choice(p.size, size=n, p=p)


def sample(model: Model, rows: int, rng: np.random.Generator) -> np.ndarray:
    """``rows`` records as original level codes, one column per model column."""
    d = len(model.columns)
    comp = np.full((rows, d), -1, dtype=np.int64)
    for clique, table in zip(model.cliques, model.tables, strict=True):
        known = [i for i, a in enumerate(clique) if comp[0, a] >= 0] if rows else []
        new = [i for i in range(len(clique)) if i not in known]
        if not new:
            continue
        if not known:
            flat = _draw(table, rows, rng)
            idx = np.unravel_index(flat, table.shape)
            for i, a in enumerate(clique):
                comp[:, a] = idx[i]
            continue
        # Conditional on the already-drawn separator: one draw per separator value.
        moved = np.moveaxis(table, known + new, range(len(clique)))
        sep_shape, new_shape = moved.shape[: len(known)], moved.shape[len(known):]
        cond = moved.reshape(int(np.prod(sep_shape)), int(np.prod(new_shape)))
        key = np.ravel_multi_index(tuple(comp[:, clique[i]] for i in known), sep_shape)
        out = np.empty(rows, dtype=np.int64)
        for k in np.unique(key):
            sel = np.flatnonzero(key == k)
            row = cond[k] if cond[k].sum() > 0 else np.ones(cond.shape[1])
            out[sel] = _draw(row, len(sel), rng)
        idx = np.unravel_index(out, new_shape)
        for pos, i in enumerate(new):
            comp[:, clique[i]] = idx[pos]
    result = np.empty_like(comp)
    for j in range(d):
        # Expand each compressed level back to an original level, in proportion to the noisy
        # one-way counts of the levels it merged.
        g, w = model.groups[j], model.within[j]
        for c in np.unique(comp[:, j]):
            members = np.flatnonzero(g == c)
            sel = np.flatnonzero(comp[:, j] == c)
            result[sel, j] = members[_draw(w[members], len(sel), rng)]
    return result
