"""Could the hub learn name variants from its own confident links? (issue 11; a measurement of
the potential, on hubs built by `linkage_hub.py --keep DIR`.)

A confident link whose names differ (probability >= 0.9, name Dice < 0.85: a transliteration,
a dropped compound part, a typo, confirmed by the birth date) says that its two name filters are
one person's two spellings. Another pair of records whose names are near-equal (Dice >= 0.85) to
those two filters, one on each side, is then *supported*: its names are a known variant pair,
not merely close. This counts, among pairs of two partners' records whose names are close but
unequal (Dice 0.55-0.85) and whose sex and citizenship agree, how many are supported (by a
confident link of neither of its own records): true pairs the current code loses, true pairs it
finds, and non-matches. Evidence worth a level needs the lost true pairs supported far more
often than the non-matches.

    python benchmarks/linkage_name_variants.py DIR [DIR ...]
"""

from __future__ import annotations

import argparse
import os
import sys
from collections import Counter
from itertools import combinations, combinations_with_replacement
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from accord.link.blocking import all_pairs  # noqa: E402
from accord.link.comparisons import comparison_levels  # noqa: E402
from accord.link.encodings import dice  # noqa: E402
from accord.link.hub import _encoded_sets  # noqa: E402
from accord.link.match import AUTO_THRESHOLD, MatchConfig, score_pairs  # noqa: E402
from accord.protect.encoding.schema import default_schema  # noqa: E402
from accord.store import open_store  # noqa: E402
from linkage_sim_loss import _person_of, _truth_keys  # noqa: E402

NEAR = 0.85
CONFIDENT = 0.9


def analyse(out: Path) -> Counter[str]:
    keys, person, _ = _truth_keys(out)
    with open_store(out / "hub.duckdb", read_only=True) as store:
        sets = _encoded_sets(store, default_schema())
    truth_of = _person_of(sets, dict(zip(keys, person, strict=True)))
    parts = sorted(sets)
    offset = dict(zip(parts, np.cumsum([0] + [len(sets[p]) for p in parts])[:-1].tolist(),
                      strict=True))
    n = sum(len(s) for s in sets.values())
    near: list[set[int]] = [{i} for i in range(n)]
    for pa_, pb_ in combinations_with_replacement(parts, 2):
        a, b = sets[pa_], sets[pb_]
        ia, ib = all_pairs(a, b)
        ok = a.fields["name"].present[ia] & b.fields["name"].present[ib]
        d = dice(a.fields["name"], b.fields["name"], ia[ok], ib[ok])
        for x, y in zip((ia[ok][d >= NEAR] + offset[pa_]).tolist(),
                        (ib[ok][d >= NEAR] + offset[pb_]).tolist(), strict=True):
            near[x].add(y)
            near[y].add(x)
    variants: list[tuple[int, int]] = []
    close: list[tuple[int, int, str]] = []  # (x, y, class)
    for pa_, pb_ in combinations(parts, 2):
        a, b = sets[pa_], sets[pb_]
        ia, ib = all_pairs(a, b)
        _, prob, _ = score_pairs(a, b, ia, ib, MatchConfig())
        g = comparison_levels(a, b, ia, ib)
        ok = a.fields["name"].present[ia] & b.fields["name"].present[ib]
        d = np.zeros(len(ia), dtype=np.float32)
        d[ok] = dice(a.fields["name"], b.fields["name"], ia[ok], ib[ok])
        true = truth_of[pa_][ia] == truth_of[pb_][ib]
        conf = ok & (prob >= CONFIDENT) & (d < NEAR)
        variants += list(zip((ia[conf] + offset[pa_]).tolist(),
                             (ib[conf] + offset[pb_]).tolist(), strict=True))
        sel = ok & (d >= 0.55) & (d < NEAR) & (g[:, 2] == 1) & (g[:, 3] == 1)
        cls = np.where(true, np.where(prob >= AUTO_THRESHOLD, "true, found", "true, lost"),
                       np.where(prob >= AUTO_THRESHOLD, "non-match, linked", "non-match"))
        close += list(zip((ia[sel] + offset[pa_]).tolist(), (ib[sel] + offset[pb_]).tolist(),
                          cls[sel].tolist(), strict=True))
    support: dict[tuple[int, int], int] = Counter()
    for x, y in variants:
        for u in near[x]:
            for v in near[y]:
                if u != v and {u, v}.isdisjoint((x, y)):
                    support[(min(u, v), max(u, v))] += 1
    out: Counter[str] = Counter()
    for x, y, c in close:
        k = (min(x, y), max(x, y))
        # a confident link of one of its own records does not count (it is not this pair)
        s = support.get(k, 0)
        out[f"{c}: pairs"] += 1
        out[f"{c}: supported"] += s > 0
    out["confident variant links"] = len(variants)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dirs", nargs="+", type=Path)
    args = ap.parse_args()
    print(f"nproc {os.cpu_count()}, load {os.getloadavg()[0]:.1f}")
    total: Counter[str] = Counter()
    for out in args.dirs:
        res = analyse(out)
        total.update(res)
        print(f"{out}: " + ", ".join(f"{k} {v}" for k, v in sorted(res.items())))
    print("all: " + ", ".join(f"{k} {v}" for k, v in sorted(total.items())))
    for c in ("true, lost", "true, found", "non-match", "non-match, linked"):
        p = total[f"{c}: pairs"]
        if p:
            print(f"  {c}: {total[f'{c}: supported']} of {p} supported "
                  f"({total[f'{c}: supported'] / p:.3f})")


if __name__ == "__main__":
    main()
