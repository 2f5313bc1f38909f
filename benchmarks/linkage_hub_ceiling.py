"""Clear-text ceiling of the three-partner simulator (issue 11): how many true pairs any linker
without labels can find, given what the records say (as `linkage_ceiling.py` does for the
migrant-like benchmark generator).

A record carries names, sex and citizenship, and a birth date, or only an age, or neither
(`dob_missing` re-registrations leave both blank; people who do not know their birth date give
an age, a guess within three years, or nothing). For a true pair (records r at partner P and s at
partner Q of one person), the other people Q holds who have no record at P are free to be r's
match; those among them that r cannot be told from are its twins:

* r (or s) has no date and no age: the same name (the person's name groups, any word order,
  spelling variants counted as one name), sex and citizenship;
* only an age on the weaker side, or a year-only / 1-January date: that, and a birth year within
  the age's precision (1 year for a stated age, 3 for a guessed one), or the same year.

With k - 1 twins a linker links the right one with chance 1/k at best. Two figures:

* "no guessing" (P = 1): recall is the share of true pairs with k = 1;
* "best guessing": a link right with chance q raises F1 exactly when q > F1 / 2, so the
  F1-optimal linker also links groups of two (q = 1/2); this is the upper bound;
* "every look-alike": twins counted among all people of the other partner, matched or not (a
  linker cannot know which look-alikes have a match of their own without resolving them, which
  needs other evidence): a less optimistic figure, not a bound.

It is optimistic: twins are counted on the true names (a typo or transliteration can make a
twin look even closer than the true match), and every pair without a twin is taken as found.

    python benchmarks/linkage_hub_ceiling.py [--people 3000] [--partners 3] [--overlap 0.15]
        [--seeds 2026,1,2,3]
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter, defaultdict
from itertools import combinations
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from accord.simulate.names import load_vocabulary  # noqa: E402
from accord.simulate.population import make_population  # noqa: E402
from accord.simulate.records import E, make_records  # noqa: E402
from accord.standard import load_standard  # noqa: E402

# How precisely a record's date information places the birth year (years either side).
NONE, AGE_GUESS, AGE, YEAR, FULL = "none", "age_guess", "age", "year", "full"
SLACK = {AGE_GUESS: 3, AGE: 1, YEAR: 0}
ORDER = {NONE: 0, AGE_GUESS: 1, AGE: 2, YEAR: 3, FULL: 4}


def _twin_counts(people: int, partners: int, overlap: float,
                 seed: int) -> list[tuple[int, int, int, int, set[str]]]:
    """Per true pair of records of two partners (rows r < s of the simulator's records, the
    order of truth.csv): twins k among the free people, among all people (k2), error kinds."""
    pop = make_population(people, seed, load_standard())
    recs = make_records(pop, partners, overlap, seed)
    voc = load_vocabulary()
    toks = pop.names
    groups = np.stack([np.where(t >= 0, voc.group_of[np.maximum(t, 0)], -1)
                       for t in (toks.g1, toks.g2, toks.f1, toks.f2)], axis=1)
    combo = [(tuple(sorted(int(g) for g in row if g >= 0)), int(s), int(c))
             for row, s, c in zip(groups, pop.sex, pop.citizenship, strict=True)]
    year = pop.dob.astype("datetime64[Y]").astype(np.int64) + 1970
    unknown_person = pop.dob_quality == 3
    dob = recs.dob
    jan1 = ~np.isnat(dob) & (dob == dob.astype("datetime64[Y]").astype("datetime64[D]"))
    info = np.where(~np.isnat(dob), np.where(jan1, YEAR, FULL),
                    np.where(recs.age >= 0, np.where(unknown_person[recs.person], AGE_GUESS, AGE),
                             NONE))
    at: dict[int, set[int]] = defaultdict(set)  # person -> partners holding a record
    for person, partner in zip(recs.person, recs.partner, strict=True):
        at[int(person)].add(int(partner))
    by_partner: dict[int, list[int]] = defaultdict(list)  # partner -> people (distinct)
    for person, ps in at.items():
        for p in ps:
            by_partner[p].append(person)
    # Free people of Q for P: held by Q, not by P; counted by combination and by birth year.
    free_combo: dict[tuple[int, int], Counter[object]] = {}
    free_year: dict[tuple[int, int], Counter[object]] = {}
    for p in range(partners):
        for q in range(partners):
            if p == q:
                continue
            free = [x for x in by_partner[q] if p not in at[x]]
            free_combo[(p, q)] = Counter(combo[x] for x in free)
            free_year[(p, q)] = Counter((combo[x], int(year[x])) for x in free)
    held_combo = {q: Counter(combo[x] for x in by_partner[q]) for q in range(partners)}
    held_year = {q: Counter((combo[x], int(year[x])) for x in by_partner[q])
                 for q in range(partners)}
    rows_of: dict[int, list[int]] = defaultdict(list)
    for i, person in enumerate(recs.person):
        rows_of[int(person)].append(i)
    out: list[tuple[int, int, int, int, set[str]]] = []
    for person, rows in rows_of.items():
        for r, s in combinations(rows, 2):
            p, q = int(recs.partner[r]), int(recs.partner[s])
            if p == q:
                continue
            # The weaker record's date information decides; its twins are the free people of the
            # other partner.
            weak, other = (r, s) if ORDER[str(info[r])] <= ORDER[str(info[s])] else (s, r)
            pw, po = int(recs.partner[weak]), int(recs.partner[other])
            level = str(info[weak])
            if level == FULL:
                k = k2 = 1
            elif level == NONE:
                k = 1 + free_combo[(pw, po)][combo[person]]
                k2 = held_combo[po][combo[person]]
            else:
                years = [(combo[person], int(year[person]) + d)
                         for d in range(-SLACK[level], SLACK[level] + 1)]
                k = 1 + sum(free_year[(pw, po)][y] for y in years)
                k2 = sum(held_year[po][y] for y in years)
            err = int(recs.errors[r]) | int(recs.errors[s])
            out.append((min(r, s), max(r, s), k, k2,
                        {name for name, bit in E.items() if err & bit} or {"none"}))
    return out


def pair_twins(people: int, partners: int, overlap: float, seed: int) -> dict[tuple[int, int], int]:
    """Twins k of each true pair (rows r < s of truth.csv): 1 = a clear-text linker finds it."""
    return {(r, s): k for r, s, k, _, _ in _twin_counts(people, partners, overlap, seed)}


def ceiling(people: int, partners: int, overlap: float, seed: int) -> dict[str, object]:
    counts = _twin_counts(people, partners, overlap, seed)
    k_of = [c[2] for c in counts]
    k_any = [c[3] for c in counts]  # twins among all people of the other partner
    kinds = [c[4] for c in counts]
    pairs = len(k_of)
    sure = sum(k == 1 for k in k_of)
    r0 = sure / max(pairs, 1)
    f1_0 = 2 * r0 / (1 + r0)
    two = sum(k == 2 for k in k_of)
    tp, fp = sure + two / 2, two / 2
    f1_g = 2 * tp / max(2 * tp + fp + (pairs - tp), 1)
    by_kind: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for k, ks in zip(k_of, kinds, strict=True):
        for kind in ks:
            by_kind[kind][0] += k == 1
            by_kind[kind][1] += 1
    r_any = sum(k == 1 for k in k_any) / max(pairs, 1)
    return {"pairs": pairs, "recall_p1": r0, "f1_p1": f1_0, "f1_guess": max(f1_0, f1_g),
            "f1_any": 2 * r_any / (1 + r_any),
            "by_kind": {k: (v[0] / v[1], v[1]) for k, v in sorted(by_kind.items())}}


def _look_alike(r: int, s: int, info: np.ndarray, year: np.ndarray, dob: np.ndarray,
                person: np.ndarray) -> bool:
    """Whether records r and s (same name, sex and citizenship) cannot be told apart by date."""
    lr, ls = str(info[r]), str(info[s])
    weak = lr if ORDER[lr] <= ORDER[ls] else ls
    if weak == NONE:
        return True
    pr, ps = int(person[r]), int(person[s])
    if weak == FULL:
        return bool(dob[pr] == dob[ps])
    return abs(int(year[pr]) - int(year[ps])) <= SLACK[weak]


def _find(parent: dict[int, int], x: int) -> int:
    while parent[x] != x:
        parent[x] = parent[parent[x]]
        x = parent[x]
    return x


def component_ceiling(people: int, partners: int, overlap: float, seed: int) -> dict[str, float]:
    """Best F1 of a linker that sees the true names (errors undone) and dates but no labels.

    Per pair of partners, records of the two sides that look alike (same name, sex and
    citizenship, dates that do not tell them apart) form connected groups. The linker sees only
    a group's shape (records per side, look-alike edges), not which edges are true, so it links
    all groups of a shape or none; linking a group makes min(records per side) links, each
    right with chance (true pairs / edges). Shapes are linked best first while that raises F1.
    Unlike `ceiling`, this counts the false links that two unmatched look-alikes invite.
    """
    pop = make_population(people, seed, load_standard())
    recs = make_records(pop, partners, overlap, seed)
    voc = load_vocabulary()
    toks = pop.names
    groups = np.stack([np.where(t >= 0, voc.group_of[np.maximum(t, 0)], -1)
                       for t in (toks.g1, toks.g2, toks.f1, toks.f2)], axis=1)
    combo = [(tuple(sorted(int(g) for g in row if g >= 0)), int(s), int(c))
             for row, s, c in zip(groups, pop.sex, pop.citizenship, strict=True)]
    year = pop.dob.astype("datetime64[Y]").astype(np.int64) + 1970
    dob = recs.dob
    jan1 = ~np.isnat(dob) & (dob == dob.astype("datetime64[Y]").astype("datetime64[D]"))
    info = np.where(~np.isnat(dob), np.where(jan1, YEAR, FULL),
                    np.where(recs.age >= 0, np.where(pop.dob_quality[recs.person] == 3,
                                                     AGE_GUESS, AGE), NONE))
    by_key: dict[tuple[int, object], list[int]] = defaultdict(list)
    for i, (person, partner) in enumerate(zip(recs.person, recs.partner, strict=True)):
        if recs.defect[i] < 0:
            by_key[(int(partner), combo[int(person)])].append(i)
    shape_t: Counter[tuple[int, int, int]] = Counter()
    shape_e: Counter[tuple[int, int, int]] = Counter()
    shape_links: Counter[tuple[int, int, int]] = Counter()
    true_pairs = 0
    for p, q in combinations(range(partners), 2):
        for (pp, key), rows_p in by_key.items():
            if pp != p:
                continue
            rows_q = by_key.get((q, key), [])
            # connected groups of look-alike edges (union-find over the records of both sides)
            parent = {x: x for x in rows_p + rows_q}

            edges = [(r, s) for r in rows_p for s in rows_q
                     if _look_alike(r, s, info, year, pop.dob, recs.person)]
            for r, s in edges:
                parent[_find(parent, r)] = _find(parent, s)
            comp: dict[int, list[tuple[int, int]]] = defaultdict(list)
            for r, s in edges:
                comp[_find(parent, r)].append((r, s))
            for es in comp.values():
                n_p, n_q = len({r for r, _ in es}), len({s for _, s in es})
                t = sum(recs.person[r] == recs.person[s] for r, s in es)
                shape = (n_p, n_q, len(es))
                shape_t[shape] += t
                shape_e[shape] += len(es)
                shape_links[shape] += min(n_p, n_q)
        # every true pair counts, look-alike or not (a name error may hide it from any linker
        # that does not see through errors; this one does)
        rows = defaultdict(list)
        for i, (person, partner) in enumerate(zip(recs.person, recs.partner, strict=True)):
            if int(partner) in (p, q) and recs.defect[i] < 0:
                rows[int(person)].append(int(partner))
        true_pairs += sum(ps.count(p) * ps.count(q) for ps in rows.values())
    order = sorted(shape_t, key=lambda k: -shape_t[k] / shape_e[k])
    best, tp, links = 0.0, 0.0, 0.0
    for shape in order:
        links += shape_links[shape]
        tp += shape_links[shape] * shape_t[shape] / shape_e[shape]
        best = max(best, 2 * tp / (links + true_pairs))
    return {"pairs": true_pairs, "f1": best}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--people", type=int, default=3000)
    ap.add_argument("--partners", type=int, default=3)
    ap.add_argument("--overlap", type=float, default=0.15)
    ap.add_argument("--seeds", default="2026,1,2,3")
    args = ap.parse_args()
    for seed in (int(x) for x in args.seeds.split(",")):
        c = ceiling(args.people, args.partners, args.overlap, seed)
        print(f"seed {seed}: {c['pairs']:,} true pairs; ceiling recall {c['recall_p1']:.3f}, "
              f"F1 (P = 1) {c['f1_p1']:.3f}; F1 with the best guesses {c['f1_guess']:.3f}; "
              f"F1 (P = 1) counting every look-alike of the other partner as a twin "
              f"{c['f1_any']:.3f}")
        g = component_ceiling(args.people, args.partners, args.overlap, seed)
        print(f"  counting the false links look-alikes invite (groups by shape): best F1 "
              f"{g['f1']:.3f}")
        kinds = c["by_kind"]
        assert isinstance(kinds, dict)
        print("  pairs without a twin, by kind: " + ", ".join(
            f"{k} {v[0]:.3f} (n={v[1]})" for k, v in kinds.items()))


if __name__ == "__main__":
    main()
