"""A steward changes a user's role (`accord hub user role`, the accounts page), on both engines.

The role is read from the hub at each request, so a change applies at once to web sessions and
API tokens alike; never one's own, never a closed account, never the hub's last steward. A record-
level release is decided by a second person: a user promoted to steward cannot approve the request
they made as an analyst (the control: another steward can).
"""

from __future__ import annotations

import json
import urllib.parse
from pathlib import Path

import pytest

from accord.protect.keys import PartnerKey
from accord.serve import requests as rq
from accord.serve.accounts import AccountError, Role, User, set_role, user_of_token
from accord.serve.app import ServerConfig
from accord.store import open_store
from tests.hubs import run_cli
from tests.serving import partner_hub_with_tokens, serving
from tests.test_serve_web import PASSWORD, _csrf_of, _http, _http_sign_in


@pytest.fixture
def loaded(hub: str, tmp_path: Path, case_export: tuple[Path, Path], partner_key: PartnerKey) -> dict[str, Path]:
    """A hub with one partner's records, an analyst (ana), two stewards (steward, tess) and an auditor."""
    return partner_hub_with_tokens(hub, tmp_path, case_export, partner_key, ("agency", "ngo-b"),
                                   {"ana": ("agency", Role.ANALYST), "steward": ("agency", Role.STEWARD),
                                    "tess": ("agency", Role.STEWARD), "olu": ("ngo-b", Role.AUDITOR)})


def _audit(hub: str, action: str) -> list[dict[str, object]]:
    with open_store(hub) as store:
        return [json.loads(r["detail"]) for r in store.query(
            "SELECT detail FROM audit WHERE action = ?", [action]).to_pylist()]


def test_a_role_change_applies_at_once_and_is_bounded(hub: str, loaded: dict[str, Path]) -> None:
    token = loaded["ana"].read_text()
    with open_store(hub) as store:
        assert user_of_token(store, token) == User("ana", "agency", Role.ANALYST)
        assert set_role(store, "ana", Role.AUDITOR, "steward") == Role.ANALYST
        assert user_of_token(store, token) == User("ana", "agency", Role.AUDITOR)  # the same token
        with pytest.raises(AccountError, match="your own role"):
            set_role(store, "steward", Role.ANALYST, "steward")
        with pytest.raises(AccountError, match="auditor already"):
            set_role(store, "ana", Role.AUDITOR, "steward")
        with pytest.raises(AccountError, match="no user"):
            set_role(store, "nobody", Role.AUDITOR, "steward")
        set_role(store, "tess", Role.ANALYST, "steward")  # control: steward is still one
        with pytest.raises(AccountError, match="only open steward"):
            set_role(store, "steward", Role.ANALYST, "hub-steward")
        from accord.serve.accounts import disable_user

        disable_user(store, "olu", "steward")
        with pytest.raises(AccountError, match="disabled"):
            set_role(store, "olu", Role.ANALYST, "steward")
    assert _audit(hub, "hub.user_role") == [{"user": "ana", "from": "analyst", "to": "auditor"},
                                            {"user": "tess", "from": "steward", "to": "analyst"}]


def test_a_promoted_analyst_cannot_approve_their_own_request(hub: str, loaded: dict[str, Path]) -> None:
    ana = User("ana", "agency", Role.ANALYST)
    with open_store(hub) as store:
        made = [rq.create_request(store, ana, "synthetic", {"epsilon": 1.0, "rows": 20}, "a test")["request_id"]
                for _ in range(2)]
        set_role(store, "ana", Role.STEWARD, "steward")
        with pytest.raises(rq.OwnRequest, match="your own"):
            rq.approve_request(store, made[0], "ana")
        assert rq.get_request(store, made[0])["status"] == "pending"
        assert rq.approve_request(store, made[0], "tess")["status"] == "approved"  # control
    out = run_cli("hub", "requests", "approve", made[1], "--actor", "ana", "--hub", hub, code=2)
    assert "another steward" in " ".join(out.split())
    with open_store(hub) as store:
        assert rq.get_request(store, made[1])["status"] == "pending"


def test_the_last_open_steward_account_cannot_be_closed(hub: str, loaded: dict[str, Path]) -> None:
    """Closing an account takes its role away as surely as a role change: the server's CLI acts
    as `hub-steward`, not an account, so it could close every steward of the hub."""
    from accord.serve.accounts import disable_user

    with open_store(hub) as store:
        disable_user(store, "tess", "steward")  # control: steward is still open
        with pytest.raises(AccountError, match="only open steward"):
            disable_user(store, "steward", "hub-steward")
    out = run_cli("hub", "user", "disable", "steward", "--hub", hub, code=2)
    assert "only open steward" in " ".join(out.split())
    rows = {r["username"]: r for r in run_cli("hub", "user", "list", "--json", "--hub", hub, read="json")}
    assert rows["steward"]["disabled_at"] is None and rows["tess"]["disabled_at"] is not None


def test_role_from_the_cli(hub: str, loaded: dict[str, Path]) -> None:
    out = run_cli("hub", "user", "role", "ana", "--role", "auditor", "--hub", hub, read="squeezed")
    assert "user ana's role is now auditor (was analyst)" in out
    run_cli("hub", "user", "role", "ana", "--role", "boss", "--hub", hub, code=2)
    run_cli("hub", "user", "role", "ana", "--role", "auditor", "--hub", hub, code=2)  # already
    rows = {r["username"]: r for r in run_cli("hub", "user", "list", "--json", "--hub", hub, read="json")}
    assert rows["ana"]["role"] == "auditor"


@pytest.mark.slow
def test_role_on_the_accounts_page(hub: str, loaded: dict[str, Path]) -> None:
    from accord.serve.accounts import reset_password

    with open_store(hub) as store:  # a password the steward knows, to sign in to the web pages
        one_time = reset_password(store, "steward", "hub-steward")
        from accord.serve.accounts import change_password

        change_password(store, "steward", one_time, PASSWORD)
    with serving(ServerConfig(hub)) as site:
        cookie = "accord_session=" + _http_sign_in(site, "steward")
        _, _, body = _http(site, "GET", "/ui/steward/accounts", headers={"Cookie": cookie})
        page = body.decode()
        assert "Change a person's role" in page and '<option value="steward">steward (' not in page  # not oneself
        headers = {"Cookie": cookie, "Content-Type": "application/x-www-form-urlencoded"}
        form = {"csrf": _csrf_of(body), "username": "ana", "role": "auditor"}
        status, _, answer = _http(site, "POST", "/ui/steward/accounts/role",
                                  urllib.parse.urlencode(form).encode(), headers)
        assert status == 200 and "Change ana&#39;s role to auditor?" in answer.decode()
        with open_store(hub) as store:
            assert user_of_token(store, loaded["ana"].read_text()).role == Role.ANALYST  # not yet
        status, got, _ = _http(site, "POST", "/ui/steward/accounts/role",
                               urllib.parse.urlencode({**form, "confirm": "yes"}).encode(), headers)
        assert status == 303 and "done=role" in got["location"]
        form = {"csrf": form["csrf"], "username": "tess", "role": "nobody", "confirm": "yes"}
        status, _, _ = _http(site, "POST", "/ui/steward/accounts/role",
                             urllib.parse.urlencode(form).encode(), headers)
        assert status == 400
    with open_store(hub) as store:
        assert user_of_token(store, loaded["ana"].read_text()).role == Role.AUDITOR
        assert user_of_token(store, loaded["tess"].read_text()).role == Role.STEWARD


@pytest.mark.slow
def test_own_request_refused_on_the_requests_page_and_the_api(hub: str, loaded: dict[str, Path]) -> None:
    with open_store(hub) as store:
        made = rq.create_request(store, User("ana", "agency", Role.ANALYST), "synthetic",
                                 {"epsilon": 1.0, "rows": 20}, "a test")["request_id"]
        set_role(store, "ana", Role.STEWARD, "steward")
        from accord.serve.accounts import change_password, reset_password

        change_password(store, "ana", reset_password(store, "ana", "steward"), PASSWORD)
    with serving(ServerConfig(hub)) as site:
        cookie = "accord_session=" + _http_sign_in(site, "ana")
        _, _, body = _http(site, "GET", "/ui/steward/requests", headers={"Cookie": cookie})
        form = urllib.parse.urlencode({"csrf": _csrf_of(body), "request_id": made}).encode()
        status, _, page = _http(site, "POST", "/ui/steward/requests/approve", form,
                                {"Cookie": cookie, "Content-Type": "application/x-www-form-urlencoded"})
        assert status == 403 and "your own" in page.decode()  # before any confirmation page
        status, _, answer = _http(site, "POST", f"/api/requests/{made}/approve", b"{}",
                                  {"Authorization": f"Bearer {loaded['ana'].read_text()}"})
        assert status == 403 and "another steward" in answer.decode()
        status, _, _ = _http(site, "POST", f"/api/requests/{made}/approve", b"{}",
                             {"Authorization": f"Bearer {loaded['tess'].read_text()}"})
        assert status == 200  # control: another steward approves it
