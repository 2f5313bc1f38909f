"""EM of the embedded engine (`fellegi_sunter.fit`) on one linkage's candidates, two source
trees in one run: CPU, wall, the peak RSS EM adds, and whether the models are identical.

    .venv/bin/python benchmarks/em_stream.py --data /tmp/x/n300000 --before-src /tmp/main/src
        [--repeat 2]

``--data``: a directory of `benchmarks/spark.py` (a.parquet, b.parquet, a.info, b.info). The
candidates (blocking as `match_sets`), their levels and the random pairs' levels are made once
(`em_inputs.npz` there); each fit then runs in a fresh child process with one source tree first
on PYTHONPATH, its kernels compiled on a small fit first, its peak RSS reset (/proc/self/
clear_refs) just before the measured fit, so the peak is EM's own above the inputs.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import json
import os
import pickle
import subprocess
import sys
import time
from pathlib import Path

import numpy as np


def _status(key: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024**2  # kB -> GB
    return 0.0


def prepare(d: Path) -> Path:
    out = d / "em_inputs.npz"
    if out.exists():
        return out
    import pyarrow.parquet as pq

    from accord.link.blocking import candidate_codes
    from accord.link.comparisons import comparison_levels, comparisons
    from accord.link.encodings import EncodedSet
    from accord.link.match import MatchConfig, _independent, _random_pairs

    a, b = (EncodedSet.from_table(pq.read_table(d / f"{s}.parquet"),
                                  pickle.loads((d / f"{s}.info").read_bytes())) for s in "ab")
    cfg = MatchConfig(exhaustive_below=0)
    codes = candidate_codes(a, b, cfg.blocking, {})
    ia, ib = codes // len(b), codes % len(b)
    ra, rb = _random_pairs(len(a), len(b), cfg.u_pairs, cfg.seed)
    np.savez(out, gamma=comparison_levels(a, b, ia, ib), ia=ia, ib=ib,
             random_gamma=comparison_levels(a, b, ra, rb), sizes=np.array([len(a), len(b)]),
             n_levels=np.array([len(c.labels) for c in comparisons(a.info.schema)]),
             independent=np.array(_independent(a.info.schema), dtype=np.int64))
    return out


def child(path: Path) -> None:
    import accord
    from accord.link.fellegi_sunter import fit

    z = np.load(path)
    gamma, ia, ib, rg = z["gamma"], z["ia"], z["ib"], z["random_gamma"]
    n_a, n_b = (int(x) for x in z["sizes"])
    kw = {"n_levels": [int(x) for x in z["n_levels"]],
          "independent": tuple(int(x) for x in z["independent"])}
    small = ia < 2000  # compile the kernels (same types) outside the measure
    fit(gamma[small], rg, kw["n_levels"], pairs=(ia[small], ib[small]), sizes=(2000, n_b),
        independent=kw["independent"])
    gc.collect()
    base = _status("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")  # VmHWM := VmRSS
    c0, t0 = time.process_time(), time.perf_counter()
    model = fit(gamma, rg, kw["n_levels"], pairs=(ia, ib), sizes=(n_a, n_b),
                independent=kw["independent"])
    cpu, wall = time.process_time() - c0, time.perf_counter() - t0
    h = hashlib.sha256()
    for arr in [*model.m, *model.u, np.array([model.matches, model.iterations])]:
        h.update(np.ascontiguousarray(arr).tobytes())
    print(json.dumps({"src": str(Path(accord.__file__).parent), "cpu": cpu, "wall": wall,
                      "peak_above_inputs_gb": _status("VmHWM") - base, "inputs_gb": base,
                      "iterations": model.iterations, "model": h.hexdigest()[:16],
                      "pairs": len(ia)}))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--before-src", required=True)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--child", default=None)
    args = ap.parse_args()
    if args.child:
        child(Path(args.child))
        return
    path = prepare(Path(args.data))
    print(f"load average {os.getloadavg()[0]:.1f} (nproc {os.cpu_count()})")
    rows = []
    for _ in range(args.repeat):  # alternated, so that a change in load hits both
        for name, src in (("before", args.before_src), ("after", None)):
            env = dict(os.environ)
            if src:
                env["PYTHONPATH"] = os.pathsep.join([src, *filter(None, [env.get("PYTHONPATH")])])
            out = subprocess.run([sys.executable, __file__, "--data", args.data, "--before-src",
                                  args.before_src, "--child", str(path)], env=env, check=True,
                                 capture_output=True, text=True).stdout
            rows.append({"tree": name, **json.loads(out.strip().splitlines()[-1])})
            print(rows[-1], flush=True)
    print("\n| tree | CPU s | wall s | EM peak above inputs GB | iterations | model sha256 |")
    print("| --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print(f"| {r['tree']} | {r['cpu']:.1f} | {r['wall']:.1f} | "
              f"{r['peak_above_inputs_gb']:.2f} | {r['iterations']} | {r['model']} |")
    print(f"\nload average after {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
