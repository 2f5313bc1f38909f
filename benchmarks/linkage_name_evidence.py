"""What the encoded names can tell a name error from a look-alike (issue 11), on hubs built by
`linkage_hub.py --keep DIR` (same encodings and secret as every relink of them).

For every pair of two partners' records (all pairs are compared at the simulator's size):

* the name filters' similarity by three measures of the same two filters: Dice
  (2 n11 / (|A| + |B|), what the comparison levels use), the simple matching coefficient
  (n11 + n00) / bits, and Cohen's kappa of the bit vectors put on the Dice scale,
  (1 + kappa) / 2 (chance agreement from each filter's own fill). Diffused filters (each bit the
  XOR of three plain bits) have about half their bits set, so a 0 that agrees says as much as a 1
  that agrees; Dice counts only the 1s;
* by class: true pairs by the name errors their records carry (none, transliteration, compound
  name, typo, initial; a pair with several is counted under each), and non-matches whose sex and
  citizenship agree ("look-alikes": the pairs a name error competes with) or not;
* per measure, the share of each class above fixed points, and the share of look-alike pairs
  above the value that keeps 50 / 80 / 90 % of each error class (lower is better: fewer
  look-alikes as close as the true pairs);
* compound names (a family name dropped): whether the filters' bit counts show that one name
  has more words (a containment measure would need that), against random pairs.

    python benchmarks/linkage_name_evidence.py DIR [DIR ...]
"""

from __future__ import annotations

import argparse
import os
import sys
from itertools import combinations, pairwise
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from accord.link.blocking import all_pairs  # noqa: E402
from accord.link.comparisons import comparison_levels  # noqa: E402
from accord.link.encodings import BitField, dice  # noqa: E402
from accord.link.hub import _encoded_sets  # noqa: E402
from accord.protect.encoding.schema import default_schema  # noqa: E402
from accord.store import open_store  # noqa: E402
from linkage_sim_loss import _person_of, _truth_keys  # noqa: E402

KINDS = ("none", "transliteration", "compound_name", "typo", "initial")
POINTS = (0.55, 0.6, 0.65, 0.7, 0.75, 0.85)


def measures(fa: BitField, fb: BitField, ia: np.ndarray,
             ib: np.ndarray) -> dict[str, np.ndarray]:
    bits = fa.words.shape[1] * 64
    d = dice(fa, fb, ia, ib).astype(np.float64)
    oa, ob = fa.ones[ia].astype(np.float64), fb.ones[ib].astype(np.float64)
    n11 = d * (oa + ob) / 2
    smc = (bits - oa - ob + 2 * n11) / bits
    pa, pb = oa / bits, ob / bits
    chance = pa * pb + (1 - pa) * (1 - pb)
    kappa = (smc - chance) / np.maximum(1 - chance, 1e-9)
    return {"dice": d, "smc": smc, "kappa": (1 + kappa) / 2}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dirs", nargs="+", type=Path)
    args = ap.parse_args()
    print(f"nproc {os.cpu_count()}, load {os.getloadavg()[0]:.1f}")
    schema = default_schema()
    vals: dict[str, dict[str, list[np.ndarray]]] = {}
    ones_true: list[np.ndarray] = []
    ones_rand: list[np.ndarray] = []
    for out in args.dirs:
        keys, person, errors = _truth_keys(out)
        err_of = dict(zip(keys, errors, strict=True))
        with open_store(out / "hub.duckdb", read_only=True) as store:
            sets = _encoded_sets(store, schema)
        truth_of = _person_of(sets, dict(zip(keys, person, strict=True)))
        for pa_, pb_ in combinations(sorted(sets), 2):
            a, b = sets[pa_], sets[pb_]
            ia, ib = all_pairs(a, b)
            g = comparison_levels(a, b, ia, ib)
            fa, fb = a.fields["name"], b.fields["name"]
            ok = fa.present[ia] & fb.present[ib]
            ia, ib, g = ia[ok], ib[ok], g[ok]
            ms = measures(fa, fb, ia, ib)
            true = truth_of[pa_][ia] == truth_of[pb_][ib]
            alike = ~true & (g[:, 2] == 1) & (g[:, 3] == 1)
            classes: dict[str, np.ndarray] = {"look-alike": alike,
                                              "other non-match": ~true & ~alike}
            ea = np.array([err_of.get(f"{pa_}:{k}", "none") for k in a.ids], dtype=object)
            eb = np.array([err_of.get(f"{pb_}:{k}", "none") for k in b.ids], dtype=object)
            t = np.flatnonzero(true)
            kinds = [set(ea[ia[i]].split(";")) | set(eb[ib[i]].split(";")) for i in t]
            for kind in KINDS:
                sel = np.zeros(len(ia), dtype=bool)
                if kind == "none":
                    hit = [not (k & set(KINDS[1:]) or k & {"name_swap"}) for k in kinds]
                else:
                    hit = [kind in k for k in kinds]
                sel[t[np.asarray(hit, dtype=bool)]] = True
                classes[f"true, {kind}"] = sel
            for cname, sel in classes.items():
                for mname, v in ms.items():
                    vals.setdefault(cname, {}).setdefault(mname, []).append(v[sel])
            comp = np.flatnonzero(true)[[("compound_name" in k) for k in kinds]]
            ones_true.append(np.abs(fa.ones[ia[comp]] - fb.ones[ib[comp]]))
            rs = np.random.default_rng(0).choice(len(ia), size=min(20000, len(ia)),
                                                 replace=False)
            ones_rand.append(np.abs(fa.ones[ia[rs]] - fb.ones[ib[rs]]))
    cat = {c: {m: np.concatenate(v) for m, v in d.items()} for c, d in vals.items()}
    for m in ("dice", "smc", "kappa"):
        print(f"\n## {m}")
        print("| class | pairs | median | " + " | ".join(f">= {p}" for p in POINTS) + " |")
        print("| --- | ---: | ---: | " + " | ".join("---:" for _ in POINTS) + " |")
        for c, d in cat.items():
            v = d[m]
            share = " | ".join(f"{(v >= p).mean():.4f}" for p in POINTS)
            print(f"| {c} | {len(v)} | {np.median(v):.3f} | {share} |")
        la = cat["look-alike"][m]
        oth = cat["other non-match"][m]
        print("\nlook-alikes (other non-matches) per true pair, at the value keeping"
              " 50 / 80 / 90 % of the class:")
        for c, d in cat.items():
            if not c.startswith("true"):
                continue
            row = []
            for keep in (0.5, 0.8, 0.9):
                cut = np.quantile(d[m], 1 - keep)
                row.append(f"{(la >= cut).sum() / len(d[m]):.2f} "
                           f"({(oth >= cut).sum() / len(d[m]):.2f})")
            print(f"  {c}: " + " / ".join(row))
    print("\n## Dice bins: share of true pairs with a name error, of look-alikes, ratio")
    err = np.concatenate([cat[f"true, {k}"]["dice"] for k in KINDS[1:]])
    clean = cat["true, none"]["dice"]
    la = cat["look-alike"]["dice"]
    edges = [0.0, *np.round(np.arange(0.5, 0.9, 0.025), 3).tolist(), 1.01]
    print("| Dice | true, name error | true, none | look-alike | ratio (error / look-alike) |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for lo, hi in pairwise(edges):
        e = ((err >= lo) & (err < hi)).mean()
        c = ((clean >= lo) & (clean < hi)).mean()
        x = ((la >= lo) & (la < hi)).mean()
        print(f"| {lo:.3f}-{hi:.3f} | {e:.4f} | {c:.4f} | {x:.6f} | {e / max(x, 1e-9):.1f} |")
    ot, orr = np.concatenate(ones_true), np.concatenate(ones_rand)
    print(f"\ncompound names: |bits A - bits B| median {np.median(ot):.0f}, mean {ot.mean():.1f}"
          f" ({len(ot)} true pairs); random pairs median {np.median(orr):.0f}, "
          f"mean {orr.mean():.1f}")


if __name__ == "__main__":
    main()
