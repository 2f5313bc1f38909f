"""Noise on integer count vectors, drawn by OpenDP, and the accounting that goes with it.

Two mechanisms, both from OpenDP (never hand-written noise):

* ``gaussian``: OpenDP's discrete Gaussian on integers, accounted under zero-concentrated DP
  (zCDP): a vector query whose L2 sensitivity is ``D`` costs ``rho = D**2 / (2 * scale**2)``.
* ``laplace``: OpenDP's discrete Laplace on integers, pure epsilon-DP: cost ``D1 / scale``.

Composition rule used everywhere in Accord: zCDP, where costs (rho) add up. A pure epsilon-DP
release costs ``rho = epsilon**2 / 2`` (Bun & Steinke 2016, Prop. 1.4). A (epsilon, delta) target is
turned into rho with ``epsilon = rho + 2 * sqrt(rho * ln(1/delta))`` (Bun & Steinke, Prop. 1.3),
which is an upper bound on the true epsilon, so the conversion can only over-state the loss.

Reproducible noise exists only for tests: ``test_seed`` switches to a seeded numpy sampler of the
same distribution (floating-point inverse-CDF, NOT private). Normal runs never pass it, so noise
comes from OpenDP's cryptographically seeded OS randomness.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

import numpy as np
import opendp.prelude as dp

from accord.errors import ReleaseRefused
from accord.release.dp.params import check_delta, check_epsilon

dp.enable_features("contrib")

Mechanism = Literal["gaussian", "laplace"]
MECHANISMS: tuple[Mechanism, ...] = ("gaussian", "laplace")
Z95 = 1.959963984540054


def rho_from_epsilon_delta(epsilon: float, delta: float) -> float:
    """The largest rho whose zCDP guarantee implies (epsilon, delta)-DP (Bun & Steinke Prop. 1.3)."""
    # the shared validator: finite and in range, else exit 2 with the allowed range
    epsilon = check_epsilon(epsilon)
    delta = check_delta(delta)
    log_term = math.log(1.0 / delta)
    return (math.sqrt(log_term + epsilon) - math.sqrt(log_term)) ** 2


def epsilon_from_rho(rho: float, delta: float) -> float:
    """The (epsilon, delta) a rho-zCDP guarantee implies (the same bound, solved the other way)."""
    if rho <= 0:
        return 0.0
    return rho + 2.0 * math.sqrt(rho * math.log(1.0 / delta))


@lru_cache(maxsize=256)
def _measurement(kind: Mechanism, scale: float) -> dp.Measurement:
    space = dp.vector_domain(dp.atom_domain(T=int))
    if kind == "gaussian":
        return dp.m.make_gaussian(space, dp.l2_distance(T=int), scale=scale)
    return dp.m.make_laplace(space, dp.l1_distance(T=int), scale=scale)


@dataclass(frozen=True)
class NoiseSpec:
    """One noisy query group: the mechanism, its scale and the group's sensitivities.

    ``l1`` and ``l2_sq`` are the L1 sensitivity and the squared L2 sensitivity of the count vector
    when one person is added or removed (after contribution bounding).
    """

    kind: Mechanism
    scale: float
    l1: int
    l2_sq: int

    def cost_rho(self) -> float:
        """Privacy cost in zCDP rho, computed by OpenDP's own privacy map."""
        meas = _measurement(self.kind, self.scale)
        if self.kind == "gaussian":
            # OpenDP's integer L2 metric takes an integer distance; the Gaussian map is exactly
            # quadratic in it, so the cost at sqrt(l2_sq) is l2_sq times the cost at 1.
            return float(meas.map(1)) * self.l2_sq
        eps = float(meas.map(self.l1))
        return eps * eps / 2.0

    def cost_epsilon_pure(self) -> float:
        """Pure epsilon (Laplace only)."""
        if self.kind != "laplace":
            raise ValueError("pure epsilon exists only for the Laplace mechanism")
        return float(_measurement(self.kind, self.scale).map(self.l1))

    def variance(self) -> float:
        return noise_variance(self.kind, self.scale)

    def moe95(self) -> float:
        """Half-width of the central 95 % interval of one cell's raw noise (exact, discrete)."""
        return noise_quantile(self.kind, self.scale, 0.95)


def _support(kind: Mechanism, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """Support and probabilities of the discrete noise, truncated where the tail is < 1e-16."""
    if kind == "gaussian":
        half = math.ceil(scale * 9.0) + 2
        x = np.arange(-half, half + 1)
        w = np.exp(-(x.astype(float) ** 2) / (2.0 * scale * scale))
    else:
        half = math.ceil(scale * 37.0) + 2
        x = np.arange(-half, half + 1)
        w = np.exp(-np.abs(x).astype(float) / scale)
    return x, w / w.sum()


def noise_pmf(kind: Mechanism, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """The probability mass function of the noise OpenDP adds (for tests and error margins)."""
    return _support(kind, scale)


def noise_variance(kind: Mechanism, scale: float) -> float:
    x, p = _support(kind, scale)
    return float(np.sum(p * x.astype(float) ** 2))


def noise_quantile(kind: Mechanism, scale: float, level: float) -> float:
    """Smallest k with P(|noise| <= k) >= level."""
    x, p = _support(kind, scale)
    absx = np.abs(x)
    order = np.argsort(absx, kind="stable")
    cdf = np.cumsum(p[order])
    idx = int(np.searchsorted(cdf, level - 1e-12))
    return float(absx[order][min(idx, len(order) - 1)])


def add_noise(counts: np.ndarray, spec: NoiseSpec, test_seed: int | None = None) -> np.ndarray:
    """Return ``counts`` plus noise. Only tests pass ``test_seed`` (not private, reproducible)."""
    flat = np.asarray(counts, dtype=np.int64).ravel()
    if flat.size and (flat.max(initial=0) > 2**31 - 1):
        raise ReleaseRefused("a count exceeds 2^31; cannot add 32-bit integer noise")
    if test_seed is not None:
        x, p = _support(spec.kind, spec.scale)
        noise = np.random.default_rng(test_seed).choice(x, size=flat.size, p=p)
        return (flat + noise).reshape(np.shape(counts))
    noisy = _measurement(spec.kind, spec.scale)([int(v) for v in flat])
    return np.asarray(noisy, dtype=np.int64).reshape(np.shape(counts))


def calibrate(kind: Mechanism, l1: int, l2_sq: int, budget: float) -> NoiseSpec:
    """The smallest-noise spec whose cost fits ``budget`` (checked with OpenDP's own map).

    ``budget`` is zCDP rho for the Gaussian mechanism and pure epsilon for Laplace.
    """
    if budget <= 0:
        raise ReleaseRefused("no privacy budget left for this query", hint="raise --epsilon")
    scale = math.sqrt(l2_sq / (2.0 * budget)) if kind == "gaussian" else l1 / budget
    spec = NoiseSpec(kind, scale, l1, l2_sq)

    def cost(s: NoiseSpec) -> float:
        return s.cost_rho() if kind == "gaussian" else s.cost_epsilon_pure()

    # Float rounding in the closed forms can land a hair over budget; nudge the scale up until
    # OpenDP's map agrees that the cost fits.
    while cost(spec) > budget:
        spec = NoiseSpec(kind, spec.scale * (1 + 1e-9), l1, l2_sq)
    return spec
