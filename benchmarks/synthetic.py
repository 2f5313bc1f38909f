"""Accord's DP synthesiser vs smartnoise-synth's MST, and DP tables at scale.

Setup (once): the peer pulls torch, so it lives in its own environment:

    python3 -m venv /work/venvs/dp-peers
    /work/venvs/dp-peers/bin/pip install torch==2.13.0     # CPU wheel, before smartnoise
    /work/venvs/dp-peers/bin/pip install -e '.[bench-dp]'  # smartnoise-synth + Accord

Run (from the repository root):

    /work/venvs/dp-peers/bin/python benchmarks/synthetic.py            # everything
    /work/venvs/dp-peers/bin/python benchmarks/synthetic.py --quick    # adult, epsilon 1 only

For each data set (ARX ``adult``, every column categorical; 100,000 simulated people from
``accord.simulate``) and each epsilon (0.5, 1, 4; delta 1e-9 for both), both synthesisers draw as
many rows as the real data has, and we report the mean 2-way and 3-way total-variation distance
(over all 2- and 3-way marginals) and the wall time, with the Accord/peer ratio. Then the DP
tables: every standard table on 1,000,000 simulated people (counting, noise, post-processing).
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from accord.release.dp.mechanism import rho_from_epsilon_delta
from accord.release.dp.standard_tables import levels_for, standard_tables
from accord.release.dp.tables import count_table, measure, postprocess
from accord.release.synthesize import api, data
from accord.release.synthesize.mst import Encoded
from accord.release.synthesize.report import utility
from accord.standard import load_standard

DELTA = 1e-9
ROOT = Path(__file__).resolve().parents[1]


def shared_data() -> Path:
    env = os.environ.get("ACCORD_SHARED_DATA")
    for cand in (Path(env) if env else None, ROOT.parent / "shared" / "data",
                 Path("/work/shared/data")):
        if cand is not None and cand.exists():
            return cand
    raise SystemExit("shared data not found: set ACCORD_SHARED_DATA")


def simulated_people(n: int, seed: int = 7) -> dict[str, np.ndarray]:
    """Person-level columns from Accord's simulator (illustrative distributions, no real data)."""
    from accord.simulate.population import make_population

    std = load_standard()
    pop = make_population(n, seed, std)
    ages = ((pop.first_registration - pop.dob).astype(int) // 365.25).astype(int)
    age_group = std.derived_field("age_group")
    age_band = std.derived_field("age_band_ctdc")
    majority = std.derived_field("majority_status")

    def codes(field: str, idx: np.ndarray) -> np.ndarray:
        values = np.asarray((*std.field(field).code_values, ""), dtype=object)
        return values[np.where(idx < 0, -1, idx)]

    def mask_lists(field: str, mask: np.ndarray) -> list[list[str]]:
        cv = std.field(field).code_values
        return [[c for i, c in enumerate(cv) if m >> i & 1] for m in mask.tolist()]

    countries = np.asarray(pop.countries, dtype=object)
    years = pop.first_registration.astype("datetime64[Y]").astype(int) + 1970
    return {
        "case_type": codes("case_type", pop.case_type),
        "sex": codes("sex", pop.sex),
        "age_group": np.asarray([age_group.band_of(int(a)) for a in ages], dtype=object),
        "age_band_ctdc": np.asarray([age_band.band_of(int(a)) for a in ages], dtype=object),
        "majority_status": np.asarray([majority.band_of(int(a)) for a in ages], dtype=object),
        "citizenship": countries[pop.citizenship],
        "country_of_registration": countries[pop.reg_country],
        "migration_status": codes("migration_status", pop.migration_status),
        "unaccompanied_separated": codes("unaccompanied_separated", pop.uasc),
        "disability": codes("disability", pop.disability),
        "recruiter_relationship": codes("recruiter_relationship", pop.recruiter),
        "dob_quality": codes("dob_quality", pop.dob_quality),
        "registration_year": years.astype(str).astype(object),
        "type_of_exploitation": np.asarray(mask_lists("type_of_exploitation", pop.exploitation),
                                           dtype=object),
        "rh_needs": np.asarray(mask_lists("rh_needs", pop.rh_needs), dtype=object),
    }


def sim_categorical(n: int) -> pa.Table:
    cols = simulated_people(n)
    flat = {k: v for k, v in cols.items() if k not in ("type_of_exploitation", "rh_needs")}
    flat["primary_exploitation"] = np.asarray(
        [x[0] if x else "" for x in cols["type_of_exploitation"]], dtype=object)
    return pa.table({k: pa.array(v.tolist(), pa.string()) for k, v in flat.items()})


def run_accord(enc: Encoded, eps: float) -> tuple[np.ndarray, float]:
    t0 = time.perf_counter()
    res = api.synthesize(enc, eps, DELTA, rows=enc.codes.shape[0])
    return res.synthetic_codes, time.perf_counter() - t0


def run_peer(table: pa.Table, enc: Encoded, eps: float) -> tuple[np.ndarray, float]:
    from snsynth import Synthesizer

    df = table.to_pandas()
    t0 = time.perf_counter()
    synth = Synthesizer.create("mst", epsilon=eps, delta=DELTA, verbose=False)
    out = synth.fit_sample(df, preprocessor_eps=0.0, categorical_columns=list(df.columns),
                           nullable=False)
    elapsed = time.perf_counter() - t0
    back = data.encode(pa.Table.from_pandas(out.astype(str), preserve_index=False),
                       levels=dict(zip(enc.columns, enc.levels, strict=True)))
    return back.codes, elapsed


def scores(enc: Encoded, codes: np.ndarray) -> tuple[float, float]:
    util = utility(enc.codes, codes, enc.sizes, enc.columns)
    by = {o["order"]: o["mean_tvd"] for o in util["orders"]}
    return by[2], by[3]


def bench_synth(name: str, table: pa.Table, epsilons: list[float], peer: bool) -> list[dict[str, Any]]:
    enc = data.encode(table)
    rows = []
    for eps in epsilons:
        codes, secs = run_accord(enc, eps)
        tv2, tv3 = scores(enc, codes)
        row: dict[str, Any] = {"data": name, "epsilon": eps, "accord_tvd2": tv2,
                               "accord_tvd3": tv3, "accord_s": secs}
        if peer:
            pcodes, psecs = run_peer(table, enc, eps)
            ptv2, ptv3 = scores(enc, pcodes)
            row.update(peer_tvd2=ptv2, peer_tvd3=ptv3, peer_s=psecs)
        rows.append(row)
        print(_fmt_row(row), flush=True)
    return rows


def _fmt_row(r: dict[str, Any]) -> str:
    s = (f"| {r['data']} | {r['epsilon']:g} | {r['accord_tvd2']:.3f} | {r['accord_tvd3']:.3f} | "
         f"{r['accord_s']:.1f} |")
    if "peer_s" in r:
        s += (f" {r['peer_tvd2']:.3f} | {r['peer_tvd3']:.3f} | {r['peer_s']:.1f} | "
              f"{r['accord_tvd2'] / r['peer_tvd2']:.2f} | {r['accord_tvd3'] / r['peer_tvd3']:.2f} | "
              f"{r['accord_s'] / r['peer_s']:.3f} |")
    else:
        s += " - | - | - | - | - | - |"
    return s


def bench_tables(n: int, eps: float) -> dict[str, float]:
    std = load_standard()
    cols = simulated_people(n)
    people = pa.table({k: (pa.array(v.tolist(), pa.list_(pa.string()))
                           if k in ("type_of_exploitation", "rh_needs")
                           else pa.array(v.tolist(), pa.string()))
                       for k, v in cols.items()})
    tables = standard_tables()
    t0 = time.perf_counter()
    exact = [count_table(people, t.spec, {c: levels_for(std, c) for c in t.spec.dims})
             for t in tables]
    t1 = time.perf_counter()
    noisy = measure(exact, "gaussian", rho_from_epsilon_delta(eps, DELTA))
    t2 = time.perf_counter()
    published = postprocess(noisy)
    t3 = time.perf_counter()
    cells = sum(len(p.rows) for p in published)
    hub_s = _bench_hub_release(people, eps)
    return {"rows": n, "tables": len(tables), "published_cells": cells, "count_s": t1 - t0,
            "noise_s": t2 - t1, "postprocess_s": t3 - t2, "total_s": t3 - t0, "hub_s": hub_s}


def _bench_hub_release(people: pa.Table, eps: float) -> float:
    """End to end through a DuckDB hub: one row per person in SQL, ledger, release record."""
    import tempfile

    from accord.release.dp.release import release_tables
    from accord.store import open_store

    n = people.num_rows
    rng = np.random.default_rng(3)
    person = rng.integers(0, int(n * 0.95), n)  # about 5 % re-registrations
    records = people.append_column("partner", pa.array(["ngo"] * n)) \
        .append_column("record_key", pa.array([f"r{i}" for i in range(n)])) \
        .append_column("person_pseudonym", pa.array([f"p{i}" for i in person])) \
        .append_column("registration_date", pa.array(
            np.datetime64("2020-01-01") + rng.integers(0, 1500, n).astype("timedelta64[D]")))
    records = records.set_column(records.column_names.index("citizenship"), "citizenship",
                                 pa.array([[c] for c in people.column("citizenship").to_pylist()],
                                          pa.list_(pa.string())))
    with tempfile.TemporaryDirectory() as tmp:
        store = open_store(Path(tmp) / "hub.duckdb")
        store.write_table("records", records, mode="replace")
        t0 = time.perf_counter()
        release_tables(store, eps, delta=DELTA, actor="benchmark")
        elapsed = time.perf_counter() - t0
        store.close()
    return elapsed


HEADER = ("| data | epsilon | Accord 2-way TVD | Accord 3-way TVD | Accord s | MST 2-way TVD | "
          "MST 3-way TVD | MST s | ratio 2-way | ratio 3-way | ratio time |\n"
          "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="adult at epsilon 1 only")
    ap.add_argument("--no-peer", action="store_true", help="Accord only (no smartnoise-synth)")
    ap.add_argument("--sim-rows", type=int, default=100_000)
    ap.add_argument("--table-rows", type=int, default=1_000_000)
    ap.add_argument("--only-tables", action="store_true", help="DP tables at scale only")
    args = ap.parse_args()
    if args.only_tables:
        print(bench_tables(args.table_rows, 1.0))
        return
    epsilons = [1.0] if args.quick else [0.5, 1.0, 4.0]
    adult = data.read_csv(shared_data() / "arx" / "adult.csv", ";")
    print(f"nproc={os.cpu_count()}\n{HEADER}", flush=True)
    bench_synth("adult", adult, epsilons, not args.no_peer)
    if not args.quick:
        bench_synth(f"simulated {args.sim_rows:,}", sim_categorical(args.sim_rows), epsilons,
                    not args.no_peer)
        res = bench_tables(args.table_rows, 1.0)
        print(f"\nDP tables, epsilon 1: {res['tables']} tables, {res['published_cells']} published "
              f"cells on {res['rows']:,} people: count {res['count_s']:.2f} s, noise "
              f"{res['noise_s']:.2f} s, post-process {res['postprocess_s']:.2f} s, total "
              f"{res['total_s']:.2f} s; end to end through a DuckDB hub (people query, ledger, "
              f"release record) {res['hub_s']:.2f} s")


if __name__ == "__main__":
    main()
