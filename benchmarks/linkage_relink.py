"""Relink hubs built by `linkage_hub.py --keep DIR` with the code this script sits beside (same
encodings and secret, so two versions of the code are compared on identical data), and score
them against the simulator's truth: P / R / F1, recall by error kind, CPU and wall seconds.

    python benchmarks/linkage_relink.py DIR [DIR ...] [--name-levels 0.85,0.75,0.7,0.65,0.6]

``--name-levels`` replaces the default Dice thresholds of name fields for this run (an
experiment: the schema's fingerprint does not hold the kinds' defaults, so the hub still takes
its encodings; a schema that writes its own levels is unaffected).
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

import accord.link.comparisons as comparisons_module  # noqa: E402
import accord.protect.encoding.schema as schema_module  # noqa: E402
from accord.link.hub import link_hub  # noqa: E402
from accord.link.match import MatchConfig  # noqa: E402
from accord.protect.encoding.schema import FieldKind  # noqa: E402
from accord.store import open_store  # noqa: E402
from linkage_hub import evaluate  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dirs", nargs="+", type=Path)
    ap.add_argument("--name-levels", default=None)
    ap.add_argument("--threshold", type=float, default=None)
    ap.add_argument("--counted-dice", type=float, default=None,
                    help="look-alikes are candidates at this name Dice level or closer "
                         "(accord.link.frequency.COUNTED_DICE; this branch's code only)")
    args = ap.parse_args()
    if args.counted_dice is not None:
        import accord.link.frequency as frequency_module

        frequency_module.COUNTED_DICE = args.counted_dice
    if args.name_levels:
        bits, hashes, _ = schema_module._KIND_DEFAULTS[FieldKind.NAME]
        levels = tuple(float(x) for x in args.name_levels.split(","))
        schema_module._KIND_DEFAULTS[FieldKind.NAME] = (bits, hashes, levels)
    print(f"code: {comparisons_module.__file__}; name levels "
          f"{schema_module._KIND_DEFAULTS[FieldKind.NAME][2]}; look-alikes from Dice "
          f"{args.counted_dice or 'default'}; nproc {os.cpu_count()}")
    f1s = []
    for out in args.dirs:
        load = os.getloadavg()[0]
        wall, cpu = time.perf_counter(), time.process_time()
        with open_store(out / "hub.duckdb") as store:
            link_hub(store, config=MatchConfig(threshold=args.threshold))
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        res = evaluate(out, out / "exports" / "truth.csv")
        f1s.append(res["f1"])
        kinds = res["recall_by_kind"]
        print(f"{out}: P {res['precision']:.4f} R {res['recall']:.4f} F1 {res['f1']:.4f} "
              f"(TP {res['true_positives']}, FP {res['false_positives']}, "
              f"FN {res['false_negatives']}); link {wall:.1f} s wall, {cpu:.1f} s CPU, "
              f"load {load:.1f}")
        print("    recall: " + ", ".join(f"{k} {v[0]:.3f}" for k, v in kinds.items()
                                          if k in ("transliteration", "compound_name", "typo",
                                                   "initial", "dob_missing", "none")))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"mean F1 {sum(f1s) / len(f1s):.4f}; peak RSS {peak:.0f} MB")


if __name__ == "__main__":
    main()
