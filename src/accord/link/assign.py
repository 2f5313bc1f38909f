"""One-to-one assignment, the automatic threshold, and frequency adjustment of name agreement."""

from __future__ import annotations

import numpy as np

from accord.link import kernels


def greedy_one_to_one(ia: np.ndarray, ib: np.ndarray, score: np.ndarray) -> np.ndarray:
    """Indices of the pairs kept when each record may be used once, best score first.

    Greedy by score is anonlink's solver too; an optimal assignment (Hungarian) gains little on
    linkage scores, which are nearly always unambiguous at the top, and costs far more.
    """
    if len(ia) == 0:
        return np.empty(0, dtype=np.int64)
    order = np.argsort(-score, kind="stable")
    ia = np.ascontiguousarray(ia, dtype=np.int64)
    ib = np.ascontiguousarray(ib, dtype=np.int64)
    return kernels.greedy_assign(ia, ib, order, int(ia.max()) + 1, int(ib.max()) + 1)


def frequency_adjustment(ia: np.ndarray, ib: np.ndarray, agrees: np.ndarray,
                         lo: float = -4.0, hi: float = 1.0) -> np.ndarray:
    """log2 factor per pair: negative where the agreeing value is common, positive where rare.

    The hub cannot count clear values, and counting equal encodings is exactly the frequency
    attack hardening prevents; so how common a value is is read from the linkage itself: how
    many candidate partners a record agrees with exactly on this field. The adjustment is
    relative to the average, since EM's u-probability already prices the average agreement.
    """
    out = np.zeros(len(ia), dtype=np.float64)
    if not agrees.any():
        return out
    ka = np.bincount(ia[agrees], minlength=int(ia.max()) + 1 if len(ia) else 0)
    kb = np.bincount(ib[agrees], minlength=int(ib.max()) + 1 if len(ib) else 0)
    k = np.maximum(ka[ia[agrees]], kb[ib[agrees]]).astype(np.float64)
    out[agrees] = np.clip(-np.log2(k / k.mean()), lo, hi)
    return out
