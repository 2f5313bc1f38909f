"""Overlap between partners: how many people each combination of partners served.

Published as the additive table of partner combinations (each person in exactly one), with each
partner's total and the grand total as margins, so the same suppression rules and audit apply.
Pairwise overlaps are sums of published combinations, so they add no information.
"""

from __future__ import annotations

import itertools

import numpy as np

from accord.release.suppression import Equation, SuppressionRules, suppress_cells
from accord.research.specs import Dim
from accord.research.stats import StatTable
from accord.store import Store

# Up to this many partners every combination is listed (zeros included), so that the list of
# rows does not itself reveal which rare combinations occur.
_ALL_COMBINATIONS_UP_TO = 4

_PATTERNS_SQL = (
    "SELECT pattern, count(*) AS n FROM ("
    " SELECT list_sort(list_distinct(list(partner))) AS pattern FROM ("
    "  SELECT coalesce(CAST(p.person_id AS VARCHAR), r.partner || ':' || r.record_key) AS pid,"
    "         r.partner FROM records r LEFT JOIN persons p"
    "  ON p.partner = r.partner AND p.record_key = r.record_key)"
    " GROUP BY pid) GROUP BY pattern"
)


def _combinations(partners: list[str], observed: set[tuple[str, ...]]) -> list[tuple[str, ...]]:
    if len(partners) > _ALL_COMBINATIONS_UP_TO:
        return sorted(observed, key=lambda p: (len(p), p))
    return [c for k in range(1, len(partners) + 1) for c in itertools.combinations(partners, k)]


def overlap_table(store: Store, rules: SuppressionRules) -> StatTable:
    counts = {tuple(row["pattern"]): int(row["n"])
              for row in store.query(_PATTERNS_SQL).to_pylist()}
    partners = sorted({p for pattern in counts for p in pattern})
    combos = _combinations(partners, set(counts))
    n = len(combos)
    # Cells: combinations, then one total per partner, then the grand total.
    values = [counts.get(c, 0) for c in combos]
    values += [sum(v for c, v in zip(combos, values, strict=True) if p in c) for p in partners]
    values.append(sum(values[:n]))
    grand = len(values) - 1
    equations: list[Equation] = [
        (tuple(i for i, c in enumerate(combos) if p in c), n + j) for j, p in enumerate(partners)
    ]
    equations.append((tuple(range(n)), grand))
    is_total = np.arange(len(values)) >= n
    res = suppress_cells(values, equations, rules, is_total=is_total)
    shown: list[int | None] = [None if res.mask[i] else int(v) for i, v in enumerate(res.values)]

    extra: list[tuple[str, int | None]] = [
        (f"All people served by {p}", shown[n + j]) for j, p in enumerate(partners)
    ]
    for a, b in itertools.combinations(partners, 2):
        parts = [shown[i] for i, c in enumerate(combos) if a in c and b in c]
        pair = None if any(v is None for v in parts) else sum(v for v in parts if v is not None)
        extra.append((f"People served by both {a} and {b}", pair))
    dim = Dim("partners", "Partners that served the person", tuple("+".join(c) for c in combos),
              tuple(" and ".join(c) + (" only" if len(c) < len(partners) else "") for c in combos))
    notes = (
        "Each person appears in exactly one row: the set of partners that registered them, "
        "as found by linkage.",
        "Partner totals are people, not records; a pair overlap is the sum of the rows that "
        "contain both partners.",
        f"{int(res.mask.sum())} of {len(values)} cells suppressed (threshold {rules.threshold}).",
    )
    return StatTable("partner_overlap", "People by the partners that served them", (dim,),
                     "persons", [*shown[:n], shown[grand]], int(res.mask.sum()), len(values),
                     notes, tuple(extra))
