"""Fellegi-Sunter scoring with weights estimated without labels.

u-probabilities (chance agreement) come from random record pairs, which are almost all
non-matches (Splink's `estimate_u_using_random_sampling`); m-probabilities and the share of
matches among candidates come from expectation-maximisation over the candidate pairs, with u held
fixed. Why by hand: Splink does this on clear text through SQL; here the comparison vectors are
small integer matrices already in memory, and the EM is a few vectorised lines.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

_EPS = 1e-6


@dataclass(frozen=True)
class FSModel:
    m: list[np.ndarray]  # per field, probability of each level among matches (level 0 unused)
    u: list[np.ndarray]  # per field, among non-matches
    prior: float  # share of matches among candidate pairs
    iterations: int
    converged: bool
    labels: list[tuple[str, ...]] = field(default_factory=list)

    def weights(self) -> list[np.ndarray]:
        """log2(m/u) per field and level; level 0 (null) weighs 0."""
        out = []
        for m, u in zip(self.m, self.u, strict=True):
            w = np.log2(np.maximum(m, _EPS) / np.maximum(u, _EPS))
            w[0] = 0.0
            out.append(w)
        return out

    def summary(self) -> dict[str, object]:
        return {
            "prior": self.prior,
            "iterations": self.iterations,
            "converged": self.converged,
            "fields": [
                {"levels": list(lab), "m": [round(float(x), 5) for x in m],
                 "u": [round(float(x), 6) for x in u]}
                for lab, m, u in zip(self.labels, self.m, self.u, strict=True)
            ],
        }


def level_counts(gamma: np.ndarray, n_levels: list[int]) -> list[np.ndarray]:
    return [np.bincount(gamma[:, j], minlength=k).astype(np.float64)
            for j, k in enumerate(n_levels)]


def estimate_u(gamma_random: np.ndarray, n_levels: list[int]) -> list[np.ndarray]:
    """Level frequencies among random pairs (add-one smoothing; level 0 excluded)."""
    out = []
    for counts in level_counts(gamma_random, n_levels):
        c = counts.copy()
        c[0] = 0.0
        c[1:] += 1.0
        out.append(c / c.sum())
    return out


def _initial_m(n_levels: list[int]) -> list[np.ndarray]:
    out = []
    for k in n_levels:
        m = np.zeros(k)
        # Matches mostly agree: geometric decay from the best level.
        m[1:] = 0.5 ** np.arange(k - 1) * 4.0 ** -np.arange(k - 1)
        m[1:] /= m[1:].sum()
        out.append(m)
    return out


def score(gamma: np.ndarray, weights: list[np.ndarray]) -> np.ndarray:
    """Sum of the fields' log2 Bayes factors (the match weight without prior)."""
    s = np.zeros(len(gamma), dtype=np.float64)
    for j, w in enumerate(weights):
        s += w[gamma[:, j]]
    return s


def _grouping(idx: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sort order, group starts and group owners of record indices (for per-record maxima)."""
    order = np.argsort(idx, kind="stable")
    sidx = idx[order]
    starts = np.flatnonzero(np.r_[True, sidx[1:] != sidx[:-1]]) if len(sidx) else np.empty(0,
                                                                                           np.int64)
    return order, starts, sidx[starts]


def _normalised(s: np.ndarray, fallback: np.ndarray) -> np.ndarray:
    s = s.astype(np.float64)
    s[0] = 0.0
    tot = s.sum()
    return s / tot if tot > 0 else fallback


def fit_em(gamma: np.ndarray, u: list[np.ndarray], n_levels: list[int], *, update_u: bool = True,
           prior: float = 0.1, max_prior: float = 0.5, max_iter: int = 60, tol: float = 1e-5,
           labels: list[tuple[str, ...]] | None = None,
           pairs: tuple[np.ndarray, np.ndarray] | None = None) -> FSModel:
    """EM for m (and u) and the match share.

    ``max_prior`` bounds the share (one-to-one linkage has at most min(|A|, |B|) matches among
    the candidates). With ``pairs`` (the record indices of each row), each E-step counts a pair
    towards the match class only if it is the best-scoring pair of both its records: a record is
    one person, so its second-best candidates are non-matches. Without that, on small or
    homogeneous data EM settles on a class such as "same citizenship and similar names", which
    holds many pairs per record and so cannot be the match class.
    """
    m = _initial_m(n_levels)
    hi = min(max(max_prior, 1e-6), 1 - 1e-9)
    lam = min(max(prior, 1e-6), hi)
    if len(gamma) == 0:
        return FSModel(m, u, lam, 0, False, labels or [])
    it, converged = 0, False
    # Weights are computed per distinct comparison vector, then spread to the pairs.
    code = np.zeros(len(gamma), dtype=np.int64)
    for j, k in enumerate(n_levels):
        code = code * k + gamma[:, j]
    _, first, inverse, counts = np.unique(code, return_index=True, return_inverse=True,
                                          return_counts=True)
    patterns = gamma[first]
    groups = None if pairs is None else [_grouping(idx) for idx in pairs]
    for it in range(1, max_iter + 1):
        model = FSModel(m, u, lam, it, False)
        w = score(patterns, model.weights()) + np.log2(lam / (1 - lam))
        p_pat = 1.0 / (1.0 + np.exp2(-np.clip(w, -60, 60)))
        if groups is not None:
            p = p_pat[inverse]
            wp = w[inverse]
            for order, starts, _ in groups:
                best = np.maximum.reduceat(wp[order], starts)
                keep = np.empty(len(wp), dtype=bool)
                keep[order] = wp[order] >= np.repeat(best, np.diff(np.append(starts, len(wp))))
                p = np.where(keep, p, 0.0)
            pc = np.bincount(inverse, weights=p, minlength=len(patterns))
        else:
            pc = p_pat * counts
        qc = counts - pc
        new_m, new_u = [], []
        for j, k in enumerate(n_levels):
            new_m.append(_normalised(np.bincount(patterns[:, j], weights=pc, minlength=k), m[j]))
            if update_u:
                new_u.append(_normalised(np.bincount(patterns[:, j], weights=qc, minlength=k),
                                         u[j]))
        if update_u:
            u = new_u
        new_lam = float(pc.sum() / counts.sum())
        delta = max(float(np.abs(a - b).max()) for a, b in zip(new_m, m, strict=True))
        delta = max(delta, abs(new_lam - lam))
        m, lam = new_m, min(max(new_lam, 1e-9), hi)
        if delta < tol:
            converged = True
            break
    return FSModel(m, u, lam, it, converged, labels or [])


def probability(weight: np.ndarray, prior: float) -> np.ndarray:
    w = weight + np.log2(prior / (1 - prior))
    return 1.0 / (1.0 + np.exp2(-np.clip(w, -60, 60)))
