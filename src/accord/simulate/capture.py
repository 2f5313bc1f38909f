"""Who is caught by which partner: a hidden population seen through capture probabilities.

In the multiple systems estimation literature, simulation designs draw a closed population and let
each list "catch" each person independently with a probability that may depend on who the person
is (heterogeneity) and on whether another list caught them (list dependence, e.g. referrals);
people caught by no list are the hidden figure the estimate must find (Chan, Silverman & Vincent
2021; Silverman 2020; Manrique-Vallier 2016 for latent heterogeneity). This module does exactly
that, so that ``accord simulate --capture`` produces exports whose overlaps behave like real lists
and a truth file that knows the full population.

The capture model, on the logit scale, for person ``i`` and partner ``j``::

    logit p_ij = logit(rate) + heterogeneity * (focus_j(case type) + minor_i * young_j + male_i * m_j)
                 + log(dependence) * [j == 1 and caught by partner 0]

- ``focus``: partner ``j`` works more with case type ``j mod 3`` (+0.6) than with the others
  (-0.3): lists that specialise, as in the UK 2013 data (local authorities, NGOs, police...);
- ``young``: children are harder to reach for the first partner (-0.5) and easier for the second
  (+0.4) (a child-protection service), about neutral for the others;
- ``m``: men are harder to reach for every partner (-0.3), the kind of heterogeneity shared by all
  lists that no log-linear model of the lists alone can see, so the estimate is too low: this is
  the documented caveat, and the reason ``heterogeneity`` can be set to 0;
- ``dependence``: the odds that partner b catches someone partner a caught are multiplied by
  ``dependence`` (a referral from a to b); 1 = independent lists. Other pairs are independent.

The effects are ILLUSTRATIVE, chosen to give the data the shapes the literature studies; they are
not statistics about any real service. Hand-written because no library draws MSE designs from
covariates; it is a few vectorised lines of numpy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from accord.simulate.arrays import IntArray

FOCUS = (0.6, -0.3)  # logit shift for a partner's own case type, and for the others
YOUNG = (-0.5, 0.4)  # logit shift for children at partners a and b (others: 0)
MALE = -0.3


@dataclass(frozen=True)
class CaptureDesign:
    """Capture probabilities of a hidden population (see the module docstring)."""

    rate: float  # baseline probability that a partner catches a person (0 < rate < 1)
    heterogeneity: float = 1.0  # scale of the covariate effects (0 = everyone alike)
    dependence: float = 1.0  # odds ratio: partner b catching people partner a caught

    def check(self) -> str | None:
        """A message if the design is impossible, else None."""
        # The floor: below it hardly anyone is caught and a partner's list is empty (1e-320 failed).
        if not 0.001 <= self.rate < 1.0:
            return "--capture is a probability from 0.001 to below 1 (e.g. 0.3), or 0 for everyone seen"
        if not 0.0 <= self.heterogeneity <= 5.0:
            return "--heterogeneity is a scale between 0 and 5 (1 = the default effects)"
        if not 0.01 <= self.dependence <= 100.0:
            return "--dependence is an odds ratio between 0.01 and 100 (1 = independent lists)"
        return None


def _logit(p: float) -> float:
    return float(np.log(p / (1 - p)))


def capture_probabilities(design: CaptureDesign, partners: int, case_type: IntArray,
                          minor: np.ndarray, male: np.ndarray) -> np.ndarray:
    """(people, partners) logits of being caught, before list dependence."""
    n = len(case_type)
    h = design.heterogeneity
    logit = np.full((n, partners), _logit(design.rate))
    for j in range(partners):
        own = case_type == j % 3
        logit[:, j] += h * np.where(own, FOCUS[0], FOCUS[1])
        if j < len(YOUNG):
            logit[:, j] += h * YOUNG[j] * minor
        logit[:, j] += h * MALE * male
    return logit


def draw_captures(rng: np.random.Generator, design: CaptureDesign, partners: int,
                  case_type: IntArray, minor: np.ndarray, male: np.ndarray) -> np.ndarray:
    """(people, partners) bool: who each partner caught."""
    logit = capture_probabilities(design, partners, case_type, minor, male)
    u = rng.random(logit.shape)
    caught = np.zeros(logit.shape, dtype=bool)
    for j in range(partners):
        lj = logit[:, j]
        if j == 1 and design.dependence != 1.0:
            lj = lj + np.log(design.dependence) * caught[:, 0]
        caught[:, j] = u[:, j] < 1.0 / (1.0 + np.exp(-lj))
    return caught


def assign_from_captures(rng: np.random.Generator, caught: np.ndarray, reopened: float
                         ) -> tuple[IntArray, IntArray, np.ndarray, np.ndarray]:
    """Records (person, partner, repeat, reopened) from a capture matrix, as ``records._assign``.

    A person's first registration is at one of the partners that caught them, drawn at random;
    the others are re-registrations (which may carry errors). People caught by nobody have no
    record at all.
    """
    partners = caught.shape[1]
    k = caught.sum(axis=1)
    seen = np.flatnonzero(k > 0)
    # a random caught partner per seen person: the argmax of random keys over caught partners
    keys = np.where(caught[seen], rng.random((len(seen), partners)), -1.0)
    primary = keys.argmax(axis=1)
    person = [seen]
    partner = [primary]
    repeat = [np.zeros(len(seen), dtype=bool)]
    rows, cols = np.nonzero(caught[seen])
    later = cols != primary[rows]
    person.append(seen[rows[later]])
    partner.append(cols[later])
    repeat.append(np.ones(int(later.sum()), dtype=bool))
    again = [np.zeros(sum(len(p) for p in person), dtype=bool)]
    if reopened > 0:
        dup = np.flatnonzero(rng.random(len(seen)) < reopened)
        person.append(seen[dup])
        partner.append(primary[dup])
        repeat.append(np.zeros(len(dup), dtype=bool))
        again.append(np.ones(len(dup), dtype=bool))
    return (np.concatenate(person).astype(np.int64), np.concatenate(partner).astype(np.int64),
            np.concatenate(repeat), np.concatenate(again))
