"""The hub's web UI driven in a real browser: Debian's headless Chromium through its chromedriver
(Selenium), against `accord serve` on 127.0.0.1 (uvicorn in a thread), on each hub engine for the
sign-in + upload path. Each page is screenshotted into the test's temporary folder; with
ACCORD_WRITE_SCREENSHOTS=1 the screenshots replace docs/img/hub-*.png instead (run so when a page
changes, and commit the images): a plain test run never changes a tracked file.

Without Chromium and chromedriver the browser tests skip, unless ACCORD_REQUIRE_BROWSER=1 (set by
.ci/run), where a skip is a failure. The HTTP-level checks (CSRF, headers, sessions) need no browser.
"""

from __future__ import annotations

import http.client
import io
import json
import os
import re
import shutil
import time
import urllib.parse
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from accord.protect.job import build_contribution
from accord.protect.keys import PartnerKey
from accord.serve.app import ServerConfig
from accord.serve.web import WebSettings
from accord.store import open_store
from tests.conftest import EXPECTED_ACCEPTED
from tests.serving import accord_serve, free_port, serving

pytestmark = pytest.mark.slow  # a server, accounts and a browser per test

IMG = Path(__file__).resolve().parents[1] / "docs" / "img"
WRITE_SCREENSHOTS = "ACCORD_WRITE_SCREENSHOTS"  # =1: screenshots go to docs/img (tests/test_report_page.py too)
PASSWORD = "correct horse battery staple"
USERS = {"maria": ("ngo-b", "submitter"), "chen": ("ngo-c", "submitter"), "ana": ("agency", "analyst"),
         "sam": ("agency", "steward"), "olu": ("agency", "auditor")}
PAGES = {"/ui/steward": "steward", "/ui/partner": "submitter", "/ui/analyst": "analyst",
         "/ui/auditor": "auditor"}


# ---------------------------------------------------------------- fixtures
@pytest.fixture
def web_settings() -> WebSettings:
    return WebSettings()


@pytest.fixture
def site(hub: str, web_settings: WebSettings) -> Iterator[str]:
    with serving(ServerConfig(hub, max_upload_bytes=5_000_000, web=web_settings)) as url:
        yield url


@pytest.fixture
def people(hub: str) -> dict[str, tuple[str, str]]:
    from accord.serve.accounts import Role, add_org, add_user

    with open_store(hub) as store:
        for org in ("ngo-b", "ngo-c", "agency"):
            add_org(store, org, "test")
        for user, (org, role) in USERS.items():
            add_user(store, user, org, Role(role), PASSWORD, "test")
    return USERS


def _chromium() -> tuple[str, str] | None:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if browser and driver:
        return browser, driver
    if os.environ.get("ACCORD_REQUIRE_BROWSER") == "1":
        pytest.fail("Chromium and chromedriver are required here (ACCORD_REQUIRE_BROWSER=1)")
    pytest.skip("Chromium or chromedriver is not installed (apt-get install chromium chromium-driver)")
    return None


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    found = _chromium()
    assert found is not None
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = found[0]  # Debian's build: Selenium downloads nothing
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1280,900", "--force-device-scale-factor=1", "--lang=en-GB"):
        options.add_argument(arg)
    (tmp_path / "downloads").mkdir()
    options.add_experimental_option("prefs", {"download.default_directory": str(tmp_path / "downloads"),
                                              "download.prompt_for_download": False})
    driver = webdriver.Chrome(service=Service(executable_path=found[1]), options=options)
    driver.set_page_load_timeout(120)
    driver.accord_screenshots = screenshot_dir(tmp_path)  # where _shot writes this test's pages
    try:
        yield driver
    finally:
        driver.quit()


# ---------------------------------------------------------------- helpers
def screenshot_dir(tmp_path: Path) -> Path:
    """docs/img with ACCORD_WRITE_SCREENSHOTS=1, else the test's own temporary folder."""
    return IMG if os.environ.get(WRITE_SCREENSHOTS) == "1" else tmp_path / "screenshots"


def _contribution_zip(tmp_path: Path, case_export: tuple[Path, Path], key: PartnerKey, partner: str = "ngo-b",
                      extra: dict[str, bytes] | None = None) -> Path:
    out = tmp_path / f"contribution-{partner}"
    if not out.exists():
        build_contribution(case_export[0], case_export[1], partner, out, key)
    archive = tmp_path / f"{partner}{'-extra' if extra else ''}.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for f in sorted(out.iterdir()):
            zf.write(f, arcname=f.name)
        for name, data in (extra or {}).items():
            zf.writestr(name, data)
    return archive


def _click(driver: Any, selector: str) -> None:
    """Press a form's button and wait for the next page to replace this one."""
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.wait import WebDriverWait

    old = driver.find_element(By.TAG_NAME, "html")
    driver.find_element(By.CSS_SELECTOR, selector).click()

    def replaced(_: Any) -> bool:
        try:
            old.is_enabled()
        except WebDriverException:  # stale; chromedriver sometimes says "Node ... does not belong
            return True             # to the document" instead of raising StaleElementReference
        return False

    WebDriverWait(driver, 120).until(replaced)


def _upload(driver: Any, archive: Path) -> None:
    from selenium.webdriver.common.by import By

    driver.find_element(By.ID, "contribution").send_keys(str(archive))
    _click(driver, "form[action='/ui/partner/upload'] button")


def _sign_in(driver: Any, site: str, user: str, password: str = PASSWORD) -> None:
    from selenium.webdriver.common.by import By

    driver.get(site + "/ui/login")
    driver.find_element(By.ID, "username").send_keys(user)
    driver.find_element(By.ID, "password").send_keys(password)
    _click(driver, "form.card button[type=submit]")


def _sign_out(driver: Any) -> None:

    _click(driver, ".account button")
    assert driver.current_url.endswith("/ui/login")


def test_screenshots_change_docs_only_when_asked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(WRITE_SCREENSHOTS, raising=False)
    assert screenshot_dir(tmp_path).is_relative_to(tmp_path)
    monkeypatch.setenv(WRITE_SCREENSHOTS, "1")
    assert screenshot_dir(tmp_path) == IMG


def test_a_refusal_is_a_page_and_an_unreachable_store_is_not() -> None:
    """kit.attempt, the one place the web pages turn an AccordError into their answer: a refusal
    becomes the page made of it; a StoreError goes on (to the router's 503 page)."""
    from starlette.responses import Response

    from accord.errors import AccordError, StoreError
    from accord.serve.web.kit import attempt

    def refuse(err: AccordError) -> Response:
        return Response(err.message, status_code=409)

    assert attempt(lambda: 7, refuse) == 7

    def fail(err: AccordError) -> int:
        raise err

    answer = attempt(lambda: fail(AccordError("no")), refuse)
    assert isinstance(answer, Response) and answer.status_code == 409 and answer.body == b"no"
    with pytest.raises(StoreError):
        attempt(lambda: fail(StoreError("down")), refuse)


def _text(driver: Any) -> str:
    from selenium.webdriver.common.by import By

    return str(driver.find_element(By.TAG_NAME, "body").text)


def _shot(driver: Any, name: str, max_height: int = 5000) -> None:
    """A full-page screenshot for the docs (the viewport grows to the page's height)."""
    height = int(driver.execute_script("return document.documentElement.scrollHeight"))
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
        "width": 1280, "height": min(max(height, 600), max_height), "deviceScaleFactor": 1, "mobile": False})
    folder: Path = driver.accord_screenshots
    folder.mkdir(parents=True, exist_ok=True)
    assert driver.save_screenshot(str(folder / f"hub-{name}.png"))
    driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


# Text colour and the first opaque background behind it, for each element that shows text.
_COLOURS_JS = """
const out = [];
for (const el of document.querySelectorAll('main *, header *, footer *')) {
  if (!el.offsetParent || ![...el.childNodes].some(n => n.nodeType === 3 && n.textContent.trim())) continue;
  let bg = null, node = el;
  while (node && node.nodeType === 1) {
    const c = getComputedStyle(node).backgroundColor;
    if (c && !c.endsWith(', 0)') && c !== 'transparent') { bg = c; break; }
    node = node.parentElement;
  }
  out.push([el.tagName, getComputedStyle(el).color, bg || 'rgb(255, 255, 255)']);
}
return out;
"""


def _luminance(colour: str) -> float:
    r, g, b = (int(v) / 255 for v in re.findall(r"\d+", colour)[:3])
    lin = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in (r, g, b)]
    return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]


def _check_accessible(driver: Any) -> None:
    """What a screen-reader or keyboard user needs on every page: the language, one h1, a label
    for every field, a visible focus ring, and text contrast of at least 4.5:1 (WCAG AA)."""
    from selenium.webdriver.common.by import By

    assert driver.find_element(By.TAG_NAME, "html").get_attribute("lang") == "en"
    assert len(driver.find_elements(By.TAG_NAME, "h1")) == 1
    for field in driver.find_elements(By.CSS_SELECTOR, "input:not([type=hidden]), select, textarea"):
        assert driver.find_elements(By.CSS_SELECTOR, f"label[for='{field.get_attribute('id')}']"), field
    for tag, fg, bg in driver.execute_script(_COLOURS_JS):
        hi, lo = sorted((_luminance(fg), _luminance(bg)), reverse=True)
        assert (hi + 0.05) / (lo + 0.05) >= 4.5, (tag, fg, bg)
    buttons = driver.find_elements(By.CSS_SELECTOR, "main button, header button")
    if buttons:
        driver.execute_script("arguments[0].focus()", buttons[0])
        assert driver.execute_script("return getComputedStyle(document.activeElement).outlineStyle") == "solid"


def _audit(hub: str, action: str) -> list[dict[str, Any]]:
    with open_store(hub) as store:
        return store.query("SELECT actor, action, detail FROM audit WHERE action = ?", [action]).to_pylist()


def _http(site: str, method: str, path: str, body: bytes | None = None,
          headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    host, port = site.removeprefix("http://").split(":")
    con = http.client.HTTPConnection(host, int(port), timeout=60)
    try:
        con.request(method, path, body=body, headers=headers or {})
        r = con.getresponse()
        headers: dict[str, str] = {}
        for k, v in r.getheaders():  # several Set-Cookie headers: one per line
            headers[k.lower()] = f"{headers[k.lower()]}\n{v}" if k.lower() in headers else v
        return r.status, headers, r.read()
    finally:
        con.close()


def _cookie(headers: dict[str, str], name: str) -> str:
    """``name=value`` of the cookie ``name`` set by an answer."""
    found = [c.split(";")[0] for c in headers.get("set-cookie", "").split("\n") if c.startswith(name + "=")]
    assert found, headers
    return found[0]


def _csrf_of(html: bytes) -> str:
    found = re.search(rb'name="csrf" value="([^"]+)"', html)
    assert found
    return found.group(1).decode()


def _http_sign_in(site: str, user: str, password: str = PASSWORD, address_ok: bool = True) -> str:
    """Sign in over plain HTTP as a browser would; returns the session cookie's value."""
    status, headers, body = _http(site, "GET", "/ui/login")
    login_cookie = _cookie(headers, "accord_login_csrf")
    form = urllib.parse.urlencode({"username": user, "password": password, "csrf": _csrf_of(body)})
    status, headers, _ = _http(site, "POST", "/ui/login", form.encode(),
                               {"Content-Type": "application/x-www-form-urlencoded", "Cookie": login_cookie})
    assert status == 303, status
    return _cookie(headers, "accord_session").split("=", 1)[1]


# ---------------------------------------------------------------- the browser tests
def test_partner_uploads_and_steward_sees_it(hub: str, site: str, people: dict[str, Any], browser: Any,
                                             tmp_path: Path, case_export: tuple[Path, Path],
                                             partner_key: PartnerKey) -> None:
    """Sign in as a partner, upload a zipped contribution from the browser, see it on the steward's
    dashboard; the other partner sees none of it. On DuckDB and PostgreSQL."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    shots = not hub.startswith("postgresql")
    browser.get(site + "/")
    assert browser.current_url.endswith("/ui/login")
    if shots:
        _shot(browser, "login")
    _check_accessible(browser)
    # by keyboard from the user name field: Tab goes to the password, Enter signs in
    browser.get(site + "/ui/login")
    old = browser.find_element(By.TAG_NAME, "html")
    browser.find_element(By.ID, "username").click()
    browser.switch_to.active_element.send_keys("maria", Keys.TAB)
    assert browser.switch_to.active_element.get_attribute("id") == "password"
    browser.switch_to.active_element.send_keys(PASSWORD, Keys.ENTER)
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.wait import WebDriverWait

    WebDriverWait(browser, 120).until(expected_conditions.staleness_of(old))
    assert browser.current_url.endswith("/ui/partner"), _text(browser)
    _check_accessible(browser)
    assert "You have not uploaded a contribution yet" in _text(browser)
    _upload(browser, _contribution_zip(tmp_path, case_export, partner_key))
    text = _text(browser)
    assert f"{EXPECTED_ACCEPTED} records accepted" in text, text
    with open_store(hub) as store:
        batch = store.batches()[0]
        assert store.scalar("SELECT count(*) FROM records") == EXPECTED_ACCEPTED
    assert batch["partner"] == "ngo-b" and batch["batch_id"] in text
    assert ("maria", "hub.add") in [(r["actor"], r["action"]) for r in _audit(hub, "hub.add")]
    # the same upload again adds nothing; a zip with a path in it is refused, nothing loaded
    _upload(browser, _contribution_zip(tmp_path, case_export, partner_key))
    _upload(browser, _contribution_zip(tmp_path, case_export, partner_key, extra={"../escape.txt": b"x"}))
    text = _text(browser)
    assert "refused and nothing was loaded" in text and "path" in text, text
    assert not (tmp_path.parent / "escape.txt").exists()
    with open_store(hub) as store:
        assert store.scalar("SELECT count(*) FROM records") == EXPECTED_ACCEPTED
        assert len(store.batches()) == 1
    browser.get(site + "/ui/partner")
    if shots:
        _shot(browser, "partner")
    _sign_out(browser)
    # the other partner sees none of it
    _sign_in(browser, site, "chen")
    assert "You have not uploaded a contribution yet" in _text(browser)
    assert batch["batch_id"] not in browser.page_source
    _sign_out(browser)
    # the steward sees the batch, its counts and the budget
    _sign_in(browser, site, "sam")
    assert browser.current_url.endswith("/ui/steward")
    text = _text(browser)
    assert batch["batch_id"] in text and "ngo-b" in text and "Privacy budget" in text
    row = browser.find_element(By.XPATH, f"//tr[td/code[text()='{batch['batch_id']}']]").text
    assert f"{batch['rows_in']} {batch['accepted']} {batch['quarantined']}" in row, row
    if shots:
        _shot(browser, "steward")


@pytest.mark.parametrize("hub", ["duckdb"], indirect=True)  # same code on both engines: see the upload test
def test_each_role_sees_only_its_pages(hub: str, site: str, people: dict[str, Any], browser: Any,
                                       tmp_path: Path, case_export: tuple[Path, Path],
                                       partner_key: PartnerKey) -> None:
    """Every role against every page (others' pages are a 403 page, audited); the analyst opens the
    report and downloads the tables; the auditor sees the log and that the chain is intact."""
    from selenium.webdriver.common.by import By

    from tests.test_stats_report import known_records, make_store

    make_store(Path(hub), known_records()).close()  # enough people for a report with charts
    _sign_in(browser, site, "maria")
    _upload(browser, _contribution_zip(tmp_path, case_export, partner_key))
    _sign_out(browser)
    denied = 0
    for user, (_, role) in USERS.items():
        _sign_in(browser, site, user)
        for path, owner in PAGES.items():
            browser.get(site + path)
            text = _text(browser)
            if owner == role:
                assert "This page is not for your role" not in text and browser.current_url.endswith(path)
                _check_accessible(browser)
            else:
                assert "This page is not for your role" in text, (user, path)
                denied += 1
        _sign_out(browser)
        browser.get(site + "/ui/steward")  # signed out: back to the sign-in page
        assert browser.current_url.endswith("/ui/login")
    rows = _audit(hub, "hub.denied")
    assert len(rows) == denied == len(USERS) * (len(PAGES) - 1)
    assert {json.loads(r["detail"])["route"] for r in rows} == set(PAGES)
    browser.get(site + "/ui/steward")
    _sign_in(browser, site, "sam")
    browser.get(site + "/ui/analyst")
    _check_accessible(browser)
    _shot(browser, "denied")

    # the analyst: releases, the report with its charts, the tables to download
    _sign_out(browser)
    _sign_in(browser, site, "ana")
    assert "Nothing has been published yet" in _text(browser)
    _click(browser, "form[action='/ui/analyst/report'] button")
    assert browser.find_elements(By.TAG_NAME, "svg"), _text(browser)  # the report has its charts
    assert "Accord" in browser.title
    report_text = _text(browser)
    _shot(browser, "report", max_height=1600)  # its top: the page itself is tested in test_report_page
    browser.get(site + "/ui/analyst")
    browser.find_element(By.CSS_SELECTOR, "form[action='/ui/analyst/tables'] button").click()
    downloads = tmp_path / "downloads"
    deadline = time.monotonic() + 60
    while not [p for p in downloads.glob("*.zip")]:
        assert time.monotonic() < deadline, "the tables were not downloaded"
        time.sleep(0.2)
    time.sleep(0.5)
    names = zipfile.ZipFile(next(downloads.glob("*.zip"))).namelist()
    assert "tables.xlsx" in names and any(n.endswith(".csv") for n in names)
    browser.get(site + "/ui/analyst")
    text = _text(browser)
    assert text.count("dp_stats") == 0 and "report" in text and "tables" in text  # both on record
    _shot(browser, "analyst")
    with open_store(hub) as store:
        spends = store.scalar("SELECT count(*) FROM dp_ledger WHERE event = 'spend'")
        keys = [r["record_key"] for r in store.query("SELECT record_key FROM records").to_pylist()]
    assert spends == 1  # the report and the tables share the data version's one noisy draw
    assert keys and not any(k in report_text or k in text for k in keys)  # no record reaches a page
    _sign_out(browser)

    # the auditor: the log and the chain's status
    _sign_in(browser, site, "olu")
    text = _text(browser)
    assert "Intact." in text and "hub.denied" in text and "hub.login" in text
    _shot(browser, "auditor")


@pytest.mark.parametrize("hub", ["duckdb"], indirect=True)  # same code on both engines: see the upload test
@pytest.mark.parametrize("web_settings", [WebSettings(max_failures_per_user=3, max_failures_per_address=5)])
def test_login_is_rate_limited(hub: str, site: str, people: dict[str, Any], browser: Any) -> None:
    """Three wrong passwords lock the account (even the right one is refused then); five failures
    from one address lock every account from it. Each lockout is audited, in plain words."""
    for _ in range(2):
        _sign_in(browser, site, "ana", "not the password at all")
        assert "The user name or the password is not right." in _text(browser)
    _sign_in(browser, site, "ana", "not the password at all")
    assert "Too many failed sign-ins" in _text(browser)
    _sign_in(browser, site, "ana")  # the right password, but locked
    assert "Too many failed sign-ins" in _text(browser) and browser.current_url.endswith("/ui/login")
    _sign_in(browser, site, "sam")  # another account from this address still works (3 of 5)
    assert browser.current_url.endswith("/ui/steward")
    _sign_out(browser)
    for _ in range(2):
        _sign_in(browser, site, "nobody", "wrong wrong wrong")
    _sign_in(browser, site, "olu")  # 5 failures from this address: every account is locked here
    assert "Too many failed sign-ins" in _text(browser)
    failed = _audit(hub, "hub.login_failed")
    assert len(failed) == 5 and "nobody" not in json.dumps(failed)  # an unknown name is not logged
    assert "not the password" not in json.dumps(failed)
    locked = _audit(hub, "hub.login_locked")
    assert {json.loads(r["detail"])["user"] for r in locked} == {"ana", "olu"}


# ---------------------------------------------------------------- HTTP-level checks
def test_forged_posts_are_refused(hub: str, site: str, people: dict[str, Any], tmp_path: Path,
                                  case_export: tuple[Path, Path], partner_key: PartnerKey) -> None:
    """A POST with the victim's session cookie but without the session's CSRF token (what a forged
    cross-site form would send) changes nothing and is audited; the same POST with the token works."""
    cookie = _http_sign_in(site, "maria")
    archive = _contribution_zip(tmp_path, case_export, partner_key).read_bytes()

    def upload(csrf: str | None) -> tuple[int, dict[str, str], bytes]:
        boundary = "accordtestboundary"
        parts = [] if csrf is None else [
            f'--{boundary}\r\nContent-Disposition: form-data; name="csrf"\r\n\r\n{csrf}\r\n'.encode()]
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="contribution"; '
                     f'filename="c.zip"\r\nContent-Type: application/zip\r\n\r\n'.encode() + archive + b"\r\n")
        body = b"".join(parts) + f"--{boundary}--\r\n".encode()
        return _http(site, "POST", "/ui/partner/upload", body,
                     {"Cookie": f"accord_session={cookie}",
                      "Content-Type": f"multipart/form-data; boundary={boundary}"})

    for forged in (None, "", "x" * 43):
        status, _, body = upload(forged)
        assert status == 403 and b"This form was not accepted" in body
    with open_store(hub) as store:
        assert not store.table_exists("records") or store.scalar("SELECT count(*) FROM records") == 0
    assert len(_audit(hub, "hub.csrf_refused")) == 3
    _, _, page = _http(site, "GET", "/ui/partner", headers={"Cookie": f"accord_session={cookie}"})
    status, headers, _ = upload(_csrf_of(page))
    assert status == 303 and "/ui/partner?added=" in headers["location"]  # the control: it works
    # a forged sign-out and a sign-in without the form's cookie are refused as well
    status, _, _ = _http(site, "POST", "/ui/logout", b"csrf=nope",
                         {"Cookie": f"accord_session={cookie}", "Content-Type": "application/x-www-form-urlencoded"})
    assert status == 403
    form = urllib.parse.urlencode({"username": "maria", "password": PASSWORD, "csrf": "guess"}).encode()
    status, headers, _ = _http(site, "POST", "/ui/login", form, {"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 403 and "accord_session" not in headers.get("set-cookie", "")


@pytest.mark.parametrize("hub", ["duckdb"], indirect=True)  # same code on both engines: see the upload test
def test_sessions_cookies_and_headers(hub: str, site: str, people: dict[str, Any]) -> None:
    """The cookie's flags, security headers on UI and API answers, sign-out ending the session on
    the server, an expired session sending the browser back to sign in."""
    status, headers, body = _http(site, "GET", "/ui/login")
    assert status == 200 and b"<script" not in body
    csp = headers["content-security-policy"]
    assert "script-src" not in csp and "default-src 'none'" in csp and "frame-ancestors 'none'" in csp
    assert headers["x-frame-options"] == "DENY" and headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "no-referrer" and headers["cache-control"] == "no-store"
    status, headers, body = _http(site, "GET", "/ui/static/hub.css")
    assert status == 200 and headers["content-type"].startswith("text/css")
    status, headers, _ = _http(site, "GET", "/api/batches")
    assert status == 401 and headers["content-security-policy"] == "default-src 'none'; frame-ancestors 'none'"
    # the session cookie
    status, headers, body = _http(site, "GET", "/ui/login")
    form = urllib.parse.urlencode({"username": "sam", "password": PASSWORD, "csrf": _csrf_of(body)})
    status, headers, _ = _http(site, "POST", "/ui/login", form.encode(),
                               {"Content-Type": "application/x-www-form-urlencoded",
                                "Cookie": _cookie(headers, "accord_login_csrf")})
    flags = next(c for c in headers["set-cookie"].split("\n") if c.startswith("accord_session=")).lower()
    assert status == 303 and "httponly" in flags and "samesite=strict" in flags
    assert "secure" not in flags  # plain http on loopback: not Secure
    cookie = _cookie(headers, "accord_session")
    status, headers, page = _http(site, "GET", "/ui/steward", headers={"Cookie": cookie})
    assert status == 200 and headers["cache-control"] == "no-store"
    with open_store(hub) as store:  # the store keeps the hash of the session id, not the id
        assert cookie.split("=", 1)[1] not in json.dumps(store.query("SELECT * FROM hub_web_sessions").to_pylist())
    # sign out: the same cookie no longer opens anything
    status, _, _ = _http(site, "POST", "/ui/logout", f"csrf={_csrf_of(page)}".encode(),
                         {"Cookie": cookie, "Content-Type": "application/x-www-form-urlencoded"})
    assert status == 303
    status, headers, _ = _http(site, "GET", "/ui/steward", headers={"Cookie": cookie})
    assert status == 303 and headers["location"] == "/ui/login"
    # an expired session is the same as none
    cookie = "accord_session=" + _http_sign_in(site, "olu")
    assert _http(site, "GET", "/ui/auditor", headers={"Cookie": cookie})[0] == 200
    with open_store(hub) as store:
        store.execute("UPDATE hub_web_sessions SET expires_at = 0")
    status, headers, _ = _http(site, "GET", "/ui/auditor", headers={"Cookie": cookie})
    assert status == 303 and headers["location"] == "/ui/login"


def test_serve_command_sets_the_cookie_options(tmp_path: Path) -> None:
    """`accord serve --secure-cookies --session-minutes 30`: the cookie is Secure and lasts 30 minutes."""
    with accord_serve("--db", str(tmp_path / "h.duckdb"), "--secure-cookies", "--session-minutes", "30") as site:
        _, headers, _ = _http(site, "GET", "/ui/login")
        assert "; secure" in headers["set-cookie"].lower()  # the sign-in form's cookie too
        from accord.serve.accounts import Role, add_org, add_user

        with open_store(tmp_path / "h.duckdb") as store:
            add_org(store, "agency", "test")
            add_user(store, "sam", "agency", Role.STEWARD, PASSWORD, "test")
        _, headers, body = _http(site, "GET", "/ui/login")
        form = urllib.parse.urlencode({"username": "sam", "password": PASSWORD, "csrf": _csrf_of(body)})
        status, headers, _ = _http(site, "POST", "/ui/login", form.encode(),
                                   {"Content-Type": "application/x-www-form-urlencoded",
                                    "Cookie": _cookie(headers, "accord_login_csrf")})
        flags = next(c for c in headers["set-cookie"].split("\n") if c.startswith("accord_session=")).lower()
        assert status == 303 and "; secure" in flags and "max-age=1800" in flags


@pytest.mark.parametrize("hub", ["duckdb"], indirect=True)  # same code on both engines: see the upload test
def test_oversized_browser_upload_is_refused(hub: str, site: str, people: dict[str, Any]) -> None:
    cookie = "accord_session=" + _http_sign_in(site, "maria")
    host, port = site.removeprefix("http://").split(":")
    con = http.client.HTTPConnection(host, int(port), timeout=60)
    con.putrequest("POST", "/ui/partner/upload")
    con.putheader("Cookie", cookie)
    con.putheader("Content-Type", "multipart/form-data; boundary=b")
    con.putheader("Content-Length", "9000000")
    con.endheaders()
    response = con.getresponse()
    assert response.status == 413 and b"larger than this hub accepts" in response.read()
    con.close()
    # a zip bomb: a small upload that unpacks to more than the server accepts
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("manifest.json", b"\0" * 25_000_000)
    _, _, page = _http(site, "GET", "/ui/partner", headers={"Cookie": cookie})
    body = (f'--b\r\nContent-Disposition: form-data; name="csrf"\r\n\r\n{_csrf_of(page)}\r\n'
            '--b\r\nContent-Disposition: form-data; name="contribution"; filename="c.zip"\r\n'
            'Content-Type: application/zip\r\n\r\n').encode() + buf.getvalue() + b"\r\n--b--\r\n"
    status, _, answer = _http(site, "POST", "/ui/partner/upload", body,
                              {"Cookie": cookie, "Content-Type": "multipart/form-data; boundary=b"})
    assert status == 422 and b"unpacks to more than the server accepts" in answer


def test_unreachable_hub_is_a_plain_503(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The database is down: every page says so in plain words (503), no traceback, no detail."""
    monkeypatch.setenv("ACCORD_HUB_KEY", str(tmp_path / "k.key"))
    with serving(ServerConfig(f"postgresql://accord@127.0.0.1:{free_port()}/hub")) as url:
        for method, path in (("GET", "/ui/steward"), ("POST", "/ui/login")):
            status, headers, body = _http(url, method, path, b"" if method == "POST" else None,
                                          {"Content-Type": "application/x-www-form-urlencoded"})
            assert status == 503 and b"The hub is not available" in body, (path, body[:200])
            assert b"Traceback" not in body and b"127.0.0.1" not in body
            assert headers["cache-control"] == "no-store"
