"""Accuracy of Accord's linkage on FEBRL4 and the migrant-like generator (3k), Accord only (no
peers: `linkage.py` runs those too, in an environment with clkhash and anonlink), with recall of
day/month-swapped birth dates (issue 11, format 4). Same encodings seeds and data as
`linkage.py --sections febrl,migrant`; run it with PYTHONPATH set to each tree to compare.

    python benchmarks/linkage_dateswap.py [--privacy N]

``--privacy N``: what a curious hub learns from the birth-date filters of N x N migrant-like
records (`tests/attacks/date_filter_attack.py`): which pairs grouping by the date filter and by
the unordered filter finds, by how their dates relate, and how many equal dates have
bit-identical unordered filters (with randomised response and, as a negative control, without).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from accord.link.evaluate import pair_scores  # noqa: E402
from linkage import (  # noqa: E402
    FEBRL_FIELDS,
    MIGRANT_FIELDS,
    accord_encode,
    accord_link,
    febrl_data,
)
from tests.linkage_data import generate  # noqa: E402


def privacy(n: int) -> None:
    from accord.protect.encoding import LinkageSecret
    from tests.attacks.date_filter_attack import date_group_rates
    from tests.linkage_data import encode_rows

    a_rows, b_rows, _ = generate(n, seed=8)
    secret = LinkageSecret(b"benchmark-linkage-secret-32bytes")
    for flip in (0.02, 0.0):
        a = encode_rows(a_rows, secret, 1, flip)
        b = encode_rows(b_rows, secret, 2, flip)
        r = date_group_rates(a, b, [x["dob"] for x in a_rows], [x["dob"] for x in b_rows])
        print(f"p={flip}: pairs {r.pairs}; grouped by the date filter (Dice >= 0.85) "
              f"{ {k: round(v, 6) for k, v in r.date_grouped.items()} }; by the unordered "
              f"filter (>= 0.5) { {k: round(v, 6) for k, v in r.unordered_grouped.items()} }; "
              f"equal dates with bit-identical unordered filters {r.identical_unordered:.5f}")


def main() -> None:
    print(f"nproc {os.cpu_count()}, load {os.getloadavg()[0]:.1f}")
    if len(sys.argv) == 3 and sys.argv[1] == "--privacy":
        privacy(int(sys.argv[2]))
        return
    c0 = time.process_time()
    a, b, truth = febrl_data()
    ea, _ = accord_encode(a, FEBRL_FIELDS, seed=1)
    eb, _ = accord_encode(b, FEBRL_FIELDS, seed=2)
    pairs, _ = accord_link(ea, eb)
    s = pair_scores(pairs, truth)
    print(f"FEBRL4 (blocked, automatic threshold): P {s.precision:.4f} R {s.recall:.4f} "
          f"F1 {s.f1:.4f}")
    for seed in (11, 12):
        a_rows, b_rows, truth3 = generate(3000, seed=seed)
        ea, _ = accord_encode(pd.DataFrame(a_rows), MIGRANT_FIELDS, 0.02, seed=1)
        eb, _ = accord_encode(pd.DataFrame(b_rows), MIGRANT_FIELDS, 0.02, seed=2)
        pairs, _ = accord_link(ea, eb)
        s = pair_scores(pairs, [(x, y) for x, y, _ in truth3])
        found = set(pairs)
        swaps = [(x, y) for x, y, k in truth3 if k == "day_month_swap"]
        print(f"migrant-like 3k seed {seed}: P {s.precision:.4f} R {s.recall:.4f} F1 {s.f1:.4f}; "
              f"swaps linked {sum(p in found for p in swaps)}/{len(swaps)}")
    print(f"CPU {time.process_time() - c0:.1f} s")


if __name__ == "__main__":
    main()
