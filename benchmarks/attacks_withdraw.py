"""The withdrawal oracle of issue 12, measured: can a partner tell, from the hub's answers to
withdrawal requests, which record keys another partner holds? Accord vs the unprotected design
(keys looked up across partners, "403: another partner's record"). Writes
benchmarks/results/attacks/withdraw.md.

    PYTHONPATH=src:. .venv/bin/python benchmarks/attacks_withdraw.py [--people 1000] [--keys 200]

The same attack runs (smaller, over HTTP too) as tests/attacks/test_withdraw_oracle.py.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import pyarrow.parquet as pq

from accord.protect.job import build_contribution
from accord.protect.keys import create_partner_key
from accord.simulate import SimulationConfig, simulate
from accord.store import add_contribution, open_store
from tests.attacks.withdraw_oracle import accord_answer, membership_accuracy, naive_answer, random_keys

OUT = Path(__file__).parent / "results" / "attacks" / "withdraw.md"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--people", type=int, default=1000)
    ap.add_argument("--keys", type=int, default=200)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        sim = simulate(SimulationConfig(people=args.people, partners=3, overlap=0.3, seed=11,
                                        out=root / "exports", format_a="csv"))
        contributions = []
        for files in sim.partners:
            key = create_partner_key(root / files.partner / "partner.key", force=True)
            build_contribution(files.export, files.mapping, files.partner.replace("_", "-"),
                               root / files.partner / "contribution", key)
            contributions.append(root / files.partner / "contribution")
        victim = [str(k) for k in pq.read_table(contributions[1] / "records.parquet",
                                                columns=["record_key"]).column(0).to_pylist()]
        victim = victim[: args.keys]
        nobody = random_keys(victim, len(victim))
        with open_store(root / "hub.duckdb") as store:
            for c in contributions:
                add_contribution(store, c)
            before = store.scalar("SELECT count(*) FROM records")
            t0 = time.perf_counter()
            protected = membership_accuracy(accord_answer, store, "partner-a", victim, nobody)
            seconds = time.perf_counter() - t0
            control = membership_accuracy(naive_answer, store, "partner-a", victim, nobody)
            after = store.scalar("SELECT count(*) FROM records")
    lines = [
        "# Withdrawal answers as a membership oracle (issue 12)", "",
        f"Machine: {os.cpu_count()} cores (`nproc` = {len(os.sched_getaffinity(0))}), shared with other "
        "sessions. Script: `benchmarks/attacks_withdraw.py`; test: "
        "`tests/attacks/test_withdraw_oracle.py` (both engines, and over HTTP).", "",
        f"Hub: 3 simulated partners ({before:,} records, {args.people:,} simulated people). The "
        f"attacker, partner-a, asks to withdraw {len(victim)} keys partner-b holds and "
        f"{len(nobody)} random keys of the same shape, one request each, and guesses from each "
        "answer (its kind and message, counts blanked) whether another partner holds the key.", "",
        "| design | membership accuracy (0.5 = chance) | records withdrawn |",
        "| --- | --- | --- |",
        f"| unprotected control: keys looked up across partners, 403 for another's | {control:.3f} | 0 |",
        f"| Accord: keys looked up among the partner's own records only | {protected:.3f} | "
        f"{before - after} |", "",
        f"{2 * len(victim)} refused withdrawals took {seconds:.1f} s on Accord (each a transaction "
        "rolled back). Not measured: response timing (a key another partner holds and one no one "
        "holds take the same query path: one join over the requesting partner's keys).", "",
    ]
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text("\n".join(lines), encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
