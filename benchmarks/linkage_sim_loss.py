"""Where the three-partner simulator loses its true pairs and where its false links come from
(issue 11), on hubs built by `linkage_hub.py --keep DIR` (same encodings and secret), relinked
with the current code:

* each true pair of two partners' records: lost in blocking (never a candidate), below the
  threshold (the model), in the one-to-one assignment, in the clustering across partners
  (linked as a pair, split when the persons were formed), or found (as a pair link, or through
  a third partner's record); and whether its weaker record has a *twin* in the clear-text
  ceiling (`linkage_hub_ceiling.py`: no twin = a linker that sees through every name error
  finds it), its error kinds and its level pattern;
* each false pair link by level pattern, and the false pairs the clustering adds by chaining;
* per pair of partners, EM's estimate against the truth's (the number of matches; m of the
  name's levels and of an unknown birth date);
* what a third partner could add: lost pairs whose person has a record at a third partner,
  and how often a record that two pairs tie to one person (both below the threshold) is that
  person;
* ``--true-m``: the hub relinked with each partner pair's m and number of matches taken from
  the truth instead of EM (u, competition, threshold and clustering unchanged): how much F1
  a better fit could give.

    python benchmarks/linkage_sim_loss.py DIR [DIR ...] --seeds 2026,2027,3
        [--people 3000] [--partners 3] [--overlap 0.15] [--threshold T] [--true-m]
"""

from __future__ import annotations

import argparse
import os
import sys
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.compute as pc
import pyarrow.csv as pacsv

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

import accord.link.hub as link_hub_module  # noqa: E402
import accord.link.match as match_module  # noqa: E402
from accord.link.assign import greedy_one_to_one  # noqa: E402
from accord.link.blocking import all_pairs  # noqa: E402
from accord.link.comparisons import comparison_levels, comparisons  # noqa: E402
from accord.link.encodings import EncodedSet  # noqa: E402
from accord.link.hub import _encoded_sets, link_hub  # noqa: E402
from accord.link.hub_evaluate import find_partner_key  # noqa: E402
from accord.link.match import AUTO_THRESHOLD, MatchConfig, score_pairs  # noqa: E402
from accord.protect.encoding.schema import default_schema  # noqa: E402
from accord.protect.normalise import normalise_codes  # noqa: E402
from accord.protect.pseudonym import hmac_column  # noqa: E402
from accord.store import open_store  # noqa: E402
from linkage_hub import evaluate  # noqa: E402
from linkage_hub_ceiling import pair_twins  # noqa: E402

# Error kinds of the simulator that change a name (the clear-text ceiling sees through them).
NAME_ERRORS = {"compound_name", "initial", "name_swap", "transliteration", "typo"}


def _truth_keys(out: Path) -> tuple[list[str], list[str], list[str]]:
    """Per truth row (the simulator's record order): hub key, person id, error kinds."""
    truth = pacsv.read_csv(out / "exports" / "truth.csv")
    keys = [""] * truth.num_rows
    for partner in sorted(set(truth["partner"].to_pylist())):
        rows = np.flatnonzero(np.asarray(pc.equal(truth["partner"], partner)))
        part = truth.take(rows)
        msg = pc.binary_join_element_wise(
            "case", normalise_codes(pc.cast(part["case_id"], "string")), "|")
        hk = hmac_column(msg, find_partner_key(out / "partners", partner)).to_pylist()
        for r, k in zip(rows.tolist(), hk, strict=True):
            keys[r] = f"{partner.replace('_', '-')}:{k}"
    return keys, truth["person_id"].to_pylist(), [e or "none" for e in
                                                    truth["errors"].to_pylist()]


def _cause(g: np.ndarray, name_levels: int, date_labels: tuple[str, ...]) -> str:
    """A short label of a pair's level pattern (name, date, citizenship)."""
    name = "name null" if g[0] == 0 else ("name top" if g[0] == 1 else
                                          "name unrelated" if g[0] == name_levels - 1
                                          else f"name level {g[0]}")
    d = date_labels[g[1]]
    date = ("date equal" if d.startswith("dice>=0.85") else
            "date unknown" if d == "null" else
            d if d.startswith("age") else
            "year only" if d.startswith("year") else "date partial/other")
    cit = "cit disagrees" if g[3] == 2 else ("cit null" if g[3] == 0 else "cit agrees")
    return f"{name}, {date}, {cit}"


def _person_of(sets: dict[str, EncodedSet], pid: dict[str, str]) -> dict[str, np.ndarray]:
    """Per partner, the true person of each encoded record (a unique marker if unknown)."""
    return {p: np.array([pid.get(f"{p}:{k}", f"?{p}:{k}") for k in s.ids])
            for p, s in sets.items()}


@contextmanager
def true_m(truth_of: dict[str, np.ndarray]) -> Iterator[None]:
    """While active, `match.fit` returns EM's model with m and the number of matches replaced
    by the truth's (m floored at 0.002 per level, as EM's): relinking a hub then shows what
    the model would give with a perfect fit."""
    fit, match_sets = match_module.fit, link_hub_module.match_sets
    current: dict[str, np.ndarray] = {}

    def sets_match(a: EncodedSet, b: EncodedSet, cfg: Any = None, progress: Any = None) -> Any:
        current["a"], current["b"] = truth_of[_partner(a)], truth_of[_partner(b)]
        return match_sets(a, b, cfg, progress)

    def fit_true(gamma: np.ndarray, random_gamma: np.ndarray, n_levels: list[int],
                 **kw: Any) -> Any:
        model = fit(gamma, random_gamma, n_levels, **kw)
        ia, ib = kw["pairs"]
        true = current["a"][ia] == current["b"][ib]
        m = []
        for j, k in enumerate(n_levels):
            c = np.bincount(gamma[true, j], minlength=k) + 0.002 * true.sum()
            m.append(c / c.sum())
        n_a, n_b = kw["sizes"]
        return replace(model, m=m, matches=float(true.sum()),
                       prior=float(true.sum()) / (n_a * n_b))

    _partner_names.clear()
    match_module.fit = fit_true
    link_hub_module.match_sets = sets_match
    try:
        yield
    finally:
        match_module.fit = fit
        link_hub_module.match_sets = match_sets


_partner_names: dict[int, str] = {}


def _partner(s: EncodedSet) -> str:
    return _partner_names[id(s.ids)]


def relink_true_m(out: Path, config: MatchConfig) -> dict[str, Any]:
    keys, person, _ = _truth_keys(out)
    with open_store(out / "hub.duckdb") as store:
        sets = _encoded_sets(store, default_schema())
    truth_of = _person_of(sets, dict(zip(keys, person, strict=True)))
    encoded = link_hub_module._encoded_sets

    def named_sets(store: Any, schema: Any) -> dict[str, EncodedSet]:
        got = encoded(store, schema)
        for p, s in got.items():
            _partner_names[id(s.ids)] = p
        return got

    with true_m(truth_of):
        link_hub_module._encoded_sets = named_sets
        try:
            with open_store(out / "hub.duckdb") as store:
                link_hub(store, config=config)
        finally:
            link_hub_module._encoded_sets = encoded
    return evaluate(out, out / "exports" / "truth.csv")


def analyse(out: Path, seed: int, people: int, partners: int, overlap: float,
            config: MatchConfig) -> dict[str, Any]:
    keys, person, errors = _truth_keys(out)
    twins = pair_twins(people, partners, overlap, seed)  # (row r, row s) -> k
    schema = default_schema()
    comps = comparisons(schema)
    threshold = AUTO_THRESHOLD if config.threshold is None else config.threshold
    with open_store(out / "hub.duckdb") as store:
        link_hub(store, config=config)
        persons = store.query("SELECT person_id, partner, record_key FROM persons")
        sets = _encoded_sets(store, schema)
    score = evaluate(out, out / "exports" / "truth.csv")
    cluster = {f"{p}:{k}": pid for pid, p, k in zip(persons["person_id"].to_pylist(),
                                                    persons["partner"].to_pylist(),
                                                    persons["record_key"].to_pylist(),
                                                    strict=True)}
    members: dict[object, list[str]] = defaultdict(list)
    for k, c in cluster.items():
        members[c].append(k)
    rows_of: dict[str, list[int]] = defaultdict(list)
    for r, pid in enumerate(person):
        rows_of[pid].append(r)
    truth_of = _person_of(sets, dict(zip(keys, person, strict=True)))
    stage: Counter[str] = Counter()
    lost_kinds: dict[str, Counter[str]] = defaultdict(Counter)
    lost_levels: dict[str, Counter[str]] = defaultdict(Counter)
    pair_prob: dict[tuple[str, str], float] = {}
    lost_pairs: list[tuple[str, str, list[int]]] = []
    causes: Counter[str] = Counter()
    chained: Counter[str] = Counter()
    fits: list[str] = []
    n_levels_name = len(comps[0].labels)
    for pa_, pb_ in combinations(sorted(sets), 2):
        a, b = sets[pa_], sets[pb_]
        nb = len(b)
        ia, ib = all_pairs(a, b)
        weight, prob, model = score_pairs(a, b, ia, ib, config)
        gamma = comparison_levels(a, b, ia, ib)
        is_true = truth_of[pa_][ia] == truth_of[pb_][ib]
        m_true = [np.bincount(gamma[is_true, j], minlength=len(model.m[j])) / max(is_true.sum(), 1)
                  for j in (0, 1)]
        fits.append(f"{pa_}|{pb_}: matches EM {model.matches:.0f} / true {int(is_true.sum())}; "
                    "m(name levels) EM " + " ".join(f"{x:.3f}" for x in model.m[0][1:])
                    + " / true " + " ".join(f"{x:.3f}" for x in m_true[0][1:])
                    + f"; m(date unknown) EM {model.m[1][0]:.3f} / true {m_true[1][0]:.3f}")
        above = np.flatnonzero(prob >= threshold)
        keep = above[greedy_one_to_one(ia[above], ib[above], weight[above])]
        codes = ia * nb + ib
        prob_of = dict(zip(codes.tolist(), prob.tolist(), strict=True))
        level_of = {int(c): i for i, c in enumerate(codes.tolist())}
        for i in np.flatnonzero(prob >= 0.02):
            pair_prob[(f"{pa_}:{a.ids[ia[i]]}", f"{pb_}:{b.ids[ib[i]]}")] = float(prob[i])
        linked = set(codes[keep].tolist())
        pos_a = {f"{pa_}:{k}": i for i, k in enumerate(a.ids.tolist())}
        pos_b = {f"{pb_}:{k}": i for i, k in enumerate(b.ids.tolist())}
        true_codes: set[int] = set()
        for rows in rows_of.values():
            ra = [r for r in rows if keys[r].startswith(pa_ + ":")]
            rb = [r for r in rows if keys[r].startswith(pb_ + ":")]
            for r in ra:
                for s in rb:
                    if keys[r] not in pos_a or keys[s] not in pos_b:
                        stage["record not at the hub (quarantined)"] += 1
                        continue
                    code = pos_a[keys[r]] * nb + pos_b[keys[s]]
                    true_codes.add(code)
                    same = cluster.get(keys[r]) == cluster.get(keys[s])
                    if code not in prob_of:
                        st = "found via third partner" if same else "blocking"
                    elif code in linked:
                        st = "found" if same else "clustering split it"
                    elif same:
                        st = "found via third partner"
                    elif prob_of[code] >= threshold:
                        st = "assignment"
                    else:
                        st = "below threshold"
                    stage[st] += 1
                    if st.startswith("found") or st == "blocking":
                        continue
                    tw = "no twin" if twins.get((min(r, s), max(r, s)), 1) == 1 else "twin"
                    kinds = set(errors[r].split(";") + errors[s].split(";"))
                    lost_kinds[f"{st}, {tw}"][
                        ",".join(sorted(kinds - {"none", "phone_changed"})) or "none"] += 1
                    pr = prob_of[code]
                    band = "p<0.1" if pr < 0.1 else "p 0.1-0.5" if pr < 0.5 else "p>=0.5"
                    if not kinds & NAME_ERRORS:
                        band += ", no name error"
                    g = gamma[level_of[code]]
                    lost_levels[f"{st}, {tw}"][
                        f"{_cause(g, n_levels_name, comps[1].labels)}, {band}"] += 1
                    lost_pairs.append((keys[r], keys[s], rows))
        for c in linked - true_codes:
            causes[_cause(gamma[level_of[c]], n_levels_name, comps[1].labels)] += 1
        # pairs of this partner pair put in one person without being linked as a pair
        for ks in members.values():
            for x in ks:
                for y in ks:
                    if x in pos_a and y in pos_b:
                        c = pos_a[x] * nb + pos_b[y]
                        if c not in linked:
                            p = prob_of.get(c, 0.0)
                            chained[f"{'true' if c in true_codes else 'false'}, "
                                    f"p {'< 0.03' if p < 0.03 else '>= 0.03'}"] += 1
    return {"score": score, "fits": fits, "stage": stage, "lost_kinds": lost_kinds,
            "lost_levels": lost_levels, "causes": causes, "chained": chained,
            "third": _third_partner(lost_pairs, keys, cluster, pair_prob),
            "pooled": _pooled(members, cluster, pair_prob, dict(zip(keys, person,
                                                                    strict=True)))}


def _prob(pair_prob: dict[tuple[str, str], float], u: str, v: str) -> float:
    return pair_prob.get((u, v), pair_prob.get((v, u), 0.0))


def _third_partner(lost_pairs: list[tuple[str, str, list[int]]], keys: list[str],
                   cluster: dict[str, Any],
                   pair_prob: dict[tuple[str, str], float]) -> Counter[str]:
    """Lost pairs whose person has a record at a third partner: is it in one side's person,
    and are both of the lost record's pairs (with the two) at least 0.1?"""
    out: Counter[str] = Counter()
    for x, y, rows in lost_pairs:
        others = [keys[t] for t in rows if keys[t] not in (x, y) and keys[t] in cluster]
        if not others:
            out["no third record"] += 1
            continue
        t = others[0]
        if cluster.get(t) not in (cluster.get(x), cluster.get(y)):
            out["third record apart from both"] += 1
            continue
        lone = y if cluster.get(t) == cluster.get(x) else x
        both = min(_prob(pair_prob, lone, t), _prob(pair_prob, x, y)) >= 0.1
        out[f"third with one side; both pairs of the other p >= 0.1: {both}"] += 1
    return out


def _pooled(members: dict[object, list[str]], cluster: dict[str, Any],
            pair_prob: dict[tuple[str, str], float], pid: dict[str, str]) -> Counter[str]:
    """Records alone in their person with pairs (p >= 0.02) to both records of a two-partner
    person: how often they are that person, by the sum of the two probabilities."""
    near: dict[str, dict[str, float]] = defaultdict(dict)
    for (x, y), v in pair_prob.items():
        near[x][y] = near[y][x] = v
    out: Counter[str] = Counter()
    for ms in members.values():
        parts = {m.split(":")[0] for m in ms}
        if len(parts) != 2 or len(ms) != 2:
            continue
        found: dict[str, list[float]] = defaultdict(list)
        for m in ms:
            for y, v in near[m].items():
                if y.split(":")[0] not in parts and len(members[cluster[y]]) == 1:
                    found[y].append(v)
        for y, vs in found.items():
            if len(vs) == 2:
                band = "sum < 0.5" if sum(vs) < 0.5 else ("sum 0.5-0.8" if sum(vs) < 0.8
                                                          else "sum >= 0.8")
                same = pid.get(y) is not None and pid.get(y) == pid.get(ms[0]) == pid.get(ms[1])
                out[f"{band}, {'true' if same else 'false'}"] += 1
    return out


def _f(res: dict[str, Any]) -> str:
    return (f"P {res['precision']:.4f} R {res['recall']:.4f} F1 {res['f1']:.4f} "
            f"(TP {res['true_positives']}, FP {res['false_positives']}, "
            f"FN {res['false_negatives']})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dirs", nargs="+", type=Path)
    ap.add_argument("--seeds", default="2026,2027,3")
    ap.add_argument("--people", type=int, default=3000)
    ap.add_argument("--partners", type=int, default=3)
    ap.add_argument("--overlap", type=float, default=0.15)
    ap.add_argument("--threshold", type=float, default=None)
    ap.add_argument("--true-m", action="store_true",
                    help="also relink with the truth's m and number of matches")
    args = ap.parse_args()
    print(f"nproc {os.cpu_count()}, load {os.getloadavg()[0]:.1f}")
    config = MatchConfig(threshold=args.threshold)
    for out, seed in zip(args.dirs, (int(s) for s in args.seeds.split(",")), strict=True):
        res = analyse(out, seed, args.people, args.partners, args.overlap, config)
        print(f"\n## seed {seed} ({out})\n  linked as `accord link`: {_f(res['score'])}")
        if args.true_m:
            print(f"  with the truth's m and matches: {_f(relink_true_m(out, config))}")
        for line in res["fits"]:
            print("  " + line)
        print("  true pairs by stage: " + ", ".join(
            f"{k} {v}" for k, v in sorted(res["stage"].items())))
        print("  lost pairs by stage, twin in the clear-text ceiling, and error kind:")
        for st, kinds in sorted(res["lost_kinds"].items()):
            print(f"    {st} ({sum(kinds.values())}): " + ", ".join(
                f"{k} {v}" for k, v in kinds.most_common()))
        print("  lost pairs by stage and twin, by level pattern and probability:")
        for st, levels in sorted(res["lost_levels"].items()):
            print(f"    {st}:")
            for c, v in levels.most_common():
                print(f"      {v:4d}  {c}")
        print("  lost pairs and a third partner's record: " + ", ".join(
            f"{k} {v}" for k, v in sorted(res["third"].items())))
        print("  lone records with pairs to both records of a two-partner person: " + ", ".join(
            f"{k} {v}" for k, v in sorted(res["pooled"].items())))
        print("  pairs in one person not linked as a pair (chained): " + ", ".join(
            f"{k} {v}" for k, v in sorted(res["chained"].items())))
        causes = res["causes"]
        print(f"  false pair links ({sum(causes.values())}) by level pattern:")
        for c, v in causes.most_common():
            print(f"    {v:4d}  {c}")


if __name__ == "__main__":
    main()
