"""Differencing attacks on a sequence of releases, written independently of the protection.

The attacker of issue 10: knows every record but one person's (so the release before the person
arrived, or before their record changed, tells them nothing they do not already know), sees the
release after, and asks where the person is. The only thing taken from Accord is what a reader
sees: the published tables (codes, values with totals, ``None`` for "<10") and the published
noise scale. Counting the others, the person's cell in each table, the public code lists and
the likelihood are all done here, by the attacker's own code, and the decision is a MILP
(scipy ``milp``).

Attacks:
* ``cell``: which cell of a table (every single-valued table; with and without the person's sex
  known). Score of a candidate cell = Gaussian log-likelihood of every published entry (cells and
  margins) the person would add one to, plus the log prior (the others' frequencies); hidden
  entries contribute the probability of falling in 1..threshold-1. The MILP picks one cell.
* ``code``: does the person have code X (list fields). MILP over the person's codes (1 or 2,
  "none" exclusive) and their cell on the other axes, L1 (Laplace) likelihood of every entry.
* ``stratum``: which estimate stratum (sex x age group x case type) from the seen counts of
  seven ``--by`` releases.

Chance baseline: the same MILP with the release taken away (prior only), on the same trials.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.optimize import Bounds, LinearConstraint, milp
from scipy.sparse import coo_matrix
from scipy.stats import norm

from accord.standard import load_standard

MISSING = "_missing"
SEX = ("female", "male", "transgender_female", "transgender_male", "non_conforming", "unknown")
CASE = ("trafficking_victim", "gbv_survivor", "vulnerable_migrant")
MIGRATION = ("regular", "irregular", "undocumented", "asylum_seeker", "refugee", "stateless",
             "internally_displaced", "returnee")
EXPLOITATION = ("forced_labour", "sexual_exploitation", "child_labour", "forced_marriage",
                "servitude", "forced_military", "organ_removal", "forced_begging",
                "forced_adoption", "surrogacy", "forced_criminality", "other")
RH = ("clinical_management_of_rape", "emergency_contraception", "post_exposure_prophylaxis",
      "antenatal_care", "family_planning", "safe_delivery", "sti_care")
BANDS = ("0--8", "9--17", "18--20", "21--23", "24--26", "27--29", "30--38", "39--47", "48+")
GROUPS = ("0-4", "5-11", "12-17", "18-59", "60+")
MAJORITY = ("minor", "adult")
COUNTRIES = ("VN", "KH", "MM", "LA", "TH", "PH", "ID", "NG", "ER", "SY")
YEARS = tuple(str(y) for y in range(2016, 2025))

# The standard's tables as the public documentation lists them: id -> columns.
TABLES: dict[str, tuple[str, ...]] = {
    "sex_by_age_band": ("sex", "age_band_ctdc"),
    "case_type_by_sex": ("case_type", "sex"),
    "exploitation_by_sex_by_majority": ("type_of_exploitation", "sex", "majority_status"),
    "migration_status_by_sex": ("migration_status", "sex"),
    "citizenship_by_sex": ("citizenship", "sex"),
    "rh_needs_by_age_group": ("rh_needs", "age_group"),
    "registrations_by_year": ("registration_year",),
}
MULTI = {"type_of_exploitation": EXPLOITATION, "rh_needs": RH}
MAX_CODES = 2  # documented: a person counts under at most 2 values of a list field


def _band(age: int, edges: Sequence[int], labels: Sequence[str]) -> str:
    return labels[sum(age >= e for e in edges)]


_STANDARD = load_standard()
FOCUS_BANDS = ("age_adolescent", "age_youth", "age_young_people")


def person(rng: np.random.Generator) -> dict[str, Any]:
    """One simulated person, skewed like the case loads of the simulated partners."""
    age = int(min(rng.gamma(4.0, 7.0), 80))
    sex = str(rng.choice(SEX, p=[0.58, 0.34, 0.02, 0.02, 0.02, 0.02]))
    expl = [str(c) for c in EXPLOITATION if rng.random() < (0.45 if c in EXPLOITATION[:2]
                                                             else 0.03)]
    rh = [str(c) for c in RH if rng.random() < 0.08] if sex != "male" else []
    return {
        "age": age,
        "sex": sex if rng.random() > 0.03 else None,
        "age_band_ctdc": _band(age, (9, 18, 21, 24, 27, 30, 39, 48), BANDS),
        "age_group": _band(age, (5, 12, 18, 60), GROUPS),
        "majority_status": "minor" if age < 18 else "adult",
        "case_type": str(rng.choice(CASE, p=[0.6, 0.3, 0.1])),
        "migration_status": (str(rng.choice(MIGRATION, p=[.2, .35, .15, .1, .1, .03, .04, .03]))
                             if rng.random() > 0.1 else None),
        "citizenship": str(rng.choice(COUNTRIES, p=[.3, .2, .15, .1, .08, .06, .04, .03, .02,
                                                    .02])),
        "type_of_exploitation": expl,
        "rh_needs": rh,
        "registration_year": str(rng.choice(YEARS)),
        # the focus tables (issue 18): focus bands, GBV incident types, RH services received
        **{b: _STANDARD.derived_field(b).band_of(age) for b in FOCUS_BANDS},
        # derived without drawing, so the random stream (and the figures) stay those of before
        "gbv_incident_type": ["rape"] if "clinical_management_of_rape" in rh else [],
        "rh_services_received": rh[1:],
        # GBV services and the survivor flag (issue 18), derived the same way
        "referred_to": ["health", "psychosocial"] if rh else [],
        "services_received": ["health"] if len(rh) > 1 else [],
        "sexual_violence_survivor": ("yes" if "clinical_management_of_rape" in rh
                                     or "sexual_exploitation" in expl else
                                     "no" if expl else None),
    }


def codes_of(column: str) -> tuple[str, ...]:
    return {"sex": SEX, "case_type": CASE, "migration_status": MIGRATION,
            "age_band_ctdc": BANDS, "age_group": GROUPS, "majority_status": MAJORITY,
            "citizenship": COUNTRIES, "registration_year": YEARS, **MULTI}[column]


def coded(p: dict[str, Any], column: str) -> list[str]:
    """The codes a person counts under in one column (lists: first 2 in code-list order)."""
    v = p[column]
    if column in MULTI:
        chosen = [c for c in MULTI[column] if c in (v or [])][:MAX_CODES]
        return chosen or [MISSING]
    return [MISSING if v is None else str(v)]


def cells_of(p: dict[str, Any], columns: Sequence[str]) -> list[tuple[str, ...]]:
    return [tuple(c) for c in itertools.product(*(coded(p, col) for col in columns))]


def count(people: Sequence[dict[str, Any]], columns: Sequence[str]) -> dict[tuple[str, ...], int]:
    """Every entry (cell or margin, '*' for a total) of the table over ``people``."""
    out: dict[tuple[str, ...], int] = {}
    for p in people:
        # a list field adds once per code, so margins over the list axis count codes
        for cell in cells_of(p, columns):
            for mask in itertools.product((False, True), repeat=len(columns)):
                key = tuple("*" if m else c for c, m in zip(cell, mask, strict=True))
                out[key] = out.get(key, 0) + 1
    return out


@dataclass(frozen=True)
class Published:
    """What a reader sees of one table: codes per axis and every entry (None = hidden)."""

    codes: tuple[tuple[str, ...], ...]
    entries: dict[tuple[str, ...], int | None]
    sd: float


def from_nested(codes: Sequence[Sequence[str]], values: Any, sd: float) -> Published:
    arr = np.array(values, dtype=object)
    entries: dict[tuple[str, ...], int | None] = {}
    for idx in np.ndindex(*arr.shape):
        key = tuple("*" if i == len(codes[a]) else codes[a][i] for a, i in enumerate(idx))
        entries[key] = None if arr[idx] is None else int(arr[idx])
    return Published(tuple(tuple(c) for c in codes), entries, sd)


def exact_release(people: Sequence[dict[str, Any]], columns: Sequence[str], threshold: int,
                  hide_small: bool) -> Published:
    """The unprotected release of the negative controls: exact counts over the public codes,
    optionally with 1..threshold-1 hidden (deterministic small-cell hiding)."""
    counts = count(people, columns)
    codes = tuple((*codes_of(c), MISSING) for c in columns)
    entries: dict[tuple[str, ...], int | None] = {}
    for key in itertools.product(*((*c, "*") for c in codes)):
        v = counts.get(key, 0)
        entries[key] = None if hide_small and 0 < v < threshold else v
    return Published(codes, entries, 0.3)


def _entries_of(cell: tuple[str, ...]) -> list[tuple[str, ...]]:
    return [tuple("*" if m else c for c, m in zip(cell, mask, strict=True))
            for mask in itertools.product((False, True), repeat=len(cell))]


def _solve_one_hot(scores: np.ndarray) -> int:
    """MILP: choose exactly one candidate maximising the score."""
    n = len(scores)
    res = milp(-scores, integrality=np.ones(n), bounds=Bounds(0, 1),
               constraints=[LinearConstraint(np.ones((1, n)), 1, 1)])
    if res.x is None:
        return int(np.argmax(scores))
    return int(np.argmax(res.x))


def guess_cell(pub: Published | None, known: dict[tuple[str, ...], int],
               prior: dict[tuple[str, ...], float], threshold: int,
               fixed: dict[int, str] | None = None) -> tuple[str, ...]:
    """The attacker's MILP for a single-valued table: the person's cell. ``pub=None`` is the
    chance baseline (prior only)."""
    codes = pub.codes if pub is not None else None
    cands = [c for c in prior if codes is None or all(x in codes[i] for i, x in enumerate(c))]
    cands = cands or list(prior)
    if fixed:
        cands = [c for c in cands if all(c[i] == v for i, v in fixed.items())] or cands
    scores = np.array([math.log(prior[c]) for c in cands])
    if pub is not None:
        var = pub.sd ** 2
        for j, cand in enumerate(cands):
            for e in _entries_of(cand):
                k = known.get(e, 0)
                shown = pub.entries.get(e, 0)
                if shown is not None:
                    r = shown - k
                    scores[j] += (2 * r - 1) / (2 * var)  # log N(r;1) - log N(r;0)
                else:
                    lo, hi = 0.5, threshold - 0.5
                    p1 = norm.cdf(hi, k + 1, pub.sd) - norm.cdf(lo, k + 1, pub.sd)
                    p0 = norm.cdf(hi, k, pub.sd) - norm.cdf(lo, k, pub.sd)
                    scores[j] += math.log(max(p1, 1e-300)) - math.log(max(p0, 1e-300))
    return cands[_solve_one_hot(scores)]


def guess_code(pub: Published | None, known: dict[tuple[str, ...], int], column_codes:
               tuple[str, ...], other_prior: dict[tuple[str, ...], float],
               code_prior: dict[str, float], question: str,
               fixed: dict[int, str] | None = None) -> bool:
    """The attacker's MILP for a list field (axis 0): does the person have ``question``?

    Variables: y[code] (the person's codes, 1 or 2 of them, MISSING exclusive), z[o] (their cell
    on the other axes, one-hot), w[code, o] = y and z (linearised), d[e] >= |r_e - a_e| for every
    shown entry e. Minimise sum(d) / b - log prior.
    """
    # candidates the others make plausible (the attacker knows them all): codes somebody else
    # has, cells of the other axes somebody else is in; MISSING always
    codes = (*[c for c in column_codes if code_prior.get(c, 0) > 0], MISSING)
    floor = min(other_prior.values())
    others = [o for o in other_prior if (pub is None
              or all(x in pub.codes[i + 1] for i, x in enumerate(o))) and other_prior[o] > floor]
    if question not in codes:
        return False
    if fixed:
        others = [o for o in others if all(o[i - 1] == v for i, v in fixed.items())] or others
    ny, nz = len(codes), len(others)
    nw = ny * nz
    entries = [] if pub is None else [e for e, v in pub.entries.items() if v is not None]
    ne = len(entries)
    n = ny + nz + nw + ne
    cost = np.zeros(n)
    for i, c in enumerate(codes):
        p = min(max(code_prior.get(c, 1e-3), 1e-3), 1 - 1e-3)
        cost[i] = -math.log(p / (1 - p))
    for j, o in enumerate(others):
        cost[ny + j] = -math.log(other_prior[o])
    b = 1.0 if pub is None else max(pub.sd / math.sqrt(2), 1e-3)
    cost[ny + nz + nw:] = 1.0 / b
    data: list[float] = []
    ri: list[int] = []
    ci: list[int] = []
    lo: list[float] = []
    hi: list[float] = []

    def add(coefs: dict[int, float], low: float, high: float) -> None:
        r = len(lo)
        for k, v in coefs.items():
            ri.append(r)
            ci.append(k)
            data.append(v)
        lo.append(low)
        hi.append(high)

    add({i: 1.0 for i in range(ny)}, 1, MAX_CODES)
    for i in range(ny - 1):
        add({i: 1.0, ny - 1: 1.0}, 0, 1)  # "none recorded" excludes every code
    add({ny + j: 1.0 for j in range(nz)}, 1, 1)
    for i in range(ny):
        for j in range(nz):
            w = ny + nz + i * nz + j
            add({w: 1.0, i: -1.0}, -np.inf, 0)
            add({w: 1.0, ny + j: -1.0}, -np.inf, 0)
            add({w: 1.0, i: -1.0, ny + j: -1.0}, -1, np.inf)
    code_pos = {c: i for i, c in enumerate(codes)}
    other_pos = {o: j for j, o in enumerate(others)}
    for k, e in enumerate(entries):
        r = float(pub.entries[e]) - known.get(e, 0)  # type: ignore[arg-type, union-attr]
        ci_s = range(ny) if e[0] == "*" else ([code_pos[e[0]]] if e[0] in code_pos else [])
        oj = [j for o, j in other_pos.items()
              if all(e[t + 1] in ("*", x) for t, x in enumerate(o))]
        contrib = [ny + nz + i * nz + j for i in ci_s for j in oj]
        d = ny + nz + nw + k
        add({d: 1.0, **{w: 1.0 for w in contrib}}, r, np.inf)   # d >= r - a
        add({d: 1.0, **{w: -1.0 for w in contrib}}, -r, np.inf)  # d >= a - r
    integrality = np.r_[np.ones(ny + nz + nw), np.zeros(ne)]
    ub = np.r_[np.ones(ny + nz + nw), np.full(ne, np.inf)]
    res = milp(cost, integrality=integrality, bounds=Bounds(np.zeros(n), ub),
               constraints=[LinearConstraint(coo_matrix((data, (ri, ci)), shape=(len(lo), n)),
                                             lo, hi)],
               options={"time_limit": 20})
    if res.x is None:
        return code_prior.get(question, 0) > 0.5
    return bool(res.x[codes.index(question)] > 0.5)


def cell_prior(people: Sequence[dict[str, Any]], columns: Sequence[str]) -> dict[tuple[str, ...],
                                                                                float]:
    """The others' frequencies over every cell of the public codes (add-half smoothing)."""
    counts = {k: v for k, v in count(people, columns).items() if "*" not in k}
    cells = list(itertools.product(*((*codes_of(c), MISSING) for c in columns)))
    total = sum(counts.get(c, 0) + 0.5 for c in cells)
    return {c: (counts.get(c, 0) + 0.5) / total for c in cells}


def code_prior(people: Sequence[dict[str, Any]], column: str) -> dict[str, float]:
    n = max(len(people), 1)
    out: dict[str, float] = {}
    for p in people:
        for c in coded(p, column):
            out[c] = out.get(c, 0) + 1 / n
    return out


@dataclass
class Tally:
    trials: int = 0
    success: int = 0
    chance: int = 0

    def add(self, hit: bool, base: bool) -> None:
        self.trials += 1
        self.success += int(hit)
        self.chance += int(base)

    @property
    def rate(self) -> float:
        return self.success / max(self.trials, 1)

    @property
    def baseline(self) -> float:
        return self.chance / max(self.trials, 1)

    @property
    def advantage(self) -> float:
        return self.rate - self.baseline


Release = Callable[[list[dict[str, Any]], int], dict[str, Published]]
SINGLE = ("sex_by_age_band", "case_type_by_sex", "migration_status_by_sex", "citizenship_by_sex",
          "registrations_by_year")
LISTS = ("exploitation_by_sex_by_majority", "rh_needs_by_age_group")


def attack_names() -> list[str]:
    names = []
    for t in (*SINGLE, *LISTS):
        names.append(t)
        if "sex" in TABLES[t]:
            names.append(f"{t} (sex known)")
    return names


def run(releases: dict[str, Release], scenario: str, trials: int, people: int = 200,
        threshold: int = 10, seed: int = 7,
        only: Sequence[str] | None = None) -> dict[str, dict[str, Tally]]:
    """``trials`` times: a new population; one person added (or one person's record replaced by
    a new one), one release after, by each of ``releases``; every attack on every table.
    ``release(people, trial)`` returns the published tables. The chance baseline (prior only)
    is computed once per trial and shared."""
    rng = np.random.default_rng(seed)
    out = {r: {n: Tally() for n in attack_names()} for r in releases}
    for trial in range(trials):
        pop = [person(rng) for _ in range(people)]
        i = int(rng.integers(people))
        others = pop[:i] + pop[i + 1:]
        # updated: the same person, their record replaced by a new one
        target = pop[i] if scenario == "added" else person(rng)
        after = [*others, target]
        shown = {r: rel(after, trial) for r, rel in releases.items()}
        for t in (*SINGLE, *LISTS):
            if only and t not in only:
                continue
            cols = TABLES[t]
            known = count(others, cols)
            variants: list[tuple[str, dict[int, str] | None]] = [(t, None)]
            if "sex" in cols:
                variants.append((f"{t} (sex known)", {cols.index("sex"): coded(target, "sex")[0]}))
            if t in SINGLE:
                prior = cell_prior(others, cols)
                truth = cells_of(target, cols)[0]
                for name, fixed in variants:
                    base = guess_cell(None, known, prior, threshold, fixed) == truth
                    for r in releases:
                        hit = guess_cell(shown[r][t], known, prior, threshold, fixed) == truth
                        out[r][name].add(hit, base)
            else:
                col = cols[0]
                held = [c for c in coded(target, col) if c != MISSING]
                pool = [c for c in codes_of(col) if c not in held]
                has = bool(held) and rng.random() < 0.5
                question = str(rng.choice(held)) if has else str(rng.choice(pool))
                oprior = cell_prior(others, cols[1:])
                cprior = code_prior(others, col)
                for name, fixed in variants:
                    base = guess_code(None, known, codes_of(col), oprior, cprior, question,
                                      fixed) == has
                    for r in releases:
                        hit = guess_code(shown[r][t], known, codes_of(col), oprior, cprior,
                                         question, fixed) == has
                        out[r][name].add(hit, base)
    return out


def exact(hide_small: bool, threshold: int = 10) -> Release:
    """Negative control: the unprotected release (exact counts), small values hidden or not."""
    def release(people: list[dict[str, Any]], trial: int) -> dict[str, Published]:
        return {t: exact_release(people, cols, threshold, hide_small) for t, cols in TABLES.items()}
    return release


def table_text(results: dict[str, dict[str, Tally]]) -> str:
    """A markdown table: attack x release, success vs chance over the trials."""
    lines = ["| attack | release | trials | success | chance | advantage |",
             "| --- | --- | --- | --- | --- | --- |"]
    for rel, tallies in results.items():
        for name, t in tallies.items():
            if t.trials:
                lines.append(f"| {name} | {rel} | {t.trials} | {t.rate:.0%} | {t.baseline:.0%} "
                             f"| {t.advantage * 100:+.0f} pts |")
    return "\n".join(lines)


# ---- nested estimate strata ----------------------------------------------------------------

STRATA = ("sex", "age_group", "case_type")
BY_SETS: tuple[tuple[str, ...], ...] = (("sex",), ("case_type",), ("sex", "case_type"),
                                       ("age_group",), ("sex", "age_group"),
                                       ("age_group", "case_type"), STRATA)
PARTNERS = ("ngo", "police", "shelter")
StrataRelease = Callable[[list[dict[str, Any]], int], dict[tuple[str, ...], Published]]


def seen_person(rng: np.random.Generator) -> dict[str, Any]:
    p = person(rng)
    lists = [x for x in PARTNERS if rng.random() < 0.4] or [str(rng.choice(PARTNERS))]
    return {**p, "lists": lists}


def strata_entries(p: dict[str, Any]) -> list[tuple[tuple[str, ...], tuple[str, ...]]]:
    """(by-set, stratum) of every seen count one person adds to."""
    cell = {c: coded(p, c)[0] for c in STRATA}
    return [(by, tuple(cell[c] for c in by)) for by in BY_SETS]


def exact_strata(hide_small: bool, threshold: int = 10) -> StrataRelease:
    """Negative control: exact seen counts per stratum of every --by (small ones hidden or not)."""
    def release(people: list[dict[str, Any]], trial: int) -> dict[tuple[str, ...], Published]:
        out = {}
        for by in BY_SETS:
            codes = tuple((*codes_of(c), MISSING) for c in by)
            counts: dict[tuple[str, ...], int] = {}
            for p in people:
                key = tuple(coded(p, c)[0] for c in by)
                counts[key] = counts.get(key, 0) + 1
            entries: dict[tuple[str, ...], int | None] = {}
            for key in itertools.product(*codes):
                v = counts.get(key, 0)
                entries[key] = None if hide_small and 0 < v < threshold else v
            out[by] = Published(codes, entries, 0.3)
        return out
    return release


def run_strata(releases: dict[str, StrataRelease], trials: int, people: int = 300,
               threshold: int = 10, seed: int = 11) -> dict[str, Tally]:
    """One person added; seven --by releases after; MILP: which (sex, age group, case type)."""
    rng = np.random.default_rng(seed)
    out = {r: Tally() for r in releases}
    for trial in range(trials):
        pop = [seen_person(rng) for _ in range(people)]
        i = int(rng.integers(people))
        others, target = pop[:i] + pop[i + 1:], pop[i]
        prior = cell_prior(others, STRATA)
        known: dict[tuple[tuple[str, ...], tuple[str, ...]], int] = {}
        for p in others:
            for e in strata_entries(p):
                known[e] = known.get(e, 0) + 1
        truth = tuple(coded(target, c)[0] for c in STRATA)
        cands = list(prior)
        base_scores = np.array([math.log(prior[c]) for c in cands])
        base = cands[_solve_one_hot(base_scores)] == truth
        for r, rel in releases.items():
            shown = rel([*others, target], trial)
            scores = base_scores.copy()
            for j, cand in enumerate(cands):
                cell = dict(zip(STRATA, cand, strict=True))
                for by in BY_SETS:
                    key = tuple(cell[c] for c in by)
                    pub = shown[by]
                    k = known.get((by, key), 0)
                    v = pub.entries.get(key, 0)
                    if v is not None:
                        scores[j] += (2 * (v - k) - 1) / (2 * pub.sd ** 2)
                    else:
                        p1 = norm.cdf(threshold - 0.5, k + 1, pub.sd) - norm.cdf(0.5, k + 1, pub.sd)
                        p0 = norm.cdf(threshold - 0.5, k, pub.sd) - norm.cdf(0.5, k, pub.sd)
                        scores[j] += math.log(max(p1, 1e-300)) - math.log(max(p0, 1e-300))
            out[r].add(cands[_solve_one_hot(scores)] == truth, base)
    return out
