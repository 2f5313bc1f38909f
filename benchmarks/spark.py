"""Linkage on the Spark engine (local mode) against the embedded engine, same data, same run.

    .venv/bin/python benchmarks/spark.py [--n 100000,1000000] [--master local[2]]

For each N (records per side, simulated migrant-like people, half shared): encodes both sides
(as partners would: the secret stays in this script, never in the Spark settings), then links
with the embedded engine and with the Spark engine, checks the pairs are identical, and reports
wall time, the driver's peak RSS, Spark's executor peak memory (JVM heap and the process tree,
which includes the Python workers) and shuffle volume per stage, read from Spark's own REST
status API (http://<driver>:4040/api/v1, local to this machine). Prints the load average: the
machine is shared, so wall times are inflated.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from accord.link.match import MatchConfig, match_sets  # noqa: E402
from accord.link.spark import SparkEngine, SparkSettings, start_session  # noqa: E402
from accord.protect.encoding import LinkageSecret  # noqa: E402
from tests.linkage_data import encode_rows, generate  # noqa: E402


def _rest(ui: str, path: str) -> Any:
    with urllib.request.urlopen(f"{ui}/api/v1/{path}", timeout=30) as r:
        return json.load(r)


def _peak_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def run(n: int, master: str, partitions: int | None) -> None:
    secret = LinkageSecret(os.urandom(32))
    t0 = time.perf_counter()
    a_rows, b_rows, _ = generate(n, overlap=0.5, seed=21)
    a, b = encode_rows(a_rows, secret, 1), encode_rows(b_rows[:n], secret, 2)
    del a_rows, b_rows, secret
    print(f"## {n:,} x {n:,}\n\nsimulated and encoded in {time.perf_counter() - t0:.0f} s; "
          f"load average {os.getloadavg()[0]:.1f} (nproc {os.cpu_count()})\n")
    cfg = MatchConfig(exhaustive_below=0)
    t = time.perf_counter()
    one = match_sets(a, b, cfg)
    t_emb = time.perf_counter() - t
    peak_emb = _peak_gb()
    session = start_session(SparkSettings(master, (
        ("spark.executor.processTreeMetrics.enabled", "true"),
        ("spark.driver.memory", "6g"))))
    try:
        steps: dict[str, float] = {}
        t = time.perf_counter()
        two = match_sets(a, b, MatchConfig(exhaustive_below=0,
                                           engine=SparkEngine(session, partitions)),
                         lambda m: steps.setdefault(m.split(" ")[0], time.perf_counter() - t))
        t_spark = time.perf_counter() - t
        ui = session.sparkContext.uiWebUrl
        app = _rest(ui, "applications")[0]["id"]
        stages = _rest(ui, f"applications/{app}/stages")
        execs = _rest(ui, f"applications/{app}/allexecutors")
    finally:
        session.stop()
    same = (np.array_equal(one.ia, two.ia) and np.array_equal(one.ib, two.ib)
            and np.array_equal(one.score, two.score) and one.candidates == two.candidates)
    print("| engine | wall s | candidates | linked pairs | identical |\n| --- | --- | --- | --- | --- |")
    print(f"| embedded | {t_emb:.1f} | {one.candidates:,} | {len(one.ia):,} | - |")
    print(f"| spark {master} | {t_spark:.1f} | {two.candidates:,} | {len(two.ia):,} | {same} |\n")
    print(f"Spark steps (s from start): {steps}; blocking passes: "
          f"{one.diagnostics.get('blocking')}\n")
    print(f"driver peak RSS {_peak_gb():.2f} GB (embedded alone {peak_emb:.2f} GB)\n")
    for e in execs:
        pm = e.get("peakMemoryMetrics") or {}
        print(f"executor {e['id']}: peak JVM heap {pm.get('JVMHeapMemory', 0) / 1e9:.2f} GB, "
              f"process tree RSS (JVM + Python workers) "
              f"{(pm.get('ProcessTreeJVMRSSMemory', 0) + pm.get('ProcessTreePythonRSSMemory', 0)) / 1e9:.2f} GB")
    print("\n| stage | tasks | shuffle write MB | shuffle read MB | input rows | s |")
    print("| --- | --- | --- | --- | --- | --- |")
    for s in sorted(stages, key=lambda s: s["stageId"]):
        secs = (s.get("executorRunTime") or 0) / 1000
        print(f"| {s['stageId']} {s['name'][:40]} | {s['numTasks']} | "
              f"{s['shuffleWriteBytes'] / 1e6:.1f} | {s['shuffleReadBytes'] / 1e6:.1f} | "
              f"{s.get('inputRecords', 0):,} | {secs:.1f} |")
    print(f"\nload average after: {os.getloadavg()[0]:.1f}\n")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", default="100000")
    ap.add_argument("--master", default="local[2]")
    ap.add_argument("--partitions", type=int, default=None)
    args = ap.parse_args()
    for n in (int(x) for x in args.n.split(",")):
        run(n, args.master, args.partitions)


if __name__ == "__main__":
    main()
