"""Precision, recall and F1 of linked pairs against known true pairs."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class PairScores:
    true_positives: int
    false_positives: int
    false_negatives: int

    @property
    def precision(self) -> float:
        d = self.true_positives + self.false_positives
        return self.true_positives / d if d else 1.0

    @property
    def recall(self) -> float:
        d = self.true_positives + self.false_negatives
        return self.true_positives / d if d else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    def as_dict(self) -> dict[str, float | int]:
        return {"precision": round(self.precision, 5), "recall": round(self.recall, 5),
                "f1": round(self.f1, 5), "true_positives": self.true_positives,
                "false_positives": self.false_positives,
                "false_negatives": self.false_negatives}


def pair_scores(predicted: Iterable[tuple[str, str]],
                truth: Iterable[tuple[str, str]]) -> PairScores:
    """Compare unordered pairs (order inside a pair does not matter)."""
    pred = {tuple(sorted(p)) for p in predicted}
    true = {tuple(sorted(p)) for p in truth}
    tp = len(pred & true)
    return PairScores(tp, len(pred) - tp, len(true) - tp)


def pairs_from_clusters(members: dict[str, list[str]]) -> set[tuple[str, str]]:
    """All within-cluster pairs of record ids (cluster id -> record ids)."""
    out: set[tuple[str, str]] = set()
    for recs in members.values():
        rs = sorted(recs)
        for i in range(len(rs)):
            for j in range(i + 1, len(rs)):
                out.add((rs[i], rs[j]))
    return out
