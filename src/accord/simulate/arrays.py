"""Small array helpers shared by the simulator modules."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa

IntArray = npt.NDArray[np.int64]


def take_strings(values: pa.Array, idx: IntArray) -> pa.Array:
    """``values[idx]`` with null where ``idx`` is negative."""
    safe = pa.array(np.maximum(idx, 0), mask=idx < 0)
    return values.take(safe)


def categorical(rng: np.random.Generator, probs: Any, n: int) -> IntArray:
    """n draws from a categorical distribution (renormalised)."""
    p = np.asarray(probs, dtype=float)
    return rng.choice(len(p), size=n, p=p / p.sum()).astype(np.int64)


def rowwise_categorical(rng: np.random.Generator, prob_rows: npt.NDArray[np.float64]) -> IntArray:
    """One draw per row of a (n, k) matrix of (unnormalised) probabilities."""
    cum = np.cumsum(prob_rows, axis=1)
    u = rng.random(len(prob_rows)) * cum[:, -1]
    return np.minimum((cum < u[:, None]).sum(axis=1), prob_rows.shape[1] - 1).astype(np.int64)
