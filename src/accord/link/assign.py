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
    order = np.argsort(-score, kind="stable")
    used_a: set[int] = set()
    used_b: set[int] = set()
    keep: list[int] = []
    for k in order.tolist():
        x, y = int(ia[k]), int(ib[k])
        if x in used_a or y in used_b:
            continue
        used_a.add(x)
        used_b.add(y)
        keep.append(k)
    return np.asarray(keep, dtype=np.int64)
