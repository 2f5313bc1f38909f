"""Linkage accuracy at other hardening settings than the default (issue 11): migrant-like data,
Accord's automatic threshold, blocked, for randomised response p and name diffusion t. Run with
the source tree to measure first on the path (before/after a change of the comparison levels):

    PYTHONPATH=src:. python benchmarks/linkage_levels.py [--n 3000] [--settings 0.02/3,0.05/3,...]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from accord.link.encodings import EncodedSet  # noqa: E402
from accord.link.evaluate import pair_scores  # noqa: E402
from accord.link.match import match_sets  # noqa: E402
from accord.protect.encoding import Encoder, EncodingInfo, LinkageSecret  # noqa: E402
from accord.protect.encoding.schema import schema_from_dict, schema_from_fields  # noqa: E402
from tests.linkage_data import FIELDS, generate  # noqa: E402

SECRET = LinkageSecret(b"benchmark-linkage-secret-32bytes")


def encode(rows: list[dict[str, str]], flip: float, diffusion: int, seed: int,
           salt: str | None = None) -> EncodedSet:
    doc = schema_from_fields(FIELDS).model_dump(mode="json", exclude_none=True)
    doc["hardening"] = {"flip_probability": flip, "diffusion": diffusion}
    if salt and salt.startswith("-"):  # a field left out (the linkage unit's schema: -citizenship)
        doc["fields"] = [f for f in doc["fields"] if f["name"] != salt[1:]]
    elif salt:  # the name field's tokens salted with another column
        doc["fields"][0]["salt"] = salt
    schema = schema_from_dict(doc)
    enc = Encoder(schema, SECRET, np.random.default_rng(seed))
    t = pa.Table.from_pylist(rows)
    out = enc.encode(t).append_column("id", t["id"])
    return EncodedSet.from_table(out, EncodingInfo(schema, enc.fingerprint, enc.check_value))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=3000)
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--settings", default="0.02/3,0.05/3,0.1/3,0.02/5",
                    help="p/diffusion[/salt column of the name field, or -FIELD to leave a field out], "
                         "comma separated")
    ap.add_argument("--citizenship-differs", type=float, default=0.0,
                    help="share of B records whose citizenship is recorded differently (half "
                         "missing, half another country): what salting names with it costs")
    args = ap.parse_args()
    print(f"nproc {os.cpu_count()}, load average {os.getloadavg()[0]:.1f}")
    a_rows, b_rows, truth3 = generate(args.n, seed=args.seed)
    if args.citizenship_differs:
        rng = np.random.default_rng(args.seed)
        codes = sorted({r["citizenship"] for r in a_rows if r.get("citizenship")})
        for r in b_rows:
            if rng.random() < args.citizenship_differs:
                other = [c for c in codes if c != r.get("citizenship")]
                r["citizenship"] = "" if rng.random() < 0.5 else str(rng.choice(other))
    truth = [(x, y) for x, y, _ in truth3]
    for item in args.settings.split(","):
        parts = item.split("/")
        flip, diffusion = float(parts[0]), int(parts[1])
        salt = parts[2] if len(parts) > 2 else None
        a, b = (encode(a_rows, flip, diffusion, 1, salt), encode(b_rows, flip, diffusion, 2, salt))
        t0 = time.process_time()
        r = match_sets(a, b)
        pairs = list(zip(a.ids[r.ia].tolist(), b.ids[r.ib].tolist(), strict=True))
        s = pair_scores(pairs, truth)
        print(f"n={args.n} p={flip:<5} diffusion={diffusion}{f' salt={salt}' if salt else ''}: P {s.precision:.4f} "
              f"R {s.recall:.4f} F1 {s.f1:.4f} ({time.process_time() - t0:.1f} s CPU, "
              f"load {os.getloadavg()[0]:.1f})", flush=True)


if __name__ == "__main__":
    main()
