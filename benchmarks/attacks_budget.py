"""Budget and ledger attacks of issue 10, measured: attack success on Accord vs the unprotected
behaviour (the per-data-version ledger, the old parameter checks, no chain), and the cost of the
chain. Writes benchmarks/results/attacks/budget.md.

    PYTHONPATH=src:. .venv/bin/python benchmarks/attacks_budget.py [--rounds 59] [--seeds 20] [--trials 200]

The same attacks run (smaller) as tests under tests/attacks/; this script only measures them.
"""

from __future__ import annotations

import argparse
import math
import os
import random
import shutil
import tempfile
import time
from pathlib import Path

from typer.testing import CliRunner

from accord.cli.main import app
from accord.release.dp import ledger
from accord.release.dp.mechanism import epsilon_from_rho
from accord.store import chain as hub_chain
from accord.store import open_store
from tests.attacks.budget_lab import (
    BUDGET_DELTA,
    BUDGET_RHO,
    NAMED,
    copy_hub,
    make_lab,
    prepared_hub,
    random_steps,
    reset_attack,
    run_sequence,
    tamper_named,
    tamper_random,
)
from tests.attacks.test_parameters import BAD_DELTA, BAD_EPSILON, _commands, _old_ledger_pays

OUT = Path(__file__).parent / "results" / "attacks" / "budget.md"


def eps(rho: float) -> str:
    return f"{epsilon_from_rho(rho, BUDGET_DELTA):.1f}"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=59)
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--trials", type=int, default=200)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="accord-budget-attacks-"))
    lines = ["# Budget and ledger attacks (issue 10, helper `budget`)", "",
             "Script: `benchmarks/attacks_budget.py` (attacks shared with `tests/attacks/`). "
             f"Machine: `nproc` = {os.cpu_count()}, shared with other helpers. Budget: the default "
             f"epsilon 10 at delta 1e-6 (rho {BUDGET_RHO:.4g}); releases at delta 1e-9; every "
             "lifetime epsilon below is the summed rho read at delta 1e-6.", ""]
    try:
        t0 = time.perf_counter()
        # 1. the reset attack
        out = reset_attack(make_lab(tmp / "reset"), rounds=args.rounds)
        lines += ["## Budget reset by re-adding the same records", "",
                  f"{args.rounds} rounds of: ingest the same export again (new batch id, new data "
                  "version, same people), `release tables` at epsilon 10.", "",
                  "| ledger | releases paid | lifetime rho | lifetime epsilon | within budget |",
                  "| --- | --- | --- | --- | --- |",
                  f"| per data version (before; emulated) | {out.baseline_released} of "
                  f"{out.releases_asked} | {out.baseline_rho:.3g} | {eps(out.baseline_rho)} | "
                  f"{'yes' if out.baseline_rho <= BUDGET_RHO else 'no'} |",
                  f"| one lifetime ledger per hub (Accord) | {out.released} of {out.releases_asked} "
                  f"| {out.lifetime_rho:.3g} | {eps(out.lifetime_rho)} | "
                  f"{'yes' if out.lifetime_rho <= BUDGET_RHO + 1e-12 else 'no'} |", ""]
        # 2. random sequences
        worst, over, worst_base = 0.0, 0, 0.0
        asked = paid = 0
        for seed in range(args.seeds):
            o = run_sequence(make_lab(tmp / f"seq{seed}"), random_steps(random.Random(seed), 16),
                             seed=seed)
            worst = max(worst, o.lifetime_rho / BUDGET_RHO)
            worst_base = max(worst_base, o.baseline_rho / BUDGET_RHO)
            over += o.baseline_rho > BUDGET_RHO + 1e-12
            asked += o.releases_asked
            paid += o.released
        lines += ["## Random sequences of add / re-add / replace / withdraw / release", "",
                  f"{args.seeds} sequences of 16 operations (releases at epsilon 1-10).", "",
                  "| ledger | sequences over budget | worst lifetime spent / budget |",
                  "| --- | --- | --- |",
                  f"| per data version (before; emulated) | {over} of {args.seeds} | {worst_base:.2f} |",
                  f"| Accord | 0 of {args.seeds} (checked) | {worst:.2f} |", "",
                  f"Accord paid {paid} of the {asked} releases asked for.", ""]
        assert worst <= 1 + 1e-12
        # 3. parameters
        plab = make_lab(tmp / "params")
        csv = tmp / "data.csv"
        csv.write_text("a,b\n1,2\n", encoding="utf-8")
        refused = total = 0
        for option, values in (("--epsilon", BAD_EPSILON), ("--delta", BAD_DELTA)):
            for v in values:
                for cmd in _commands(plab.hub, tmp / "pout", csv, option, v):
                    total += 1
                    refused += CliRunner().invoke(app, cmd).exit_code == 2
        old_nan = _old_ledger_pays(math.nan, [1000.0] * 5)
        old_accepts = sum(not (float(v) <= 0) for v in BAD_EPSILON)
        lines += ["## NaN, infinite and out-of-range parameters", "",
                  f"epsilon values {', '.join(BAD_EPSILON)}; delta values {', '.join(BAD_DELTA)}; "
                  "each given to `budget set`, `budget grant`, `release tables`, `release "
                  "synthetic` and `synthesize`.", "",
                  "| checks | invocations refused with exit 2 | bad epsilons accepted | releases at "
                  "epsilon 1000 paid by a NaN budget |", "| --- | --- | --- | --- |",
                  f"| before (`epsilon <= 0` refused; emulated) | - | {old_accepts} of "
                  f"{len(BAD_EPSILON)} | {old_nan} of 5 |",
                  f"| Accord (one validator, before anything is read) | {refused} of {total} | 0 of "
                  f"{len(BAD_EPSILON)} | 0 of 5 (NaN budget refused) |", ""]
        # 4. tampering
        lab = prepared_hub(tmp / "tamper")
        named_hit = 0
        for i, name in enumerate(NAMED):
            hub = copy_hub(lab, tmp / f"n{i}")
            tamper_named(hub, name)
            with open_store(hub, read_only=True) as store:
                named_hit += not ledger.verify(store).ok
        rng = random.Random(2026)
        hit = 0
        kinds: dict[str, int] = {}
        for i in range(args.trials):
            hub = copy_hub(lab, tmp / f"r{i}")
            what = tamper_random(hub, rng)
            key = what.split()[0]
            kinds[key] = kinds.get(key, 0) + 1
            with open_store(hub, read_only=True) as store:
                hit += not ledger.verify(store).ok
            shutil.rmtree(tmp / f"r{i}")
        lines += ["## Editing, deleting or reordering the ledger, releases and audit trail", "",
                  "| attack | without the chain (before) | Accord (keyed chain) |",
                  "| --- | --- | --- |",
                  f"| the {len(NAMED)} named attacks ({', '.join(NAMED)}) | 0 of {len(NAMED)} "
                  f"detected | {named_hit} of {len(NAMED)} detected, releases refused (exit 3) |",
                  f"| {args.trials} random edits / deletions / reorderings "
                  f"({', '.join(f'{k} {v}' for k, v in sorted(kinds.items()))}) | 0 of "
                  f"{args.trials} detected | {hit} of {args.trials} detected |", "",
                  "Without the chain: Accord before this had no check at all (by construction 0 "
                  "detected); `tests/attacks/test_ledger_tamper.py` measures it by disabling the "
                  "check and reading the budget from the table, and the budget-freeing edit then "
                  "pays a release the protected hub refuses. "
                  "A truncation (the last spend and its chain entries deleted cleanly) is caught by "
                  "the head committed outside the database (`<key>.head`); if that file is deleted "
                  "too, only a head published with a release (`hub verify --head`) catches it (see "
                  "docs/dp.md, limits).", ""]
        # 5. cost of the chain
        with open_store(tmp / "cost.duckdb") as store:
            t = time.perf_counter()
            for i in range(1000):
                store.audit("bench", "bench.entry", {"i": i})
            per_append = (time.perf_counter() - t) / 1000
            t = time.perf_counter()
            report = hub_chain.verify(store)
            verify_s = time.perf_counter() - t
            assert report.ok
        lines += ["## Cost", "",
                  f"Appending an audit entry with its chain entry: {per_append * 1000:.1f} ms "
                  f"(1,000 appends, each its own transaction). Verifying a chain of "
                  f"{report.entries:,} entries: {verify_s:.2f} s (done before every release and "
                  "spend).", "", f"Whole run: {time.perf_counter() - t0:.0f} s wall.", ""]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text("\n".join(lines), encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
