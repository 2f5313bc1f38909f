"""Clear-text ceiling of the migrant-like benchmark generator (issue 11): how many true pairs
any linker without labels can find, given what the B record says.

A true pair whose B record has no birth date carries only names, sex and citizenship; if k - 1
other people of A share that combination and have no record in B, the k candidates are
indistinguishable (for year-only and 1-January dates: the same combination and birth year). A
linker then links the right one with chance 1/k at best. Two figures per size:

* "no guessing" (P = 1): recall is the share of true pairs with k = 1 (linkacc2.md's ceiling);
* "best guessing": F1 is raised by a link right with chance q exactly when q > F1 / 2, so the
  F1-optimal linker also links groups of two (q = 1/2) while F1 < 1; this is the upper bound.

    python benchmarks/linkage_ceiling.py --n 20000,100000
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.linkage_data import generate  # noqa: E402


def ceiling(n: int) -> dict[str, float]:
    a_rows, _, truth = generate(n, overlap=0.5, seed=21)
    matched = {x for x, _, _ in truth}
    key = {r["id"]: (r["given"], r["family"], r["sex"], r["citizenship"]) for r in a_rows}
    year = {r["id"]: r["dob"][:4] for r in a_rows}
    free_combo = Counter(key[i] for i in key if i not in matched)
    free_year = Counter((key[i], year[i]) for i in key if i not in matched)
    k_of: list[int] = []
    for x, _, kind in truth:
        if kind == "unknown_date":
            k_of.append(1 + free_combo[key[x]])
        elif kind in ("year_only", "default_date"):
            k_of.append(1 + free_year[(key[x], year[x])])
        else:
            k_of.append(1)
    pairs = len(k_of)
    sure = sum(k == 1 for k in k_of)
    r0 = sure / pairs
    f1_0 = 2 * r0 / (1 + r0)
    # With guessing among two: each such link is right half the time.
    two = sum(k == 2 for k in k_of)
    tp, fp = sure + two / 2, two / 2
    f1_g = 2 * tp / (2 * tp + fp + (pairs - tp))
    return {"pairs": pairs, "recall_p1": r0, "f1_p1": f1_0, "f1_guess": max(f1_0, f1_g),
            "unknown_k1": _share(k_of, truth, "unknown_date")}


def _share(k_of: list[int], truth: list[tuple[str, str, str]], kind: str) -> float:
    ks = [k for k, (_, _, t) in zip(k_of, truth, strict=True) if t == kind]
    return sum(k == 1 for k in ks) / max(len(ks), 1)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", default="20000,100000")
    for n in (int(x) for x in ap.parse_args().n.split(",")):
        c = ceiling(n)
        print(f"N={n:,}: {c['pairs']:,} true pairs; unknown-date pairs without a twin "
              f"{c['unknown_k1']:.3f}; ceiling recall {c['recall_p1']:.3f}, F1 (P = 1) "
              f"{c['f1_p1']:.3f}; F1 with the best guesses {c['f1_guess']:.3f}", flush=True)


if __name__ == "__main__":
    main()
