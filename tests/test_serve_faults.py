"""The shared hub under concurrency and faults, with real processes on a real PostgreSQL:

- many analysts asking for DP releases at once through two `accord serve` processes on one hub:
  exactly the releases the budget affords succeed, the rest are refused, the ledger is not
  overspent and every spend has its release;
- `kill -9` of the server in the middle of a push and of a release: no batch, no record, no
  release and no spend is left behind, and the next server carries on;
- PostgreSQL restarting in the middle of a request: the client gets a clear 503, nothing is
  spent, and the same server answers the retry without being restarted.

"In the middle" is made exact without a test hook in the product: the test holds the hub's chain
lock (the advisory lock every chained write takes, accord.store.postgres_store), so a push has
written its rows and a release has measured and recorded itself, inside their transactions, when
they stop to wait for it; the test then strikes.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from accord.protect.job import build_contribution
from accord.protect.keys import PartnerKey
from accord.release.dp import ledger
from accord.release.dp.mechanism import epsilon_from_rho
from accord.serve.accounts import Role, add_org, add_user, create_token
from accord.store import add_contribution, open_store
from accord.store.postgres_store import _CHAIN_LOCK
from tests.conftest import EXPECTED_ACCEPTED
from tests.postgres_server import PostgresServer
from tests.serving import free_port as _free_port
from tests.test_serve import _zip

pytestmark = pytest.mark.slow

RELEASE = {"epsilon": 0.5, "mechanism": "laplace", "tables": ["case_type_by_sex"]}


class Server:
    """`accord serve` as its own process on loopback."""

    def __init__(self, hub: str) -> None:
        self.hub = hub
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "accord.cli.main", "serve", "--db", hub, "--bind",
             f"127.0.0.1:{self.port}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 90
        while True:
            assert self.proc.poll() is None, "accord serve exited"
            try:
                if _call(self.url + "/api/health", None)[0] == 200:
                    return
            except OSError:
                pass
            assert time.monotonic() < deadline, "accord serve did not answer"
            time.sleep(0.2)

    def kill9(self) -> None:
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill9()


def _call(url: str, token: str | None, body: bytes | None = None, timeout: float = 120
          ) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    req = urllib.request.Request(url, data=body, method="POST" if body is not None else "GET",
                                 headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"{}")


@pytest.fixture
def pg_hub(postgres_url: str, tmp_path: Path, case_export: tuple[Path, Path],
           partner_key: PartnerKey) -> dict[str, Any]:
    """A PostgreSQL hub with accounts (tokens in the dict) and one contribution ready to push."""
    tokens = {}
    with open_store(postgres_url) as store:
        add_org(store, "ngo-b", "test")
        add_org(store, "agency", "test")
        for user, org, role in (("sub_b", "ngo-b", Role.SUBMITTER), ("analyst", "agency", Role.ANALYST),
                                ("steward", "agency", Role.STEWARD)):
            add_user(store, user, org, role, "correct horse battery staple", "test")
            tokens[user] = create_token(store, user, "test")[1]
    contribution = tmp_path / "contribution"
    build_contribution(case_export[0], case_export[1], "ngo-b", contribution, partner_key)
    return {"url": postgres_url, "tokens": tokens, "contribution": contribution}


@pytest.fixture
def servers() -> Iterator[list[Server]]:
    started: list[Server] = []
    yield started
    for s in started:
        s.stop()


class ChainLock:
    """Hold the hub's chain lock from a connection of the test's own."""

    def __init__(self, url: str) -> None:
        import psycopg

        self.url = url
        self.con = psycopg.connect(url)
        self.con.execute("SELECT pg_advisory_xact_lock(%s)", [_CHAIN_LOCK])

    def wait_for_waiter(self, timeout: float = 60) -> None:
        """Until another session waits for the lock (the request is inside its transaction)."""
        import psycopg

        deadline = time.monotonic() + timeout
        with psycopg.connect(self.url, autocommit=True) as probe:
            while True:
                row = probe.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
                                    "AND NOT granted").fetchone()
                if row and row[0]:
                    return
                assert time.monotonic() < deadline, "the request never reached the chain lock"
                time.sleep(0.05)

    def release(self) -> None:
        try:
            self.con.rollback()
            self.con.close()
        except Exception:  # a restarted server has already dropped it
            pass


def _in_background(fn: Any) -> tuple[threading.Thread, list[Any]]:
    out: list[Any] = []

    def run() -> None:
        try:
            out.append(fn())
        except OSError as err:  # the server died under the request
            out.append(err)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t, out


def _others_gone(url: str, timeout: float = 30) -> None:
    """Until no other session of the test database is left (a killed client's backend ends)."""
    import psycopg

    deadline = time.monotonic() + timeout
    with psycopg.connect(url, autocommit=True) as con:
        while con.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                          "AND pid <> pg_backend_pid()").fetchone()[0]:  # type: ignore[index]
            assert time.monotonic() < deadline, "a killed server's transaction is still open"
            time.sleep(0.1)


def _ledger(url: str) -> dict[str, Any]:
    with open_store(url) as store:
        budget = ledger.current_budget(store)
        spends = ledger.spends(store)
        releases = [r for r in store.releases() if r["kind"] == "dp_tables"]
        report = ledger.verify(store)
    return {"budget": budget, "spends": spends, "releases": releases, "chain_ok": report.ok,
            "problems": report.problems}


def test_concurrent_dp_releases_never_overspend(pg_hub: dict[str, Any], servers: list[Server]) -> None:
    url, tokens = pg_hub["url"], pg_hub["tokens"]
    affordable, asked = 3, 10
    with open_store(url) as store:
        add_contribution(store, pg_hub["contribution"], actor="test")
    servers.extend([Server(url), Server(url)])  # two processes on one hub: PostgreSQL decides
    status, first = _call(servers[0].url + "/api/release/tables", tokens["analyst"],
                          json.dumps(RELEASE).encode())
    assert status == 200
    cost = first["parameters"]["rho"]  # each such release costs the same rho (pure DP)
    with open_store(url) as store:  # a budget that pays for 3.5 more: 3 succeed, whatever the order
        ledger.set_budget(store, epsilon_from_rho(4.5 * cost, 1e-6), 1e-6, "test")
    gate = threading.Barrier(asked)
    results: list[tuple[int, Any]] = []

    def ask(i: int) -> None:
        gate.wait()
        results.append(_call(servers[i % 2].url + "/api/release/tables", tokens["analyst"],
                             json.dumps(RELEASE).encode()))

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(asked)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    statuses = sorted(s for s, _ in results)
    assert statuses == [200] * affordable + [409] * (asked - affordable), results
    assert all("budget" in body["error"] for s, body in results if s == 409), results
    state = _ledger(url)
    assert state["chain_ok"], state["problems"]
    assert len(state["spends"]) == affordable + 1 == state["budget"].spends
    assert state["budget"].spent_rho == pytest.approx(sum(s["rho"] for s in state["spends"]))
    assert state["budget"].spent_rho <= state["budget"].total_rho
    # every spend has its release and every release its spend
    assert sorted(s["release_id"] for s in state["spends"]) == sorted(r["release_id"] for r in state["releases"])
    assert sorted([first["release_id"]] + [body["release_id"] for s, body in results if s == 200]) == sorted(
        r["release_id"] for r in state["releases"])


def test_kill_9_mid_push_and_mid_release_leaves_nothing(pg_hub: dict[str, Any],
                                                        servers: list[Server]) -> None:
    url, tokens = pg_hub["url"], pg_hub["tokens"]
    body = _zip(pg_hub["contribution"])
    servers.append(Server(url))
    # --- mid-push: rows written, waiting for the chain lock to audit and commit
    lock = ChainLock(url)
    thread, out = _in_background(lambda: _call(servers[-1].url + "/api/contributions",
                                               tokens["sub_b"], body))
    lock.wait_for_waiter()
    servers[-1].kill9()
    thread.join(timeout=30)
    assert out and isinstance(out[0], OSError)  # the client saw the connection die
    lock.release()
    _others_gone(url)
    with open_store(url) as store:
        assert not store.table_exists("batches") or store.scalar("SELECT count(*) FROM batches") == 0
        assert not store.table_exists("records") or store.scalar("SELECT count(*) FROM records") == 0
    servers.append(Server(url))  # a new server; the retried push loads the whole batch
    status, pushed = _call(servers[-1].url + "/api/contributions", tokens["sub_b"], body)
    assert status == 201 and pushed["added"] == EXPECTED_ACCEPTED
    # --- mid-release: measured and recorded, waiting for the lock to spend and commit
    lock = ChainLock(url)
    thread, out = _in_background(lambda: _call(servers[-1].url + "/api/release/tables",
                                               tokens["analyst"], json.dumps(RELEASE).encode()))
    lock.wait_for_waiter()
    servers[-1].kill9()
    thread.join(timeout=30)
    assert out and isinstance(out[0], OSError)
    lock.release()
    _others_gone(url)
    state = _ledger(url)
    assert state["chain_ok"] and state["spends"] == [] and state["releases"] == []
    servers.append(Server(url))
    status, rel = _call(servers[-1].url + "/api/release/tables", tokens["analyst"],
                        json.dumps(RELEASE).encode())
    assert status == 200
    state = _ledger(url)
    assert [s["release_id"] for s in state["spends"]] == [rel["release_id"]] == [
        r["release_id"] for r in state["releases"]]
    with open_store(url) as store:
        assert store.scalar("SELECT count(*) FROM records") == EXPECTED_ACCEPTED


def test_postgres_restart_mid_request_is_a_503_and_the_server_recovers(
        pg_hub: dict[str, Any], servers: list[Server], postgres_server: PostgresServer) -> None:
    url, tokens = pg_hub["url"], pg_hub["tokens"]
    with open_store(url) as store:
        add_contribution(store, pg_hub["contribution"], actor="test")
    servers.append(Server(url))
    lock = ChainLock(url)
    thread, out = _in_background(lambda: _call(servers[0].url + "/api/release/tables",
                                               tokens["analyst"], json.dumps(RELEASE).encode()))
    lock.wait_for_waiter()
    postgres_server._run(str(postgres_server.bindir / "pg_ctl"), "-D", str(postgres_server.data),
                         "-l", str(postgres_server.root / "server.log"), "-m", "fast", "-w",
                         "-t", "60", "restart")
    thread.join(timeout=60)
    lock.release()
    status, answer = out[0]
    assert status == 503 and "not available" in answer["error"] and "nothing" in answer["error"], answer
    assert servers[0].proc.poll() is None  # the server stayed up
    status, rel = _call(servers[0].url + "/api/release/tables", tokens["analyst"],
                        json.dumps(RELEASE).encode())
    assert status == 200, rel
    state = _ledger(url)
    assert state["chain_ok"] and [s["release_id"] for s in state["spends"]] == [rel["release_id"]]


def test_chain_witness_is_written_whole_by_concurrent_writers(tmp_path: Path) -> None:
    """A server commits from many threads: the chain's head witness (beside the hub key) is never
    half-written or mixed from two writers, and never moves backwards (found by the concurrent
    releases above: writers of one process shared one temporary file)."""
    from accord.store import chain

    with open_store(tmp_path / "hub.duckdb") as store:
        store.audit("test", "test.start", {})  # creates the hub key and its witness
        key = chain.key_path(store)
        assert key is not None
        seen: list[tuple[int, str] | None] = []
        stop = threading.Event()

        def write(start: int) -> None:
            for seq in range(start, 4000, 8):
                chain.write_witness(store, seq, f"mac{seq}")

        def read() -> None:
            while not stop.is_set():
                seen.append(chain._read_witness(key))

        reader = threading.Thread(target=read)
        reader.start()
        writers = [threading.Thread(target=write, args=(i + 10,)) for i in range(8)]
        for t in writers:
            t.start()
        for t in writers:
            t.join()
        stop.set()
        reader.join()
        final = chain._read_witness(key)
    assert final == (3999, "mac3999")
    readable = [w for w in seen if w is not None]
    assert all(w[1] == f"mac{w[0]}" for w in readable if w[0] >= 10)  # never mixed or unreadable
    seqs = [w[0] for w in readable]
    assert seqs == sorted(seqs)  # never backwards
