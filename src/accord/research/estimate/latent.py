"""A Bayesian latent-class estimate for heterogeneous capture (LCMCR-like).

Log-linear models with two-list interactions handle lists that depend on each other, but not
people who differ in how catchable they are by every list at once. Manrique-Vallier (2016,
"Bayesian population size estimation using Dirichlet process mixtures", Biometrics; the R
package LCMCR, used by HRDAG) models such heterogeneity as latent classes: within class k, list
j catches a person with probability lambda_jk, independently across lists; class shares follow
a truncated stick-breaking (Dirichlet process) prior; the population size N has the prior
p(N) ∝ 1/N. The Gibbs sampler below is that model's:

1. class counts per observed capture history: multinomial with probabilities
   ∝ pi_k prod_j lambda_jk^x_j (1 - lambda_jk)^(1 - x_j); the n0 = N - n unseen people (all-zero
   history) likewise;
2. lambda_jk ~ Beta(1 + caught_jk, 1 + members_k - caught_jk);
3. stick-breaking V_k ~ Beta(1 + m_k, alpha + sum_{l>k} m_l), alpha ~ Gamma(a + K - 1,
   b - sum log(1 - V_k));
4. n0 ~ NegativeBinomial(n, 1 - p0), p0 = sum_k pi_k prod_j (1 - lambda_jk): the full
   conditional of N - n under p(N) ∝ 1/N.

Everything works on counts per history (the sampler never needs individual people), so a
draw costs O(cells x classes). Written by hand because LCMCR is an R/C++ package with no Python
port, and a Gibbs sampler on counts is a few dozen lines of numpy. R is not installable here,
so the figures are checked against simulated truth (``tests/test_mse_truth.py``), not LCMCR.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from accord.research.estimate.table import CaptureTable

K_MAX = 10  # truncation of the stick-breaking prior (LCMCR's default is 10 as well)
ALPHA_PRIOR = (0.25, 0.25)  # Gamma(a, b) on the concentration, LCMCR's default


@dataclass(frozen=True)
class LatentClassResult:
    total: float  # posterior median of N
    interval: tuple[float, float]
    level: float
    draws: int
    burn_in: int
    classes: float  # posterior mean number of occupied classes

    def to_dict(self) -> dict[str, object]:
        return {
            "method": "latent-class (LCMCR-like Gibbs sampler, Manrique-Vallier 2016)",
            "total": round(self.total, 1),
            "interval": [round(self.interval[0], 1), round(self.interval[1], 1)],
            "level": self.level, "draws": self.draws, "burn_in": self.burn_in,
            "occupied_classes": round(self.classes, 2),
        }


def latent_class_estimate(table: CaptureTable, draws: int = 2000, burn_in: int = 1000,
                          seed: int = 20130101, level: float = 0.95, k_max: int = K_MAX
                          ) -> LatentClassResult:
    """Posterior median and credible interval of the population size."""
    rng = np.random.default_rng(seed)
    x = table.cells.astype(np.float64)  # (C, J)
    y = table.counts.astype(np.int64)  # (C,)
    n = int(y.sum())
    lam = rng.beta(1.0, 1.0, (x.shape[1], k_max))  # (J, K)
    pi = np.full(k_max, 1.0 / k_max)
    alpha = 1.0
    n0 = n // 2
    out = np.empty(draws)
    occupied = np.empty(draws)
    for it in range(burn_in + draws):
        loglam, log1m = np.log(lam), np.log1p(-lam)
        logp = np.log(pi)[None] + x @ loglam + (1 - x) @ log1m  # (C, K)
        prob = np.exp(logp - logp.max(axis=1, keepdims=True))
        prob /= prob.sum(axis=1, keepdims=True)
        z = rng.multinomial(y, prob)  # (C, K): one multinomial per history, broadcast
        p_zero = pi * np.exp(log1m.sum(axis=0))  # (K,) joint of class k and no capture
        z0 = rng.multinomial(n0, p_zero / p_zero.sum())
        members = z.sum(axis=0) + z0
        caught = x.T @ z  # (J, K)
        lam = rng.beta(1.0 + caught, 1.0 + members[None] - caught)
        lam = np.clip(lam, 1e-10, 1 - 1e-10)
        tail = np.concatenate([np.cumsum(members[::-1])[::-1][1:], [0]])
        v = rng.beta(1.0 + members[:-1], alpha + tail[:-1])
        v = np.clip(v, 1e-12, 1 - 1e-12)
        pi = np.concatenate([v, [1.0]]) * np.concatenate([[1.0], np.cumprod(1 - v)])
        alpha = rng.gamma(ALPHA_PRIOR[0] + k_max - 1,
                          1.0 / (ALPHA_PRIOR[1] - np.log1p(-v).sum()))
        p0 = float(p_zero.sum())
        n0 = int(rng.negative_binomial(n, max(1.0 - p0, 1e-12)))
        if it >= burn_in:
            out[it - burn_in] = n + n0
            occupied[it - burn_in] = (members > 0).sum()
    q = (1 - level) / 2
    lo, hi = np.quantile(out, [q, 1 - q])
    return LatentClassResult(float(np.median(out)), (float(lo), float(hi)), level, draws,
                             burn_in, float(occupied.mean()))
