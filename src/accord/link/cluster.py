"""Clustering linked records across three or more partners into persons.

Greedy, best edge first, with two constraints: a cluster never holds two records of one partner
unless they carry the same person pseudonym (the partner's own statement that they are one
person); and, when a ``compatible`` check is given, two clusters are joined only if every pair of
their records from different partners is compatible (the hub refuses when the model finds such a
pair clearly two people, e.g. birth dates that disagree), so one false link between two partners
cannot chain a third partner's record into the wrong person. Why not networkx connected
components: components chain (A1-B1-A2) and would join two records the partner itself keeps
apart.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ClusterRecord:
    partner: str
    pseudonym: str | None  # the partner's person pseudonym, if any


def cluster_records(records: Sequence[ClusterRecord], edges_i: np.ndarray, edges_j: np.ndarray,
                    scores: np.ndarray,
                    compatible: Callable[[int, int], bool] | None = None) -> np.ndarray:
    """Cluster label (0..k-1) per record; edges are record index pairs with scores.

    ``compatible(i, j)``, if given, is asked about records of different partners that a merge
    would put in one person without an edge between them.
    """
    n = len(records)
    parent = list(range(n))
    groups: list[list[int]] = [[i] for i in range(n)]
    linked = {(min(int(a), int(b)), max(int(a), int(b))) for a, b in zip(edges_i, edges_j,
                                                                       strict=True)}

    def consistent(gx: list[int], gy: list[int]) -> bool:
        if compatible is None:
            return True
        for x in gx:
            for y in gy:
                if records[x].partner == records[y].partner:
                    continue
                if (min(x, y), max(x, y)) not in linked and not compatible(x, y):
                    return False
        return True
    # per root: partner -> the pseudonym (or a record-unique marker) it holds for that partner
    members: list[dict[str, str]] = [
        {r.partner: r.pseudonym if r.pseudonym else f"\0{i}"} for i, r in enumerate(records)
    ]

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    def union(x: int, y: int, check: bool = True) -> bool:
        rx, ry = find(x), find(y)
        if rx == ry:
            return True
        mx, my = members[rx], members[ry]
        if any(p in mx and mx[p] != v for p, v in my.items()):
            return False
        if check and not consistent(groups[rx], groups[ry]):
            return False
        if len(mx) < len(my):
            rx, ry, mx, my = ry, rx, my, mx
        parent[ry] = rx
        mx.update(my)
        members[ry] = {}
        groups[rx].extend(groups[ry])
        groups[ry] = []
        return True

    # Records of one partner sharing a pseudonym are one person by the partner's own key.
    first: dict[tuple[str, str], int] = {}
    for i, r in enumerate(records):
        if r.pseudonym:
            k = (r.partner, r.pseudonym)
            if k in first:
                union(first[k], i, check=False)
            else:
                first[k] = i
    for k in np.argsort(-scores, kind="stable").tolist():
        union(int(edges_i[k]), int(edges_j[k]))
    roots = np.array([find(i) for i in range(n)], dtype=np.int64)
    _, labels = np.unique(roots, return_inverse=True)
    return labels.astype(np.int64)
