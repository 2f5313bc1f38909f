"""Benchmark: Accord's k-anonymisation and risk measures vs exhaustive search, anjana, pycanon.

Setup (the peers pin numpy/pandas exactly, so they live in their own environment):

    python3 -m venv /work/venvs/anon-peers
    /work/venvs/anon-peers/bin/pip install -e '.[bench-anon]'   # anjana 1.2.3 (+ pycanon 1.3.5)

(The figures in benchmarks/results/anon.md were taken with pycanon 1.3.6 installed --no-deps over
anjana's pin; the two versions' k/l checks agree on the data used.)

Run:  /work/venvs/anon-peers/bin/python benchmarks/anonymise.py [--skip-anjana] [--skip-1m]
(from a worktree whose code differs from the editable install, prefix
``PYTHONPATH=$PWD/src:$PWD``).

Data: ARX's adult set with ARX's hierarchies (../shared/data/arx), 8 quasi-identifiers
(6,480-node lattice), salary-class as the sensitive attribute; plus 1,000,000 simulated records
with 8 quasi-identifiers. Prints a Markdown report (paste into benchmarks/results/anon.md).
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pcsv

from accord.release.anonymise import (
    PrivacyModel,
    anonymise,
    build_problem,
    check_release,
    exhaustive_search,
    load_hierarchies,
    make_hierarchy,
    optimal_search,
)
from accord.release.anonymise.nodes import class_of_tuples
from accord.release.anonymise.search import Lattice
from accord.release.risk import assess_risk

QI = ["sex", "age", "race", "marital-status", "education", "native-country", "workclass",
      "occupation"]
SENSITIVE = "salary-class"


def shared_data() -> Path:
    env = os.environ.get("ACCORD_SHARED_DATA")
    here = Path(__file__).resolve().parents[2] / "shared" / "data"
    for c in [Path(env)] if env else [here, Path("/work/shared/data")]:
        if c.is_dir():
            return c
    return Path("/work/shared/data")


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def timed_cpu(fn: Callable[[], Any]) -> tuple[Any, float, float]:
    """Wall and process CPU time: on a shared machine CPU time shows the work, wall the wait."""
    t0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - t0, time.process_time() - c0


def load_adult(arx: Path) -> pa.Table:
    return pcsv.read_csv(arx / "adult.csv", parse_options=pcsv.ParseOptions(delimiter=";"),
                         convert_options=pcsv.ConvertOptions(
                             column_types={c: pa.string() for c in [*QI, SENSITIVE]}))


def optimality(table: pa.Table, arx: Path) -> list[str]:
    """Loss of the chosen node vs the exhaustive optimum, k x suppression grid."""
    hier = load_hierarchies(arx, QI)
    problem = build_problem(table, QI, [], hier)
    lattice = Lattice(problem.heights)
    totals = problem.level_totals("entropy")
    ks, supps = [2, 5, 10, 25, 50], [0.0, 0.05]
    # Reference: every node grouped once; for each k every node's suppression and loss.
    ref: dict[tuple[int, float], tuple[float, tuple[int, ...]]] = {}
    t0 = time.perf_counter()
    limit = {s: int(np.floor(s * problem.n + 1e-9)) for s in supps}
    for row in lattice.all_levels():
        levels = tuple(int(x) for x in row)
        cls, n_cls = class_of_tuples(problem, levels)
        sizes = np.bincount(cls, weights=problem.weight, minlength=n_cls)[cls]
        base_loss = float(sum(t[h] for t, h in zip(totals, levels, strict=True)))
        extra_cell = sum(problem.entropy_cell[c][-1][problem.base_columns[c]]
                         - problem.entropy_cell[c][h][problem.base_columns[c]]
                         for c, h in enumerate(levels))
        for k in ks:
            fail = sizes < k
            supp_n = int(problem.weight[fail].sum())
            loss = base_loss + float((problem.weight[fail] * extra_cell[fail]).sum())
            for s in supps:
                if supp_n <= limit[s]:
                    best = ref.get((k, s))
                    cand = (round(loss, 6), levels)
                    if best is None or cand < best:
                        ref[(k, s)] = cand
    t_ref = time.perf_counter() - t0
    lines = ["| k | suppression | Accord loss (NU-entropy, bits) | exhaustive optimum | equal | "
             "Accord time (s) | nodes evaluated |", "|---|---|---|---|---|---|---|"]
    for k in ks:
        for s in supps:
            res, t = timed(lambda k=k, s=s: optimal_search(
                problem, PrivacyModel(k=k, max_suppression=s)))
            opt = ref[(k, s)][0]
            got = round(res.best.loss, 6) if res.best else float("nan")
            lines.append(f"| {k} | {s:.0%} | {got:,.1f} | {opt:,.1f} | "
                         f"{'yes' if abs(got - opt) <= 1e-6 * max(1, opt) else 'NO'} | "
                         f"{t:.2f} | {res.stats.evaluated} of {lattice.size} |")
    lines.append(f"\nReference pass (all {lattice.size} nodes grouped once, all 10 settings "
                 f"scored): {t_ref:.1f} s.")
    return lines


def speed(table: pa.Table, arx: Path, skip_anjana: bool) -> list[str]:
    hier = load_hierarchies(arx, QI)
    out = ["| run | wall (s) | CPU (s) | discernibility | suppressed | note |",
           "|---|---|---|---|---|---|"]
    for supp, mode in ((0.0, "cells"), (0.02, "cells"), (0.02, "records")):
        res, t, c = timed_cpu(lambda supp=supp, mode=mode: anonymise(
            table, QI, hier, k=5, max_suppression=supp, suppression=mode))
        out.append(f"| Accord anonymise, k=5, {supp:.0%}, {mode} (end to end: encode, search, "
                   f"release, independent check) | {t:.2f} | {c:.2f} | "
                   f"{res.utility.discernibility:,.0f} | {res.suppressed_records} records, "
                   f"{res.suppressed_cells} cells | levels {list(res.levels.values())} |")
    problem = build_problem(table, QI, [], hier)
    model = PrivacyModel(k=5, max_suppression=0.02)
    fast, t_fast, c_fast = timed_cpu(lambda: optimal_search(problem, model))
    full, t_full, c_full = timed_cpu(lambda: exhaustive_search(problem, model))
    out.append(f"| Accord search only, k=5, 2% | {t_fast:.2f} | {c_fast:.2f} | | "
               f"{fast.best.suppressed} | {fast.stats.evaluated} nodes evaluated |")
    out.append(f"| exhaustive search, k=5, 2% | {t_full:.2f} | {c_full:.2f} | | "
               f"{full.best.suppressed} | all {full.stats.nodes} nodes; same loss: "
               f"{abs(full.best.loss - fast.best.loss) < 1e-6} |")
    out.append(f"| ratio exhaustive / Accord search | {t_full / t_fast:.0f}x | "
               f"{c_full / c_fast:.0f}x | | | |")
    if not skip_anjana:
        # anjana blanks whole records: compare with Accord's record suppression.
        out.extend(_anjana(table, arx, res_ref=anonymise(table, QI, hier, k=5,
                                                          max_suppression=0.02,
                                                          suppression="records")))
    return out


def _anjana(table: pa.Table, arx: Path, res_ref: Any) -> list[str]:
    try:
        import pandas as pd
        from anjana.anonymity import k_anonymity
    except ImportError:
        return ["| anjana | not installed | | | | |"]
    df = table.to_pandas()
    hierarchies = {}
    for q in QI:
        h = pd.read_csv(next(arx.glob(f"*_hierarchy_{q}.csv")), sep=";", header=None, dtype=str)
        hierarchies[q] = dict(h)
    anon, t, c = timed_cpu(lambda: k_anonymity(df.copy(), [], QI, 5, 2, hierarchies))
    sizes = anon.groupby(QI).size() if len(anon) else pd.Series([], dtype=int)
    dm = float((sizes**2).sum()) + (len(df) - len(anon)) * len(df)
    return [f"| anjana k_anonymity, k=5, 2% | {t:.2f} | {c:.2f} | {dm:,.0f} | {len(df) - len(anon)} | "
            f"discernibility {dm / res_ref.utility.discernibility:.1f}x Accord's |"]


def pycanon_risk(table: pa.Table, released: pa.Table) -> list[str]:
    out = ["| measure | Accord | value | pycanon | value | ratio |", "|---|---|---|---|---|---|"]
    rep, t_acc = timed(lambda: assess_risk(table, QI, [SENSITIVE]))
    try:
        from pycanon import anonymity
    except ImportError:
        return [*out, f"| k, l on adult | {t_acc:.3f} s | k={rep.smallest_class} | "
                "pycanon not installed | | |"]
    df = table.to_pandas()
    k_py, t_k = timed(lambda: anonymity.k_anonymity(df, QI))
    l_py, t_l = timed(lambda: anonymity.l_diversity(df, QI, [SENSITIVE]))
    out.append(f"| k and l of adult (all measures incl. risk) | {t_acc:.3f} s | "
               f"k={rep.smallest_class}, l={rep.l_diversity[0].distinct_min} | "
               f"{t_k + t_l:.3f} s | k={k_py}, l={l_py} | {(t_k + t_l) / t_acc:.1f}x |")
    rel = released.to_pandas()
    chk, t_chk = timed(lambda: check_release(released, QI, [SENSITIVE]))
    kept = rel[~(rel[QI] == "*").all(axis=1)].reset_index(drop=True)
    k2, t_k2 = timed(lambda: anonymity.k_anonymity(kept, QI))
    l2 = anonymity.l_diversity(kept, QI, [SENSITIVE])
    out.append(f"| independent check of the released adult file | {t_chk:.3f} s | "
               f"k={chk.k}, l={chk.l_distinct} | {t_k2:.3f} s | k={k2}, l={l2} | |")
    return out


def simulate(n: int, seed: int = 0) -> tuple[pa.Table, dict[str, Any]]:
    """8 quasi-identifiers with skewed marginals and hand-made hierarchies."""
    rng = np.random.default_rng(seed)
    cols: dict[str, Any] = {}
    hier = {}
    ages = np.clip(rng.gamma(6.0, 5.5, n).astype(int), 0, 99)
    cols["age"] = ages.astype(str)
    def band(a: int) -> str:
        return "15-17" if 15 <= a < 18 else "18-19" if 18 <= a < 20 else f"{a // 5 * 5}+5"

    hier["age"] = make_hierarchy("age", [[str(a), band(a), "minor" if a < 18 else "adult", "*"]
                                         for a in range(100)])
    specs = {"country": 60, "citizenship": 60, "year": 12, "month": 12, "case_type": 3,
             "status": 8, "sex": 3}
    for name, card in specs.items():
        p = rng.dirichlet(np.full(card, 0.6))
        vals = rng.choice(card, n, p=p)
        cols[name] = np.char.add(name[:2], vals.astype(str))
        rows = []
        for v in range(card):
            code = f"{name[:2]}{v}"
            if card >= 12:
                rows.append([code, f"{name[:2]}g{v // 4}", f"{name[:2]}G{v // 16}", "*"])
            else:
                rows.append([code, "*"])
        hier[name] = make_hierarchy(name, rows)
    cols["diag"] = rng.choice(["a", "b", "c", "d", "e"], n).astype(str)
    return pa.table(cols), hier


def million(skip: bool) -> list[str]:
    if skip:
        return ["(skipped)"]
    table, hier = simulate(1_000_000)
    qi = [c for c in table.column_names if c != "diag"]
    nodes = Lattice(tuple(h.height for h in hier.values())).size
    lines = ["| run | wall (s) | CPU (s) | load avg (1 min) | nodes evaluated | suppressed "
             "records | suppressed cells | records touched | peak RSS so far (GB) |",
             "|---|---|---|---|---|---|---|---|---|"]
    runs: list[tuple[float, str, int]] = [(0.0, "cells", 1), (0.05, "cells", 1),
                                          (0.05, "records", 1), (0.05, "cells", 2)]
    for supp, mode, l_div in runs:
        res, t, c = timed_cpu(lambda supp=supp, mode=mode, l_div=l_div: anonymise(
            table, qi, hier, k=5, max_suppression=supp, suppression=mode,
            sensitive=["diag"] if l_div > 1 else [], l=l_div))
        rss_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
        lines.append(f"| anonymise k=5{f', l={l_div} (diag)' if l_div > 1 else ''}, {supp:.0%}, {mode} (levels "
                     f"{list(res.levels.values())}) | {t:.1f} | {c:.1f} | "
                     f"{os.getloadavg()[0]:.1f} | {res.search.evaluated} of {nodes:,} | "
                     f"{res.suppressed_records:,} | {res.suppressed_cells:,} | "
                     f"{res.records_with_suppressed_cells:,} | {rss_gb:.2f} |")
    rep, t_risk = timed(lambda: assess_risk(table, qi, ["diag"]))
    lines += ["", f"- risk measures on 1,000,000 records (classes, k-violations, l, individual and "
              f"global risk, riskiest combinations): {t_risk:.2f} s "
              f"({rep.classes:,} classes, global risk {rep.global_risk:.2%})"]
    try:
        from pycanon import anonymity

        df = table.to_pandas()
        k_py, t_k = timed(lambda: anonymity.k_anonymity(df, qi))
        lines.append(f"- pycanon k-anonymity alone on the same 1M: {t_k:.2f} s (k={k_py}; "
                     f"Accord k={rep.smallest_class})")
    except ImportError:
        pass
    return lines


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--skip-anjana", action="store_true")
    ap.add_argument("--skip-1m", action="store_true")
    ap.add_argument("--skip-optimality", action="store_true")
    args = ap.parse_args()
    arx = shared_data() / "arx"
    if not (arx / "adult.csv").is_file():
        sys.exit(f"ARX adult data not found under {arx}")
    table = load_adult(arx)
    print(f"# Anonymisation benchmark\n\nnproc={os.cpu_count()}; shared machine, timings taken "
          "under contention from other jobs.\n")
    if not args.skip_optimality:
        print("## Optimality on adult (8 QIs, ARX hierarchies)\n")
        print("\n".join(optimality(table, arx)))
    print("\n## Speed on adult, k=5\n")
    print("\n".join(speed(table, arx, args.skip_anjana)))
    hier = load_hierarchies(arx, QI)
    released = anonymise(table, QI, hier, k=5, sensitive=[SENSITIVE], l=2,
                         max_suppression=0.05).table
    print("\n## Risk measures and the independent check vs pycanon\n")
    print("\n".join(pycanon_risk(table, released)))
    print("\n## Scale: 1,000,000 simulated records\n")
    print("\n".join(million(args.skip_1m)))


if __name__ == "__main__":
    main()
