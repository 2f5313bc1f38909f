"""Link: privacy-preserving record linkage of encodings made at the partners (issue 3).

Candidate generation by Hamming LSH, field-level Dice, Fellegi-Sunter scores with EM-estimated
weights, frequency adjustment, rules for defaulted dates, an automatic threshold, one-to-one
assignment between two sources and constrained clustering across several partners.
"""

from accord.link.cluster import ClusterRecord, cluster_records
from accord.link.encodings import EncodedSet, dice
from accord.link.evaluate import PairScores, pair_scores
from accord.link.match import AUTO_THRESHOLD, MatchConfig, MatchResult, match_sets

__all__ = [
    "AUTO_THRESHOLD",
    "ClusterRecord",
    "EncodedSet",
    "MatchConfig",
    "MatchResult",
    "PairScores",
    "cluster_records",
    "dice",
    "match_sets",
    "pair_scores",
]
