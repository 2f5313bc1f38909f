"""An analysis keeps its turn in the server's limit (accord.serve.deps.AnalysisLimit) for as long
as its work runs, even when the request that started it goes away: a worker thread cannot be
stopped, so a freed turn would let a client start any number of analyses at once by
disconnecting. Observed through ``ServerConfig.on_analysis`` and events (no timing)."""

from __future__ import annotations

import asyncio
import json
import socket
import struct
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from accord.serve.accounts import Role
from accord.serve.app import ServerConfig, create_app
from accord.serve.deps import AnalysisLimit
from tests.serving import accounts_with_tokens, serving

DEADLINE = 60.0  # a bound on waiting, never an assertion on how long anything took


def _wait_for(condition: Any, what: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while not condition():
        assert time.monotonic() < deadline, f"never got to: {what}"
        time.sleep(0.02)


def test_a_cancelled_request_keeps_its_turn_until_its_work_ends() -> None:
    go = threading.Event()
    ran: list[str] = []

    def work(name: str) -> str:
        ran.append(name)
        go.wait(DEADLINE)
        return name

    async def scenario() -> None:
        limit = AnalysisLimit(1)
        first = asyncio.create_task(limit.run("first", work, "first"))
        while not ran:
            await asyncio.sleep(0.01)
        first.cancel()  # the request's task goes (its client disconnected); the thread runs on
        await asyncio.gather(first, return_exceptions=True)
        assert limit.running == 1, "the turn was given back while its work still runs"
        second = asyncio.create_task(limit.run("second", work, "second"))
        while limit.waiting != 1:
            await asyncio.sleep(0.01)
        assert ran == ["first"]
        go.set()
        assert await second == "second"
        assert ran == ["first", "second"] and limit.running == 0 and limit.waiting == 0

    asyncio.run(scenario())


def test_a_client_that_disconnects_does_not_free_its_turn(tmp_path: Path) -> None:
    """A real uvicorn on loopback, one turn: the first analysis' client resets its connection
    while the analysis runs; the next analysis still waits for that one to end."""
    hub = str(tmp_path / "hub.duckdb")
    token = accounts_with_tokens(hub, tmp_path / "tokens", ["agency"], {
        "ana": ("agency", Role.ANALYST), "steward": ("agency", Role.STEWARD)})["ana"].read_text().strip()
    go = threading.Event()
    started: list[str] = []

    def on_analysis(what: str) -> None:
        started.append(what)
        go.wait(DEADLINE)

    web = create_app(ServerConfig(hub, max_concurrent_analyses=1, on_analysis=on_analysis))
    limit: AnalysisLimit = web.state.analysis_limit
    answers: list[int] = []
    with serving(web) as url:
        host, port = url.removeprefix("http://").split(":")
        body = b"{}"
        raw = (f"POST /api/stats HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n"
               f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n").encode()
        with socket.create_connection((host, int(port)), timeout=DEADLINE) as s:
            s.sendall(raw + body)
            _wait_for(lambda: started == ["/api/stats"], "the first analysis running")
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # reset
        try:
            def second() -> None:
                req = urllib.request.Request(url + "/api/stats", data=json.dumps({}).encode(),
                                             method="POST",
                                             headers={"Authorization": f"Bearer {token}"})
                try:
                    with urllib.request.urlopen(req, timeout=DEADLINE) as r:
                        answers.append(r.status)
                except urllib.error.HTTPError as err:
                    answers.append(err.code)

            t = threading.Thread(target=second)
            t.start()
            _wait_for(lambda: limit.waiting == 1, "the second analysis waiting for its turn")
            assert limit.running == 1 and started == ["/api/stats"]
        finally:
            go.set()
        t.join(DEADLINE)
    assert started == ["/api/stats", "/api/stats"]
    assert answers == [422]  # it ran after the first: an empty hub has no tables to publish
    assert limit.running == 0 and limit.waiting == 0
