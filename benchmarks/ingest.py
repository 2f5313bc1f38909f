"""Ingest benchmark (issue 2): simulated export -> ingest + protect + hub add, beside `frictionless validate`.

Both run in this one invocation on the same CSV, each in its own child process (wall time and
the child's own peak resident memory via wait4). Target: Accord's end-to-end throughput at least
5x frictionless's (which only validates), peak memory under 1.5 GB.

Setup: `make venv && .venv/bin/pip install -e '.[bench]'` (frictionless is a benchmark peer only).
Run:   `.venv/bin/python benchmarks/ingest.py [--rows 1000000]`
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _measure import run_measured
from accord.simulate import SimulationConfig, simulate

WORK = Path(__file__).resolve().parent / ".work" / "ingest"

# frictionless stops at 1,000 errors by default; the export has deliberately bad rows, so the
# limit is lifted and the row count checked, or the peer would finish early and look fast.
FRICTIONLESS = """
import sys
from frictionless import Resource
report = Resource(sys.argv[1]).validate(limit_errors=10**9)
stats = report.tasks[0].stats
rows = stats.get("rows", 0)
print(stats, report.tasks[0].errors[:3], file=sys.stderr)
assert rows >= int(sys.argv[2]), f"frictionless validated only {rows} rows"
print(rows)
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--keep", action="store_true", help="reuse the generated export if present")
    args = parser.parse_args()
    bin_dir = Path(sys.executable).parent
    accord = str(bin_dir / "accord")

    sim_dir = WORK / f"sim-{args.rows}"
    if not (args.keep and sim_dir.exists()):
        shutil.rmtree(sim_dir, ignore_errors=True)
        simulate(SimulationConfig(people=args.rows, partners=1, overlap=0.0, seed=11, out=sim_dir,
                                  format_a="csv"))
    export = sim_dir / "partner_a.csv"
    mapping = sim_dir / "partner_a.mapping.yaml"
    run_dir = WORK / "run"
    shutil.rmtree(run_dir, ignore_errors=True)
    run_dir.mkdir(parents=True)
    key = run_dir / "partner.key"
    env = {**os.environ, "ACCORD_KEY_FILE": str(key)}
    run_measured([accord, "keys", "init"], env)
    size_mb = export.stat().st_size / 1e6
    print(f"data: {args.rows:,} rows, {size_mb:.0f} MB CSV; cores: {os.cpu_count()}")

    # frictionless refuses absolute paths as unsafe: it reads the file by name from its folder.
    peer = run_measured([sys.executable, "-c", FRICTIONLESS, export.name, str(args.rows)], env, cwd=str(export.parent))
    ingest = run_measured([accord, "ingest", str(export), "--mapping", str(mapping), "--partner", "bench",
                           "--out", str(run_dir / "contribution"), "--json"], env)
    add = run_measured([accord, "hub", "add", str(run_dir / "contribution"), "--hub",
                        str(run_dir / "hub.duckdb")], env)
    accord_s = ingest.seconds + add.seconds
    rows = args.rows
    print(f"{'':32}{'seconds':>9}{'rows/s':>12}{'peak MB':>9}")
    print(f"{'frictionless validate':32}{peer.seconds:9.1f}{rows / peer.seconds:12,.0f}{peer.peak_mb:9.0f}")
    print(f"{'accord ingest (map+validate+protect)':32}{ingest.seconds:9.1f}{rows / ingest.seconds:12,.0f}"
          f"{ingest.peak_mb:9.0f}")
    print(f"{'accord hub add':32}{add.seconds:9.1f}{rows / add.seconds:12,.0f}{add.peak_mb:9.0f}")
    print(f"{'accord end to end':32}{accord_s:9.1f}{rows / accord_s:12,.0f}{max(ingest.peak_mb, add.peak_mb):9.0f}")
    print(f"ratio (accord end-to-end throughput / frictionless): {peer.seconds / accord_s:.2f}x (target >= 5x)")


if __name__ == "__main__":
    main()
