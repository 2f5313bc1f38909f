"""Joint estimation: one model fitted to every noisy measurement at once (private-pgm's estimate).

:func:`~accord.release.synthesize.model.fit` rakes the junction tree's cliques one after another,
each to its own fused margins; a clique's fit never looks at measurements in other cliques except
through the separator it shares with its parent, and a clique the triangulation made up holds
only its measured margins. This module refines that model by minimising, over every distribution
of the junction tree's form (the marginal polytope of a decomposable model, so the clique
marginals are always consistent),

    L(mu) = sum over measurements q of  0.5 * || M_q(mu) - y_q ||^2 / sigma_q^2

where ``M_q(mu)`` is the model's marginal (counts, at the estimated total) on the set q measured
with noisy counts ``y_q`` and per-cell noise variance ``sigma_q^2``: the weighted least-squares
estimate that private-pgm (``mbi``, used by AIM and MST) computes. As there, the minimisation is
entropic mirror descent on the cliques' log-potentials with exact marginals from belief
propagation on the junction tree, and an Armijo backtracking step (McKenna, Sheldon & Miklau,
"Graphical-model based estimation and inference for differential privacy", ICML 2019).

Written by hand: private-pgm is the one library that does this, and it needs JAX (minutes and
gigabytes per fit on adult, and a dependency the package does not take: docs/dp.md); no
pip-installable, maintained numpy library estimates a graphical model from noisy marginals.
The model here is small (the size caps of :mod:`~accord.release.synthesize.model` bound it to
2,000,000 cells, about 10,000 on the hub's data), so numpy suffices.

Post-processing only: reads a :class:`~accord.release.synthesize.model.Measured` and a fitted
:class:`~accord.release.synthesize.model.Model`, never the records.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from accord.release.synthesize.model import Measured, Model, spec_variance

__all__ = ["JointFit", "joint_fit", "weighted_residual"]

ITERATIONS = 500  # mirror-descent steps (private-pgm's AIM: 1,000 per round)
FLOOR = 1e-12  # probability floor of the warm start (log 0 would pin a cell at zero for good)


@dataclass(frozen=True)
class _Tree:
    cliques: tuple[tuple[int, ...], ...]  # sampling order (a parent before its children)
    parent: tuple[int, ...]  # index of each clique's parent, -1 for a root
    sep: tuple[tuple[int, ...], ...]  # columns shared with the parent (ascending)


@dataclass(frozen=True)
class _Term:
    """One measurement in the loss: the clique holding it, its axes there, target and weight."""

    clique: int
    axes: tuple[int, ...]  # axes of the clique table the measurement keeps (ascending)
    target: np.ndarray  # noisy counts
    weight: np.ndarray | float  # 1 / variance, per cell or for all


@dataclass(frozen=True)
class JointFit:
    model: Model
    loss_start: float
    loss_end: float
    iterations: int


def _tree(cliques: tuple[tuple[int, ...], ...]) -> _Tree:
    """Parents of a junction tree given in preorder (as :func:`model.fit` orders its cliques).

    By the running-intersection property a clique's columns shared with all cliques before it
    lie in one earlier clique: that one is its parent (any such will do).
    """
    parent, sep = [], []
    seen: set[int] = set()
    for i, c in enumerate(cliques):
        shared = tuple(a for a in c if a in seen)
        if not shared:
            parent.append(-1)
        else:
            parent.append(next(j for j in range(i) if set(shared) <= set(cliques[j])))
        sep.append(shared)
        seen.update(c)
    return _Tree(cliques, tuple(parent), tuple(sep))


def _axes(clique: tuple[int, ...], sub: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(clique.index(a) for a in sub)


def _keep(table: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
    """Sum ``table`` onto ``axes`` (kept as broadcastable size-1 dimensions elsewhere)."""
    drop = tuple(i for i in range(table.ndim) if i not in axes)
    return table.sum(axis=drop, keepdims=True) if drop else table


def _lse_keep(table: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
    """Log-sum-exp of ``table`` onto ``axes`` (size-1 dimensions elsewhere)."""
    drop = tuple(i for i in range(table.ndim) if i not in axes)
    if not drop:
        return table
    top = table.max(axis=drop, keepdims=True)
    top = np.where(np.isfinite(top), top, 0.0)
    return np.log(np.exp(table - top).sum(axis=drop, keepdims=True)) + top


def _to(msg: np.ndarray, src: tuple[int, ...], dst: tuple[int, ...]) -> np.ndarray:
    """A message over the shared columns, held with size-1 axes in clique ``src``'s layout,
    reshaped to broadcast in clique ``dst``'s layout (columns ascending in both)."""
    shared = [a for a in src if a in dst]
    vals = msg.reshape([msg.shape[src.index(a)] for a in shared])
    return vals.reshape([vals.shape[shared.index(a)] if a in shared else 1 for a in dst])


def _marginals(tree: _Tree, theta: list[np.ndarray], total: float) -> list[np.ndarray]:
    """Each clique's marginal (counts summing to ``total``) of the model with log-potentials
    ``theta``: exact belief propagation on the junction tree (one pass up, one down)."""
    n = len(tree.cliques)
    up: list[np.ndarray | None] = [None] * n  # message from a clique to its parent
    belief = [t.copy() for t in theta]
    for i in reversed(range(n)):
        p = tree.parent[i]
        if p >= 0:
            c = tree.cliques[i]
            up[i] = _lse_keep(belief[i], _axes(c, tree.sep[i]))
            belief[p] = belief[p] + _to(up[i], c, tree.cliques[p])
    for i in range(n):
        p = tree.parent[i]
        if p >= 0:
            c, pc = tree.cliques[i], tree.cliques[p]
            down = _lse_keep(belief[p], _axes(pc, tree.sep[i]))
            msg = _to(down, pc, c) - _to(up[i], c, c)  # type: ignore[arg-type]
            belief[i] = belief[i] + msg
    out = []
    for b in belief:
        z = _lse_keep(b, ())
        out.append(total * np.exp(b - z))
    return out


def _terms(measured: Measured, cliques: tuple[tuple[int, ...], ...]) -> list[_Term]:
    """The loss's measurements: every measured set (its own noise), every one-way marginal on
    the compressed levels (a merged level's variance is its members' variances added)."""
    terms = []
    for m in measured.cliques:
        host = next(i for i, c in enumerate(cliques) if set(m.attrs) <= set(c))
        axes = _axes(cliques[host], m.attrs)
        shape = [1] * len(cliques[host])
        for k, ax in enumerate(axes):
            shape[ax] = m.noisy.shape[k]
        terms.append(_Term(host, axes, m.noisy.astype(float).reshape(shape),
                           1.0 / spec_variance(m.noise)))
    for j, one in enumerate(measured.one_way):
        host = next(i for i, c in enumerate(cliques) if j in c)
        g = measured.groups[j]
        size = int(g.max()) + 1
        y = np.bincount(g, weights=one.noisy.astype(float), minlength=size)
        var = spec_variance(one.noise) * np.bincount(g, minlength=size)
        shape = [1] * len(cliques[host])
        shape[cliques[host].index(j)] = size
        terms.append(_Term(host, (cliques[host].index(j),), y.reshape(shape),
                           (1.0 / var).reshape(shape)))
    return terms


def _loss(terms: list[_Term], mu: list[np.ndarray], grad: bool
          ) -> tuple[float, list[np.ndarray] | None]:
    loss = 0.0
    g = [np.zeros_like(t) for t in mu] if grad else None
    for t in terms:
        r = _keep(mu[t.clique], t.axes) - t.target
        wr = r * t.weight
        loss += 0.5 * float((r * wr).sum())
        if g is not None:
            g[t.clique] += wr  # broadcasts over the clique's other axes
    return loss, g


def weighted_residual(measured: Measured, model: Model) -> float:
    """The loss a joint fit minimises, for any model of ``measured`` (tests compare fits)."""
    tree = _tree(model.cliques)
    theta = _warm(tree, model)
    return _loss(_terms(measured, tree.cliques), _marginals(tree, theta, model.total), False)[0]


def _warm(tree: _Tree, model: Model) -> list[np.ndarray]:
    """Log-potentials reproducing ``model``: a root's table, every other clique's conditional
    given its separator (the product of these is the distribution the sampler draws from)."""
    theta = []
    for i, t in enumerate(model.tables):
        p = np.maximum(t / t.sum(), FLOOR)
        log = np.log(p)
        if tree.parent[i] >= 0:
            log = log - np.log(_keep(p, _axes(tree.cliques[i], tree.sep[i])))
        theta.append(log)
    return theta


def joint_fit(measured: Measured, start: Model, iterations: int = ITERATIONS) -> JointFit:
    """Refine ``start`` (the raked model) to the weighted least-squares fit of all measurements.

    Same cliques, order and total as ``start``; the result's clique tables are consistent
    marginals, so :func:`model.sample` and :func:`aim.model_marginal` read it unchanged.
    """
    tree = _tree(start.cliques)
    terms = _terms(measured, tree.cliques)
    total = start.total
    theta = _warm(tree, start)
    mu = _marginals(tree, theta, total)
    loss, grad = _loss(terms, mu, True)
    first = loss
    # Step size as private-pgm: 1 / total^2 to start, doubled before each step and halved
    # until the Armijo condition holds.
    alpha = 1.0 / total ** 2
    done = 0
    for done in range(1, iterations + 1):  # noqa: B007 (reported)
        assert grad is not None
        alpha *= 2.0
        for _ in range(25):
            new_theta = [t - alpha * g for t, g in zip(theta, grad, strict=True)]
            new_mu = _marginals(tree, new_theta, total)
            new_loss, new_grad = _loss(terms, new_mu, True)
            gain = 0.5 * alpha * sum(float((g * (m - n)).sum())
                                     for g, m, n in zip(grad, mu, new_mu, strict=True))
            if loss - new_loss >= gain:
                break
            alpha *= 0.5
        else:
            break  # no step decreases the loss: at the optimum to numerical precision
        theta, mu, loss, grad = new_theta, new_mu, new_loss, new_grad
    tables = tuple(m / m.sum() for m in mu)
    model = Model(start.columns, start.levels, start.groups, start.within, start.cliques,
                  tables, total)
    return JointFit(model, first, loss, done)
