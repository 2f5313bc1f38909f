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
2,000,000 cells; the hub's simulated data give about 7,000 at epsilon 1 and 325,000 at 4), so
numpy suffices.

Post-processing only: reads a :class:`~accord.release.synthesize.model.Measured` and a fitted
:class:`~accord.release.synthesize.model.Model`, never the records.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from accord.release.synthesize.model import Measured, Model, fit, spec_variance

__all__ = ["JointFit", "estimate", "joint_fit", "weighted_residual"]

# Mirror-descent steps: at most ITERATIONS (private-pgm's AIM runs 1,000 per round), fewer on a
# large model so that steps x work stays under WORK_STEPS (seconds, not minutes). A step's work
# is, per clique, its cells times (3 + the margins summed from the whole clique table): belief
# propagation passes over every cell a few times, and each such margin is a pass to sum and one
# to broadcast its gradient back (the other margins are summed from smaller tables: _plan). On
# the 100k simulated records at epsilon 1 (about 7,000 cells) 200 steps gave 0.0084 / 0.0212
# model TVD2 / TVD3, 1,000 0.0081 / 0.0208, 3,000 0.0081 / 0.0206; on adult at epsilon 4 (one
# 7-column clique of 300,000 cells holding most of 46 measurements) 45 steps gave 0.0172 /
# 0.0466, 254 steps 0.0163 / 0.0455, against the raked 0.0181 / 0.0477.
ITERATIONS = 1000
WORK_STEPS = 250_000_000
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


def _to(msg: np.ndarray, src: tuple[int, ...], dst: tuple[int, ...]) -> np.ndarray:
    """A message over the shared columns, held with size-1 axes in clique ``src``'s layout,
    reshaped to broadcast in clique ``dst``'s layout (columns ascending in both)."""
    shared = [a for a in src if a in dst]
    vals = msg.reshape([msg.shape[src.index(a)] for a in shared])
    return vals.reshape([vals.shape[shared.index(a)] if a in shared else 1 for a in dst])


def _marginals(tree: _Tree, theta: list[np.ndarray], total: float) -> list[np.ndarray]:
    """Each clique's marginal (counts summing to ``total``) of the model with log-potentials
    ``theta``: exact belief propagation on the junction tree (one pass up, one down).

    In probability space (one exponential per clique and pass, not one per message: the fit's
    main cost), each potential scaled by its maximum and each message by its sum, so nothing
    overflows; the scales cancel when a clique's belief is normalised.
    """
    n = len(tree.cliques)
    up: list[np.ndarray] = [np.ones(1)] * n  # message from a clique to its parent
    belief = [np.exp(t - t.max()) for t in theta]
    for i in reversed(range(n)):
        p = tree.parent[i]
        if p >= 0:
            c = tree.cliques[i]
            msg = _keep(belief[i], _axes(c, tree.sep[i]))
            up[i] = msg / msg.sum()
            belief[p] = belief[p] * _to(up[i], c, tree.cliques[p])
    for i in range(n):
        p = tree.parent[i]
        if p >= 0:
            c, pc = tree.cliques[i], tree.cliques[p]
            down = _to(_keep(belief[p], _axes(pc, tree.sep[i])), pc, c)
            sent = up[i]
            # The parent's belief includes this clique's own message: divide it out.
            msg = np.divide(down, sent, out=np.zeros_like(down), where=sent > 0)
            belief[i] = belief[i] * (msg / msg.sum())
    return [total * b / b.sum() for b in belief]


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


@dataclass(frozen=True)
class _Plan:
    """How each clique's measured margins are summed: node 0 is the clique's table, every other
    node a margin summed from an earlier, larger node (``(axes, source)``), so a margin is summed
    from the smallest table that holds it rather than from the whole clique each time."""

    nodes: tuple[tuple[tuple[tuple[int, ...], int], ...], ...]  # per clique
    node_of: tuple[int, ...]  # per term: its node in its clique


def _plan(terms: list[_Term], shapes: list[tuple[int, ...]]) -> _Plan:
    nodes: list[list[tuple[tuple[int, ...], int]]] = [[(tuple(range(len(sh))), -1)]
                                                      for sh in shapes]

    def node(c: int, axes: tuple[int, ...]) -> int:
        have = nodes[c]
        for k, (a, _) in enumerate(have):
            if a == axes:
                return k
        shape = shapes[c]
        src = min((k for k, (a, _) in enumerate(have) if set(axes) <= set(a)),
                  key=lambda k: math.prod(shape[i] for i in have[k][0]))
        extra = [i for i in have[src][0] if i not in axes]
        if len(extra) >= 2:
            # Sum the largest column out first, into a table other margins can start from: on
            # adult at epsilon 4 one 7-column clique of 300,000 cells held most of 46
            # measurements, and summing each from the whole clique was most of the fit's time.
            big = max(extra, key=lambda i: (shape[i], i))
            src = node(c, tuple(i for i in have[src][0] if i != big))
        have.append((axes, src))
        return len(have) - 1

    order = sorted(range(len(terms)), key=lambda i: -math.prod(
        shapes[terms[i].clique][a] for a in terms[i].axes))
    node_of = [0] * len(terms)
    for i in order:
        node_of[i] = node(terms[i].clique, terms[i].axes)
    return _Plan(tuple(tuple(n) for n in nodes), tuple(node_of))


def _loss(terms: list[_Term], plan: _Plan, mu: list[np.ndarray], grad: bool
          ) -> tuple[float, list[np.ndarray] | None]:
    tables = []
    for c, nodes in enumerate(plan.nodes):
        tabs = [mu[c]]
        for axes, src in nodes[1:]:
            tabs.append(_keep(tabs[src], axes))
        tables.append(tabs)
    loss = 0.0
    acc: list[list[np.ndarray | None]] = [[None] * len(n) for n in plan.nodes]
    for t, k in zip(terms, plan.node_of, strict=True):
        r = tables[t.clique][k] - t.target
        wr = r * t.weight
        loss += 0.5 * float((r * wr).sum())
        if grad:
            prev = acc[t.clique][k]
            acc[t.clique][k] = wr if prev is None else prev + wr
    if not grad:
        return loss, None
    g = []
    for c, nodes in enumerate(plan.nodes):
        # Each node's gradient flows back to the node it was summed from (a broadcast), so
        # the clique's table receives one broadcast per node summed from it directly.
        for k in range(len(nodes) - 1, 0, -1):
            part = acc[c][k]
            if part is not None:
                src = nodes[k][1]
                prev = acc[c][src]
                acc[c][src] = part if prev is None else prev + part
        total = acc[c][0]
        g.append(np.zeros_like(mu[c]) if total is None
                 else np.broadcast_to(total, mu[c].shape).copy())
    return loss, g


def weighted_residual(measured: Measured, model: Model) -> float:
    """The loss a joint fit minimises, for any model of ``measured`` (tests compare fits)."""
    tree = _tree(model.cliques)
    theta = _warm(tree, model)
    terms = _terms(measured, tree.cliques)
    plan = _plan(terms, [t.shape for t in model.tables])
    return _loss(terms, plan, _marginals(tree, theta, model.total), False)[0]


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


def steps(measured: Measured, model: Model) -> int:
    """How many mirror-descent steps a model of this size gets (:data:`WORK_STEPS`)."""
    plan = _plan(_terms(measured, model.cliques), [t.shape for t in model.tables])
    work = sum(t.size * (3 + sum(1 for _, src in nodes if src == 0))
               for t, nodes in zip(model.tables, plan.nodes, strict=True))
    return max(1, min(ITERATIONS, WORK_STEPS // max(work, 1)))


def estimate(measured: Measured) -> Model:
    """The released model: raked (:func:`model.fit`), then fitted jointly to every measurement."""
    start = fit(measured)
    return joint_fit(measured, start).model


def joint_fit(measured: Measured, start: Model, iterations: int | None = None) -> JointFit:
    """Refine ``start`` (the raked model) to the weighted least-squares fit of all measurements.

    Same cliques, order and total as ``start``; the result's clique tables are consistent
    marginals, so :func:`model.sample` and :func:`aim.model_marginal` read it unchanged.
    ``iterations`` defaults to :func:`steps`; with 0 the result is ``start`` itself.
    """
    iterations = steps(measured, start) if iterations is None else iterations
    if iterations <= 0:
        return JointFit(start, math.nan, math.nan, 0)
    tree = _tree(start.cliques)
    terms = _terms(measured, tree.cliques)
    total = start.total
    theta = _warm(tree, start)
    plan = _plan(terms, [t.shape for t in start.tables])
    mu = _marginals(tree, theta, total)
    loss, grad = _loss(terms, plan, mu, True)
    first = loss
    # Step size as private-pgm: 1 / total^2 to start, halved until the Armijo condition holds;
    # doubled before a step only when the step before it was taken at its first trial
    # (private-pgm doubles before every step: two belief propagations a step, nearly always, the
    # first trial failing; this way about 1.5, to the same loss).
    alpha = 1.0 / total ** 2
    grow = True
    done = 0
    while done < iterations:
        assert grad is not None
        if grow:
            alpha *= 2.0
        grow = True
        for _ in range(25):
            new_theta = [t - alpha * g for t, g in zip(theta, grad, strict=True)]
            new_mu = _marginals(tree, new_theta, total)
            new_loss, new_grad = _loss(terms, plan, new_mu, True)
            gain = 0.5 * alpha * sum(float((g * (m - n)).sum())
                                     for g, m, n in zip(grad, mu, new_mu, strict=True))
            if loss - new_loss >= gain:
                break
            alpha *= 0.5
            grow = False
        else:
            break  # no step decreases the loss: at the optimum to numerical precision
        theta, mu, loss, grad = new_theta, new_mu, new_loss, new_grad
        done += 1
    tables = tuple(m / m.sum() for m in mu)
    model = Model(start.columns, start.levels, start.groups, start.within, start.cliques,
                  tables, total)
    return JointFit(model, first, loss, done)
