"""Complementary suppression, heuristic vs cost-based, with R's sdcTable as the peer.

For every standard suppressed table of a hub (the demo hub of ``accord demo``, and a hub of
100,000 simulated people), the tables are protected as ``accord stats --privacy suppression``
protects them (linked margins and joint audit, ``research.stats.protect_linked``) with the old
greedy complements (``method="heuristic"``) and with the cost-based complements
(``method="cost"``, the default). Printed per table: cells, primary cells, hidden cells, hidden
mass (sum of the hidden counts) and hidden totals (margin cells), for each method; then the
cost-model optimum of the table alone (no linking), and R sdcTable's ``protectTable`` with
``SIMPLEHEURISTIC`` and ``OPT`` when R and sdcTable are installed (``SDCTABLE_LIB``), which is a
benchmark peer only: never installed by the project. ``OPT`` runs to Accord's requirement
(zeros published, hidden cells >= 1, a primary cell's range at least the protection width wide,
as sdcTable's sliding protection level); ``SIMPLEHEURISTIC`` has no protection interval (it only
checks that no primary cell is pinned, with hidden cells >= 0) and runs with its defaults.

Every Accord pattern is checked again by an LP attacker (published cells fixed, hidden >= 1):
``weak`` counts hidden small cells narrowed below the protection width (must be 0). The peer's
patterns are checked by the same attacker under the same rule, for comparison.

Usage:
    SDCTABLE_LIB=DIR python benchmarks/suppression_cost.py [--demo-hub PATH] [--big-hub PATH]
        [--only demo|big]
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
        raws = [_raw_table(store, standard, s, unit, allowed, 10, THRESHOLD)
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


def _cells(d: tuple[int, int, int]) -> str:
    return f"{d[0]} / {d[1]:,} / {d[2]}"


def bench_hub(name: str, hub: Path, lib: str | None) -> list[str]:
    """Phases print as they finish (a long run on a busy machine still leaves figures): the
    default (cost) linked, then the heuristic linked, then per table the cost method alone and
    the peer's two methods; the markdown table at the end."""
    raws, unit = raw_tables(hub)
    width = SuppressionRules(threshold=THRESHOLD).required_width
    print(f"\n### {name}: {hub.name}, counting {unit}", flush=True)
    # as ``compute_tables`` starts: subpopulation cells whose complement is small are hidden
    initial = [r.forced.copy() if r.forced is not None
               else np.zeros(tuple(n + 1 for n in r.counts.shape), dtype=bool) for r in raws]
    exts = [with_margins(r.counts) for r in raws]
    col: dict[str, list[str]] = {}
    weak: dict[str, list[str]] = {}
    seconds: dict[str, float] = {}
    sums: dict[str, np.ndarray] = {}
    for method in ("cost", "heuristic"):
        start = time.perf_counter()
        res = protect_linked(raws, SuppressionRules(threshold=THRESHOLD, method=method),
                             [m.copy() for m in initial])
        seconds[method] = time.perf_counter() - start
        print(f"{method}, linked: {seconds[method]:.1f} s", flush=True)
        col[method], weak[method] = [], []
        sums[method] = np.zeros(3, dtype=np.int64)
        for raw, ext, r in zip(raws, exts, res, strict=True):
            d = describe(ext, r.mask)
            sums[method] += d
            col[method].append(_cells(d))
            weak[method].append(str(weak_cells(ext, r.mask, width)))
            print(f"  {method} {raw.spec.id}: {col[method][-1]} weak {weak[method][-1]}",
                  flush=True)
        if method == "cost":
            primaries = [int((r.reasons == PRIMARY).sum()) for r in res]
    col["alone"] = []
    sums["alone"] = np.zeros(3, dtype=np.int64)
    peers = ("SIMPLEHEURISTIC", "OPT") if lib else ()
    for method in peers:
        col[method], weak[method] = [], []
    for raw, ext in zip(raws, exts, strict=True):
        d = describe(ext, suppress_table(raw.counts, SuppressionRules(threshold=THRESHOLD)).mask)
        sums["alone"] += d
        col["alone"].append(_cells(d))
        line = f"  {raw.spec.id}: cost alone {col['alone'][-1]}"
        with tempfile.TemporaryDirectory() as tmp:
            for method in peers:
                start = time.perf_counter()
                mask = sdctable(raw.counts, lib or "", method, Path(tmp), width)
                took = time.perf_counter() - start
                if mask is None:
                    col[method].append("failed")
                    weak[method].append("-")
                else:
                    zeros = int((mask & (ext == 0)).sum())
                    col[method].append(_cells(describe(ext, mask))
                                       + (f" (+{zeros} zeros)" if zeros else ""))
                    # sdcTable publishes zeros too (status "z"): hidden cells are >= 1,
                    # unless it hid a zero
                    weak[method].append(str(weak_cells(ext, mask, width,
                                                       lower=0.0 if zeros else 1.0)))
                line += f"; {method} {col[method][-1]} weak {weak[method][-1]} ({took:.0f} s)"
        print(line, flush=True)
    out = [f"\n### {name}: {hub.name}, counting {unit}\n",
           f"Protect all {len(raws)} tables (linked): cost {seconds['cost']:.1f} s, heuristic "
           f"{seconds['heuristic']:.1f} s (nproc {os.cpu_count()}, shared machine).\n"]
    head = ("| table | cells | primary | heuristic | cost (default) | cost, table alone "
            "| weak (h/c) |")
    sep = "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"
    if lib:
        head += " sdcTable SIMPLEHEURISTIC | sdcTable OPT, same rule | weak (S/O) |"
        sep += " ---: | ---: | ---: |"
    out += [head, sep]
    for t, (raw, ext) in enumerate(zip(raws, exts, strict=True)):
        row = (f"| {raw.spec.id} | {ext.size} | {primaries[t]} | {col['heuristic'][t]} | "
               f"{col['cost'][t]} | {col['alone'][t]} | {weak['heuristic'][t]}/{weak['cost'][t]} |")
        if lib:
            row += (f" {col['SIMPLEHEURISTIC'][t]} | {col['OPT'][t]} | "
                    f"{weak['SIMPLEHEURISTIC'][t]}/{weak['OPT'][t]} |")
        out.append(row)
    out.append(f"| **all** | | | {_cells(tuple(sums['heuristic']))} | "
               f"{_cells(tuple(sums['cost']))} | {_cells(tuple(sums['alone']))} | |")
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
    ap.add_argument("--only", choices=("demo", "big"), help="run one of the two hubs")
    args = ap.parse_args()
    lib = os.environ.get("SDCTABLE_LIB")
    if lib and not (shutil.which("Rscript") and Path(lib, "sdcTable").exists()):
        lib = None
    print(f"nproc {os.cpu_count()}; sdcTable peer: {'yes' if lib else 'absent (skipped)'}")
    with tempfile.TemporaryDirectory() as tmp:
        hubs = []
        if args.only != "big":
            hubs.append(("demo hub (3,000 simulated people)",
                         args.demo_hub or build_demo(3000, Path(tmp) / "demo")))
        if args.only != "demo":
            hubs.append(("100,000 simulated people",
                         args.big_hub or build_demo(100_000, Path(tmp) / "big")))
        for name, hub in hubs:
            print("\n--- summary ---\n" + "\n".join(bench_hub(name, hub, lib)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
