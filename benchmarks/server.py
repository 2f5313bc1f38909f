"""Shared hub server load benchmark (issue 12), loopback only, bounded in count and time.

One `accord serve` process on a throw-away PostgreSQL (started as in the tests). At once:
N partners push a contribution of R records each (HTTP, as `accord push` sends it) while M
analysts each ask for K DP tables releases (`accord release tables --server`'s route). The budget
is set to pay for only part of the releases. Checks: every batch is in the hub once (none lost,
none duplicated, every record counted), the releases that succeeded are exactly the ledger's
spends, each with its release, the ledger is never overspent and the hub's chain verifies.
Prints p50/p95 latency per kind of request and the throughput.

Then the peer comparison: `accord push` (CLI, to a fresh server) of one contribution of B records
against a local `accord hub add` of the same contribution (CLI) into a fresh PostgreSQL database,
same run, same machine; prints the ratio (target: within 2x).

Run: `.venv/bin/python benchmarks/server.py [--partners 20 --records 50000 --analysts 20
--requests 2 --big 200000 --deadline 900]`. Records are simulated (no download); contributions
are built once per run (timed separately: that is the partners' own work, not the hub's).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(ROOT))

from _measure import run_measured  # noqa: E402
from accord.protect.job import build_contribution  # noqa: E402
from accord.protect.keys import create_partner_key  # noqa: E402
from accord.release.dp import ledger  # noqa: E402
from accord.release.dp.mechanism import epsilon_from_rho  # noqa: E402
from accord.serve.accounts import Role, add_org, add_user, create_token  # noqa: E402
from accord.simulate import SimulationConfig, simulate  # noqa: E402
from accord.store import open_store  # noqa: E402
from tests.postgres_server import PostgresServer  # noqa: E402
from tests.test_serve import _zip  # noqa: E402

WORK = Path(__file__).resolve().parent / ".work" / "server"
RELEASE = {"epsilon": 0.5, "mechanism": "laplace", "tables": ["case_type_by_sex"]}
PASSWORD = "benchmark password only"


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _serve(hub: str, env: dict[str, str]) -> tuple[subprocess.Popen[bytes], str]:
    port = _port()
    accord = str(Path(sys.executable).parent / "accord")
    log = (WORK / f"serve-{port}.log").open("ab")  # the server's own log, read when a request fails
    proc = subprocess.Popen([accord, "serve", "--db", hub, "--bind", f"127.0.0.1:{port}"], env=env,
                            stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            urllib.request.urlopen(url + "/api/health", timeout=5).read()
            return proc, url
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit("accord serve did not start")


def _post(url: str, token: str, body: bytes, timeout: float) -> tuple[int, dict[str, Any], float]:
    start = time.perf_counter()
    req = urllib.request.Request(url, data=body, method="POST",
                                 headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            status, payload = r.status, json.loads(r.read())
    except urllib.error.HTTPError as err:
        status, payload = err.code, json.loads(err.read() or b"{}")
    except (OSError, http.client.HTTPException) as err:  # no answer at all: counted, not lost
        status, payload = 0, {"error": f"{type(err).__name__}: {err}"}
    return status, payload, time.perf_counter() - start


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _contributions(n: int, records: int, big: int) -> tuple[list[tuple[str, Path]], Path, float]:
    """N partners' contributions from one simulated export (each partner its own key, so its own
    pseudonyms and batch), and one big contribution for the push-vs-add comparison."""
    start = time.perf_counter()
    sim = simulate(SimulationConfig(people=max(records, big), partners=1, overlap=0.0, seed=12,
                                    out=WORK / "sim", format_a="csv"))
    export, mapping = sim.partners[0].export, sim.partners[0].mapping
    small_export = WORK / "small.csv"
    with export.open(encoding="utf-8", errors="surrogateescape", newline="") as src, \
            small_export.open("w", encoding="utf-8", errors="surrogateescape", newline="") as dst:
        for i, line in enumerate(src):  # the header and the first R records (one line each)
            if i > records:
                break
            dst.write(line)
    out = []
    for i in range(n):
        partner = f"p{i:02d}"
        key = create_partner_key(WORK / "keys" / f"{partner}.key", force=True)
        build_contribution(small_export, mapping, partner, WORK / "c" / partner, key)
        out.append((partner, WORK / "c" / partner))
    key = create_partner_key(WORK / "keys" / "big.key", force=True)
    build_contribution(export, mapping, "big", WORK / "c" / "big", key)
    return out, WORK / "c" / "big", time.perf_counter() - start


def _built(n: int, records: int, big: int) -> bool:
    """Whether WORK holds the contributions of a run of these sizes."""
    try:
        sizes = [json.loads((WORK / "c" / f"p{i:02d}" / "manifest.json").read_text())["rows_in"]
                 for i in range(n)]
        big_rows = json.loads((WORK / "c" / "big" / "manifest.json").read_text())["rows_in"]
    except (OSError, ValueError, KeyError):
        return False
    return sizes == [records] * n and big_rows == big and not (WORK / "c" / f"p{n:02d}").exists()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--partners", type=int, default=20)
    parser.add_argument("--records", type=int, default=50_000, help="records per partner")
    parser.add_argument("--analysts", type=int, default=20)
    parser.add_argument("--requests", type=int, default=2, help="DP releases asked per analyst")
    parser.add_argument("--affordable", type=float, default=0.5,
                        help="share of the asked releases the budget pays for")
    parser.add_argument("--big", type=int, default=200_000, help="records of the push-vs-add contribution")
    parser.add_argument("--deadline", type=float, default=900.0, help="seconds any request may take")
    parser.add_argument("--reuse", action="store_true",
                        help="reuse the contributions an earlier run of the same sizes built")
    args = parser.parse_args()
    if not (1 <= args.partners <= 50 and 1 <= args.analysts <= 50 and 1 <= args.requests <= 10
            and 100 <= args.records <= 1_000_000 and 100 <= args.big <= 2_000_000):
        raise SystemExit("bounded benchmark: 1-50 partners and analysts, 1-10 requests each, "
                         "100-1,000,000 records per partner, 100-2,000,000 in the big push")
    if args.reuse and _built(args.partners, args.records, args.big):
        for f in WORK.iterdir():  # hub keys, chain heads, logs of the last run: not the inputs
            if f.name not in ("sim", "c", "keys", "small.csv"):
                shutil.rmtree(f) if f.is_dir() else f.unlink()
        contributions = [(f"p{i:02d}", WORK / "c" / f"p{i:02d}") for i in range(args.partners)]
        big = WORK / "c" / "big"
        print("contributions of an earlier run reused", flush=True)
    else:
        shutil.rmtree(WORK, ignore_errors=True)
        WORK.mkdir(parents=True)
        contributions, big, build_s = _contributions(args.partners, args.records, args.big)
        print(f"contributions built in {build_s:.1f} s (partners' side, not timed below)", flush=True)
    print(f"cores: {os.cpu_count()} (nproc {len(os.sched_getaffinity(0))}); load average at the "
          f"start: {os.getloadavg()[0]:.1f}", flush=True)
    pg = PostgresServer.start()
    procs: list[subprocess.Popen[bytes]] = []
    try:
        hub = pg.create_database()
        env = {**os.environ, "ACCORD_HUB_KEY": str(WORK / "hub.key")}
        os.environ["ACCORD_HUB_KEY"] = env["ACCORD_HUB_KEY"]
        tokens: dict[str, str] = {}
        with open_store(hub) as store:
            for partner, _ in contributions:
                add_org(store, partner, "bench")
                add_user(store, f"{partner}-user", partner, Role.SUBMITTER, PASSWORD, "bench")
                tokens[partner] = create_token(store, f"{partner}-user", "bench")[1]
            add_org(store, "agency", "bench")
            for a in range(args.analysts):
                add_user(store, f"analyst{a:02d}", "agency", Role.ANALYST, PASSWORD, "bench")
                tokens[f"analyst{a:02d}"] = create_token(store, f"analyst{a:02d}", "bench")[1]
        proc, url = _serve(hub, env)
        procs.append(proc)
        asked = args.analysts * args.requests
        affordable = int(asked * args.affordable)
        bodies = {p: _zip(c) for p, c in contributions}
        # the releases need records: the first partner's batch goes in first (not timed)
        status, payload, _ = _post(url + "/api/contributions", tokens[contributions[0][0]],
                                   bodies[contributions[0][0]], args.deadline)
        assert status == 201, payload
        status, once, _ = _post(url + "/api/release/tables", tokens["analyst00"],
                                json.dumps(RELEASE).encode(), 600)
        assert status == 200, once
        cost = once["parameters"]["rho"]  # then a budget that pays for the affordable share only
        with open_store(hub) as store:
            spent = ledger.current_budget(store).spent_rho
            ledger.set_budget(store, epsilon_from_rho(spent + (affordable + 0.5) * cost, 1e-6), 1e-6,
                              "bench")
        results: list[tuple[str, str, int, dict[str, Any], float]] = []
        lock = threading.Lock()
        gate = threading.Barrier(args.partners - 1 + args.analysts)

        def push(partner: str) -> None:
            gate.wait()
            r = _post(url + "/api/contributions", tokens[partner], bodies[partner], args.deadline)
            with lock:
                results.append(("push", partner, *r))

        def analyse(analyst: str) -> None:
            gate.wait()
            for _ in range(args.requests):
                r = _post(url + "/api/release/tables", tokens[analyst], json.dumps(RELEASE).encode(),
                          args.deadline)
                with lock:
                    results.append(("release", analyst, *r))

        threads = [threading.Thread(target=push, args=(p,)) for p, _ in contributions[1:]]
        threads += [threading.Thread(target=analyse, args=(f"analyst{a:02d}",)) for a in range(args.analysts)]
        start = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=args.deadline)
        wall = time.perf_counter() - start
        if any(t.is_alive() for t in threads):
            raise SystemExit(f"requests still running after {args.deadline:.0f} s")
        pushes = [r for r in results if r[0] == "push"]
        releases = [r for r in results if r[0] == "release"]
        # --- checks: no batch lost or duplicated, no record lost; ledger exact and not overspent
        manifests = {p: json.loads((c / "manifest.json").read_text()) for p, c in contributions}
        with open_store(hub) as store:
            batches = store.batches()
            per_partner = {r["partner"]: r["n"] for r in store.query(
                "SELECT partner, count(*) AS n FROM records GROUP BY partner").to_pylist()}
            budget = ledger.current_budget(store)
            spends = ledger.spends(store)
            dp_releases = [r for r in store.releases() if r["kind"] == "dp_tables"]
            chain_ok = ledger.verify(store).ok
        problems = []
        if sorted(s for _, _, s, _, _ in pushes) != [201] * len(pushes):
            problems.append(f"push answers: {sorted(s for _, _, s, _, _ in pushes)}")
        if sorted(b["batch_id"] for b in batches) != sorted(m["batch_id"] for m in manifests.values()):
            problems.append("the hub's batches are not the partners' batches, once each")
        if per_partner != {p: m["accepted"] for p, m in manifests.items()}:
            problems.append("records per partner differ from the manifests")
        ok = [r for r in releases if r[2] == 200]
        refused = [r for r in releases if r[2] == 409]
        unanswered = [r for r in results if r[2] == 0]
        if proc.poll() is not None:
            problems.append(f"the server exited during the phase (code {proc.returncode}; -9: "
                            "killed, e.g. by the kernel for memory)")
        if unanswered:
            kinds = sorted({r[3]["error"].split(":")[0] for r in unanswered})
            problems.append(f"{len(unanswered)} requests got no HTTP answer ({', '.join(kinds)}); "
                            f"server log: {WORK}/serve-*.log")
        if len(releases) != asked:
            problems.append(f"{len(releases)} release answers for {asked} asked")
        if len(ok) != affordable or len(ok) + len(refused) != len(releases):
            problems.append(f"releases: {len(ok)} made, {len(refused)} refused, of {len(releases)}; "
                            f"the budget paid for {affordable}")
        paid = {s["release_id"] for s in spends if s["kind"] == "dp_tables"}
        if paid != {r["release_id"] for r in dp_releases} or not {r[3]["release_id"] for r in ok} <= paid:
            problems.append("a spend without its release or a release without its spend")
        if budget.spent_rho > budget.total_rho + 1e-12:
            problems.append("the ledger is overspent")
        if not chain_ok:
            problems.append("the hub's chain does not verify")
        pushed_records = sum(manifests[p]["accepted"] for _, p, *_ in pushes)
        push_lat = [r[4] for r in pushes]
        rel_lat = [r[4] for r in releases]
        print(f"cores: {os.cpu_count()}; load average before the big push: "
              f"{os.getloadavg()[0]:.1f}")
        print(f"concurrent phase: {len(pushes)} partners pushing {args.records:,} records each "
              f"(+1 loaded before), {args.analysts} analysts x {args.requests} DP releases; "
              f"{wall:.1f} s wall")
        print(f"  push:    p50 {_pct(push_lat, 0.5):.2f} s, p95 {_pct(push_lat, 0.95):.2f} s; "
              f"{pushed_records / max(push_lat):,.0f} records/s loaded (over the pushes' own time)")
        print(f"  release: p50 {_pct(rel_lat, 0.5):.2f} s, p95 {_pct(rel_lat, 0.95):.2f} s; "
              f"{len(ok)} made, {len(refused)} refused (budget for {affordable})")
        print(f"  throughput: {len(results) / wall:.2f} requests/s; load average at the end of "
              f"the phase: {os.getloadavg()[0]:.1f}")
        print(f"  ledger: spent rho {budget.spent_rho:.6g} of {budget.total_rho:.6g}; "
              f"{len(paid)} DP tables spends = {len(dp_releases)} releases; chain ok: {chain_ok}")
        print(f"  batches: {len(batches)} in the hub for {len(manifests)} partners; "
              f"records {sum(per_partner.values()):,}")
        proc.terminate()
        proc.wait(timeout=60)
        procs.clear()
        # --- push of a big contribution vs a local `hub add` of it, same engine, same run
        accord = str(Path(sys.executable).parent / "accord")
        local = pg.create_database()
        add_s = run_measured([accord, "hub", "add", str(big), "--hub", local],
                             {**env, "ACCORD_HUB_KEY": str(WORK / "local.key")}).seconds
        served = pg.create_database()
        env["ACCORD_HUB_KEY"] = os.environ["ACCORD_HUB_KEY"] = str(WORK / "served.key")  # one per hub
        with open_store(served) as store:
            add_org(store, "big", "bench")
            add_user(store, "big-user", "big", Role.SUBMITTER, PASSWORD, "bench")
            (WORK / "big.token").write_text(create_token(store, "big-user", "bench")[1])
        proc, url = _serve(served, env)
        procs.append(proc)
        push_s = run_measured([accord, "push", str(big), "--server", url, "--token-file",
                               str(WORK / "big.token")], env).seconds
        big_records = json.loads((big / "manifest.json").read_text())["accepted"]
        print(f"big contribution, {big_records:,} records: local `accord hub add` {add_s:.2f} s, "
              f"`accord push` to `accord serve` {push_s:.2f} s: ratio {push_s / add_s:.2f} (target <= 2)")
        print(f"load average at the end: {os.getloadavg()[0]:.1f}")
        if problems:
            print("PROBLEMS:\n  " + "\n  ".join(problems))
            raise SystemExit(1)
        print("checks: no batch lost or duplicated, every record counted, ledger not overspent, "
              "every spend has its release, chain verifies")
    finally:
        for p in procs:
            p.terminate()
            p.wait(timeout=60)
        pg.stop()


if __name__ == "__main__":
    main()
