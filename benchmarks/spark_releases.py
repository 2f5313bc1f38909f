"""The releases' group-bys on Spark (local mode) against the embedded engine, same data, same run.

    .venv/bin/python benchmarks/spark_releases.py [--n 100000] [--master local[2]]
    PYTHONPATH=/path/to/other/src .venv/bin/python benchmarks/spark_releases.py --embedded-only

For N simulated records (migrant-like quasi-identifiers: age, sex, citizenship, region, year of
registration; a sensitive form of exploitation; a person id with some people registered twice):
the suppressed tables' GROUP BY (over a Parquet file, read by DuckDB), the DP tables' exact
counts, disclosure risk and k-anonymisation, each with the embedded engine and with the Spark
engine. Checks the outputs are identical and prints wall times and the load average (the
machine is shared: wall times are inflated). ``--embedded-only`` times the embedded engine alone
(with no ``groups`` argument), so the same script measures another checkout's code (main) for
the "embedded no slower" check.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]

from accord.release.anonymise import anonymise, make_hierarchy  # noqa: E402
from accord.release.dp.tables import TableSpec, count_table  # noqa: E402
from accord.release.risk import assess_risk  # noqa: E402
from accord.store import open_store  # noqa: E402

QI = ["age", "sex", "citizenship", "region", "year"]


def simulate(n: int, seed: int = 5) -> tuple[pa.Table, list[str]]:
    rng = np.random.default_rng(seed)
    cit = rng.zipf(1.6, n) % 60
    people = rng.integers(0, int(n * 0.9), n)  # about 10 % of people registered twice
    table = pa.table({
        "age": [str(a) for a in np.clip(rng.normal(28, 11, n), 0, 89).astype(int)],
        "sex": rng.choice(["f", "m", "x"], n, p=[0.55, 0.44, 0.01]).tolist(),
        "citizenship": [f"C{c:02d}" for c in cit],
        "region": [f"R{r:02d}" for r in rng.integers(0, 20, n)],
        "year": [str(y) for y in rng.integers(2015, 2025, n)],
        "exploitation": rng.choice(["sexual", "labour", "forced_marriage", "criminal", "other",
                                    ""], n, p=[0.35, 0.35, 0.1, 0.05, 0.05, 0.1]).tolist(),
    })
    return table, [f"p{p}" for p in people]


def hierarchies() -> dict[str, Any]:
    age = [[str(a), f"{a // 5 * 5}-{a // 5 * 5 + 4}", f"{a // 20 * 20}-{a // 20 * 20 + 19}", "*"]
           for a in range(90)]
    cit = [[f"C{c:02d}", f"G{c // 10}", "*"] for c in range(60)]
    reg = [[f"R{r:02d}", f"Z{r // 5}", "*"] for r in range(20)]
    year = [[str(y), f"{y // 5 * 5}-{y // 5 * 5 + 4}", "*"] for y in range(2015, 2025)]
    return {"age": make_hierarchy("age", age), "sex": make_hierarchy("sex", [[s, "*"] for s in
                                                                              "fmx"]),
            "citizenship": make_hierarchy("citizenship", cit),
            "region": make_hierarchy("region", reg), "year": make_hierarchy("year", year)}


def steps(table: pa.Table, people: list[str], parquet: Path, hub: Path
          ) -> dict[str, Callable[[dict[str, Any]], Any]]:
    """Each release's counting step; ``kw`` is {} (embedded, any checkout) or {"groups": g}."""
    levels = {c: sorted(set(table.column(c).to_pylist())) for c in ("sex", "year", "region")}

    def tables(kw: dict[str, Any]) -> Any:
        select = (f"SELECT CAST(sex AS VARCHAR) AS d0, CAST(year AS VARCHAR) AS d1, "
                  f"CAST(region AS VARCHAR) AS d2 FROM read_parquet('{parquet}')")
        with open_store(hub) as store:
            if not kw:  # the embedded engine's own SQL (what stats ran before the seam)
                got = store.query(f"SELECT d0, d1, d2, count(*) AS n FROM ({select}) "
                                  "GROUP BY d0, d1, d2")
            else:
                got = kw["groups"].count_query(store, select, [], ["d0", "d1", "d2"])
        return sorted(got.to_pylist(), key=lambda r: (r["d0"], r["d1"], r["d2"]))

    def dp_counts(kw: dict[str, Any]) -> Any:
        spec = TableSpec("sex_year_region", ("sex", "year", "region"))
        return count_table(table, spec, levels, **kw).counts.tolist()

    def risk(kw: dict[str, Any]) -> Any:
        rep = assess_risk(table, QI, ["exploitation"], people=people, **kw)
        return rep.summary()

    def anon(kw: dict[str, Any]) -> Any:
        res = anonymise(table, QI, hierarchies(), k=5, sensitive=["exploitation"], l=2,
                        max_suppression=0.05, people=people, **kw)
        return res.table.to_pylist(), res.summary()

    return {"tables GROUP BY": tables, "DP exact counts": dp_counts, "risk": risk,
            "anonymise": anon}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", default="100000")
    ap.add_argument("--master", default="local[2]")
    ap.add_argument("--embedded-only", action="store_true")
    args = ap.parse_args()
    session = None
    if not args.embedded_only:
        from accord.link.spark import SparkSettings, start_session

        session = start_session(SparkSettings(args.master, (
            ("spark.sql.shuffle.partitions", "8"), ("spark.driver.memory", "4g"))))
    for n in (int(x) for x in args.n.split(",")):
        table, people = simulate(n)
        with tempfile.TemporaryDirectory() as tmp:
            parquet = Path(tmp) / "records.parquet"
            pq.write_table(table, parquet)
            hub = Path(tmp) / "hub.duckdb"
            print(f"## {n:,} records\n\nload average {os.getloadavg()[0]:.1f} "
                  f"(nproc {os.cpu_count()})\n")
            print("| step | embedded s | spark s | identical |\n| --- | --- | --- | --- |")
            for name, fn in steps(table, people, parquet, hub).items():
                t = time.perf_counter()
                want = fn({})
                t_emb = time.perf_counter() - t
                if session is None:
                    print(f"| {name} | {t_emb:.2f} | - | - |", flush=True)
                    continue
                from accord.store.spark_groups import SparkGroups

                t = time.perf_counter()
                got = fn({"groups": SparkGroups(session)})
                t_spark = time.perf_counter() - t
                print(f"| {name} | {t_emb:.2f} | {t_spark:.2f} | {got == want} |", flush=True)
            print(f"\nload average after: {os.getloadavg()[0]:.1f}\n")
    if session is not None:
        session.stop()


if __name__ == "__main__":
    sys.exit(main())
