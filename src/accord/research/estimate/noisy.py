"""Capture histories under differential privacy: one draw per data version serves every ``--by``.

The issue's attack: seven ``accord estimate --by ...`` releases (sex, case type, sex + case type,
age, ...) each with exact seen counts per stratum, combined by MILP, pinned 53 of 126 small
strata. Here every estimate is post-processing of ONE noisy measurement per data version:

* strata are the fixed public categories of ``STRATA`` (the standard's code lists and age groups,
  a "missing" level included), listed whether empty or not;
* the counts of people per (sex, age group, case type, capture history) are measured with
  OpenDP's discrete Gaussian at every level of aggregation a ``--by`` can ask for (the capture
  histories overall, by each column, by each pair, by all three: 8 query groups, each person in
  one cell of each), paid from the ledger once;
* weighted non-negative least squares makes them one consistent table (``accord.release.dp``),
  rounded to integers; each ``--by`` is a sum of that table, so any number of estimate releases
  of one data version together show nothing beyond the one draw.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import numpy as np

from accord.release.dp.mechanism import add_noise, calibrate
from accord.release.dp.standard_tables import levels_for
from accord.release.dp.tables import MISSING as DP_MISSING
from accord.release.dp.tables import NoisyGroup, NoisyTable, postprocess
from accord.release.dp.tables import TableSpec as DPSpec
from accord.research.estimate.table import histories
from accord.standard import Standard
from accord.store import Store

STRATA: tuple[str, ...] = ("sex", "age_group", "case_type")
HISTORY = "capture_history"


def strata_levels(standard: Standard) -> list[tuple[str, ...]]:
    return [levels_for(standard, c) for c in STRATA]


def exact_counts(partners: Sequence[str], strata: dict[tuple[str, ...], list[set[str]]],
                 levels: Sequence[tuple[str, ...]], missing_value: str) -> np.ndarray:
    """People per (stratum levels..., capture history). Never leaves this module but into
    :func:`draw`."""
    hist = histories(len(partners))
    index = {tuple(int(v) for v in h): i for i, h in enumerate(hist)}
    pos = {p: i for i, p in enumerate(partners)}
    counts = np.zeros((*(len(lv) for lv in levels), len(hist)), dtype=np.int64)
    for key, people in strata.items():
        at = []
        for value, lv in zip(key, levels, strict=True):
            code = DP_MISSING if value == missing_value or value not in lv else value
            at.append(lv.index(code))
        for seen in people:
            h = [0] * len(partners)
            for p in seen:
                h[pos[p]] = 1
            counts[(*at, index[tuple(h)])] += 1
    return counts


def draw(counts: np.ndarray, levels: Sequence[tuple[str, ...]], n_partners: int, rho: float,
         test_seed: int | None = None) -> dict[str, Any]:
    """Measure every aggregation a ``--by`` can ask for, fit one consistent table, round it."""
    k = len(levels)
    groups_axes = [tuple(sorted((*s, k))) for r in range(k + 1)
                   for s in itertools.combinations(range(k), r)]
    share = rho / len(groups_axes)
    spent = 0.0
    groups = []
    for g_i, axes in enumerate(groups_axes):
        spec = calibrate("gaussian", 1, 1, share)  # one person: one cell of each group
        others = tuple(a for a in range(counts.ndim) if a not in axes)
        exact = counts.sum(axis=others) if others else counts
        seed = None if test_seed is None else test_seed * 7919 + g_i
        groups.append(NoisyGroup(axes, add_noise(np.atleast_1d(exact), spec, seed), spec))
        spent += spec.cost_rho()
    hist_levels = tuple("".join(str(int(v)) for v in h) for h in histories(n_partners))
    all_levels = (*levels, hist_levels)
    table = NoisyTable(DPSpec("capture_histories", (*STRATA, HISTORY)), all_levels,
                       tuple(groups))
    published = postprocess(_noisy_only(table), covariance=False)[0]
    fine = np.zeros(tuple(len(lv) for lv in all_levels), dtype=np.int64)
    for row in published.rows:
        labels = row[: k + 1]
        if any(v == "Total" for v in labels):
            continue
        idx = tuple(all_levels[i].index(str(v)) for i, v in enumerate(labels))
        fine[idx] = int(row[k + 1])  # type: ignore[call-overload]
    return {"rho": spent, "levels": [list(lv) for lv in levels], "values": fine.tolist(),
            "noise_sd": groups[-1].noise.scale}


def _noisy_only(table: NoisyTable) -> Any:
    from accord.release.dp.tables import NoisyRelease

    return NoisyRelease("gaussian", (table,), 0.0, None)


def draw_key(partners: Sequence[str]) -> str:
    return f"estimate:strata={','.join(STRATA)}:lists={','.join(partners)}"


def by_strata(payload: dict[str, Any], by: Sequence[str]) -> dict[tuple[str, ...], np.ndarray]:
    """History counts of every stratum of ``by`` (all fixed levels, empty ones included)."""
    fine = np.asarray(payload["values"], dtype=np.int64)
    keep = [STRATA.index(c) for c in by]
    drop = tuple(i for i in range(len(STRATA)) if i not in keep)
    summed = fine.sum(axis=drop) if drop else fine
    levels = [payload["levels"][i] for i in keep]
    out: dict[tuple[str, ...], np.ndarray] = {}
    for combo in itertools.product(*(range(len(lv)) for lv in levels)):
        key = tuple(levels[i][j] for i, j in enumerate(combo))
        out[key] = np.asarray(summed[combo], dtype=np.int64)
    return out


def ensure_draw(store: Store, partners: Sequence[str],
                strata: dict[tuple[str, ...], list[set[str]]], standard: Standard,
                missing_value: str, rho: float, actor: str,
                test_seed: int | None = None) -> tuple[dict[str, Any], bool]:
    from accord.research.noisy import reuse_or_draw

    levels = strata_levels(standard)

    def make() -> dict[str, Any]:
        counts = exact_counts(partners, strata, levels, missing_value)
        return draw(counts, levels, len(partners), rho, test_seed)

    return reuse_or_draw(store, draw_key(partners), rho, make, actor=actor, kind="dp_estimate",
                         purpose="accord estimate")
