"""The analyst's commands against a real `accord serve` on loopback, on each hub engine: `accord
stats|report|release tables|estimate|budget --server URL --token-file T` print what the local
command prints (the DP draws of a data version are shared, so the figures are the same), draw from
the hub's one ledger under the token's user, keep the CLI's refusals and exit codes, and a
malformed request is a 400 that names the field and never echoes what was sent."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from accord.store import open_store
from tests.hubs import run_cli
from tests.test_hub_backends import contributions  # noqa: F401  (a module fixture)
from tests.test_serve import _request, accounts, server  # noqa: F401  (fixtures)

pytestmark = pytest.mark.slow  # a server and a linked hub per engine


@pytest.fixture
def linked(hub: str, contributions: list[Path]) -> str:  # noqa: F811
    for c in contributions:
        run_cli("hub", "add", str(c), "--hub", hub, "--actor", "steward")
    run_cli("link", "--hub", hub)
    return hub


def test_analyst_commands_through_the_server_match_local(
        linked: str, server: str, accounts: dict[str, Path], tmp_path: Path) -> None:  # noqa: F811
    hub = linked
    remote = ("--server", server, "--token-file", str(accounts["analyst"]))
    # DP tables (the data version's one draw, so the same figures) and exact tables: same output
    for extra in ((), ("--privacy", "suppression"), ("--json",)):
        local = run_cli("stats", "--hub", hub, *extra)
        assert run_cli("stats", *remote, *extra) == local, extra
    assert run_cli("estimate", "--hub", hub) == run_cli("estimate", *remote)
    est = json.loads(run_cli("estimate", *remote, "--json"))
    assert est["release_id"].startswith("estimate-") and est["partners"]
    # the report is rendered by the server and written here
    out = run_cli("report", *remote, "--out", str(tmp_path / "r.html"))
    assert "wrote" in out and "release" in out
    assert (tmp_path / "r.html").read_text().startswith("<!") and (tmp_path / "r.html").stat().st_size > 10_000
    # a DP release paid from the hub's ledger, in the analyst's name, files as a local release writes
    rel = json.loads(run_cli("release", "tables", *remote, "--epsilon", "0.5", "--tables",
                             "case_type_by_sex", "--out", str(tmp_path / "dp"), "--json"))
    assert sorted(p.name for p in (tmp_path / "dp").iterdir()) == [
        "case_type_by_sex.csv", "case_type_by_sex.schema.json", "datapackage.json", "release.json"]
    budget = json.loads(run_cli("budget", *remote, "--json"))
    # one ledger: the tables' and estimates' DP draws (local or remote) and this release
    assert budget["budget"]["spent_rho"] == pytest.approx(sum(s["rho"] for s in budget["spends"]))
    assert [(s["actor"], s["release_id"], s["rho"]) for s in budget["spends"]
            if s["kind"] == "dp_tables"] == [("analyst", rel["release_id"], rel["parameters"]["rho"])]
    with open_store(hub) as store:
        local_budget = store.query("SELECT count(*) AS n FROM dp_ledger WHERE event = 'spend'").to_pylist()
        actors = {r["actor"] for r in store.releases()}
    assert local_budget[0]["n"] == budget["budget"]["spends"] and "analyst" in actors
    text = run_cli("release", "tables", *remote, "--epsilon", "0.2", "--tables", "case_type_by_sex",
                   "--out", str(tmp_path / "dp2"))
    assert "spent: asked for epsilon 0.2" in text and "left:" in text
    # the steward sets the budget over the API; an analyst may not; a release beyond it is refused (3)
    steward = ("--server", server, "--token-file", str(accounts["steward"]))
    denied = run_cli("budget", "set", "--epsilon", "50", *remote, code=2)
    assert "(403)" in denied
    spent_eps = json.loads(run_cli("budget", *remote, "--json"))["budget"]["spent_epsilon"]
    run_cli("budget", "set", "--epsilon", f"{spent_eps + 0.3:.4f}", *steward)
    refused = run_cli("release", "tables", *remote, "--epsilon", "5", "--out", str(tmp_path / "no"), code=3)
    assert "(409)" in refused and "budget" in refused and not (tmp_path / "no").exists()
    granted = run_cli("budget", "grant", "--epsilon", "5", "--reason", "2027 allowance", *steward)
    assert "granted epsilon 5" in granted
    run_cli("release", "tables", *remote, "--epsilon", "1", "--tables", "case_type_by_sex",
            "--out", str(tmp_path / "dp3"))
    # the CLI's own checks come first; an unknown table is refused by the server as locally
    assert "--epsilon" in run_cli("release", "tables", *remote, "--epsilon", "0", code=2)
    unknown = run_cli("release", "tables", *remote, "--epsilon", "0.1", "--tables", "nope", code=3)
    assert "unknown table" in unknown
    assert "--token-file" in run_cli("stats", "--server", server, code=2)
    # the chain is intact after all of it
    assert json.loads(run_cli("hub", "verify", "--hub", hub, "--json"))["ok"]


def test_malformed_requests_name_the_field_never_the_value(
        linked: str, server: str, accounts: dict[str, Path]) -> None:  # noqa: F811
    token = accounts["analyst"].read_text().strip()
    secret = "ZQX-Amina-1987"
    cases: list[tuple[str, Any, str]] = [
        ("/api/release/tables", {"epsilon": secret}, "epsilon"),
        ("/api/release/tables", {"epsilon": 0.5, "delta": 0.5}, "delta"),
        ("/api/release/tables", {"epsilon": 1000}, "epsilon"),
        ("/api/release/tables", {"epsilon": 0.5, secret: 1}, "is not a known field"),
        ("/api/release/tables", {}, "epsilon is required"),
        ("/api/stats", {"threshold": 1}, "threshold"),
        ("/api/stats", {"unit": secret}, "unit"),
        ("/api/estimate", {"bootstrap": 10**9}, "bootstrap"),
        ("/api/estimate", {"method": secret}, "method"),
        ("/api/report", {"rho": -1}, "rho"),
        ("/api/stats", {"protection": 3}, "protection applies to privacy 'suppression'"),
        ("/api/report", {"privacy": "suppression", "rho": 0.01}, "rho applies to privacy 'dp'"),
        ("/api/stats", [secret], "body"),
    ]
    for route, body, names in cases:
        status, payload, _ = _request(server + route, token, "POST", json.dumps(body).encode())
        assert status == 400, (route, body, payload)
        assert names in payload["error"], payload
        if names != "is not a known field":  # an unknown field's name is the client's own text
            assert secret not in json.dumps(payload)
    for raw in (b"{not json", b"NaN", b'{"epsilon": NaN}'):
        status, payload, _ = _request(server + "/api/release/tables", token, "POST", raw)
        assert status == 400 and any(w in payload["error"] for w in ("JSON", "epsilon", "body")), payload
    with open_store(linked) as store:
        assert not store.table_exists("dp_ledger") or store.scalar(
            "SELECT count(*) FROM dp_ledger WHERE event = 'spend'") == 0
