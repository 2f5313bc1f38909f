"""PostgreSQL hub benchmark (issue 12): the same contribution and commands on a DuckDB file and on PostgreSQL.

Measures, on one simulated contribution:
- `accord hub add` (verification + one all-or-nothing load; COPY in binary format on PostgreSQL),
- `accord stats` (every standard table, both units) and `accord risk`,
- the statistics' DuckDB-dialect statements on the store's default routes (natively in PostgreSQL
  where the translation is exact) against running them all in process (DuckDB over one Arrow
  copy of the records read from PostgreSQL).

Starts its own throw-away PostgreSQL (as in the tests: initdb in a temporary directory, as the
`postgres` user when run as root; durability settings off as for a test cluster).
Run: `.venv/bin/python benchmarks/postgres_hub.py [--rows 200000]`
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(ROOT))


from _measure import run_measured  # noqa: E402
from accord.simulate import SimulationConfig, simulate  # noqa: E402
from accord.store import Store, open_store  # noqa: E402
from tests.postgres_server import PostgresServer  # noqa: E402

WORK = Path(__file__).resolve().parent / ".work" / "postgres_hub"


class _Recorder:
    """Wraps a store to keep every query the stats send."""

    def __init__(self, store: Store) -> None:
        self.store, self.sql = store, []

    def __getattr__(self, name: str) -> object:
        return getattr(self.store, name)

    def query(self, sql: str, params: object = ()) -> object:
        self.sql.append(sql)
        return self.store.query(sql, params)  # type: ignore[arg-type]


def _with_hub_key(env: dict[str, str], hub: str) -> dict[str, str]:
    """A PostgreSQL hub's chain key file is named by $ACCORD_HUB_KEY (one per hub); a DuckDB hub
    keeps its key beside its file."""
    out = {k: v for k, v in env.items() if k != "ACCORD_HUB_KEY"}
    if hub.startswith("postgresql:"):
        out["ACCORD_HUB_KEY"] = str(WORK / f"{hub.rsplit('/', 1)[1]}.key")
    return out


def _push(accord: str, env: dict[str, str], hub: str, contribution: Path) -> float:
    """Seconds for `accord push` of the contribution to `accord serve` on loopback (a new hub)."""
    import socket
    import subprocess
    import urllib.request

    password = WORK / "password"
    password.write_text("benchmark password only\n")
    token = WORK / f"token-{time.monotonic_ns()}"
    run_measured([accord, "hub", "org", "add", "bench", "--hub", hub], env)
    run_measured([accord, "hub", "user", "add", "bench-user", "--org", "bench", "--role", "submitter",
                  "--password-file", str(password), "--hub", hub], env)
    run_measured([accord, "hub", "token", "create", "bench-user", "--out", str(token), "--hub", hub], env)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([accord, "serve", "--db", hub, "--bind", f"127.0.0.1:{port}"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(300):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health", timeout=5).read()
                break
            except OSError:
                time.sleep(0.2)
        return run_measured([accord, "push", str(contribution), "--server", f"http://127.0.0.1:{port}",
                             "--token-file", str(token)], env).seconds
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    args = parser.parse_args()
    accord = str(Path(sys.executable).parent / "accord")
    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    simulate(SimulationConfig(people=args.rows, partners=1, overlap=0.0, seed=11, out=WORK / "sim",
                              format_a="csv"))
    env = {**os.environ, "ACCORD_KEY_FILE": str(WORK / "partner.key")}
    run_measured([accord, "keys", "init"], env)
    contribution = WORK / "contribution"
    run_measured([accord, "ingest", str(WORK / "sim" / "partner_a.csv"), "--mapping",
                  str(WORK / "sim" / "partner_a.mapping.yaml"), "--partner", "bench", "--out",
                  str(contribution)], env)
    server = PostgresServer.start()
    try:
        hubs = {"duckdb": str(WORK / "hub.duckdb"), "postgres": server.create_database()}
        timing: dict[str, dict[str, float]] = {}
        for engine, hub in hubs.items():
            env = _with_hub_key(env, hub)
            t = timing.setdefault(engine, {})
            t["hub add"] = run_measured([accord, "hub", "add", str(contribution), "--hub", hub], env).seconds
            t["stats (records)"] = run_measured([accord, "stats", "--hub", hub, "--unit", "records"],
                                                env).seconds
            t["risk"] = run_measured([accord, "risk", "--hub", hub], env).seconds
        served = server.create_database()
        timing["postgres"]["push (accord serve)"] = _push(accord, _with_hub_key(env, served), served, contribution)
        served = str(WORK / "served.duckdb")
        timing["duckdb"]["push (accord serve)"] = _push(accord, _with_hub_key(env, served), served, contribution)
        with open_store(hubs["postgres"]) as store:
            records = store.scalar("SELECT count(*) FROM records")
            from accord.research.stats import compute_tables

            rec = _Recorder(store)
            compute_tables(rec, unit="records", history=False)  # type: ignore[arg-type]
            analytic = [s for s in rec.sql if "records" in s and "LIMIT 0" not in s]
        from accord.store.postgres_store import native_postgres

        routed = sum(native_postgres(sql, False) is not None for sql in analytic)
        with open_store(hubs["postgres"]) as store:  # a new store: the default routes
            start = time.perf_counter()
            for sql in analytic:
                store.query(sql)
            default = time.perf_counter() - start
        with open_store(hubs["postgres"]) as store:  # a new store: everything in process
            start = time.perf_counter()
            store._query_in_process(analytic[0], ())  # type: ignore[attr-defined]
            first = time.perf_counter() - start
            for sql in analytic[1:]:
                store._query_in_process(sql, ())  # type: ignore[attr-defined]
            in_process = time.perf_counter() - start
    finally:
        server.stop()
    print(f"data: {records:,} records; cores: {os.cpu_count()}")
    print(f"{'':26}{'duckdb s':>10}{'postgres s':>12}{'ratio':>8}")
    for step in timing["duckdb"]:
        d, p = timing["duckdb"][step], timing["postgres"][step]
        print(f"{step:26}{d:10.2f}{p:12.2f}{p / d:8.2f}")
    print(f"stats tables, {len(analytic)} DuckDB-dialect statements over records:")
    print(f"  default routes ({routed} run natively in PostgreSQL): {default:.2f} s")
    print(f"  all in process (DuckDB over one Arrow copy): {in_process:.2f} s "
          f"(the first, with the copy: {first:.2f} s)")
    print(f"  ratio default / in process: {default / in_process:.2f}x")


if __name__ == "__main__":
    main()
