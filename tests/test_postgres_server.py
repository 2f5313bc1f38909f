"""The tests' PostgreSQL server dies with the process that started it: a test run killed with
SIGKILL leaves no `postgres -D` running and no directory behind (tests/pg_watchdog.py)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.postgres_server import PostgresServer, missing_reason

ROOT = Path(__file__).resolve().parent.parent
CHILD = """
import json, sys, time
from tests.postgres_server import PostgresServer
s = PostgresServer.start()
pid = int((s.data / "postmaster.pid").read_text().split()[0])
print(json.dumps({"pid": pid, "root": str(s.root)}), flush=True)
time.sleep(600)
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is dead too (the postmaster was reparented; its new parent reaps it later)
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def _gone_within(pid: int, root: Path, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not _alive(pid) and not root.exists():
            return True
        time.sleep(0.2)
    return False


@pytest.mark.skipif(missing_reason() is not None, reason=str(missing_reason()))
def test_server_stops_when_its_parent_is_killed() -> None:
    child = subprocess.Popen([sys.executable, "-c", CHILD], cwd=ROOT, stdout=subprocess.PIPE,
                             text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        line = child.stdout.readline() if child.stdout else ""
        assert line, "the child did not start a server"
        started = json.loads(line)
        pid, root = int(started["pid"]), Path(started["root"])
        assert _alive(pid) and root.exists()
    finally:
        child.send_signal(signal.SIGKILL)  # no cleanup code of the child runs
        child.wait(timeout=30)
    gone = _gone_within(pid, root, 90)
    if not gone:  # leave nothing running or behind even when the test fails
        if _alive(pid):
            subprocess.run(["kill", "-9", str(pid)], check=False)
        shutil.rmtree(root, ignore_errors=True)
    assert gone, "the PostgreSQL server outlived the process that started it"


@pytest.mark.skipif(missing_reason() is not None, reason=str(missing_reason()))
def test_stop_stops_the_server_and_its_watchdog() -> None:
    server = PostgresServer.start()
    pid = int((server.data / "postmaster.pid").read_text().split()[0])
    watchdog = server._watchdog
    server.stop()
    assert not _alive(pid) and not server.root.exists()
    assert watchdog is not None and watchdog.poll() is not None
