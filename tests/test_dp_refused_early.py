"""DP releases the budget left cannot pay are refused before any record is read, with the budget
figures and nothing spent: `accord stats`, `report` and `estimate`, locally and through the
server's routes, on both engines. Before, the stats draw was computed (and, with people linked,
paid for) before the partner-overlap draw found the budget short: exit 3 with rho spent."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, NoReturn

import pytest

from tests.hubs import run_cli, simulated_contributions
from tests.test_serve import accounts, server  # noqa: F401  (fixtures)

# rho 0.0120 at the default delta 1e-6: more than the stats draw (0.01), less than the stats and
# partner-overlap draws together (0.015).
SHORT_EPSILON = "0.83"


@pytest.fixture(scope="module")
def contributions(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return simulated_contributions(tmp_path_factory.mktemp("early"),
                                   people=80, partners=2, overlap=0.3, seed=5)


def _budget(hub: str) -> dict[str, Any]:
    return dict(json.loads(run_cli("budget", "--hub", hub, "--json", read="squeezed")))


def _no_record_read(*args: object, **kwargs: object) -> NoReturn:
    raise AssertionError("a refused release read the hub's records")


def test_releases_the_budget_cannot_pay_are_refused_before_reading(
        hub: str, contributions: list[Path], server: str,  # noqa: F811
        accounts: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    for c in contributions:
        run_cli("hub", "add", str(c), "--hub", hub)
    run_cli("link", "--hub", hub)
    run_cli("budget", "set", "--epsilon", SHORT_EPSILON, "--hub", hub)
    remote = ("--server", server, "--token-file", str(accounts["analyst"]))
    with monkeypatch.context() as m:  # the server runs in this process: it is watched as well
        m.setattr("accord.research.noisy.load_people", _no_record_read)
        m.setattr("accord.research.estimate.pipeline.person_lists", _no_record_read)
        for where in (("--hub", hub), remote):
            out = run_cli("stats", *where, code=3, read="squeezed")
            assert "needs rho 0.015" in out and "but only rho 0.01" in out, out
            assert "nothing was computed or spent" in out and "lower --rho" in out
            out = run_cli("report", *where, "--out", str(tmp_path / "r.html"), code=3, read="squeezed")
            assert "needs rho 0.015" in out and "nothing was computed or spent" in out, out
            out = run_cli("estimate", *where, "--rho", "0.05", code=3, read="squeezed")
            assert "needs rho 0.05" in out and "nothing was computed or spent" in out, out
    assert not (tmp_path / "r.html").exists()
    left = _budget(hub)
    assert left["budget"]["spent_rho"] == 0 and left["spends"] == []

    # Negative control: with the budget to pay for both draws, the same release reads and pays.
    run_cli("budget", "grant", "--epsilon", "0.65", "--reason", "enough for one version",
            "--hub", hub)
    run_cli("stats", "--hub", hub)
    after = _budget(hub)["budget"]
    assert after["spent_rho"] == pytest.approx(0.015)
    assert after["remaining_rho"] < 0.005 + 1e-6  # less than any draw costs
    # A draw the hub holds costs nothing: served again with less budget left than it cost.
    run_cli("stats", *remote)
    run_cli("report", "--hub", hub, "--out", str(tmp_path / "r.html"))
    run_cli("estimate", *remote)
    assert "needs rho 0.01" in run_cli("estimate", "--hub", hub, "--rho", "0.01", code=3, read="squeezed")
    assert _budget(hub)["budget"]["spent_rho"] == pytest.approx(0.015)


def _post_estimate(url: str, token_file: Path, body: dict[str, Any]) -> tuple[int, Any]:
    from tests.test_serve import _request

    status, answer, _ = _request(f"{url}/api/estimate", token_file.read_text().strip(), "POST",
                                 json.dumps(body).encode())
    return status, answer


def test_the_estimate_route_and_the_cli_refuse_alike(
        hub: str, contributions: list[Path], server: str,  # noqa: F811
        accounts: dict[str, Path]) -> None:  # noqa: F811
    """One resolution of rho and one check for ``accord estimate`` and POST /api/estimate: on the
    same hub they refuse the same requests, first for the same reason, with the same words."""
    for c in contributions:
        run_cli("hub", "add", str(c), "--hub", hub)
    run_cli("link", "--hub", hub)
    run_cli("budget", "set", "--epsilon", SHORT_EPSILON, "--hub", hub)
    analyst = accounts["analyst"]

    # Too dear: exit 3 / 409, the same sentence (the default rho of each is the same too).
    local = run_cli("estimate", "--hub", hub, "--rho", "0.05", code=3, read="squeezed")
    status, answer = _post_estimate(server, analyst, {"rho": 0.05})
    assert status == 409 and answer["exit_code"] == 3
    assert " ".join(answer["error"].split()) in local
    assert "needs rho 0.05" in local
    # A rho out of range: exit 2 / 400, the same words, before the budget is looked at.
    local = run_cli("estimate", "--hub", hub, "--rho", "1e-13", code=2, read="squeezed")
    status, answer = _post_estimate(server, analyst, {"rho": 1e-13})
    assert status == 400 and "--rho must be at least" in answer["error"]
    assert answer["error"].removeprefix("invalid request: ") in local
    # An unknown method with a rho the budget cannot pay: the CLI says the method is wrong (exit
    # 2), and so does the server (400), instead of refusing for the budget (409).
    assert "use one of" in run_cli("estimate", "--hub", hub, "--method", "nope", "--rho", "0.05",
                                   code=2, read="squeezed")
    status, answer = _post_estimate(server, analyst, {"method": "nope", "rho": 0.05})
    assert status == 400 and "method" in answer["error"], answer
    # Suppressed estimates with a rho: refused (exit 2 / 400) before anything is read or
    # recorded, not made with the rho silently ignored.
    remote = ("--server", server, "--token-file", str(analyst))
    for where in (("--hub", hub), remote):
        out = run_cli("estimate", *where, "--privacy", "suppression", "--rho", "0.001", code=2, read="squeezed")
        assert "--rho applies to --privacy dp" in out and "drop --rho" in out, out
    status, answer = _post_estimate(server, analyst, {"privacy": "suppression", "rho": 0.001})
    assert status == 400 and "--rho applies to --privacy dp" in answer["error"], answer
    assert json.loads(run_cli("hub", "releases", "--hub", hub, "--json", read="squeezed")) == []
    # Negative control: without the rho, both make them (exact counts, no budget spent).
    assert "suppression" in run_cli("estimate", "--hub", hub, "--privacy", "suppression", "--json", read="squeezed")
    status, answer = _post_estimate(server, analyst, {"privacy": "suppression"})
    assert status == 200, answer
    assert len(json.loads(run_cli("hub", "releases", "--hub", hub, "--json", read="squeezed"))) == 2
    # Negative control: what the budget can pay is made by both (one draw: the second is free).
    run_cli("estimate", "--hub", hub)
    status, answer = _post_estimate(server, analyst, {})
    assert status == 200 and answer["dp"]["reused"] is True
    assert _budget(hub)["budget"]["spent_rho"] == pytest.approx(0.005)
