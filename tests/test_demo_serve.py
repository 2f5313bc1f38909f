"""`accord demo --serve`: the demo, then a hub on loopback with demo accounts; a printed token works
on the API, and the server stops on SIGTERM. Bounded: the test gives up after a few minutes."""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from accord.cli.main import app
from tests.serving import free_port as _free_port
from tests.test_serve import _request

pytestmark = pytest.mark.slow  # a small demo (about 30 s on 2 cores), then the server


def _read_until(proc: subprocess.Popen[str], pattern: str, deadline: float) -> str:
    """Everything printed up to and including the first line matching ``pattern`` (a thread reads
    the pipe, so the wait is bounded even when the process prints nothing)."""
    assert proc.stdout is not None
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(x) for x in proc.stdout], daemon=True).start()  # type: ignore[union-attr]
    seen: list[str] = []
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=1.0)
        except queue.Empty:
            assert proc.poll() is None, "".join(seen) + (proc.stderr.read() if proc.stderr else "")
            continue
        seen.append(line)
        if re.search(pattern, line):
            return "".join(seen)
    raise AssertionError("accord demo --serve printed no " + pattern + ":\n" + "".join(seen))


def test_demo_serve_prints_working_credentials(tmp_path: Path) -> None:
    port = _free_port()
    env = {**os.environ, "COLUMNS": "200", "ACCORD_HUB_KEY": ""}
    env.pop("ACCORD_HUB_KEY")
    proc = subprocess.Popen(
        [sys.executable, "-m", "accord.cli.main", "demo", "--out", str(tmp_path / "demo"),
         "--people", "300", "--partners", "2", "--serve", "--bind", f"127.0.0.1:{port}"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        printed = _read_until(proc, r"^stop:", time.monotonic() + 300)
        tokens = dict(re.findall(r"^token (\S+): (accord_\S+)$", printed, re.M))
        assert set(tokens) == {"partner-a", "partner-b", "steward", "analyst", "auditor"}
        assert f"http://127.0.0.1:{port}/" in printed
        passwords = re.findall(r"│ (partner-a|steward) +│ \S+ +│ \S+ +│ (\S+) +│", printed)
        assert len(passwords) == 2 and all(len(p) >= 12 for _, p in passwords)
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                status, me, _ = _request(base + "/api/whoami", tokens["steward"])
                break
            except OSError:
                assert time.monotonic() < deadline and proc.poll() is None, "the demo hub did not answer"
                time.sleep(0.2)
        assert status == 200 and me == {"user": "steward", "org": "demo-hub", "role": "steward"}
        status, batches, _ = _request(base + "/api/batches", tokens["partner-a"])
        assert status == 200 and [b["partner"] for b in batches] == ["partner-a"]
        assert _request(base + "/api/audit", tokens["analyst"])[0] == 403
        token_file = tmp_path / "demo" / "hub" / "tokens" / "auditor.token"
        assert token_file.read_text().strip() == tokens["auditor"]
        assert token_file.stat().st_mode & 0o777 == 0o600
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=30)
    # the demo without --serve is unchanged (make demo); a non-loopback address is refused
    bad = CliRunner().invoke(app, ["demo", "--out", str(tmp_path / "x"), "--serve", "--bind", "0.0.0.0:8000"])
    assert bad.exit_code == 2 and "loopback" in bad.output and not (tmp_path / "x").exists()
