"""Issue 10, tables over time: differencing attacks against each release method, and what the
protection costs. Writes benchmarks/results/attacks/overtime.md.

    .venv/bin/python benchmarks/attacks_overtime.py [--trials 50] [--demo-hub accord-demo/hub/accord-hub.duckdb]

Attacks (tests/attacks/differencing.py; the attacker knows every other person): one person
added, or one person's record replaced, between two releases; MILP for the person's cell in
every table (with and without their sex known) and "has code X" for list fields; the person's
estimate stratum from seven --by releases. Releases: exact counts, exact with 1-9 hidden
(deterministic), and Accord's DP draw at several rho.

Utility: hidden cells and error per table, suppression (one-off release) vs the DP draw, on the
demo hub and on 100,000 simulated people.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from accord.release.dp.standard_tables import MAX_VALUES, levels_for, load_people  # noqa: E402
from accord.release.dp.tables import TableSpec as DPSpec  # noqa: E402
from accord.release.dp.tables import count_table  # noqa: E402
from accord.research.noisy import (  # noqa: E402
    DEFAULT_RHO,
    ESTIMATE_RHO,
    draw_tables,
    noise_sd,
    publish,
    stats_specs,
)
from accord.research.stats import compute_tables  # noqa: E402
from accord.standard import load_standard  # noqa: E402
from accord.standard.arrow import record_schema  # noqa: E402
from accord.store import open_store  # noqa: E402
from tests.attacks.differencing import (  # noqa: E402
    exact,
    exact_strata,
    person,
    run,
    run_strata,
    table_text,
)
from tests.attacks.noisy_release import dp_release, dp_strata_release, people_table  # noqa: E402

STANDARD = load_standard()
OUT = Path(__file__).parent / "results" / "attacks" / "overtime.md"


def utility(people: pa.Table, store_path: Path | None, rho: float) -> list[str]:
    """Per table: cells hidden under one-off suppression vs under the DP draw, the DP noise sd,
    and the DP error on the cells (mean absolute error, and median relative error on cells
    of 100 or more)."""
    payload = draw_tables(people, STANDARD, rho, None)
    shown = {s.id: (h, c) for s, _, _, h, c in publish(payload, STANDARD, 10, "persons")}
    sup: dict[str, tuple[int, int]] = {}
    if store_path is not None:
        with open_store(store_path) as store:
            res = compute_tables(store, unit="auto", history=False)
            sup = {t.id: (t.suppressed, t.cells) for t in res.tables}
    lines = ["| table | suppression: hidden / cells | DP: hidden / cells | DP noise sd per "
             "measurement | DP mean abs. error per cell | DP median rel. error, cells >= 100 |",
             "| --- | --- | --- | --- | --- | --- |"]
    for spec in stats_specs(STANDARD):
        levels = {c: levels_for(STANDARD, c) for c in spec.columns}
        ex = count_table(people, DPSpec(spec.id, spec.columns), levels, MAX_VALUES).counts
        got = np.asarray(payload["tables"][spec.id]["values"])
        got = got[tuple(slice(0, -1) for _ in range(got.ndim))]
        err = np.abs(got - ex)
        big = ex >= 100
        rel = f"{np.median(err[big] / ex[big]):.1%}" if big.any() else "no such cell"
        s = f"{sup[spec.id][0]} / {sup[spec.id][1]}" if spec.id in sup else "-"
        h, c = shown[spec.id]
        lines.append(f"| {spec.id} | {s} | {h} / {c} | {noise_sd(payload, spec.id):.1f} | "
                     f"{err[ex > 0].mean():.1f} | {rel} |")
    return lines


def simulated_store(n: int, path: Path) -> pa.Table:
    """n simulated people as one partner's records (one record per person), and their table."""
    from tests.test_stats_report import make_store, record

    rng = np.random.default_rng(5)
    ppl = [person(rng) for _ in range(n)]
    rows = []
    import datetime as dt

    for i, p in enumerate(ppl):
        rows.append(record(i, "ngo_a", age=p["age"], sex=p["sex"], case_type=p["case_type"],
                           migration_status=p["migration_status"], citizenship=[p["citizenship"]],
                           type_of_exploitation=p["type_of_exploitation"],
                           rh_needs=p["rh_needs"],
                           registration_date=dt.date(int(p["registration_year"]), 6, 1)))
    make_store(path, rows).close()
    return people_table(ppl)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=50)
    ap.add_argument("--demo-hub", type=Path, default=Path("accord-demo/hub/accord-hub.duckdb"))
    ap.add_argument("--people", type=int, default=100_000)
    args = ap.parse_args()
    started = time.time()
    out = [f"# Tables over time: differencing attacks and the cost of protection (issue 10)",
           "", f"Machine: {os.cpu_count()} cores (shared). Generated by "
           f"`benchmarks/attacks_overtime.py --trials {args.trials}`.", "",
           "Attacker: knows every other person; sees the release after one person was added (or "
           "their record replaced); MILP (scipy `milp`) for the person's cell / codes. Chance = "
           "the same MILP without the release (prior only), on the same trials. Default rho "
           f"per data version: {DEFAULT_RHO} (tables) + {ESTIMATE_RHO} (estimates).", ""]
    releases = {"exact counts": exact(False), "exact, 1-9 hidden": exact(True),
                f"Accord DP rho {DEFAULT_RHO}": dp_release(DEFAULT_RHO),
                "DP rho 1": dp_release(1.0)}
    for scenario in ("added", "updated"):
        res = run(releases, scenario, args.trials, seed=7 if scenario == "added" else 8)
        out += [f"## One person {scenario}", "", table_text(res), ""]
        print(f"{scenario} done {time.time() - started:.0f}s", flush=True)
    strata = {"exact seen counts": exact_strata(False), "exact, 1-9 hidden": exact_strata(True),
              f"Accord DP rho {ESTIMATE_RHO}": dp_strata_release(ESTIMATE_RHO),
              "DP rho 0.1": dp_strata_release(0.1), "DP rho 1": dp_strata_release(1.0)}
    sres = run_strata(strata, max(args.trials, 100))
    out += ["## Nested estimate strata (seven --by releases)", "",
            "| release | trials | success | chance | advantage |", "| --- | --- | --- | --- | --- |"]
    for name, t in sres.items():
        out.append(f"| {name} | {t.trials} | {t.rate:.0%} | {t.baseline:.0%} | "
                   f"{t.advantage * 100:+.0f} pts |")
    out.append("")
    print(f"strata done {time.time() - started:.0f}s", flush=True)
    out += ["## Utility cost per table", ""]
    if args.demo_hub.exists():
        with open_store(args.demo_hub) as store:
            columns = list(dict.fromkeys(c for t in stats_specs(STANDARD) for c in t.columns))
            people, unit = load_people(store, columns)
        out += [f"### Demo hub ({people.num_rows:,} people, {unit})", "",
                *utility(people, args.demo_hub, DEFAULT_RHO), ""]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "hub.duckdb"
        people = simulated_store(args.people, path)
        out += [f"### {args.people:,} simulated people", "",
                *utility(people, path, DEFAULT_RHO), ""]
    out.append(f"Total run time {time.time() - started:.0f} s.")
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text("\n".join(out) + "\n")
    print(OUT.read_text())


if __name__ == "__main__":
    main()
