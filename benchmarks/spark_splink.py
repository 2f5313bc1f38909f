"""Accord's linkage on Spark against Splink on Spark: the same records, the same engine, one run.

    .venv/bin/python benchmarks/spark_splink.py --peer-python /tmp/splink-peers/bin/python \
        [--n 100000] [--master local[2]] [--driver-memory 4g] [--work /tmp/accord-spark-bench]

The peer environment holds splink (5.x) and the same pyspark as Accord's (`python3 -m venv
/tmp/splink-peers && /tmp/splink-peers/bin/pip install splink pyspark==<Accord's>`); Splink is a
benchmark peer only. For each N: `benchmarks/spark.py` simulates and encodes both sides (once per
N, under --work) and links them with Accord's embedded and Spark engines; the same generated
people are written in clear for Splink (`splink_spark_peer.py`), which links them on Spark in
local mode with the same master and driver memory. Splink sees clear names, Accord only
encodings: the comparison is of the work (CPU of the whole process tree, wall, executor memory,
shuffle) and of the accuracy each reaches, not of privacy. Prints the ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from accord.link.evaluate import pair_scores  # noqa: E402
from tests.linkage_data import generate  # noqa: E402

HERE = Path(__file__).resolve().parent


def write_clear(n: int, d: Path) -> None:
    """The people `benchmarks/spark.py` encodes (same generator, seed and cut), in clear."""
    if (d / "b_clear.parquet").exists():
        return
    d.mkdir(parents=True, exist_ok=True)
    a_rows, b_rows, _ = generate(n, overlap=0.5, seed=21)
    for side, rows in (("a", a_rows), ("b", b_rows[:n])):
        pq.write_table(pa.Table.from_pylist(rows), d / f"{side}_clear.parquet")


def _memory(executors: list[dict]) -> tuple[float, float]:
    heap = tree = 0.0
    for ex in executors:
        pm = ex.get("peakMemoryMetrics") or {}
        heap = max(heap, pm.get("JVMHeapMemory", 0) / 1e9)
        tree = max(tree, (pm.get("ProcessTreeJVMRSSMemory", 0)
                          + pm.get("ProcessTreePythonRSSMemory", 0)) / 1e9)
    return heap, tree


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--peer-python", required=True)
    ap.add_argument("--n", default="100000")
    ap.add_argument("--master", default="local[2]")
    ap.add_argument("--driver-memory", default="4g")
    ap.add_argument("--work", default="/tmp/accord-spark-bench")
    ap.add_argument("--engines", default="embedded,spark",
                    help="Accord engines to run beside Splink")
    args = ap.parse_args()
    for n in (int(x) for x in args.n.split(",")):
        d = Path(args.work) / f"n{n}"
        subprocess.run([sys.executable, str(HERE / "spark.py"), "--n", str(n), "--engines",
                        args.engines, "--work", args.work, "--master", args.master,
                        "--driver-memory", args.driver_memory], check=True)
        write_clear(n, d)
        subprocess.run([args.peer_python, str(HERE / "splink_spark_peer.py"), str(d),
                        "--master", args.master, "--driver-memory", args.driver_memory],
                       check=True)
        report(n, d, args.engines.split(","))


def report(n: int, d: Path, engines: list[str]) -> None:
    truth = pq.read_table(d / "truth.parquet")
    true_pairs = set(zip(truth.column("a").to_pylist(), truth.column("b").to_pylist(),
                         strict=True))
    got = pq.read_table(d / "splink_pairs")
    splink_f1 = pair_scores(list(zip(got.column("a").to_pylist(), got.column("b").to_pylist(),
                                     strict=True)), true_pairs).as_dict()
    rows = {}
    for e in engines:
        r = json.loads((d / f"{e}.json").read_text())
        rows[f"accord {e}"] = (r, r["f1"])
    rows["splink spark"] = (json.loads((d / "splink.json").read_text()), splink_f1)
    print(f"\n## Accord vs Splink on Spark, {n:,} x {n:,} (nproc {os.cpu_count()}, "
          f"load {os.getloadavg()[0]:.1f} after)\n")
    print("| linker | wall s | CPU s (process tree) | executor heap / tree GB | shuffle GB | "
          "precision | recall | F1 |")
    print("| --- | ---: | ---: | --- | ---: | ---: | ---: | ---: |")
    cpu = {}
    wall = {}
    for name, (r, f) in rows.items():
        cpu[name] = r["cpu_driver"] + r.get("cpu_tree", 0.0)
        wall[name] = r["wall"]
        heap, tree = _memory(r.get("executors", []))
        shuffle = sum(s["shuffleWriteBytes"] for s in r.get("stages", [])) / 1e9
        mem = f"{heap:.2f} / {tree:.2f}" if r.get("executors") else "-"
        print(f"| {name} | {r['wall']:.1f} | {cpu[name]:.0f} | {mem} | {shuffle:.2f} | "
              f"{f['precision']:.4f} | {f['recall']:.4f} | {f['f1']:.4f} |")
    if "accord spark" in rows:
        print(f"\nSplink / Accord on Spark: CPU {cpu['splink spark'] / cpu['accord spark']:.2f}x, "
              f"wall {wall['splink spark'] / wall['accord spark']:.2f}x")
    print(f"Splink steps (s from start): {rows['splink spark'][0]['steps']}")


if __name__ == "__main__":
    main()
