"""Complementary suppression, heuristic vs cost-based, with R's sdcTable as the peer.

For every standard suppressed table of a hub (the demo hub of ``accord demo``, and a hub of
100,000 simulated people), the tables are protected as ``accord stats --privacy suppression``
protects them (linked margins and joint audit, ``research.stats.protect_linked``) with the old
greedy complements (``method="heuristic"``) and with the cost-based complements
(``method="cost"``, the default). Printed per table: cells, primary cells, hidden cells, hidden
mass (sum of the hidden counts) and hidden totals (margin cells), for each method; then the
cost-model optimum of the table alone (no linking), and R sdcTable's ``protectTable`` with
``SIMPLEHEURISTIC`` and ``OPT`` when R and sdcTable are installed (``SDCTABLE_LIB``), which is a
benchmark peer only: never installed by the project.

Every Accord pattern is checked again by an LP attacker (published cells fixed, hidden >= 1):
``weak`` counts hidden small cells narrowed below the protection width (must be 0). The peer's
patterns are checked by the same attacker under the same rule, for comparison.

Usage:
    python benchmarks/suppression_cost.py [--demo-hub PATH] [--big-hub PATH]
Without paths the hubs are built with ``accord demo`` in a temporary directory (3,000 and
100,000 simulated people; the second takes several minutes).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from accord.release.suppression import (
    PRIMARY,
    SuppressionRules,
    TableSuppression,
    feasible_intervals,
    suppress_table,
    table_equations,
    with_margins,
)
from accord.research.specs import default_specs
from accord.research.stats import _Raw, _raw_table, protect_linked  # raw counts: benchmark only
from accord.standard import load_standard
from accord.store import open_store

THRESHOLD = 10
OPT_MINUTES = 10  # sdcTable OPT's own time limit per table (then its best pattern so far)


def raw_tables(hub: Path) -> tuple[list[_Raw], str]:
    standard = load_standard()
    allowed = set(standard.field_names) | {d.name for d in standard.derived}
    with open_store(hub, read_only=True) as store:
        unit = "persons" if store.table_exists("persons") else "records"
        raws = [_raw_table(store, standard, s, unit, allowed, 10, THRESHOLD)  # type: ignore[arg-type]
                for s in default_specs(standard)]
    return raws, unit


def margin_cells(shape: Sequence[int]) -> np.ndarray:
    idx = np.indices(shape)
    out = np.zeros(shape, dtype=bool)
    for axis, n in enumerate(shape):
        out |= idx[axis] == n - 1
    return out


def weak_cells(ext: np.ndarray, mask: np.ndarray, width: int, lower: float = 1.0) -> int:
    """Hidden small cells an LP attacker narrows below ``width`` (the table alone); hidden
    cells are >= ``lower`` (1 for Accord, which publishes zeros; 0 for a method that may hide
    zeros)."""
    shape = tuple(n - 1 for n in ext.shape)
    flat = ext.ravel()
    small = [int(c) for c in np.flatnonzero(mask.ravel()) if 1 <= flat[c] < THRESHOLD]
    if not small:
        return 0
    iv = feasible_intervals(flat, table_equations(shape), mask.ravel(), cells=small,
                            lower=lower)
    return sum(1 for c in small if iv[c][1] - iv[c][0] < width - 1e-6)


def describe(ext: np.ndarray, mask: np.ndarray) -> tuple[int, int, int]:
    """(hidden non-zero cells, hidden mass, hidden margin cells); a hidden zero (sdcTable may
    hide zeros) is not counted: it costs the reader nothing."""
    hid = mask & (ext > 0)
    return int(hid.sum()), int(ext[hid].sum()), int((hid & margin_cells(ext.shape)).sum())


def sdctable(ext_inner: np.ndarray, lib: str, method: str, tmp: Path,
             width: int) -> np.ndarray | None:
    """Hidden mask of R sdcTable's protectTable on the same table, or None without R/sdcTable."""
    rscript = shutil.which("Rscript")
    if rscript is None or not Path(lib, "sdcTable").exists():
        return None
    shape = ext_inner.shape
    names = [f"v{k}" for k in range(len(shape))]
    rows = ["\t".join([*names, "freq"])]
    for idx in np.ndindex(*shape):
        rows.append("\t".join([*(f"c{i:03d}" for i in idx), str(int(ext_inner[idx]))]))
    data = tmp / "table.tsv"
    data.write_text("\n".join(rows) + "\n")
    out = tmp / f"out_{method}.tsv"
    dims = ", ".join(
        f'{n} = data.frame(levels = c("@", rep("@@", {k})), '
        f'codes = c("Total", sprintf("c%03d", 0:{k - 1})))' for n, k in zip(names, shape, strict=True))
    # The same protection requirement as Accord's (OPT only: SIMPLEHEURISTIC has no protection
    # interval, it only checks that no primary cell is pinned, with hidden cells >= 0): zeros
    # stay published (sdcTable's default status "z"), so every hidden cell is known to be >= 1
    # (lower bound 1 on non-zero cells), and a primary cell's interval must be at least
    # ``width`` wide (sliding protection level SPL = width; lower and upper levels 0, where
    # sdcTable's default is 1 and 1 with lower bound 0).
    same_rule = f"""
fr <- getInfo(p, type = "freq"); st <- getInfo(p, type = "sdcStatus")
nz <- which(fr > 0); pr <- which(st == "u")
p <- setInfo(p, type = "lb", index = nz, input = rep(1, length(nz)))
if (length(pr) > 0) {{
  p <- setInfo(p, type = "LPL", index = pr, input = rep(0, length(pr)))
  p <- setInfo(p, type = "UPL", index = pr, input = rep(0, length(pr)))
  p <- setInfo(p, type = "SPL", index = pr, input = rep({width}, length(pr)))
}}
"""
    opt_args = f", timeLimit = {OPT_MINUTES}"
    script = f"""
suppressMessages(library(sdcTable))
d <- read.delim("{data}", colClasses = c(rep("character", {len(shape)}), "numeric"))
p <- makeProblem(data = d, dimList = list({dims}), freqVarInd = {len(shape) + 1})
p <- primarySuppression(p, type = "freq", maxN = {THRESHOLD - 1}, allowZeros = FALSE)
{same_rule if method == "OPT" else ""}
r <- protectTable(p, method = "{method}", verbose = FALSE{opt_args if method == "OPT" else ""})
f <- getInfo(r, type = "finalData")
write.table(as.data.frame(f), "{out}", sep = "\\t", quote = FALSE, row.names = FALSE)
"""
    env = {**os.environ, "R_LIBS": lib}
    res = subprocess.run([rscript, "-e", script], env=env, capture_output=True, text=True,
                         timeout=1800)
    if res.returncode != 0:
        print(f"  sdcTable {method} failed: {res.stderr.strip()[-300:]}")
        return None
    mask = np.zeros(tuple(n + 1 for n in shape), dtype=bool)
    lines = out.read_text().splitlines()
    head = lines[0].split("\t")
    for line in lines[1:]:
        cols = dict(zip(head, line.split("\t"), strict=True))
        idx = tuple(shape[k] if cols[n] == "Total" else int(cols[n][1:])
                    for k, n in enumerate(names))
        mask[idx] = cols["sdcStatus"] in ("u", "x")
    return mask


def standalone(raw: _Raw, rules: SuppressionRules) -> TableSuppression:
    return suppress_table(raw.counts, rules)


def bench_hub(name: str, hub: Path, lib: str | None) -> list[str]:
    raws, unit = raw_tables(hub)
    width = SuppressionRules(threshold=THRESHOLD).required_width
    out = [f"\n### {name}: {hub.name}, counting {unit}\n"]
    runs: dict[str, tuple[list[TableSuppression], float]] = {}
    for method in ("heuristic", "cost"):
        start = time.perf_counter()
        res = protect_linked(raws, SuppressionRules(threshold=THRESHOLD, method=method))
        runs[method] = (res, time.perf_counter() - start)
    print(out[0], flush=True)
    out.append(f"Protect all {len(raws)} tables (linked): heuristic {runs['heuristic'][1]:.1f} s, "
               f"cost {runs['cost'][1]:.1f} s (nproc {os.cpu_count()}, shared machine).\n")
    head = ("| table | cells | primary | heuristic hidden / mass / totals | cost hidden / mass / "
            "totals | cost, table alone | weak (h/c) |")
    sep = "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"
    if lib:
        head += " sdcTable SIMPLEHEURISTIC | sdcTable OPT | weak (S/O) |"
        sep += " ---: | ---: | ---: |"
    out += [head, sep]
    print("\n".join(out[1:]), flush=True)
    sums = np.zeros(12, dtype=np.int64)
    for t, raw in enumerate(raws):
        h = runs["heuristic"][0][t]
        c = runs["cost"][0][t]
        alone = standalone(raw, SuppressionRules(threshold=THRESHOLD))
        ext = with_margins(raw.counts)
        dh, dc, da = describe(ext, h.mask), describe(ext, c.mask), describe(ext, alone.mask)
        wh, wc = weak_cells(ext, h.mask, width), weak_cells(ext, c.mask, width)
        prim = int((h.reasons == PRIMARY).sum())
        row = (f"| {raw.spec.id} | {ext.size} | {prim} | {dh[0]} / {dh[1]:,} / {dh[2]} | "
               f"{dc[0]} / {dc[1]:,} / {dc[2]} | {da[0]} / {da[1]:,} / {da[2]} | {wh}/{wc} |")
        sums[:9] += [*dh, *dc, *da]
        if lib:
            cells = []
            weak = []
            with tempfile.TemporaryDirectory() as tmp:
                for method in ("SIMPLEHEURISTIC", "OPT"):
                    mask = sdctable(raw.counts, lib, method, Path(tmp), width)
                    if mask is None:
                        cells.append("failed")
                        weak.append("-")
                        continue
                    d = describe(ext, mask)
                    cells.append(f"{d[0]} / {d[1]:,} / {d[2]}")
                    weak.append(str(weak_cells(ext, mask, width, lower=0.0)))
            row += f" {cells[0]} | {cells[1]} | {'/'.join(weak)} |"
        out.append(row)
        print(row, flush=True)
    out.append(f"| **all** | | | {sums[0]} / {sums[1]:,} / {sums[2]} | {sums[3]} / {sums[4]:,} / "
               f"{sums[5]} | {sums[6]} / {sums[7]:,} / {sums[8]} | |")
    return out


def build_demo(people: int, where: Path) -> Path:
    cmd = [sys.executable, "-m", "accord.cli.main", "demo", "--people", str(people),
           "--out", str(where)]
    subprocess.run(cmd, check=True, capture_output=True)
    return where / "hub" / "accord-hub.duckdb"


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--demo-hub", type=Path)
    ap.add_argument("--big-hub", type=Path)
    args = ap.parse_args()
    lib = os.environ.get("SDCTABLE_LIB")
    if lib and not (shutil.which("Rscript") and Path(lib, "sdcTable").exists()):
        lib = None
    print(f"nproc {os.cpu_count()}; sdcTable peer: {'yes' if lib else 'absent (skipped)'}")
    with tempfile.TemporaryDirectory() as tmp:
        demo = args.demo_hub or build_demo(3000, Path(tmp) / "demo")
        big = args.big_hub or build_demo(100_000, Path(tmp) / "big")
        for name, hub in (("demo hub (3,000 simulated people)", demo),
                          ("100,000 simulated people", big)):
            print("\n--- summary ---\n" + "\n".join(bench_hub(name, hub, lib)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
