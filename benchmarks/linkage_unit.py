"""Where the linkage-unit layout loses true pairs against the hub layout (issue 11): the same
migrant-like data, secret and seeds linked with the default schema (hub layout) and the unit
schema (no citizenship), and for each true pair: never a candidate (blocking), a candidate below
the threshold (the model), above it but lost in the one-to-one assignment, or linked; false links
by the kind of their B record; and how many true pairs are ambiguous without citizenship (the A
side holds another person of the same name and sex whose birth date the B record cannot rule
out). Run from the repository root:

    python benchmarks/linkage_unit.py [--n 3000] [--seeds 11,12,13]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow as pa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from accord.link.assign import greedy_one_to_one  # noqa: E402
from accord.link.blocking import all_pairs, candidate_codes  # noqa: E402
from accord.link.encodings import EncodedSet  # noqa: E402
from accord.link.match import MatchConfig, score_pairs  # noqa: E402
from accord.protect.encoding import Encoder, EncodingInfo  # noqa: E402
from accord.protect.encoding.schema import (  # noqa: E402
    FieldKind,
    schema_from_dict,
    schema_from_fields,
    unit_schema,
)
from linkage_levels import SECRET, encode  # noqa: E402
from tests.linkage_data import FIELDS, f1_ceiling, generate, look_alikes  # noqa: E402


def candidates(a: EncodedSet, b: EncodedSet, cfg: MatchConfig) -> tuple[np.ndarray, np.ndarray]:
    """The candidate pairs `match_sets` scores (same rule, same seeds)."""
    if len(a) * len(b) <= cfg.exhaustive_below:
        return all_pairs(a, b)
    codes = candidate_codes(a, b, cfg.blocking, {})
    extra = int(min(cfg.random_candidates * max(len(a), len(b)), cfg.max_random_candidates))
    rng = np.random.default_rng(cfg.seed + 1)
    codes = np.union1d(codes, rng.integers(0, len(a) * len(b), extra, dtype=np.int64))
    return codes // len(b), codes % len(b)


def encode_unit(rows: list[dict[str, str]], seed: int) -> EncodedSet:
    """The unit schema's fields and comparison levels on the generator's columns."""
    doc = schema_from_fields(FIELDS).model_dump(mode="json", exclude_none=True)
    levels = {f.kind.value: f.dice_levels for f in unit_schema().fields}
    doc["fields"] = [f for f in doc["fields"] if f["name"] != "citizenship"]
    for f in doc["fields"]:
        if f["kind"] == FieldKind.NAME.value:
            f["levels"] = list(levels[FieldKind.NAME.value])
    schema = schema_from_dict(doc)
    enc = Encoder(schema, SECRET, np.random.default_rng(seed))
    t = pa.Table.from_pylist(rows)
    out = enc.encode(t).append_column("id", t["id"])
    return EncodedSet.from_table(out, EncodingInfo(schema, enc.fingerprint, enc.check_value))


def run(n: int, seed: int, setting: str, cfg: MatchConfig) -> None:
    a_rows, b_rows, truth3 = generate(n, seed=seed)
    parts = setting.split("/")
    salt = parts[2] if len(parts) > 2 else None
    look = look_alikes(a_rows, truth3, citizenship=setting != "unit" and salt != "-citizenship")
    amb = {y for y, v in look.items() if v > 1}
    if setting == "unit":
        a, b = encode_unit(a_rows, 1), encode_unit(b_rows, 2)
    else:
        a = encode(a_rows, float(parts[0]), int(parts[1]), 1, salt)
        b = encode(b_rows, float(parts[0]), int(parts[1]), 2, salt)
    t0 = time.process_time()
    ia, ib = candidates(a, b, cfg)
    weight, prob, model = score_pairs(a, b, ia, ib, cfg)
    thr = 0.5 if cfg.threshold is None else cfg.threshold
    above = np.flatnonzero(prob >= thr)
    keep = above[greedy_one_to_one(ia[above], ib[above], weight[above])]
    nb = len(b)
    pos_a = {x: i for i, x in enumerate(a.ids.tolist())}
    pos_b = {x: i for i, x in enumerate(b.ids.tolist())}
    code = ia * nb + ib
    prob_of = dict(zip(code.tolist(), prob.tolist(), strict=True))
    linked = set(code[keep].tolist())
    kind_b = {pos_b[y]: k for _, y, k in truth3}
    stat: dict[str, Counter[str]] = {}
    true_codes = set()
    for x, y, k in truth3:
        c = pos_a[x] * nb + pos_b[y]
        true_codes.add(c)
        s = stat.setdefault(k, Counter())
        s["n"] += 1
        s["ambiguous"] += y in amb
        if c not in prob_of:
            s["not_candidate"] += 1
        elif prob_of[c] < thr:
            s["below"] += 1
            s["below_amb"] += y in amb
        elif c not in linked:
            s["assignment"] += 1
        else:
            s["linked"] += 1
    fp: Counter[str] = Counter()
    for c in linked - true_codes:
        fp[kind_b.get(c % nb, "b_only")] += 1
    tp = sum(s["linked"] for s in stat.values())
    nfp = sum(fp.values())
    p, r = tp / max(tp + nfp, 1), tp / max(len(truth3), 1)
    print(f"\nn={n} seed={seed} setting={setting}: P {p:.4f} R {r:.4f} F1 "
          f"{2 * p * r / max(p + r, 1e-9):.4f} (ceiling {f1_ceiling(look):.4f}); {len(ia):,} candidates, matches est "
          f"{model.matches:.0f} (true {len(truth3)}), {model.iterations} it, "
          f"{time.process_time() - t0:.1f} s CPU, load {os.getloadavg()[0]:.1f}")
    print("| kind | pairs | ambiguous | not candidate | below (ambiguous) | assignment | linked "
          "| false links |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    tot: Counter[str] = Counter()
    for k in sorted(stat):
        s = stat[k]
        tot.update(s)
        print(f"| {k} | {s['n']} | {s['ambiguous']} | {s['not_candidate']} | {s['below']} "
              f"({s['below_amb']}) | {s['assignment']} | {s['linked']} | {fp[k]} |")
    print(f"| all | {tot['n']} | {tot['ambiguous']} | {tot['not_candidate']} | {tot['below']} "
          f"({tot['below_amb']}) | {tot['assignment']} | {tot['linked']} | {nfp} (B only "
          f"{fp['b_only']}) |", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=3000)
    ap.add_argument("--seeds", default="11,12,13")
    ap.add_argument("--settings", default="0.02/3,0.02/3/-citizenship,unit",
                    help="as linkage_levels.py (the hub layout's schema; the same without "
                         "citizenship), or 'unit': the unit schema's fields and levels")
    args = ap.parse_args()
    print(f"nproc {os.cpu_count()}, load average {os.getloadavg()[0]:.1f}")
    for seed in (int(s) for s in args.seeds.split(",")):
        for setting in args.settings.split(","):
            run(args.n, seed, setting, MatchConfig())


if __name__ == "__main__":
    main()
