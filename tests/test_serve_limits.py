"""The server's limit on analyses at once (accord.serve.deps.AnalysisLimit), on each hub engine:
every analysis (the analyst's routes, a steward's approval of a requested release) takes its turn
in the one limit, no more than its size run at once, and a DP release the budget cannot pay is
refused before it waits for a turn or reads a record (nothing spent, a 409 saying what is left).

The limit is observed through ``ServerConfig.on_analysis``: the hook holds the first analyses in
their turn until the test has seen the others waiting, so the counts are exact (no timing)."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from accord.cli.main import app
from accord.serve import requests as rq
from accord.serve.accounts import Role, User
from accord.serve.app import ServerConfig, create_app
from accord.store import add_contribution, open_store
from tests.serving import accounts_with_tokens, serving
from tests.test_hub_backends import contributions  # noqa: F401  (module fixture: 3 partners)
from tests.test_serve import _request

pytestmark = pytest.mark.slow  # a server and a hub per engine
ANALYST = User("ana", "agency", Role.ANALYST)
DEADLINE = 240.0  # a bound on waiting for the server, never an assertion on how long it took


@pytest.fixture
def loaded(hub: str, contributions: list[Path], tmp_path: Path) -> dict[str, str]:  # noqa: F811
    """A hub with three partners' records, an analyst and a steward (their tokens)."""
    with open_store(hub) as store:
        for c in contributions:
            add_contribution(store, c)
    files = accounts_with_tokens(hub, tmp_path / "tokens", ["agency"],
                                 {"ana": ("agency", Role.ANALYST), "steward": ("agency", Role.STEWARD)})
    return {"ana": files["ana"].read_text(), "sam": files["steward"].read_text()}


def _wait_for(condition: Any, what: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while not condition():
        assert time.monotonic() < deadline, f"the server never got to: {what}"
        time.sleep(0.05)


def test_approvals_and_analyses_share_one_limit(hub: str, loaded: dict[str, str]) -> None:
    with open_store(hub) as store:
        requests = [rq.create_request(store, ANALYST, "synthetic", {"epsilon": 0.5, "rows": 20})["request_id"],
                    rq.create_request(store, ANALYST, "microdata", {"k": 2, "l": 1, "max_loss": None,
                                                                    "sensitive": []})["request_id"]]
    started: list[str] = []
    peak = [0]
    lock = threading.Lock()
    go = threading.Event()
    holder: dict[str, Any] = {}

    def on_analysis(what: str) -> None:
        with lock:
            started.append(what)
            peak[0] = max(peak[0], holder["limit"].running)
        go.wait(DEADLINE)  # the first analyses hold their turns until the test has looked

    web = create_app(ServerConfig(hub, max_concurrent_analyses=2, on_analysis=on_analysis))
    limit = holder["limit"] = web.state.analysis_limit
    calls = [("/api/requests/" + requests[0] + "/approve", "sam", {}),
             ("/api/requests/" + requests[1] + "/approve", "sam", {}),
             ("/api/release/tables", "ana", {"epsilon": 0.5, "tables": ["case_type_by_sex"]}),
             ("/api/stats", "ana", {}),
             ("/api/budget", "sam", None)]
    answers: dict[str, int] = {}

    with serving(web) as url:
        def call(route: str, who: str, body: dict[str, Any] | None) -> None:
            data = None if body is None else json.dumps(body).encode()
            status, _, _ = _request(url + route, loaded[who], "GET" if body is None else "POST", data)
            answers[route] = status

        threads = [threading.Thread(target=call, args=c) for c in calls]
        for t in threads:
            t.start()
        try:
            # two in their turn (held by the hook), the three others waiting for one
            _wait_for(lambda: len(started) == 2 and limit.waiting == 3, "2 running and 3 waiting")
            assert limit.running == 2
        finally:
            go.set()
        for t in threads:
            t.join(DEADLINE)
    assert answers == {route: 200 for route, _, _ in calls}, answers
    assert len(started) == len(calls) and peak[0] == 2  # every analysis took a turn; never more than 2
    assert sum(1 for s in started if s == "/api/requests/approve") == 2
    assert limit.running == 0 and limit.waiting == 0


def test_a_release_the_budget_cannot_pay_is_refused_before_its_turn(
        hub: str, loaded: dict[str, str], tmp_path: Path) -> None:
    from accord.release.dp import ledger
    from accord.release.dp.release import tables_cost

    started: list[str] = []
    with open_store(hub) as store:
        ledger.set_budget(store, 0.5, 1e-6, "sam")
        rid = rq.create_request(store, ANALYST, "synthetic", {"epsilon": 2.0, "rows": 20})["request_id"]
    with serving(ServerConfig(hub, on_analysis=started.append)) as url:
        status, payload, _ = _request(url + "/api/release/tables", loaded["ana"], "POST",
                                      json.dumps({"epsilon": 2.0}).encode())
        assert status == 409 and payload["exit_code"] == 3, payload
        assert "left" in payload["error"] and "nothing was computed or spent" in payload["error"]
        status, payload, _ = _request(url + f"/api/requests/{rid}/approve", loaded["sam"], "POST", b"")
        assert status == 409 and "left" in payload["error"] and "stays pending" in payload["error"], payload
        assert started == []  # neither waited for a turn nor ran
        # one it can pay takes its turn and spends what was planned
        status, payload, _ = _request(url + "/api/release/tables", loaded["ana"], "POST",
                                      json.dumps({"epsilon": 0.1, "tables": ["case_type_by_sex"]}).encode())
        assert status == 200 and started == ["/api/release/tables"], payload
    assert payload["parameters"]["rho"] == pytest.approx(tables_cost(0.1, names=["case_type_by_sex"]), rel=1e-6)
    with open_store(hub) as store:
        assert ledger.current_budget(store).spends == 1
        assert rq.get_request(store, rid)["status"] == rq.PENDING
    # the local CLI refuses it before reading too (exit 3), saying what is left
    res = CliRunner().invoke(app, ["release", "tables", "--hub", hub, "--epsilon", "3",
                                   "--out", str(tmp_path / "no")])
    assert res.exit_code == 3 and "left" in res.output and not (tmp_path / "no").exists(), res.output


@pytest.mark.parametrize("hub", ["duckdb"], indirect=True)
def test_planned_cost_is_what_a_release_spends(hub: str, loaded: dict[str, str]) -> None:
    """The early refusal's figure is the release's own: for both mechanisms, one table or all; a
    release asking for exactly what is left passes the early check (the spend makes the exact one)."""
    from accord.errors import ReleaseRefused
    from accord.release.dp import ledger
    from accord.release.dp.release import release_tables, tables_cost

    with open_store(hub) as store:
        for mechanism, names in (("gaussian", None), ("laplace", None), ("laplace", ["case_type_by_sex"])):
            rel = release_tables(store, 0.3, mechanism=mechanism, names=names)
            assert rel.parameters["rho"] == pytest.approx(tables_cost(0.3, mechanism=mechanism,
                                                                      names=names), rel=1e-6)
        left = ledger.current_budget(store).remaining_rho
        ledger.require_affordable(store, left)
        with pytest.raises(ReleaseRefused, match="left"):
            ledger.require_affordable(store, left * 1.01)


@pytest.mark.parametrize("hub", ["duckdb"], indirect=True)  # the pages call the code tested above on both
def test_web_approvals_and_analyses_take_their_turn(hub: str, loaded: dict[str, str]) -> None:
    """The web pages go through the same limit: an approval and the analyst's report each take a
    turn; a confirmation page does not; an approval the budget cannot pay is refused before."""
    import urllib.parse

    from tests.test_serve_web import _csrf_of, _http, _http_sign_in

    with open_store(hub) as store:
        micro = rq.create_request(store, ANALYST, "microdata", {"k": 2, "l": 1, "max_loss": None,
                                                                "sensitive": []})["request_id"]
        costly = rq.create_request(store, ANALYST, "synthetic", {"epsilon": 50.0, "rows": 20})["request_id"]
    started: list[str] = []
    with serving(ServerConfig(hub, on_analysis=started.append)) as url:
        def post(who: str, page: str, path: str, fields: dict[str, str]) -> tuple[int, bytes]:
            cookie = {"Cookie": "accord_session=" + _http_sign_in(url, who)}
            csrf = _csrf_of(_http(url, "GET", page, headers=cookie)[2])
            status, _, body = _http(url, "POST", path, urllib.parse.urlencode({**fields, "csrf": csrf}).encode(),
                                    {**cookie, "Content-Type": "application/x-www-form-urlencoded"})
            return status, body

        approve = "/ui/steward/requests/approve"
        status, body = post("steward", "/ui/steward/requests", approve, {"request_id": micro})
        assert status == 200 and b"Approve and run the release" in body and started == []
        status, body = post("steward", "/ui/steward/requests", approve, {"request_id": costly, "confirm": "yes"})
        assert status == 409 and b"left" in body and b"nothing was computed or spent" in body
        assert started == []
        status, _ = post("steward", "/ui/steward/requests", approve, {"request_id": micro, "confirm": "yes"})
        assert status == 303 and started == [approve]
        status, _ = post("ana", "/ui/analyst", "/ui/analyst/report", {})
        assert status in (200, 409) and started == [approve, "/ui/analyst/report"]
    with open_store(hub) as store:
        assert rq.get_request(store, micro)["status"] == rq.APPROVED
        assert rq.get_request(store, costly)["status"] == rq.PENDING
