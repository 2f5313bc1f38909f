"""Accord's DP synthesiser vs OpenDP's MST and AIM (private-pgm), and DP tables at scale.

Setup (once): the peers pull JAX, so they live in their own environment:

    python3 -m venv /tmp/dp-peers
    /tmp/dp-peers/bin/pip install 'opendp[mbi]' pyarrow pandas

Run (from the repository root, with Accord's environment):

    .venv/bin/python benchmarks/synthetic.py --peer-python /tmp/dp-peers/bin/python
    .venv/bin/python benchmarks/synthetic.py --quick      # adult, epsilon 1 only, Accord only

For each data set (ARX ``adult``, every column categorical; 100,000 simulated people from
``accord.simulate``) and each epsilon (0.5, 1, 4), every synthesiser gets the same zCDP rho (Accord's
epsilon at delta 1e-9 converted; the peers are given that rho directly, with every column's levels
as public keys) and draws as many rows as the real data has, each in its own process; we report
the mean 2-way and 3-way total-variation distance (over all 2- and 3-way marginals), wall time,
peak resident memory, and rows with values outside the domain (nulls), with Accord/peer ratios.
``--peer-rows N`` runs the peers (AIM is slow) on a random subsample of N rows and says so. Then
the DP tables: every standard table on 1,000,000 simulated people.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from accord.release.dp.mechanism import rho_from_epsilon_delta
from accord.release.dp.standard_tables import levels_for, standard_tables
from accord.release.dp.tables import Cache, count_table, measure, postprocess
from accord.release.synthesize import api, data
from accord.release.synthesize.model import Encoded
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


def run_child(cmd: list[str], out: Path) -> tuple[pa.Table, dict[str, float]]:
    """Run one synthesiser in its own process; its JSON line gives time and peak memory."""
    import json
    import resource
    import subprocess
    import tempfile

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    # The child's lines are echoed as they come: AIM on large data runs for hours and prints its
    # timing line before the (slow, untimed) model-error step, so a run stopped during that step
    # still counts with the figures it printed.
    # stderr goes to a file: a pipe nobody reads while stdout is followed fills at 64 KB (JAX's
    # warnings) and would block the child.
    lines: list[str] = []
    with tempfile.TemporaryFile("w+") as errf, subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=errf, text=True) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line.strip())
            if len(cmd) > 2 and cmd[2] != "--accord-one":
                print(f"  peer pid {proc.pid}: {line.strip()}", flush=True)
        proc.wait()
        errf.seek(0)
        err = errf.read()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    found = [ln for ln in lines if ln.startswith("{")]
    if not found or (proc.returncode != 0 and not out.exists()):
        raise subprocess.CalledProcessError(proc.returncode, cmd, "\n".join(lines), err)
    if proc.returncode != 0:
        print(f"  child exited {proc.returncode} after its timing line: figures kept", flush=True)
    stats = json.loads(found[-1])
    # CPU of the whole child process (loading included), user + system: at a load of many jobs
    # per core, wall time says more about the neighbours than about the synthesiser.
    stats["cpu_s"] = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return data.read_csv(out, ","), stats


def scores(enc: Encoded, codes: np.ndarray) -> tuple[float, float]:
    util = utility(enc.codes, codes, enc.sizes, enc.columns)
    by = {o["order"]: o["mean_tvd"] for o in util["orders"]}
    return by[2], by[3]


def score_table(enc: Encoded, synth: pa.Table) -> tuple[float, float, int]:
    """TVDs of a synthetic table against the real one; rows with nulls are counted and dropped."""
    import pyarrow.compute as pc

    synth = synth.select(list(enc.columns))
    ok = np.ones(synth.num_rows, dtype=bool)
    for j, c in enumerate(enc.columns):
        inside = pc.is_in(pc.cast(synth.column(c), pa.string()),
                          value_set=pa.array(enc.levels[j], pa.string()))
        ok &= np.asarray(pc.fill_null(inside, False).to_numpy(zero_copy_only=False), dtype=bool)
    bad = int((~ok).sum())
    kept = synth.filter(pa.array(ok))
    codes = data.encode(kept.cast(pa.schema([(c, pa.string()) for c in enc.columns])),
                        levels=dict(zip(enc.columns, enc.levels, strict=True))).codes
    tv2, tv3 = scores(enc, codes)
    return tv2, tv3, bad


def bench_synth(name: str, table: pa.Table, epsilons: list[float], peer_python: str | None,
                peer_rows: int | None, work: Path, seeds: int = 3,
                modes: tuple[str, ...] = ("adaptive", "mst"),
                peers: tuple[str, ...] = ("aim", "mst")) -> list[dict[str, Any]]:
    import pyarrow.csv as pacsv

    enc = data.encode(table)
    slug = name.split()[0]
    src = work / f"{slug}.csv"
    pacsv.write_csv(table, src)
    peer_src = src
    if peer_rows and peer_rows < table.num_rows:
        pick = np.sort(np.random.default_rng(0).choice(table.num_rows, peer_rows, replace=False))
        peer_src = work / f"{slug}_sub.csv"
        pacsv.write_csv(table.take(pa.array(pick)), peer_src)
    rows = []
    for eps in epsilons:
        rho = rho_from_epsilon_delta(eps, DELTA)
        row: dict[str, Any] = {"data": name, "epsilon": eps, "rho": rho}
        for mode in modes:
            # Accord draws its noise from OpenDP's OS randomness: each run is an independent
            # release; the row is the mean over ``seeds`` runs (single runs vary by about 0.01).
            runs = []
            for i in range(seeds):
                out = work / f"{slug}_accord_{mode}_{eps:g}_{i}.csv"
                synth, st = run_child([sys.executable, __file__, "--accord-one", str(src),
                                       str(out), str(eps), mode], out)
                tv2, tv3, bad = score_table(enc, synth)
                runs.append((tv2, tv3, st["seconds"], st["peak_mb"], bad, st["cpu_s"],
                             st["model_tvd2"], st["model_tvd3"]))
                print(f"|   {name} run {i + 1} | {eps:g} | accord {mode} | {tv2:.3f} | {tv3:.3f} | "
                      f"{st['seconds']:.1f} (CPU {st['cpu_s']:.1f}) | {st['peak_mb']:.0f} | {bad} | "
                      f"model {st['model_tvd2']:.4f} / {st['model_tvd3']:.4f} |", flush=True)
            who = "accord" if mode == "adaptive" else f"accord_{mode}"
            a = np.asarray(runs, dtype=float)
            row.update({f"{who}_tvd2": a[:, 0].mean(), f"{who}_tvd3": a[:, 1].mean(),
                        f"{who}_tvd2_sd": a[:, 0].std(ddof=1) if seeds > 1 else 0.0,
                        f"{who}_tvd3_sd": a[:, 1].std(ddof=1) if seeds > 1 else 0.0,
                        f"{who}_s": a[:, 2].mean(), f"{who}_mb": a[:, 3].max(),
                        f"{who}_cpu": a[:, 5].mean(),
                        f"{who}_null_rows": int(a[:, 4].sum()), f"{who}_runs": seeds})
            print(_fmt(row, who), flush=True)
            row[f"{who}_model_tvd2"], row[f"{who}_model_tvd3"] = a[:, 6].mean(), a[:, 7].mean()
            print(f"|   {name} | {eps:g} | accord {mode}, its model's own marginals (mean of "
                  f"{seeds}) | {a[:, 6].mean():.3f} | {a[:, 7].mean():.3f} | | | |", flush=True)
        for algo in (peers if peer_python else ()):
            pout = work / f"{slug}_{algo}_{eps:g}.csv"
            try:
                psynth, pst = run_child([peer_python, str(Path(__file__).with_name(
                    "synthetic_peers.py")), str(peer_src), str(pout), algo, repr(rho)], pout)
            except Exception as exc:
                tail = str(getattr(exc, "stderr", "") or "").strip().splitlines()[-1:]
                print(f"| {name} | {eps:g} | {algo} failed: {type(exc).__name__} {tail} |",
                      flush=True)
                continue
            p2, p3, pbad = score_table(enc, psynth)
            row.update({f"{algo}_tvd2": p2, f"{algo}_tvd3": p3, f"{algo}_s": pst["seconds"],
                        f"{algo}_cpu": pst["cpu_s"],
                        f"{algo}_mb": pst["peak_mb"], f"{algo}_null_rows": pbad,
                        f"{algo}_rows_in": peer_rows or table.num_rows})
            print(_fmt(row, algo), flush=True)
            if "model_tvd_error" in pst:
                print(f"  model marginals not computed: {pst['model_tvd_error']}", flush=True)
            if "model_tvd2" in pst:
                row.update({f"{algo}_model_tvd2": pst["model_tvd2"],
                            f"{algo}_model_tvd3": pst["model_tvd3"]})
                print(f"|   {name} | {eps:g} | OpenDP {algo}, its model's own marginals (before "
                      f"mbi 1.1's sampler) | {pst['model_tvd2']:.3f} | {pst['model_tvd3']:.3f} | "
                      "| | |", flush=True)
            print(f"  load average now: {os.getloadavg()}", flush=True)
        rows.append(row)
    return rows


def _fmt(r: dict[str, Any], who: str) -> str:
    label = {"accord": "accord adaptive", "accord_mst": "accord mst"}.get(who, f"OpenDP {who}")
    runs = r.get(f"{who}_runs")
    mean = f"mean of {runs}: " if runs else ""
    spread = (f" (sd {r[who + '_tvd2_sd']:.3f} / {r[who + '_tvd3_sd']:.3f})"
              if runs and runs > 1 else "")
    s = (f"| {r['data']} | {r['epsilon']:g} | {label} | {mean}{r[who + '_tvd2']:.3f} | "
         f"{r[who + '_tvd3']:.3f}{spread} | {r[who + '_s']:.1f} (CPU {r[who + '_cpu']:.1f}) | "
         f"{r[who + '_mb']:.0f} | "
         f"{r[who + '_null_rows']} |")
    if not who.startswith("accord") and "accord_tvd2" in r:
        s += (f" {r['accord_tvd2'] / r[who + '_tvd2']:.2f} | {r['accord_tvd3'] / r[who + '_tvd3']:.2f}"
              f" | {r['accord_s'] / r[who + '_s']:.3f} | {r['accord_mb'] / r[who + '_mb']:.2f} |")
    else:
        s += " | | | |"
    return s


def accord_one(src: Path, out: Path, eps: float, mode: str) -> None:
    """Child process: one Accord synthesis, timed from the encoded table, peak RSS reported."""
    import json
    import resource

    import pyarrow.csv as pacsv

    enc = data.encode(data.read_csv(src, ","))
    t0 = time.perf_counter()
    res = api.synthesize(enc, eps, DELTA, rows=enc.codes.shape[0], mode=mode)
    elapsed = time.perf_counter() - t0
    pacsv.write_csv(res.table(), out)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": elapsed, "peak_mb": peak, **model_tvd(enc, res)}))


def model_tvd(enc: Encoded, res: api.Synthesis) -> dict[str, float]:
    """Mean TVD of Accord's fitted model's own 2- and 3-way marginals (before sampling), untimed.

    The counterpart of ``synthetic_peers.model_tvd`` for the peers: sampled rows carry sampling
    error (the bootstrap floor on adult is 0.016 / 0.034), a model's marginals do not, so model
    is compared with model and sampled rows with sampled rows.
    """
    import itertools

    from accord.release.synthesize import joint
    from accord.release.synthesize import model as model_mod
    from accord.release.synthesize.aim import model_marginal

    fitted = joint.estimate(res.measured)  # the model api.synthesize sampled from
    out = {}
    for order in (2, 3):
        tvds = []
        for attrs in itertools.combinations(range(len(enc.columns)), order):
            p = model_marginal(fitted, attrs)
            for k, a in enumerate(attrs):  # compressed levels back to the original ones
                w = fitted.within[a].reshape([-1 if i == k else 1 for i in range(order)])
                p = np.take(p, fitted.groups[a], axis=k) * w
            real = model_mod.marginal(enc.codes, enc.sizes, attrs).astype(float)
            tvds.append(0.5 * float(np.abs(real / real.sum() - p / p.sum()).sum()))
        out[f"model_tvd{order}"] = float(np.mean(tvds))
    return out


def bench_tables(n: int, eps: float) -> dict[str, float]:
    std = load_standard()
    cols = simulated_people(n)
    people = pa.table({k: (pa.array(v.tolist(), pa.list_(pa.string()))
                           if k in ("type_of_exploitation", "rh_needs")
                           else pa.array(v.tolist(), pa.string()))
                       for k, v in cols.items()})
    tables = standard_tables()
    t0 = time.perf_counter()
    cache: Cache = {}
    exact = [count_table(people, t.spec, {c: levels_for(std, c) for c in t.spec.dims}, 2, cache)
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


HEADER = ("| data | epsilon | synthesiser | 2-way TVD | 3-way TVD | s | peak MB | rows with nulls | "
          "ratio 2-way | ratio 3-way | ratio time | ratio memory |\n"
          "| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="adult at epsilon 1 only")
    ap.add_argument("--peer-python", help="python of the venv with opendp[mbi] (omit: Accord only)")
    ap.add_argument("--peer-rows", type=int, help="run the peers on a subsample of N rows")
    ap.add_argument("--epsilons", default="0.5,1,4")
    ap.add_argument("--data", default="adult,simulated")
    ap.add_argument("--sim-rows", type=int, default=100_000)
    ap.add_argument("--table-rows", type=int, default=1_000_000)
    ap.add_argument("--only-tables", action="store_true", help="DP tables at scale only")
    ap.add_argument("--seeds", type=int, default=3, help="Accord runs per epsilon and mode (mean)")
    ap.add_argument("--modes", default="adaptive,mst", help="Accord modes to run ('' for none)")
    ap.add_argument("--peers", default="aim,mst", help="OpenDP synthesisers to run, in order")
    ap.add_argument("--peer-data", default="adult", help="data sets the peers run on")
    ap.add_argument("--accord-one", nargs=4, metavar=("IN", "OUT", "EPS", "MODE"),
                    help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.accord_one:
        accord_one(Path(args.accord_one[0]), Path(args.accord_one[1]), float(args.accord_one[2]),
                   args.accord_one[3])
        return
    if args.only_tables:
        print(bench_tables(args.table_rows, 1.0))
        return
    import tempfile

    epsilons = [1.0] if args.quick else [float(e) for e in args.epsilons.split(",")]
    modes = tuple(m for m in args.modes.split(",") if m)
    peers = tuple(p for p in args.peers.split(",") if p)
    print(f"nproc={os.cpu_count()} load={os.getloadavg()} {time.strftime('%Y-%m-%d %H:%M:%S')}\n"
          f"{HEADER}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        if "adult" in args.data:
            adult = data.read_csv(shared_data() / "arx" / "adult.csv", ";")
            bench_synth("adult", adult, epsilons,
                        args.peer_python if "adult" in args.peer_data else None, args.peer_rows,
                        Path(tmp), args.seeds, modes, peers)
        if "simulated" in args.data and not args.quick:
            bench_synth(f"simulated {args.sim_rows:,}", sim_categorical(args.sim_rows), epsilons,
                        args.peer_python if "simulated" in args.peer_data else None,
                        args.peer_rows, Path(tmp), args.seeds, modes, peers)
    print(f"load after: {os.getloadavg()}")
    if not args.quick and "tables" in args.data:
        res = bench_tables(args.table_rows, 1.0)
        print(f"\nDP tables, epsilon 1: {res['tables']} tables, {res['published_cells']} published "
              f"cells on {res['rows']:,} people: count {res['count_s']:.2f} s, noise "
              f"{res['noise_s']:.2f} s, post-process {res['postprocess_s']:.2f} s, total "
              f"{res['total_s']:.2f} s; end to end through a DuckDB hub (people query, ledger, "
              f"release record) {res['hub_s']:.2f} s")


if __name__ == "__main__":
    main()
