"""The sign-in limit lives in the hub, not in one server process.

An attacker who guesses passwords must not get a fresh allowance by waiting for (or causing) a
restart of `accord serve`, nor N allowances by reaching N server processes of one PostgreSQL hub.
Each test fails on a limit kept in process memory (the negative control is the unlocked account,
and the other account from the same address, which still sign in).
"""

# ruff: noqa: F811  (the fixtures imported from tests.test_serve_web are parameters below)
from __future__ import annotations

import json
import urllib.parse
from typing import Any

import pytest

from accord.serve.app import ServerConfig
from accord.serve.web import WebSettings
from accord.store import open_store
from tests.hubs import run_cli
from tests.serving import serving
from tests.test_serve_web import (  # noqa: F401  (fixtures)
    PASSWORD,
    _audit,
    _click,
    _cookie,
    _csrf_of,
    _http,
    _http_sign_in,
    _shot,
    _sign_in,
    browser,
    people,
)

pytestmark = pytest.mark.slow  # servers and accounts per test
LIMIT = WebSettings(max_failures_per_user=2, max_failures_per_address=50)


def _sign_in_status(site: str, user: str, password: str) -> int:
    """The status of a sign-in over plain HTTP, as a browser sends it (303 signed in, 401 wrong
    password, 429 locked)."""
    _, headers, body = _http(site, "GET", "/ui/login")
    form = urllib.parse.urlencode({"username": user, "password": password, "csrf": _csrf_of(body)})
    status, _, _ = _http(site, "POST", "/ui/login", form.encode(),
                         {"Content-Type": "application/x-www-form-urlencoded",
                          "Cookie": _cookie(headers, "accord_login_csrf")})
    return status


def test_a_restart_keeps_the_lock(hub: str, people: dict[str, Any]) -> None:
    with serving(ServerConfig(hub, web=LIMIT)) as site:
        assert _sign_in_status(site, "ana", "wrong guess one") == 401
        assert _sign_in_status(site, "ana", "wrong guess two") == 429  # the second failure locks
    with serving(ServerConfig(hub, web=LIMIT)) as site:  # a new server process's app, same hub
        assert _sign_in_status(site, "ana", PASSWORD) == 429  # the right password: still locked
        assert _sign_in_status(site, "sam", PASSWORD) == 303  # control: another account signs in
    with open_store(hub) as store:  # only hashes and times are kept, never the name or the address
        rows = store.query("SELECT * FROM hub_login_failures").to_pylist()
    assert rows and all(set(r) == {"kind", "key_sha256", "failed_at"} for r in rows)
    assert not any("ana" in str(v) or "127.0.0.1" in str(v) for r in rows for v in r.values())


@pytest.mark.parametrize("hub", ["postgres"], indirect=True)  # DuckDB allows one writing process
def test_servers_of_one_hub_share_the_count(hub: str, people: dict[str, Any]) -> None:
    with serving(ServerConfig(hub, web=LIMIT)) as first, serving(ServerConfig(hub, web=LIMIT)) as second:
        assert _sign_in_status(first, "ana", "wrong guess one") == 401
        assert _sign_in_status(second, "ana", "wrong guess two") == 429  # counted across processes
        assert _sign_in_status(first, "ana", PASSWORD) == 429
        assert _sign_in_status(second, "olu", PASSWORD) == 303  # control


def test_a_success_clears_the_account_and_old_failures_leave(hub: str, people: dict[str, Any]) -> None:
    quick = WebSettings(max_failures_per_user=2, max_failures_per_address=50, lockout_minutes=15)
    with serving(ServerConfig(hub, web=quick)) as site:
        assert _sign_in_status(site, "ana", "wrong guess one") == 401
        assert _sign_in_status(site, "ana", PASSWORD) == 303  # clears ana's one failure
        assert _sign_in_status(site, "ana", "wrong guess two") == 401  # one failure again, not two
    with open_store(hub) as store:  # failures older than the window are swept at the next failure
        store.execute("UPDATE hub_login_failures SET failed_at = failed_at - 3600")
    with serving(ServerConfig(hub, web=quick)) as site:
        assert _sign_in_status(site, "ana", "wrong guess three") == 401  # the old one has left
    with open_store(hub) as store:
        assert store.scalar("SELECT count(*) FROM hub_login_failures") == 2  # user + address


def _lock(site: str, user: str) -> None:
    assert _sign_in_status(site, user, "wrong guess one") == 401
    assert _sign_in_status(site, user, "wrong guess two") == 429
    assert _sign_in_status(site, user, PASSWORD) == 429  # the right password does not get in


def test_a_steward_lifts_a_lockout(hub: str, people: dict[str, Any]) -> None:
    """On the accounts page (the locked account is marked, with an Unlock button), with `accord hub
    user unlock`, and by resetting the password; each audited. The control: locked accounts stay
    locked until then, and the page marks no other account."""
    with serving(ServerConfig(hub, web=LIMIT)) as site:
        _lock(site, "ana")
        cookie = "accord_session=" + _http_sign_in(site, "sam")
        status, _, body = _http(site, "GET", "/ui/steward/accounts", headers={"Cookie": cookie})
        page = body.decode()
        assert status == 200 and page.count("sign-in locked") == 1
        assert 'aria-label="Lift the sign-in lockout of ana"' in page
        form = urllib.parse.urlencode({"csrf": _csrf_of(body), "username": "ana"}).encode()
        status, headers, _ = _http(site, "POST", "/ui/steward/accounts/unlock", form,
                                   {"Cookie": cookie, "Content-Type": "application/x-www-form-urlencoded"})
        assert status == 303 and "done=unlocked" in headers["location"]
        assert _sign_in_status(site, "ana", PASSWORD) == 303
        _lock(site, "olu")
        _lock(site, "maria")
    assert [json.loads(a["detail"])["failures_cleared"] for a in _audit(hub, "hub.user_unlock")] == [2]
    out = run_cli("hub", "user", "unlock", "olu", "--hub", hub, read="squeezed")
    assert "olu unlocked (2 failed sign-ins forgotten)" in out
    run_cli("hub", "user", "unlock", "nobody", "--hub", hub, code=2)
    with open_store(hub) as store:
        from accord.serve.accounts import reset_password

        one_time = reset_password(store, "maria", "sam")
    with serving(ServerConfig(hub, web=LIMIT)) as site:
        assert _sign_in_status(site, "olu", PASSWORD) == 303
        assert _sign_in_status(site, "maria", one_time) == 303  # the reset ended the lockout too


def test_the_accounts_page_marks_and_unlocks_in_a_browser(hub: str, people: dict[str, Any],
                                                          browser: Any) -> None:
    from selenium.webdriver.common.by import By

    with serving(ServerConfig(hub, web=LIMIT)) as site:
        _lock(site, "ana")
        _sign_in(browser, site, "sam")
        browser.get(site + "/ui/steward/accounts")
        row = browser.find_element(By.XPATH, "//tr[th[normalize-space()='ana']]")
        assert "sign-in locked" in row.text
        assert "sign-in locked" not in browser.find_element(By.XPATH, "//tr[th[normalize-space()='olu']]").text
        _shot(browser, "steward-accounts-locked")
        _click(browser, "button[aria-label='Lift the sign-in lockout of ana']")
        assert "ana can sign in again" in browser.find_element(By.TAG_NAME, "main").text
        assert "sign-in locked" not in browser.find_element(By.TAG_NAME, "main").text
        assert _sign_in_status(site, "ana", PASSWORD) == 303
