"""Linking two sets of encodings: candidates, comparison levels, Fellegi-Sunter/EM scores,
frequency adjustment, threshold and one-to-one assignment. The CLI and the hub use this."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Protocol, runtime_checkable

import numpy as np
import pyarrow as pa

from accord.link.assign import greedy_one_to_one
from accord.link.blocking import BlockingConfig, all_pairs, candidate_codes, sorted_unique
from accord.link.comparisons import comparison_levels, comparisons
from accord.link.encodings import EncodedSet
from accord.link.engine import BandEngine
from accord.link.fellegi_sunter import (
    LN2,
    Candidates,
    FSModel,
    fit,
    fit_on,
    pair_log_odds,
    probability,
)
from accord.link.frequency import frequency_split, name_levels
from accord.protect.encoding.files import check_compatible
from accord.protect.encoding.schema import EncodingSchema, FieldKind

# The Bayes decision: a pair is linked when the model, whose share of matches is estimated from
# the data by EM, finds it more likely a match than not.
AUTO_THRESHOLD = 0.5
Progress = Callable[[str], None]


@dataclass(frozen=True)
class MatchConfig:
    threshold: float | None = None  # on the match probability; None = automatic
    blocking: BlockingConfig = field(default_factory=BlockingConfig)
    u_pairs: int = 2_000_000  # random pairs for the u-probabilities (all pairs when fewer)
    # Divide each pair's odds by the evidence for its records' other candidates (the one-to-one
    # constraint and the frequency adjustment of common names; see fellegi_sunter).
    competing_candidates: bool = True
    # Rounds of that correction when scoring (fellegi_sunter.pair_log_odds): more than one
    # lets a group of look-alikes on both sides (a common name with unknown birth dates) share
    # its odds instead of each pair counting the others' competitors as taken.
    competition_rounds: int = 10
    # Weigh the closest name levels by how many look-alikes the pair's records have among the
    # candidates, so that a rare name weighs more than a common one (accord.link.frequency);
    # applied where every pair is compared (exhaustive_below, or --all-pairs).
    name_frequency: bool = True
    exhaustive_below: int = 2_000_000  # compare every pair when |A| x |B| is at most this
    # Random pairs added to the blocked candidates, per record of the larger side. Blocking keeps
    # near misses only; EM, which weighs the fields on the candidates, also needs the clear
    # non-matches an exhaustive comparison would show it (without them it undervalues
    # agreement on common names: FEBRL and migrant-like F1 drop by 2-4 points).
    random_candidates: float = 20.0
    max_random_candidates: int = 4_000_000
    seed: int = 7
    # Where the band work of blocking runs (accord.link.engine): None = threads on this machine.
    engine: BandEngine | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class MatchResult:
    ia: np.ndarray  # indices into A of the linked pairs
    ib: np.ndarray
    score: np.ndarray  # match probability of each linked pair
    weight: np.ndarray  # match weight (log2 odds) of each linked pair
    threshold: float
    automatic: bool
    candidates: int
    model: FSModel
    diagnostics: dict[str, object] = field(default_factory=dict)

    def pairs_table(self, a: EncodedSet, b: EncodedSet) -> pa.Table:
        order = np.argsort(-self.score, kind="stable")
        return pa.table({
            "id_a": pa.array(a.ids[self.ia[order]].tolist(), pa.string()),
            "id_b": pa.array(b.ids[self.ib[order]].tolist(), pa.string()),
            "score": pa.array(np.round(self.score[order], 6), pa.float64()),
        })


def _random_pairs(na: int, nb: int, k: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    if na * nb <= k:
        ia = np.repeat(np.arange(na, dtype=np.int64), nb)
        return ia, np.tile(np.arange(nb, dtype=np.int64), na)
    return (rng.integers(0, na, k, dtype=np.int64), rng.integers(0, nb, k, dtype=np.int64))


def _name_codes(schema: EncodingSchema, config: MatchConfig,
                ) -> tuple[int, tuple[int, ...], tuple[int, ...], tuple[int, ...]] | None:
    """The name field and code fields the look-alike adjustment uses (one name field only),
    and the name levels it counts and splits (`frequency.name_levels`)."""
    names = [j for j, f in enumerate(schema.fields) if f.kind is FieldKind.NAME]
    if not config.name_frequency or len(names) != 1:
        return None
    counted, split = name_levels(schema.fields[names[0]].dice_levels)
    return (names[0], tuple(j for j, f in enumerate(schema.fields) if f.kind is FieldKind.CODE),
            counted, split)


def _independent(schema: EncodingSchema) -> tuple[int, ...]:
    return tuple(j for j, f in enumerate(schema.fields)
                 if f.kind in (FieldKind.DATE, FieldKind.YEAR))


def fit_model(a: EncodedSet, b: EncodedSet, cands: Candidates, config: MatchConfig) -> FSModel:
    """The model fitted on blocked candidates (not every pair), u from random pairs: what
    `score_pairs` does there, for candidates wherever they are (an engine's partitions)."""
    comps = comparisons(a.info.schema)
    ra, rb = _random_pairs(len(a), len(b), config.u_pairs, config.seed)
    return fit_on(cands, comparison_levels(a, b, ra, rb), [len(c.labels) for c in comps],
                  sizes=(len(a), len(b)), independent=_independent(a.info.schema),
                  labels=[c.labels for c in comps])


def weights_of(log_odds: np.ndarray, model: FSModel) -> tuple[np.ndarray, np.ndarray]:
    """Match weights (log2 Bayes factors after the competing candidates) and probabilities
    from the natural log odds of `pair_log_odds`."""
    weight = log_odds / LN2 - float(np.log2(model.prior / (1 - model.prior)))
    return weight, probability(weight, model.prior)


@runtime_checkable
class CandidateScorer(Protocol):
    """An engine that scores the candidates where they are (accord.link.spark_score): it
    computes their comparison levels in its partitions, lets the driver fit the model on them
    with ``fit`` (EM reads pattern counts and the pairs it weighs one by one), scores every
    pair with the model and returns the codes, weights and probabilities of the pairs whose
    probability reaches ``threshold``, in candidate (code) order."""

    def score_candidates(self, a: EncodedSet, b: EncodedSet, codes: np.ndarray,
                         fit: Callable[[Candidates], FSModel], config: MatchConfig,
                         threshold: float,
                         ) -> tuple[np.ndarray, np.ndarray, np.ndarray, FSModel]: ...


def score_pairs(a: EncodedSet, b: EncodedSet, ia: np.ndarray, ib: np.ndarray,
                config: MatchConfig) -> tuple[np.ndarray, np.ndarray, FSModel]:
    """Match weights and probabilities of the given pairs, with the model fitted on them.

    The weight is the log2 Bayes factor of the pair *after* the competing candidates of both
    its records are taken into account (see `fellegi_sunter`), so that `probability(weight,
    model.prior)` is the returned probability.
    """
    schema = a.info.schema
    comps = comparisons(schema)
    n_levels = [len(c.labels) for c in comps]
    # u from random pairs: every pair when there are few, else a large sample (joint patterns
    # of names, sex and citizenship are rare, and a small sample would miss them).
    gamma = comparison_levels(a, b, ia, ib)
    exhaustive = len(ia) == len(a) * len(b)
    if exhaustive:  # every pair is a candidate: they are the random pairs
        ra, rb, random_gamma = ia, ib, gamma
    else:
        ra, rb = _random_pairs(len(a), len(b), config.u_pairs, config.seed)
        random_gamma = comparison_levels(a, b, ra, rb)
    model = fit(gamma, random_gamma, n_levels, pairs=(ia, ib), sizes=(len(a), len(b)),
                independent=_independent(schema), labels=[c.labels for c in comps])
    log_bf = model.log_bayes_factor(gamma)
    fields = _name_codes(schema, config)
    if fields is not None and exhaustive and len(gamma):
        # Rare and common names told apart by their look-alikes (accord.link.frequency), where
        # every pair is compared, so the look-alikes are all there. With blocking they are
        # only those blocking kept (close names that also share a birth year or date), and the
        # factor cost accuracy at 100k (F1 0.936 -> 0.932) and did not help at 20k.
        # The model's probabilities without the competing candidates (which depend on the
        # look-alikes themselves) pick clear matches and clear non-matches.
        lam = model.matches / max(float(len(a)) * len(b), 1.0)
        lo = np.log(max(lam, 1e-300)) + log_bf - np.log1p(-min(lam, 0.5))
        prob = 1.0 / (1.0 + np.exp(-np.clip(lo, -700.0, 700.0)))
        name, codes, counted, levels = fields
        split = frequency_split(gamma, ia, ib, prob, gamma, ia, ib, True, prob,
                                (len(a), len(b)), name, codes, counted=counted, split=levels)
        model = replace(model, frequency=split)
        log_bf = model.pair_log_bayes_factor(gamma, ia, ib)
    log_odds = pair_log_odds(log_bf, ia, ib, len(a), len(b), model.matches,
                             compete=config.competing_candidates,
                             rounds=config.competition_rounds)
    weight, prob = weights_of(log_odds, model)
    return weight, prob, model


def match_sets(a: EncodedSet, b: EncodedSet, config: MatchConfig | None = None,
               progress: Progress | None = None) -> MatchResult:
    cfg = config or MatchConfig()
    check_compatible(a.info, b.info)
    say = progress or (lambda _msg: None)
    say("candidate generation")
    report: dict[str, object] = {}
    automatic = cfg.threshold is None
    threshold = AUTO_THRESHOLD if cfg.threshold is None else float(cfg.threshold)
    if len(a) * len(b) <= cfg.exhaustive_below or min(len(a), len(b)) == 0:
        ia, ib = all_pairs(a, b)
    else:
        codes = candidate_codes(a, b, cfg.blocking, report, engine=cfg.engine)
        report["blocked_pairs"] = len(codes)
        extra = int(min(cfg.random_candidates * max(len(a), len(b)), cfg.max_random_candidates))
        rng = np.random.default_rng(cfg.seed + 1)
        parts = [codes, rng.integers(0, len(a) * len(b), extra, dtype=np.int64)]
        del codes  # np.union1d's copies: one full-size array here, not three
        codes = sorted_unique(parts)
        if isinstance(cfg.engine, CandidateScorer):
            # Levels, EM's pairs and scores in the engine's partitions; only the pairs that
            # reach the threshold come back for the one-to-one assignment.
            say(f"scoring {len(codes)} candidate pairs ({cfg.engine.name})")
            n_candidates = len(codes)
            above_codes, weight, prob, model = cfg.engine.score_candidates(
                a, b, codes, lambda cands: fit_model(a, b, cands, cfg), cfg, threshold)
            del codes
            ia, ib = above_codes // len(b), above_codes % len(b)
            say("one-to-one assignment")
            keep = greedy_one_to_one(ia, ib, weight)
            return MatchResult(ia[keep], ib[keep], prob[keep], weight[keep], threshold,
                               automatic, n_candidates, model,
                               {"above_threshold": len(ia), "blocking": report})
        ia, ib = codes // len(b), codes % len(b)
        del codes
    say(f"scoring {len(ia)} candidate pairs")
    weight, prob, model = score_pairs(a, b, ia, ib, cfg)
    above = np.flatnonzero(prob >= threshold)
    say("one-to-one assignment")
    keep = above[greedy_one_to_one(ia[above], ib[above], weight[above])]
    return MatchResult(ia[keep], ib[keep], prob[keep], weight[keep], threshold, automatic,
                       len(ia), model, {"above_threshold": len(above), "blocking": report})
