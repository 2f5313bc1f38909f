"""Hub linkage on the project simulator: precision, recall and F1 of `accord link`, by error kind.

Simulates partners (`accord.simulate`), protects each export with linkage encodings, adds the
contributions to a hub, links it and scores the persons against the simulator's truth, as
`accord link --evaluate` does. Nothing is downloaded and no peer is needed: run it with the
project's environment (from the repository root):

    python benchmarks/linkage_hub.py [--people 3000] [--partners 3] [--overlap 0.15]
        [--seed 2026] [--threshold T] [--keep DIR]

Recall by error kind counts a true pair under every error either of its records carries
(`errors` column of truth.csv); "none" is a pair whose records carry no error.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.compute as pc
import pyarrow.csv as pacsv

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from accord.link.evaluate import pair_scores, pairs_from_clusters  # noqa: E402
from accord.link.hub import link_hub  # noqa: E402
from accord.link.hub_evaluate import find_partner_key  # noqa: E402
from accord.link.match import MatchConfig  # noqa: E402
from accord.protect.encoding import LinkageSecret, new_linkage_secret  # noqa: E402
from accord.protect.encoding.pipeline import pipeline_encoder  # noqa: E402
from accord.protect.keys import create_partner_key  # noqa: E402
from accord.protect.normalise import normalise_codes  # noqa: E402
from accord.protect.pseudonym import hmac_column  # noqa: E402
from accord.simulate import SimulationConfig, simulate  # noqa: E402
from accord.store import open_store  # noqa: E402
from accord.store.hub import add_contribution  # noqa: E402


def _contribute(*args: Any, **kwargs: Any) -> Any:
    """The partner-side job: `protect.job.build_contribution`, `ingest_export` before it moved."""
    try:
        fn = importlib.import_module("accord.protect.job").build_contribution
    except ImportError:
        fn = importlib.import_module("accord.ingest.pipeline").ingest_export
    return fn(*args, **kwargs)


def build_hub(out: Path, people: int, partners: int, overlap: float, seed: int,
              unit: bool = False, secret: LinkageSecret | None = None,
              flips: np.random.Generator | None = None) -> Path:
    """Simulated exports -> contributions with encodings -> hub; returns the truth file.
    ``unit``: the linkage-unit layout (encodings in unit files under out/unit, not at the hub).
    ``secret`` and ``flips`` (the randomised response): fixed for reproducible builds; by
    default a new secret and flips from the OS, as partners make them."""
    sim = simulate(SimulationConfig(people=people, partners=partners, overlap=overlap,
                                    seed=seed, out=out / "exports", format_a="csv"))
    enc = pipeline_encoder(secret or new_linkage_secret(out / "linkage.key"), unit=unit,
                           rng=flips)
    with open_store(out / "hub.duckdb") as store:
        for files in sim.partners:
            home = out / "partners" / files.partner
            key = create_partner_key(home / "partner.key", force=True)
            _contribute(files.export, files.mapping, files.partner.replace("_", "-"),
                        home / "contribution", key, linkage_encoder=enc.encode,
                        linkage_meta=enc.manifest,
                        **({"linkage_unit": out / "unit" / f"{files.partner}.parquet"}
                           if unit else {}))
            add_contribution(store, home / "contribution")
    return sim.truth


def evaluate(out: Path, truth_path: Path) -> dict[str, Any]:
    truth = pacsv.read_csv(truth_path)
    with open_store(out / "hub.duckdb") as store:
        persons = store.query("SELECT person_id, partner, record_key FROM persons")
    errors: dict[str, set[str]] = {}
    members: dict[str, list[str]] = defaultdict(list)
    for partner in sorted(set(truth["partner"].to_pylist())):
        part = truth.filter(pc.equal(truth["partner"], partner))
        msg = pc.binary_join_element_wise(
            "case", normalise_codes(pc.cast(part["case_id"], "string")), "|")
        keys = hmac_column(msg, find_partner_key(out / "partners", partner)).to_pylist()
        hub_name = partner.replace("_", "-")
        for pid, rk, err in zip(part["person_id"].to_pylist(), keys,
                                part["errors"].to_pylist(), strict=True):
            members[str(pid)].append(f"{hub_name}:{rk}")
            errors[f"{hub_name}:{rk}"] = set((err or "").split(";")) - {""}
    found: dict[str, list[str]] = defaultdict(list)
    for pid, p, rk in zip(persons["person_id"].to_pylist(), persons["partner"].to_pylist(),
                          persons["record_key"].to_pylist(), strict=True):
        found[str(pid)].append(f"{p}:{rk}")
    predicted, true = pairs_from_clusters(found), pairs_from_clusters(members)
    kinds: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for pair in true:
        for kind in (errors.get(pair[0], set()) | errors.get(pair[1], set())) or {"none"}:
            kinds[kind][0] += pair in predicted
            kinds[kind][1] += 1
    return {**pair_scores(predicted, true).as_dict(),
            "recall_by_kind": {k: (round(v[0] / v[1], 3), v[1]) for k, v in sorted(kinds.items())}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--people", type=int, default=3000)
    ap.add_argument("--partners", type=int, default=3)
    ap.add_argument("--overlap", type=float, default=0.15)
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument("--threshold", type=float, default=None)
    ap.add_argument("--keep", type=Path, default=None, help="build the hub here and keep it")
    ap.add_argument("--layout", choices=("hub", "unit"), default="hub",
                    help="unit: link at a linkage unit (unit schema, no clear attributes) and "
                         "import its persons into the hub (docs/linkage.md, Threat model)")
    args = ap.parse_args()
    print(f"cores: {os.cpu_count()} (timings under contention from other jobs on this machine)")
    with tempfile.TemporaryDirectory() as tmp:
        out = args.keep or Path(tmp)
        out.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        unit = args.layout == "unit"
        truth = build_hub(out, args.people, args.partners, args.overlap, args.seed, unit)
        t1 = time.perf_counter()
        config = MatchConfig(threshold=args.threshold)
        if unit:
            from accord.link.unit import import_persons, link_units

            result = link_units(sorted((out / "unit").glob("*.parquet")), config=config)
            with open_store(out / "hub.duckdb") as store:
                import_persons(store, result.persons)
            summary = result.summary
        else:
            with open_store(out / "hub.duckdb") as store:
                summary = link_hub(store, config=config)
        t2 = time.perf_counter()
        res = evaluate(out, truth)
    print(f"layout {args.layout}; simulator: {args.people} people, {args.partners} partners, overlap {args.overlap}, "
          f"seed {args.seed}: {summary.records} records -> {summary.persons} persons "
          f"(build {t1 - t0:.1f} s, link {t2 - t1:.1f} s)")
    print(f"precision {res['precision']:.4f}  recall {res['recall']:.4f}  F1 {res['f1']:.4f}  "
          f"(TP {res['true_positives']}, FP {res['false_positives']}, "
          f"FN {res['false_negatives']})")
    for kind, (recall, n) in res["recall_by_kind"].items():
        print(f"  {kind:20s} n={n:5d}  recall {recall:.3f}")


if __name__ == "__main__":
    main()
