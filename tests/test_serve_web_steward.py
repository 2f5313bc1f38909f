"""The steward's web pages (requests, privacy budget, accounts), the analyst's requests and the
forced change of a one-time password, driven in headless Chromium (see tests/test_serve_web.py for
the browser and server fixtures) and over plain HTTP; plus the account functions behind them.
Screenshots go to the test's temporary folder, or to docs/img/hub-*.png
with ACCORD_WRITE_SCREENSHOTS=1 (see tests/test_serve_web.py)."""
# ruff: noqa: F811  (the fixtures imported from tests.test_serve_web are parameters below)

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from pathlib import Path
from typing import Any

import pytest

from accord.serve.accounts import (
    AccountError,
    Role,
    add_org,
    add_user,
    change_password,
    check_password,
    create_token,
    disable_user,
    list_tokens,
    list_users,
    must_change_password,
    reopen_user,
    reset_password,
    user_of_token,
)
from accord.serve.web import WebSettings
from accord.store import add_contribution, open_store
from tests.test_hub_backends import contributions  # noqa: F401  (module fixture: 3 partners)
from tests.test_serve_web import (  # noqa: F401  (fixtures)
    PASSWORD,
    _audit,
    _check_accessible,
    _click,
    _csrf_of,
    _http,
    _http_sign_in,
    _shot,
    _sign_in,
    _sign_out,
    _text,
    browser,
    people,
    site,
    web_settings,
)

pytestmark = pytest.mark.slow  # a server, accounts and a browser per test
DUCKDB = pytest.mark.parametrize("hub", ["duckdb"], indirect=True)  # the pages' code is engine-blind;
# the store functions below run on both engines


def _fill(driver: Any, field_id: str, value: str) -> None:
    from selenium.webdriver.common.by import By

    field = driver.find_element(By.ID, field_id)
    field.clear()
    field.send_keys(value)


def _no_records(hub: str, *pages: str) -> None:
    with open_store(hub) as store:
        keys = [r["record_key"] for r in store.query("SELECT record_key FROM records").to_pylist()]
    assert keys and not any(k in page for page in pages for k in keys)


# ---------------------------------------------------------------- the account functions
def test_one_time_passwords_resets_and_disabled_accounts(hub: str) -> None:
    """On each engine: a one-time password must be changed; a change or a reset ends the web
    sessions and leaves the API tokens; a disabled account cannot sign in, its tokens are revoked;
    every step is audited without a password in it."""
    from accord.serve.web.sessions import create_session, session_of

    with open_store(hub) as store:
        add_org(store, "agency", "sam")
        add_user(store, "sam", "agency", Role.STEWARD, PASSWORD, "test")
        add_user(store, "ana", "agency", Role.ANALYST, PASSWORD, "sam", one_time=True)
        assert must_change_password(store, "ana") and not must_change_password(store, "sam")
        ana = check_password(store, "ana", PASSWORD)
        assert ana is not None
        _, token = create_token(store, "ana", "sam")
        cookie, _ = create_session(store, ana, 60)
        found = session_of(store, cookie)
        assert found is not None and found.must_change_password
        for old, new, why in ((PASSWORD + "x", "a brand new password", "not right"),
                              (PASSWORD, "short", "too short"), (PASSWORD, PASSWORD, "same")):
            with pytest.raises(AccountError) as err:
                change_password(store, "ana", old, new)
            assert why in err.value.message + (err.value.hint or "")
        change_password(store, "ana", PASSWORD, "a brand new password")
        assert not must_change_password(store, "ana") and session_of(store, cookie) is None
        assert check_password(store, "ana", PASSWORD) is None
        assert check_password(store, "ana", "a brand new password") is not None
        assert user_of_token(store, token) is not None  # the API token is not touched
        # a reset: a new one-time password, sessions end, the token still works
        cookie, _ = create_session(store, ana, 60)
        one_time = reset_password(store, "ana", "sam")
        assert len(one_time) >= 12 and must_change_password(store, "ana") and session_of(store, cookie) is None
        assert check_password(store, "ana", one_time) is not None and user_of_token(store, token) is not None
        # disabled: no sign-in, no session, no token, no new token, no reset; not oneself
        cookie, _ = create_session(store, ana, 60)
        with pytest.raises(AccountError):
            disable_user(store, "sam", "sam")
        disable_user(store, "ana", "sam")
        assert check_password(store, "ana", one_time) is None and session_of(store, cookie) is None
        assert user_of_token(store, token) is None
        assert all(t["revoked_at"] for t in list_tokens(store) if t["username"] == "ana")
        for act in (lambda: create_token(store, "ana", "sam"), lambda: reset_password(store, "ana", "sam"),
                    lambda: disable_user(store, "ana", "sam"), lambda: disable_user(store, "nobody", "sam")):
            with pytest.raises(AccountError):
                act()
        assert {u["username"]: bool(u["disabled_at"]) for u in list_users(store)} == {"ana": True, "sam": False}
        # reopened: a new one-time password; the old one and the revoked token stay dead
        with pytest.raises(AccountError, match="not closed"):
            reopen_user(store, "sam", "sam")
        reopened = reopen_user(store, "ana", "sam")
        assert reopened != one_time and check_password(store, "ana", reopened) is not None
        assert check_password(store, "ana", one_time) is None and must_change_password(store, "ana")
        assert user_of_token(store, token) is None
        assert {u["username"]: bool(u["disabled_at"]) for u in list_users(store)} == {"ana": False, "sam": False}
        log = store.query("SELECT actor, action, detail FROM audit WHERE action LIKE 'hub.%' "
                          "ORDER BY occurred_at").to_pylist()
    actions = [r["action"] for r in log]
    for action in ("hub.password_change", "hub.password_reset", "hub.user_disable", "hub.user_reopen"):
        assert action in actions
    text = json.dumps(log)
    assert PASSWORD not in text and one_time not in text and "a brand new password" not in text
    assert reopened not in text


# ---------------------------------------------------------------- in the browser
@DUCKDB
def test_steward_approves_a_request_and_the_analyst_downloads_it(
        hub: str, site: str, people: dict[str, Any], browser: Any, tmp_path: Path,
        contributions: list[Path]) -> None:
    """The analyst asks for synthetic data and microdata from the web page; the steward sees the
    parameters (never a record), approves one (after a confirmation page: the release runs and
    pays its budget) and rejects the other with a reason; the analyst sees both decisions and
    downloads the approved output. Every step is on the audit log."""
    from selenium.webdriver.common.by import By

    with open_store(hub) as store:
        for c in contributions:
            add_contribution(store, c)
    pages: list[str] = []
    _sign_in(browser, site, "ana")
    assert "0 waiting" in _text(browser)
    _click(browser, "a[href='/ui/analyst/requests']")
    assert "You have not asked for anything yet" in _text(browser)
    _check_accessible(browser)
    browser.find_element(By.ID, "kind-synthetic").click()
    _fill(browser, "epsilon", "1")
    _fill(browser, "rows", "50")
    _fill(browser, "purpose", "training a service-planning model")
    _click(browser, "form[action='/ui/analyst/requests'] button")
    assert "was sent" in _text(browser), _text(browser)
    browser.find_element(By.ID, "kind-microdata").click()
    _fill(browser, "k", "5")
    _fill(browser, "purpose", "a table of ages by region")
    _click(browser, "form[action='/ui/analyst/requests'] button")
    with open_store(hub) as store:
        from accord.serve import requests as rq

        # in the order they were made, even within one second (the hub's row_order)
        listed = rq.list_requests(store)
        by_kind = {r["kind"]: r for r in listed}
        syn, micro = by_kind["synthetic"], by_kind["microdata"]
    assert [r["kind"] for r in listed] == ["synthetic", "microdata"]
    assert (len(by_kind), micro["parameters"]["k"]) == (2, 5)
    assert {syn["status"], micro["status"]} == {"pending"}
    pages.append(browser.page_source)
    _sign_out(browser)

    _sign_in(browser, site, "sam")
    assert "2 requests for record-level data are waiting" in _text(browser)
    _click(browser, "a[href='/ui/steward/requests']")
    text = _text(browser)
    assert "50 made-up records" in text and "spends epsilon 1 at delta 1e-09" in text, text
    assert "at least 5 people" in text and "training a service-planning model" in text
    _shot(browser, "steward-requests")
    _check_accessible(browser)
    pages.append(browser.page_source)
    with open_store(hub) as store:
        spent = store.scalar("SELECT count(*) FROM dp_ledger WHERE event = 'spend'") or 0
    _click(browser, f"form[action='/ui/steward/requests/approve']:has(input[value='{syn['request_id']}']) button")
    text = _text(browser)
    assert f"Approve request {syn['request_id']}?" in text and "runs this release now" in text, text
    with open_store(hub) as store:  # nothing happens before the confirmation
        assert rq.get_request(store, syn["request_id"])["status"] == "pending"
    _shot(browser, "steward-approve")
    _check_accessible(browser)
    _click(browser, "form[action='/ui/steward/requests/approve'] button")
    assert f"Request {syn['request_id']} was approved" in _text(browser), _text(browser)
    # reject the other, with a reason
    _fill(browser, f"reason-{micro['request_id']}", "please ask for k of at least 11")
    _click(browser, f"form[action='/ui/steward/requests/reject']:has(input[value='{micro['request_id']}']) button")
    assert f"Request {micro['request_id']} was rejected" in _text(browser)
    assert "No request is waiting" in _text(browser)
    pages.append(browser.page_source)
    with open_store(hub) as store:
        done = rq.get_request(store, syn["request_id"])
        assert done["status"] == "approved" and done["decided_by"] == "sam"
        assert store.scalar("SELECT count(*) FROM dp_ledger WHERE event = 'spend'") == spent + 1
        assert rq.get_request(store, micro["request_id"])["reason"] == "please ask for k of at least 11"
    _sign_out(browser)

    _sign_in(browser, site, "ana")
    assert "1 approved, 1 rejected" in _text(browser)
    browser.get(site + "/ui/analyst/requests")
    text = _text(browser)
    assert "Reason: please ask for k of at least 11" in text and "by sam" in text
    _shot(browser, "analyst-requests")
    _check_accessible(browser)
    pages.append(browser.page_source)
    browser.find_element(By.CSS_SELECTOR, "form[action='/ui/analyst/requests/download'] button").click()
    downloads = tmp_path / "downloads"
    deadline = time.monotonic() + 60
    while not list(downloads.glob("*.zip")):
        assert time.monotonic() < deadline, "the output was not downloaded"
        time.sleep(0.2)
    time.sleep(0.5)
    got = next(downloads.glob("*.zip"))
    assert got.name == f"{syn['request_id']}-synthetic.zip"
    with zipfile.ZipFile(got) as zf:
        assert len(zf.read("synthetic.csv").decode().strip().splitlines()) == 51
    approved = _audit(hub, "hub.request_approve")
    assert [r["actor"] for r in approved] == ["sam"]
    assert [r["actor"] for r in _audit(hub, "hub.request_download")] == ["ana"]
    assert [r["actor"] for r in _audit(hub, "hub.request_reject")] == ["sam"]
    _no_records(hub, *pages)


@DUCKDB
def test_another_analyst_cannot_download(hub: str, site: str, people: dict[str, Any],
                                         contributions: list[Path]) -> None:
    """Over HTTP: the output is the requester's only (403 page, audited); a pending one is not
    downloadable; a forged approval (no CSRF token) changes nothing."""
    from accord.serve import requests as rq
    from accord.serve.accounts import User

    with open_store(hub) as store:
        for c in contributions:
            add_contribution(store, c)
        add_user(store, "bea", "agency", Role.ANALYST, PASSWORD, "test")
        row = rq.create_request(store, User("ana", "agency", Role.ANALYST), "synthetic",
                                {"epsilon": 1, "rows": 20}, "")
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    sam = "accord_session=" + _http_sign_in(site, "sam")
    status, _, _ = _http(site, "POST", "/ui/steward/requests/approve",
                         f"request_id={row['request_id']}&confirm=yes".encode(), {**form, "Cookie": sam})
    assert status == 403
    ana = "accord_session=" + _http_sign_in(site, "ana")
    csrf = _csrf_of(_http(site, "GET", "/ui/analyst/requests", headers={"Cookie": ana})[2])
    status, _, body = _http(site, "POST", "/ui/analyst/requests/download",
                            f"csrf={csrf}&request_id={row['request_id']}".encode(), {**form, "Cookie": ana})
    assert status == 409 and b"is pending" in body
    csrf_sam = _csrf_of(_http(site, "GET", "/ui/steward/requests", headers={"Cookie": sam})[2])
    status, headers, _ = _http(site, "POST", "/ui/steward/requests/approve",
                               f"csrf={csrf_sam}&request_id={row['request_id']}&confirm=yes".encode(),
                               {**form, "Cookie": sam})
    assert status == 303
    bea = "accord_session=" + _http_sign_in(site, "bea")
    csrf_bea = _csrf_of(_http(site, "GET", "/ui/analyst/requests", headers={"Cookie": bea})[2])
    status, _, body = _http(site, "POST", "/ui/analyst/requests/download",
                            f"csrf={csrf_bea}&request_id={row['request_id']}".encode(), {**form, "Cookie": bea})
    assert status == 403 and b"not yours" in body
    status, headers, body = _http(site, "POST", "/ui/analyst/requests/download",
                                  f"csrf={csrf}&request_id={row['request_id']}".encode(), {**form, "Cookie": ana})
    assert status == 200 and headers["content-type"] == "application/zip" and body[:2] == b"PK"
    # a release that cannot be made: nothing released or spent, the request stays pending
    with open_store(hub) as store:
        hard = rq.create_request(store, User("ana", "agency", Role.ANALYST), "microdata",
                                 {"k": 10_000, "max_loss": 0.0}, "")
        releases = len(store.releases())
    status, _, body = _http(site, "POST", "/ui/steward/requests/approve",
                            f"csrf={csrf_sam}&request_id={hard['request_id']}&confirm=yes".encode(),
                            {**form, "Cookie": sam})
    assert status == 409 and b"Nothing was released and the request is still pending" in body
    with open_store(hub) as store:
        assert rq.get_request(store, hard["request_id"])["status"] == "pending"
        assert len(store.releases()) == releases
    denied = [json.loads(r["detail"]) for r in _audit(hub, "hub.denied")]
    assert any(d.get("reason") == "another analyst's request" for d in denied)
    assert len(_audit(hub, "hub.csrf_refused")) == 1


@DUCKDB
def test_steward_sets_and_grants_budget(hub: str, site: str, people: dict[str, Any], browser: Any) -> None:
    """Set the budget and grant more, each after a confirmation page that says what changes in
    plain words; the ledger and the audit log record who did it; a budget below what was spent and
    a bad number are refused with nothing changed."""
    from accord.release.dp import ledger

    _sign_in(browser, site, "sam")
    _click(browser, "nav.pages a[href='/ui/steward/budget']")
    text = _text(browser)
    assert "one lifetime budget" in text and "Nothing has been spent yet" in text
    _check_accessible(browser)
    _fill(browser, "set-epsilon", "4")
    _click(browser, "form[action='/ui/steward/budget/set'] button")
    text = _text(browser)
    assert "Change the privacy budget?" in text and "Sets the hub's budget to epsilon 4 at delta 1e-06" in text
    assert "Left after the change: epsilon 4" in text, text
    with open_store(hub) as store:
        assert ledger.current_budget(store).epsilon == 10  # not yet
    _shot(browser, "steward-budget-confirm")
    _check_accessible(browser)
    _click(browser, "form[action='/ui/steward/budget/set'] button")
    assert "The privacy budget was changed" in _text(browser)
    _fill(browser, "grant-epsilon", "1")
    _fill(browser, "grant-reason", "2027 allowance")
    _click(browser, "form[action='/ui/steward/budget/grant'] button")
    assert "Left after the grant" in _text(browser) and "2027 allowance" in _text(browser)
    _click(browser, "form[action='/ui/steward/budget/grant'] button")
    text = _text(browser)
    assert "The grant was added" in text and "granted more" in text and "2027 allowance" in text
    _shot(browser, "steward-budget")
    with open_store(hub) as store:
        budget = ledger.current_budget(store)
        assert budget.epsilon == 4 and budget.granted_rho > 0
        events = ledger.events(store)
        assert [(e["event"], e["actor"]) for e in events] == [("set", "sam"), ("grant", "sam")]
        # a spend, so that a budget below it is refused
        with store.transaction():
            ledger.spend(store, budget.total_rho * 0.9, kind="test", actor="ana", purpose="test",
                         mechanism="gaussian", epsilon=None, delta=None, detail={})
    assert [r["actor"] for r in _audit(hub, "dp_budget_set")] == ["sam"]
    assert [r["actor"] for r in _audit(hub, "dp_budget_grant")] == ["sam"]
    cookie = "accord_session=" + _http_sign_in(site, "sam")
    csrf = _csrf_of(_http(site, "GET", "/ui/steward/budget", headers={"Cookie": cookie})[2])
    for body, status, words in ((f"csrf={csrf}&epsilon=0.5&delta=1e-6&confirm=yes", 409, b"smaller than"),
                                (f"csrf={csrf}&epsilon=lots&confirm=yes", 400, b"enter a number"),
                                (f"csrf={csrf}&epsilon=1000&confirm=yes", 400, b"Nothing was changed")):
        got, _, page = _http(site, "POST", "/ui/steward/budget/set", body.encode(),
                             {"Cookie": cookie, "Content-Type": "application/x-www-form-urlencoded"})
        assert got == status and words in page, (body, page[-600:])
    with open_store(hub) as store:
        assert ledger.current_budget(store).epsilon == 4 and len(ledger.events(store)) == 2


@DUCKDB
def test_steward_gives_an_organisation_a_share(hub: str, site: str, people: dict[str, Any], browser: Any) -> None:
    """A quota for one organisation, after a confirmation page; its analysts' spends show against
    it; a quota below what they spent, or without a reason, is refused with nothing changed."""
    from accord.release.dp import ledger

    _sign_in(browser, site, "sam")
    _click(browser, "nav.pages a[href='/ui/steward/budget']")
    assert "No organisation has a quota" in _text(browser)
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    Select(browser.find_element(By.ID, "quota-org")).select_by_value("agency")
    _fill(browser, "quota-epsilon", "2")
    _fill(browser, "quota-reason", "agreed share for 2027")
    _click(browser, "form[action='/ui/steward/budget/quota'] button")
    text = _text(browser)
    assert "Change agency's share of the budget?" in text and "Gives agency a quota of epsilon 2" in text
    _check_accessible(browser)
    _click(browser, "form[action='/ui/steward/budget/quota'] button")
    assert "The organisation's share was changed" in _text(browser)
    with open_store(hub) as store, store.transaction():  # an agency analyst's release and a ngo-b submitter's
        for who in ("ana", "maria"):
            ledger.spend(store, 0.002, kind="test", actor=who, purpose="test", mechanism="gaussian",
                         epsilon=None, delta=None, detail={})
    browser.refresh()
    text = _text(browser)
    assert "Organisations' shares" in text and "changed a share" in text and "no quota" in text
    _check_accessible(browser)
    _shot(browser, "steward-budget-quota")
    cookie = "accord_session=" + _http_sign_in(site, "sam")
    csrf = _csrf_of(_http(site, "GET", "/ui/steward/budget", headers={"Cookie": cookie})[2])
    for body, status, words in ((f"csrf={csrf}&org=agency&epsilon=0.01&reason=x&confirm=yes", 409, b"already spent"),
                                (f"csrf={csrf}&org=agency&epsilon=1&reason=&confirm=yes", 400, b"needs a reason"),
                                (f"csrf={csrf}&org=nobody&epsilon=1&reason=x&confirm=yes", 400, b"organisations")):
        got, _, page = _http(site, "POST", "/ui/steward/budget/quota", body.encode(),
                             {"Cookie": cookie, "Content-Type": "application/x-www-form-urlencoded"})
        assert got == status and words in page, (body, page[-600:])
    extra = f"csrf={csrf}&org=agency&epsilon=1&reason=x&confirm=yes&more=1&more=2".encode()
    got, _, page = _http(site, "POST", "/ui/steward/budget/quota", extra,
                         {"Cookie": cookie, "Content-Type": "application/x-www-form-urlencoded"})
    assert got == 413 and b"sent more than this page takes" in page and b'"detail"' not in page
    with open_store(hub) as store:
        shares = {q.org: q for q in ledger.quotas(store)}
    assert shares["agency"].quota_rho and shares["agency"].spent_rho == 0.002
    assert shares["ngo-b"].quota_rho is None and shares["ngo-b"].spent_rho == 0.002
    assert [r["actor"] for r in _audit(hub, "dp_quota_set")] == ["sam"]


@DUCKDB
def test_accounts_and_forced_password_change(hub: str, site: str, people: dict[str, Any], browser: Any) -> None:
    """The steward adds an organisation and a person (a one-time password, shown once), makes an
    API token (shown once; it works on the API), resets a password and closes an account. The new
    person must choose a password at the first sign-in before any other page opens; the change
    ends their other sessions and leaves their API token working."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    _sign_in(browser, site, "sam")
    browser.get(site + "/ui/steward/accounts")
    _check_accessible(browser)
    _fill(browser, "org-name", "ngo-d")
    _click(browser, "form[action='/ui/steward/accounts/org'] button")
    assert "Organisation ngo-d was added" in _text(browser)
    _fill(browser, "user-name", "dana")
    Select(browser.find_element(By.ID, "user-org")).select_by_visible_text("ngo-d")
    Select(browser.find_element(By.ID, "user-role")).select_by_value("submitter")
    _click(browser, "form[action='/ui/steward/accounts/user'] button")
    assert "Account dana added" in _text(browser)
    one_time = browser.find_element(By.ID, "secret").get_attribute("value")
    assert one_time and len(one_time) >= 12
    _shot(browser, "steward-secret")
    _check_accessible(browser)
    browser.get(site + "/ui/steward/accounts")
    assert one_time not in browser.page_source  # shown once
    _click(browser, "form[action='/ui/steward/tokens/create']:has(input[value='dana']) button")
    token = browser.find_element(By.ID, "secret").get_attribute("value")
    assert token.startswith("accord_")
    req = urllib.request.Request(site + "/api/whoami", headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(req, timeout=30) as r:
        assert json.loads(r.read())["user"] == "dana"
    browser.get(site + "/ui/steward/accounts")
    text = _text(browser)
    assert "active, must choose a password" in text and "live" in text
    _shot(browser, "steward-accounts")
    with open_store(hub) as store:
        assert token not in json.dumps(store.query("SELECT * FROM hub_tokens").to_pylist())
    _sign_out(browser)

    # dana: a one-time password opens only the change-password page
    other = "accord_session=" + _http_sign_in(site, "dana", one_time)  # a second session elsewhere
    _sign_in(browser, site, "dana", one_time)
    assert browser.current_url.endswith("/ui/password") and "one-time password" in _text(browser)
    _shot(browser, "password")
    _check_accessible(browser)
    browser.get(site + "/ui/partner")
    assert browser.current_url.endswith("/ui/password")
    _fill(browser, "current", one_time)
    _fill(browser, "new", "dana's own long password")
    _fill(browser, "again", "dana's own long passwort")
    _click(browser, "form[action='/ui/password'] button")
    assert "not the same" in _text(browser)
    _fill(browser, "current", one_time)
    _fill(browser, "new", "dana's own long password")
    _fill(browser, "again", "dana's own long password")
    _click(browser, "form[action='/ui/password'] button")
    assert browser.current_url.endswith("/ui/partner"), _text(browser)
    assert "You have not uploaded a contribution yet" in _text(browser)
    status, headers, _ = _http(site, "GET", "/ui/password", headers={"Cookie": other})
    assert status == 303 and headers["location"] == "/ui/login"  # the other session ended
    with urllib.request.urlopen(req, timeout=30) as r:  # the API token still works
        assert r.status == 200
    _sign_out(browser)
    _sign_in(browser, site, "dana", "dana's own long password")
    assert browser.current_url.endswith("/ui/partner")
    _sign_out(browser)

    # the steward resets dana's password (confirmation first), then closes the account
    _sign_in(browser, site, "sam")
    browser.get(site + "/ui/steward/accounts")
    _click(browser, "form[action='/ui/steward/accounts/reset']:has(input[value='dana']) button")
    assert "Reset the password of dana?" in _text(browser)
    _click(browser, "form[action='/ui/steward/accounts/reset'] button")
    again = browser.find_element(By.ID, "secret").get_attribute("value")
    assert again and again != one_time
    with open_store(hub) as store:
        assert must_change_password(store, "dana") and check_password(store, "dana", again) is not None
    browser.get(site + "/ui/steward/accounts")
    own = "form[action='/ui/steward/accounts/disable']:has(input[value='sam'])"
    assert not browser.find_elements(By.CSS_SELECTOR, own)  # one cannot close one's own account
    _click(browser, "form[action='/ui/steward/accounts/disable']:has(input[value='dana']) button")
    assert "Close the account dana?" in _text(browser)
    _click(browser, "form[action='/ui/steward/accounts/disable'] button")
    assert "The account dana was closed" in _text(browser)
    try:
        urllib.request.urlopen(req, timeout=30)
        raise AssertionError("a closed account's token still works")
    except urllib.error.HTTPError as err:
        assert err.code == 401
    _sign_out(browser)
    _sign_in(browser, site, "dana", again)
    assert "The user name or the password is not right" in _text(browser)
    _sign_in(browser, site, "sam")
    browser.get(site + "/ui/steward/accounts")
    _click(browser, "form[action='/ui/steward/accounts/reopen']:has(input[value='dana']) button")
    assert "Reopen the account dana?" in _text(browser)
    _check_accessible(browser)
    _click(browser, "form[action='/ui/steward/accounts/reopen'] button")
    reopened = browser.find_element(By.ID, "secret").get_attribute("value")
    assert reopened and reopened != again
    with open_store(hub) as store:
        assert check_password(store, "dana", reopened) is not None and check_password(store, "dana", again) is None
    _sign_out(browser)
    actions = {r["action"] for r in (_audit(hub, "hub.org_add") + _audit(hub, "hub.user_add")
                                     + _audit(hub, "hub.token_create") + _audit(hub, "hub.password_change")
                                     + _audit(hub, "hub.password_reset") + _audit(hub, "hub.user_disable")
                                     + _audit(hub, "hub.user_reopen"))}
    assert len(actions) == 7
    with open_store(hub) as store:
        log = json.dumps(store.query("SELECT * FROM audit").to_pylist())
    assert one_time not in log and again not in log and token not in log and "own long" not in log
    assert reopened not in log


def test_cli_user_commands(tmp_path: Path) -> None:
    """`accord hub user add --one-time|reset-password|disable|list`: the same functions as the web
    pages; the one-time password goes to a 0600 file, nowhere else."""
    from typer.testing import CliRunner

    from accord.cli.main import app

    hub = str(tmp_path / "hub.duckdb")
    (tmp_path / "pw").write_text(PASSWORD)

    def cli(*args: str, code: int = 0) -> str:
        res = CliRunner().invoke(app, [*args, "--hub", hub])
        assert res.exit_code == code, res.output
        return res.output

    cli("hub", "org", "add", "agency")
    cli("hub", "user", "add", "ana", "--org", "agency", "--role", "analyst", "--password-file",
        str(tmp_path / "pw"), "--one-time")
    assert "must change password" in cli("hub", "user", "list")
    printed = cli("hub", "user", "reset-password", "ana", "--out", str(tmp_path / "ana.pw"))
    secret = (tmp_path / "ana.pw").read_text().strip()
    assert secret not in printed and (tmp_path / "ana.pw").stat().st_mode & 0o777 == 0o600
    cli("hub", "user", "reset-password", "ana", "--out", str(tmp_path / "ana.pw"), code=2)  # no overwrite
    with open_store(hub) as store:
        assert check_password(store, "ana", secret) is not None
    cli("hub", "user", "disable", "ana")
    cli("hub", "user", "disable", "ana", code=2)
    rows = json.loads(cli("hub", "user", "list", "--json"))
    assert rows[0]["username"] == "ana" and rows[0]["disabled_at"] and "password_hash" not in rows[0]
    printed = cli("hub", "user", "reopen", "ana", "--out", str(tmp_path / "ana2.pw"))
    reopened = (tmp_path / "ana2.pw").read_text().strip()
    assert reopened not in printed and (tmp_path / "ana2.pw").stat().st_mode & 0o777 == 0o600
    cli("hub", "user", "reopen", "ana", "--out", str(tmp_path / "ana3.pw"), code=2)  # not closed now
    assert not (tmp_path / "ana3.pw").exists()
    with open_store(hub) as store:
        assert check_password(store, "ana", reopened) is not None and check_password(store, "ana", secret) is None


@DUCKDB
@pytest.mark.parametrize("web_settings", [WebSettings(max_failures_per_user=2)])
def test_password_change_cannot_be_used_to_guess(hub: str, site: str, people: dict[str, Any]) -> None:
    """Wrong current passwords on the change page count towards the sign-in limit: a borrowed
    session cannot guess the password there; each refusal is audited without what was typed."""
    cookie = "accord_session=" + _http_sign_in(site, "ana")
    csrf = _csrf_of(_http(site, "GET", "/ui/password", headers={"Cookie": cookie})[2])
    headers = {"Cookie": cookie, "Content-Type": "application/x-www-form-urlencoded"}

    def change(current: str) -> int:
        form = urllib.parse.urlencode({"csrf": csrf, "current": current, "new": "a fresh long password",
                                       "again": "a fresh long password"}).encode()
        return _http(site, "POST", "/ui/password", form, headers)[0]

    assert [change("guess number one"), change("guess number two")] == [400, 400]
    assert change(PASSWORD) == 429  # locked, even with the right one
    refused = _audit(hub, "hub.password_change_refused")
    assert len(refused) == 3 and "guess" not in json.dumps(refused)
    with open_store(hub) as store:
        assert check_password(store, "ana", PASSWORD) is not None
