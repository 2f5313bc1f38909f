"""Organisations' shares of a shared hub's privacy budget (`accord budget quota`).

A quota divides the hub's one lifetime budget: a release by a hub user draws from the hub's budget
and from their organisation's quota. Checked on both engines, through the library the server and
CLI call, the CLI, and the server's API (the organisation is the hub's, never the client's word).
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from accord.errors import ParameterError, ReleaseRefused
from accord.protect.keys import PartnerKey
from accord.release.dp import ledger
from accord.release.dp.release import release_tables
from accord.serve.accounts import Role
from accord.serve.app import ServerConfig
from accord.store import open_store
from tests.hubs import run_cli
from tests.serving import partner_hub_with_tokens, serving

TABLE = ["case_type_by_sex"]


@pytest.fixture
def loaded(hub: str, tmp_path: Path, case_export: tuple[Path, Path], partner_key: PartnerKey) -> dict[str, Path]:
    """A hub holding one partner's records, with an analyst at the agency and one at ngo-b."""
    return partner_hub_with_tokens(hub, tmp_path, case_export, partner_key, ("agency", "ngo-b"),
                                   {"ana": ("agency", Role.ANALYST), "bo": ("ngo-b", Role.ANALYST),
                                    "steward": ("agency", Role.STEWARD)})


def _shares(hub: str) -> dict[str, ledger.Quota]:
    with open_store(hub) as store:
        return {q.org: q for q in ledger.quotas(store)}


def test_a_quota_limits_its_organisation_only(hub: str, loaded: dict[str, Path]) -> None:
    with open_store(hub) as store:
        ledger.set_quota(store, "agency", 0.6, "steward", "agreed share")  # rho 0.0063
        release_tables(store, 0.5, names=TABLE, actor="ana")
        spent_once = ledger.quotas(store)[0].spent_rho
        with pytest.raises(ReleaseRefused, match="agency's quota"):  # before any record is read
            release_tables(store, 1.0, names=TABLE, actor="ana")
        assert ledger.current_budget(store).spends == 1  # the refusal spent nothing
        release_tables(store, 1.0, names=TABLE, actor="bo")  # control: ngo-b has no quota
        release_tables(store, 1.0, names=TABLE, actor="steward-terminal")  # not a hub user: hub only
        budget = ledger.current_budget(store)
        assert budget.spends == 3 and ledger.verify(store).ok
        with pytest.raises(ReleaseRefused, match="already spent"):  # never below what is spent
            ledger.set_quota(store, "agency", 0.01, "steward", "too small")
        with pytest.raises(ParameterError, match="no organisation"):
            ledger.set_quota(store, "nobody", 1.0, "steward", "unknown")
    shares = _shares(hub)
    assert set(shares) == {"agency", "ngo-b"}  # ngo-b is counted without a quota
    assert shares["agency"].spent_rho == pytest.approx(spent_once)
    assert shares["ngo-b"].quota_rho is None and shares["ngo-b"].spent_rho > 0
    total = shares["agency"].spent_rho + shares["ngo-b"].spent_rho
    assert total < budget.spent_rho  # the terminal's spend is the hub's only


def test_research_draws_are_refused_early_by_a_quota(hub: str, loaded: dict[str, Path]) -> None:
    """DP tables' and estimates' draws check the organisation's quota before any record is read
    (they checked only the hub's budget there; the spend refused them later, after the work)."""
    from accord.research.noisy import DEFAULT_RHO, require_draws_affordable
    from accord.research.stats import compute_dp_tables, require_dp_tables_affordable

    with open_store(hub) as store:
        ledger.set_quota(store, "agency", 0.05, "steward", "small share")
        assert ledger.quotas(store)[0].quota_rho < DEFAULT_RHO
        with pytest.raises(ReleaseRefused, match=r"agency's quota.*nothing was computed"):
            require_dp_tables_affordable(store, actor="ana")
        with pytest.raises(ReleaseRefused, match=r"agency's quota.*nothing was computed"):
            compute_dp_tables(store, actor="ana")
        with pytest.raises(ReleaseRefused, match=r"agency's quota.*nothing was computed"):
            require_draws_affordable(store, [("estimate-draw", DEFAULT_RHO)], "this estimate", "ana")
        assert ledger.current_budget(store).spends == 0
        require_dp_tables_affordable(store, actor="bo")  # control: ngo-b has no quota
        require_dp_tables_affordable(store)  # the steward's terminal: the hub's budget only
        compute_dp_tables(store, actor="bo")
        assert ledger.current_budget(store).spends == 1


def test_quota_from_the_cli(hub: str, loaded: dict[str, Path]) -> None:
    out = run_cli("budget", "quota", "agency", "--epsilon", "2", "--reason", "share 2027", "--hub", hub,
                  read="squeezed")
    assert "agency's quota is rho" in out and "= epsilon 2 at delta 1e-06" in out
    doc = run_cli("budget", "--json", "--hub", hub, read="json")
    assert [q["org"] for q in doc["quotas"]] == ["agency"] and doc["quotas"][0]["quota_epsilon"] == pytest.approx(2)
    assert any(e["event"] == "quota" for e in doc["events"])
    assert "Organisations' shares" in run_cli("budget", "--hub", hub)
    run_cli("budget", "quota", "agency", "--reason", "x", "--hub", hub, code=2)  # neither option
    run_cli("budget", "quota", "agency", "--epsilon", "1", "--remove", "--reason", "x", "--hub", hub, code=2)
    run_cli("budget", "quota", "agency", "--epsilon", "1", "--reason", " ", "--hub", hub, code=2)
    run_cli("budget", "quota", "nobody", "--epsilon", "1", "--reason", "x", "--hub", hub, code=2)
    out = run_cli("budget", "quota", "agency", "--remove", "--reason", "share ended", "--hub", hub, read="squeezed")
    assert "agency has no quota now" in out
    assert "agency" not in _shares(hub)  # no quota and nothing spent: not listed


@pytest.mark.slow
@pytest.mark.parametrize("hub", ["postgres"], indirect=True)  # the routes' code is engine-blind
def test_quota_over_the_api(hub: str, loaded: dict[str, Path]) -> None:
    def call(route: str, who: str, body: dict[str, object]) -> tuple[int, dict[str, object]]:
        req = urllib.request.Request(site + route, data=json.dumps(body).encode(), method="POST",
                                     headers={"Authorization": f"Bearer {loaded[who].read_text()}"})
        try:
            with urllib.request.urlopen(req, timeout=120) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read())

    with serving(ServerConfig(hub)) as site:
        assert call("/api/budget/quota", "ana", {"org": "agency", "epsilon": 0.5, "reason": "x"})[0] == 403
        status, doc = call("/api/budget/quota", "steward", {"org": "agency", "epsilon": 0.5, "reason": "x"})
        assert status == 200 and doc["org"] == "agency"
        status, doc = call("/api/release/tables", "ana", {"epsilon": 1, "tables": TABLE})
        assert status == 409 and "agency's quota" in json.dumps(doc)
        status, doc = call("/api/stats", "ana", {"privacy": "dp"})  # a research draw, refused early
        assert status == 409 and "nothing was computed" in json.dumps(doc)
        assert call("/api/release/tables", "bo", {"epsilon": 1, "tables": TABLE})[0] == 200  # control
        with urllib.request.urlopen(urllib.request.Request(
                site + "/api/budget", headers={"Authorization": f"Bearer {loaded['ana'].read_text()}"})) as r:
            quotas = {q["org"]: q for q in json.loads(r.read())["quotas"]}
        assert quotas["agency"]["spent_rho"] == 0 and quotas["ngo-b"]["spent_rho"] > 0
