"""One-to-one assignment.

(Frequency adjustment of name agreement is part of the model now: `fellegi_sunter.pair_log_odds`
divides a pair's odds by the evidence for its records' other candidates, which is how many
records share a common name, read from the linkage itself.)
"""

from __future__ import annotations

import numpy as np


def greedy_one_to_one(ia: np.ndarray, ib: np.ndarray, score: np.ndarray) -> np.ndarray:
    """Indices of the pairs kept when each record may be used once, best score first.

    Greedy by score is anonlink's solver too; an optimal assignment (Hungarian) gains little on
    linkage scores, which are nearly always unambiguous at the top, and costs far more.
    """
    from accord.link import kernels  # numba: loaded when first needed

    if len(ia) == 0:
        return np.empty(0, dtype=np.int64)
    order = np.argsort(-score, kind="stable")
    ia = np.ascontiguousarray(ia, dtype=np.int64)
    ib = np.ascontiguousarray(ib, dtype=np.int64)
    return kernels.greedy_assign(ia, ib, order, int(ia.max()) + 1, int(ib.max()) + 1)

