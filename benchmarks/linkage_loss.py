"""Where the migrant-like benchmark loses its true pairs (issue 11): for each true pair, is it
never a candidate (blocking), a candidate scored below the threshold (the model), or above the
threshold but lost in the one-to-one assignment; and which kinds of B record the false links
come from. Same data, secret and seeds as `linkage.py --sections scale`.

    python benchmarks/linkage_loss.py --n 100000 [--save DIR]

``--save`` keeps the candidates and scores (numpy files), ``--load DIR`` re-scores saved
candidates without blocking again (to try scoring changes at 1M in minutes).
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from accord.link.assign import greedy_one_to_one  # noqa: E402
from accord.link.blocking import BlockingConfig, candidate_codes  # noqa: E402
from accord.link.match import AUTO_THRESHOLD, MatchConfig, score_pairs  # noqa: E402
from linkage import MIGRANT_FIELDS, accord_encode  # noqa: E402
from tests.linkage_data import generate  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--save", default="")
    ap.add_argument("--load", default="")
    ap.add_argument("--random-candidates", type=float, default=20.0,
                    help="random pairs added per record (MatchConfig.random_candidates)")
    ap.add_argument("--rounds", type=int, default=MatchConfig().competition_rounds,
                    help="rounds of the competing-candidates correction")
    ap.add_argument("--undated-max-side", type=int, default=BlockingConfig().undated_max_side)
    args = ap.parse_args()
    n = args.n
    a_rows, b_rows, truth3 = generate(n, overlap=0.5, seed=21)
    a, b = pd.DataFrame(a_rows), pd.DataFrame(b_rows[:n])
    a_key = {r["id"]: (r["given"], r["family"], r["sex"], r["citizenship"]) for r in a_rows}
    a_year = {r["id"]: r["dob"][:4] for r in a_rows}
    matched = {x for x, _, _ in truth3}
    free_combo = Counter(a_key[i] for i in a_key if i not in matched)
    free_year = Counter((a_key[i], a_year[i]) for i in a_key if i not in matched)
    del a_rows, b_rows
    ea, _ = accord_encode(a, MIGRANT_FIELDS, seed=1)
    eb, _ = accord_encode(b, MIGRANT_FIELDS, seed=2)
    pos_a = {x: i for i, x in enumerate(ea.ids.tolist())}
    pos_b = {x: i for i, x in enumerate(eb.ids.tolist())}
    truth = [(pos_a[x], pos_b[y], k) for x, y, k in truth3 if y in pos_b]
    kind_of_b = {pos_b[y]: k for x, y, k in truth3 if y in pos_b}
    twin = {}
    for x, y, k in truth3:
        if y not in pos_b:
            continue
        if k == "unknown_date":
            twin[pos_b[y]] = 1 + free_combo[a_key[x]]
        elif k in ("year_only", "default_date"):
            twin[pos_b[y]] = 1 + free_year[(a_key[x], a_year[x])]
        else:
            twin[pos_b[y]] = 1
    cfg = MatchConfig(exhaustive_below=0, random_candidates=args.random_candidates,
                      competition_rounds=args.rounds,
                      blocking=BlockingConfig(undated_max_side=args.undated_max_side))
    c0, t0 = time.process_time(), time.perf_counter()
    if args.load:
        codes = np.load(Path(args.load) / "codes.npy")
        report: dict[str, object] = {"loaded": args.load}
    else:
        report = {}
        codes = candidate_codes(ea, eb, cfg.blocking, report)
        report["blocked_pairs"] = len(codes)
        extra = int(min(cfg.random_candidates * max(len(ea), len(eb)),
                        cfg.max_random_candidates))
        rng = np.random.default_rng(cfg.seed + 1)
        codes = np.union1d(codes, rng.integers(0, len(ea) * len(eb), extra, dtype=np.int64))
        if args.save:
            Path(args.save).mkdir(parents=True, exist_ok=True)
            np.save(Path(args.save) / "codes.npy", codes)
    c_block = time.process_time() - c0
    ia, ib = codes // len(eb), codes % len(eb)
    weight, prob, model = score_pairs(ea, eb, ia, ib, cfg)
    above = np.flatnonzero(prob >= AUTO_THRESHOLD)
    keep = above[greedy_one_to_one(ia[above], ib[above], weight[above])]
    cpu, wall = time.process_time() - c0, time.perf_counter() - t0
    print(f"N={n:,}: {len(ia):,} candidates, blocking {c_block:.1f}s CPU, total {cpu:.1f}s CPU, "
          f"{wall:.1f}s wall, peak {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2:.2f}"
          f" GB, load {os.getloadavg()[0]:.1f}; nproc {os.cpu_count()}")
    print(f"  passes: {report}")
    print(f"  model: matches {model.matches:.0f}, iterations {model.iterations}")
    code_of = ia * len(eb) + ib
    order = np.argsort(code_of)
    sorted_codes = code_of[order]
    linked = set((ia[keep] * len(eb) + ib[keep]).tolist())
    tcode = np.array([x * len(eb) + y for x, y, _ in truth], dtype=np.int64)
    p = np.searchsorted(sorted_codes, tcode)
    p = np.minimum(p, len(sorted_codes) - 1)
    is_cand = sorted_codes[p] == tcode
    tprob = np.where(is_cand, prob[order][np.minimum(p, len(order) - 1)], 0.0)
    stat: dict[str, Counter[str]] = {}
    for (_, y, k), c, pr, tc in zip(truth, is_cand, tprob, tcode, strict=True):
        s = stat.setdefault(k, Counter())
        s["n"] += 1
        s["twin"] += twin[y] > 1
        if not c:
            s["not_candidate"] += 1
        elif pr < AUTO_THRESHOLD:
            s["below"] += 1
        elif int(tc) not in linked:
            s["assignment"] += 1
        else:
            s["linked"] += 1
    tp = sum(s["linked"] for s in stat.values())
    fp_kind: Counter[str] = Counter()
    true_set = set(tcode.tolist())
    for c in linked:
        if c not in true_set:
            fp_kind[kind_of_b.get(c % len(eb), "b_only")] += 1
    fp = sum(fp_kind.values())
    pr_, rc = tp / max(tp + fp, 1), tp / max(len(truth), 1)
    print(f"  P {pr_:.4f} R {rc:.4f} F1 {2 * pr_ * rc / max(pr_ + rc, 1e-9):.4f}; "
          f"{len(truth):,} true pairs, {tp:,} linked, {fp:,} false links")
    print("| kind | pairs | has a twin | not candidate | below threshold | lost in assignment | "
          "linked | false links (B record of this kind) |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for k in sorted(stat):
        s = stat[k]
        print(f"| {k} | {s['n']} | {s['twin']} | {s['not_candidate']} | {s['below']} | "
              f"{s['assignment']} | {s['linked']} | {fp_kind[k]} |")
    tot = Counter[str]()
    for s in stat.values():
        tot.update(s)
    print(f"| all | {tot['n']} | {tot['twin']} | {tot['not_candidate']} | {tot['below']} | "
          f"{tot['assignment']} | {tot['linked']} | {fp} (B only: {fp_kind['b_only']}) |")
    if args.save:
        np.save(Path(args.save) / "prob.npy", prob)


if __name__ == "__main__":
    main()
