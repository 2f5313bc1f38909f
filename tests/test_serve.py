"""`accord serve` over real HTTP on 127.0.0.1 (uvicorn in a thread), on each hub engine: accounts,
the authorisation matrix (API and web UI), `accord push` verified exactly as `hub add`, unsafe uploads refused."""

from __future__ import annotations

import http.client
import io
import json
import time
import urllib.error
import urllib.request
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from accord.cli.main import app
from accord.protect.job import build_contribution
from accord.protect.keys import PartnerKey
from accord.serve.app import ServerConfig
from accord.store import open_store
from tests.conftest import EXPECTED_ACCEPTED
from tests.hubs import run_cli
from tests.serving import accord_serve, accounts_with_tokens, serving

PRINCIPALS = ("sub_b", "sub_c", "analyst", "steward", "auditor")


@pytest.fixture
def server(hub: str) -> Iterator[str]:
    with serving(ServerConfig(hub, max_upload_bytes=5_000_000)) as url:
        yield url


@pytest.fixture
def accounts(hub: str, tmp_path: Path) -> dict[str, Path]:
    """Two partner organisations, one user per role, a token file each, and one revoked token
    (made through the API in one session: the CLI commands have their own test below)."""
    from accord.serve.accounts import Role

    return accounts_with_tokens(hub, tmp_path / "tokens", ("ngo-b", "ngo-c", "agency"), {
        "sub_b": ("ngo-b", Role.SUBMITTER), "sub_c": ("ngo-c", Role.SUBMITTER),
        "analyst": ("agency", Role.ANALYST), "steward": ("agency", Role.STEWARD),
        "auditor": ("agency", Role.AUDITOR)})


def _request(url: str, token: str | None, method: str = "GET", body: bytes | None = None
             ) -> tuple[int, Any, dict[str, str]]:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    req = urllib.request.Request(url, data=body, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, json.loads(r.read()), {k.lower(): v for k, v in r.headers.items()}
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"{}"), {k.lower(): v for k, v in err.headers.items()}


def _contribution(tmp_path: Path, case_export: tuple[Path, Path], key: PartnerKey, name: str = "c") -> Path:
    out = tmp_path / name
    build_contribution(case_export[0], case_export[1], "ngo-b", out, key)
    return out


def _zip(contribution: Path, extra: dict[str, bytes] | None = None) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for f in sorted(contribution.iterdir()):
            zf.write(f, arcname=f.name)
        for name, data in (extra or {}).items():
            zf.writestr(name, data)
    return buf.getvalue()


def _tokens(accounts: dict[str, Path]) -> dict[str, str | None]:
    out: dict[str, str | None] = {k: v.read_text().strip() for k, v in accounts.items()}
    out["none"] = None
    out["malformed"] = "accord_nothing"
    out["forged"] = out["steward"][:-4] + "AAAA"  # type: ignore[index]
    return out


pytestmark = pytest.mark.slow  # a server and accounts per test: about a minute in all on 2 cores

# Expected status of each GET route for each principal; every token problem is 401.
READS = {
    "/api/whoami": {p: 200 for p in PRINCIPALS},
    "/api/batches": {"sub_b": 200, "sub_c": 200, "analyst": 403, "steward": 200, "auditor": 200},
    "/api/releases": {"sub_b": 403, "sub_c": 403, "analyst": 200, "steward": 200, "auditor": 200},
    "/api/audit": {"sub_b": 403, "sub_c": 403, "analyst": 403, "steward": 200, "auditor": 200},
    "/api/budget": {"sub_b": 403, "sub_c": 403, "analyst": 200, "steward": 200, "auditor": 200},
    "/api/withdrawals": {"sub_b": 200, "sub_c": 200, "analyst": 403, "steward": 200, "auditor": 200},
    "/api/requests": {"sub_b": 403, "sub_c": 403, "analyst": 200, "steward": 200, "auditor": 200},
}
# POST routes of the withdrawal and request workflow (tests/test_serve_flow.py runs each with a
# body that succeeds for its owner): who gets past authorisation; everyone else 403, no token 401.
WORKFLOW_POSTS = {
    "/api/withdrawals": {"sub_b", "sub_c"},  # a submitter, for its own organisation's records only
    "/api/requests": {"analyst"},
    "/api/requests/rq-x/approve": {"steward"},
    "/api/requests/rq-x/reject": {"steward"},
}
PUSH = {"sub_b": 201, "sub_c": 403, "analyst": 403, "steward": 403, "auditor": 403}


def test_authorisation_matrix(server: str, accounts: dict[str, Path], hub: str, tmp_path: Path,
                              case_export: tuple[Path, Path], partner_key: PartnerKey) -> None:
    tokens = _tokens(accounts)
    contribution = _contribution(tmp_path, case_export, partner_key)
    body = _zip(contribution)
    bodies: list[str] = []
    for who in ("none", "malformed", "forged", "revoked", "sub_c", "analyst", "steward", "auditor", "sub_b"):
        status, payload, headers = _request(server + "/api/contributions", tokens[who], "POST", body)
        assert status == PUSH.get(who, 401), (who, payload)
        assert headers.get("cache-control") == "no-store" and "default-src 'none'" in headers["content-security-policy"]
        bodies.append(json.dumps(payload))
    assert json.loads(bodies[-1])["added"] == EXPECTED_ACCEPTED
    status, payload, _ = _request(server + "/api/contributions", tokens["sub_b"], "POST", body)
    assert status == 200 and payload["duplicate"] is True  # a retried push adds nothing
    for route, expected in READS.items():
        for who, token in tokens.items():
            status, payload, _ = _request(server + route, token)
            assert status == expected.get(who, 401), (route, who, payload)
            bodies.append(json.dumps(payload))
    assert _request(server + "/api/health", None)[0] == 200
    for route, allowed in WORKFLOW_POSTS.items():  # an empty body: past authorisation it is 400/404
        for who, token in tokens.items():
            status, payload, _ = _request(server + route, token, "POST", b"{}")
            want = 401 if who not in PRINCIPALS else (403 if who not in allowed else status)
            assert status == want and (who not in allowed or status in (400, 404)), (route, who, payload)
            bodies.append(json.dumps(payload))
    status, payload, _ = _request(server + "/api/requests/rq-x/output", tokens["analyst"])
    assert status == 404 and _request(server + "/api/requests/rq-x/output", tokens["steward"])[0] == 403
    # a partner sees its own batches only
    assert len(_request(server + "/api/batches", tokens["sub_b"])[1]) == 1
    assert _request(server + "/api/batches", tokens["sub_c"])[1] == []
    assert len(_request(server + "/api/batches", tokens["steward"])[1]) == 1
    # no route returns a record: no record key or pseudonym appears in any answer
    with open_store(hub) as store:
        values = store.query("SELECT record_key, person_pseudonym FROM records").to_pylist()
        denied = store.scalar("SELECT count(*) FROM audit WHERE action = 'hub.denied'")
    everything = "\n".join(bodies)
    assert values and not any(v["record_key"] in everything or (v["person_pseudonym"] or "#") in everything
                              for v in values)
    # every 403 above is on the audit log: 4 pushes, the reads, the workflow posts, one output
    posts = sum(1 for allowed in WORKFLOW_POSTS.values() for p in PRINCIPALS if p not in allowed)
    assert denied == 4 + sum(1 for e in READS.values() for s in e.values() if s == 403) + posts + 1


def test_push_is_verified_as_hub_add(server: str, accounts: dict[str, Path], hub: str, tmp_path: Path,
                                     case_export: tuple[Path, Path], partner_key: PartnerKey) -> None:
    token = str(accounts["sub_b"])
    damaged = _contribution(tmp_path, case_export, partner_key, "damaged")
    data = damaged / "records.parquet"
    raw = bytearray(data.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    data.write_bytes(bytes(raw))
    local = CliRunner().invoke(app, ["hub", "add", str(damaged), "--hub", str(tmp_path / "local.duckdb")])
    pushed = CliRunner().invoke(app, ["push", str(damaged), "--server", server, "--token-file", token])
    assert local.exit_code == 2 and pushed.exit_code == 2, pushed.output
    reason = local.output.split("error:")[1].split("what to do")[0].replace(str(damaged), "the upload")
    assert "(422)" in pushed.output and " ".join(reason.split()) in " ".join(pushed.output.split())
    assert "accord-push-" not in pushed.output  # the server's scratch folder is not shown
    with open_store(hub) as store:
        assert not store.table_exists("records") or store.scalar("SELECT count(*) FROM records") == 0
    good = _contribution(tmp_path, case_export, partner_key, "good")
    first = json.loads(run_cli("push", str(good), "--server", server, "--token-file", token, "--json", read="stdout"))
    again = json.loads(run_cli("push", str(good), "--server", server, "--token-file", token, "--json", read="stdout"))
    assert first["added"] == EXPECTED_ACCEPTED and not first["duplicate"] and again["duplicate"]
    with open_store(hub) as store:
        assert store.scalar("SELECT count(*) FROM records") == EXPECTED_ACCEPTED
        assert ("sub_b", "hub.add") in [(r["actor"], r["action"]) for r in
                                        store.query("SELECT actor, action FROM audit").to_pylist()]
    bad_token = tmp_path / "bad.token"
    bad_token.write_text("accord_x_y")
    refused = CliRunner().invoke(app, ["push", str(good), "--server", server, "--token-file", str(bad_token)])
    assert refused.exit_code == 2 and "(401)" in refused.output and "Traceback" not in refused.output


def test_unsafe_uploads_are_refused(server: str, accounts: dict[str, Path], hub: str, tmp_path: Path,
                                    case_export: tuple[Path, Path], partner_key: PartnerKey) -> None:
    token = accounts["sub_b"].read_text().strip()
    contribution = _contribution(tmp_path, case_export, partner_key)
    for extra in ({"../escape.txt": b"x"}, {"sub/dir.txt": b"x"}, {"/abs.txt": b"x"}, {".hidden": b"x"}):
        status, payload, _ = _request(server + "/api/contributions", token, "POST", _zip(contribution, extra))
        assert status == 422 and "refused" in payload["error"], extra
    assert not (tmp_path.parent / "escape.txt").exists()
    status, payload, _ = _request(server + "/api/contributions", token, "POST", b"not a zip")
    assert status == 422 and "zip" in payload["error"]
    # larger than the server accepts: refused from the declared length, before any byte is read
    host, port = server.removeprefix("http://").split(":")
    con = http.client.HTTPConnection(host, int(port), timeout=60)
    con.putrequest("POST", "/api/contributions")
    con.putheader("Authorization", f"Bearer {token}")
    con.putheader("Content-Length", "6000000")
    con.endheaders()
    assert con.getresponse().status == 413
    con.close()
    with open_store(hub) as store:
        assert not store.table_exists("records") or store.scalar("SELECT count(*) FROM records") == 0


def test_user_add_without_a_terminal_says_what_to_pass(hub: str) -> None:
    """No --password-file and no terminal to ask at (a script, CI): a clear error naming the option
    (exit 2), not the prompt's bare "Aborted." (exit 1); no user is added."""
    run_cli("hub", "org", "add", "ngo-a", "--hub", hub)
    for extra in ([], ["--one-time"]):
        r = CliRunner().invoke(app, ["hub", "user", "add", "u", "--org", "ngo-a", "--role", "analyst",
                                     "--hub", hub, *extra])
        assert r.exit_code == 2, r.output
        assert "--password-file" in r.output and "Aborted" not in r.output
    assert "u " not in run_cli("hub", "user", "list", "--hub", hub, read="stdout")


def test_accounts_refuse_bad_input(hub: str, tmp_path: Path) -> None:
    runner = CliRunner()
    short = tmp_path / "short"
    short.write_text("short")
    long_pw = tmp_path / "long"
    long_pw.write_text("a long enough password\n")
    assert runner.invoke(app, ["hub", "org", "add", "Bad Name!", "--hub", hub]).exit_code == 2
    run_cli("hub", "org", "add", "ngo-a", "--hub", hub)
    assert runner.invoke(app, ["hub", "org", "add", "ngo-a", "--hub", hub]).exit_code == 2
    r = runner.invoke(app, ["hub", "user", "add", "u", "--org", "ngo-a", "--role", "king",
                            "--password-file", str(short), "--hub", hub])
    assert r.exit_code == 2 and "unknown role" in r.output
    r = runner.invoke(app, ["hub", "user", "add", "u", "--org", "ngo-a", "--role", "analyst",
                            "--password-file", str(short), "--hub", hub])
    assert r.exit_code == 2 and "too short" in r.output
    r = runner.invoke(app, ["hub", "user", "add", "u", "--org", "nowhere", "--role", "analyst",
                            "--password-file", str(tmp_path / "missing"), "--hub", hub])
    assert r.exit_code == 2
    with open_store(hub) as store:
        from accord.serve.accounts import Role, add_user, check_password

        add_user(store, "alice", "ngo-a", Role.ANALYST, "a long enough password", "t")
        hashes = store.query("SELECT password_hash FROM hub_users").to_pylist()
        assert hashes[0]["password_hash"].startswith("$argon2id$")
        assert check_password(store, "alice", "a long enough password") is not None
        assert check_password(store, "alice", "wrong password!!") is None
        assert check_password(store, "nobody", "a long enough password") is None
    run_cli("hub", "user", "add", "bob", "--org", "ngo-a", "--role", "submitter", "--password-file",
            str(long_pw), "--hub", hub)
    out = tmp_path / "alice.token"
    run_cli("hub", "token", "create", "alice", "--out", str(out), "--hub", hub)
    assert out.stat().st_mode & 0o777 == 0o600
    assert CliRunner().invoke(app, ["hub", "token", "create", "alice", "--out", str(out), "--hub", hub]).exit_code == 2
    from accord.serve.accounts import user_of_token

    with open_store(hub) as store:
        assert user_of_token(store, out.read_text().strip()).org == "ngo-a"  # type: ignore[union-attr]
    run_cli("hub", "token", "revoke", out.read_text().split("_")[1], "--hub", hub)
    with open_store(hub) as store:
        assert user_of_token(store, out.read_text().strip()) is None
    secret = out.read_text().strip().split("_", 2)[2]
    listed = run_cli("hub", "token", "list", "--hub", hub, "--json", read="stdout")
    assert secret not in listed
    with open_store(hub) as store:
        dump = json.dumps(store.query("SELECT * FROM hub_tokens").to_pylist())
    assert secret not in dump  # only the hash is kept


def test_serve_command_answers_on_loopback(tmp_path: Path) -> None:
    """`accord serve` itself: starts uvicorn on the given address, answers, stops on SIGTERM."""
    with accord_serve("--db", str(tmp_path / "h.duckdb")) as url:
        status, payload, headers = _request(url + "/api/health", None)
        assert status == 200 and payload == {"status": "ok"} and "server" not in headers
        assert _request(url + "/api/batches", None)[0] == 401
    bad = CliRunner().invoke(app, ["serve", "--bind", "nonsense"])
    assert bad.exit_code == 2 and "HOST:PORT" in bad.output


def test_interrupted_push_leaves_nothing(server: str, accounts: dict[str, Path], hub: str, tmp_path: Path,
                                         case_export: tuple[Path, Path], partner_key: PartnerKey) -> None:
    """The client goes away half-way through the upload: nothing is loaded, the server carries on."""
    token = accounts["sub_b"].read_text().strip()
    body = _zip(_contribution(tmp_path, case_export, partner_key))
    host, port = server.removeprefix("http://").split(":")
    con = http.client.HTTPConnection(host, int(port), timeout=60)
    con.putrequest("POST", "/api/contributions")
    con.putheader("Authorization", f"Bearer {token}")
    con.putheader("Content-Length", str(len(body)))
    con.endheaders()
    con.send(body[: len(body) // 2])
    con.close()
    time.sleep(1.0)
    with open_store(hub) as store:
        assert not store.table_exists("records") or store.scalar("SELECT count(*) FROM records") == 0
        assert not store.table_exists("batches") or store.scalar("SELECT count(*) FROM batches") == 0
    status, payload, _ = _request(server + "/api/contributions", token, "POST", body)
    assert status == 201 and payload["added"] == EXPECTED_ACCEPTED  # and a retry loads it whole


# The analyst's routes (accord.serve.analysis): status per principal with a valid body, on a hub
# holding one partner's records; every token problem is 401.
ANALYST_OK = {"sub_b": 403, "sub_c": 403, "analyst": 200, "steward": 200, "auditor": 403}
STEWARD_OK = {"sub_b": 403, "sub_c": 403, "analyst": 403, "steward": 200, "auditor": 403}
ANALYSIS: dict[str, tuple[dict[str, Any], dict[str, int]]] = {
    "/api/stats": ({}, ANALYST_OK),
    "/api/report": ({"privacy": "dp"}, ANALYST_OK),
    "/api/release/tables": ({"epsilon": 0.1, "tables": ["case_type_by_sex"]}, ANALYST_OK),
    # allowed, but a hub with no linked persons cannot estimate: 422, the CLI's exit 2
    "/api/estimate": ({}, {**ANALYST_OK, "analyst": 422, "steward": 422}),
    "/api/budget/set": ({"epsilon": 20}, STEWARD_OK),
    "/api/budget/grant": ({"epsilon": 1, "reason": "matrix test"}, STEWARD_OK),
    "/api/budget/quota": ({"org": "ngo-b", "epsilon": 1, "reason": "matrix test"}, STEWARD_OK),
}


def test_analysis_routes_authorisation_matrix(server: str, accounts: dict[str, Path], hub: str,
                                              tmp_path: Path, case_export: tuple[Path, Path],
                                              partner_key: PartnerKey) -> None:
    tokens = _tokens(accounts)
    body = _zip(_contribution(tmp_path, case_export, partner_key))
    assert _request(server + "/api/contributions", tokens["sub_b"], "POST", body)[0] == 201
    answers: list[str] = []
    for route, (payload, expected) in ANALYSIS.items():
        for who, token in tokens.items():
            req = urllib.request.Request(server + route, data=json.dumps(payload).encode(), method="POST",
                                         headers={"Authorization": f"Bearer {token}"} if token else {})
            try:
                with urllib.request.urlopen(req, timeout=120) as r:
                    status, text = r.status, r.read().decode()
            except urllib.error.HTTPError as err:
                status, text = err.code, err.read().decode()
            assert status == expected.get(who, 401), (route, who, text[:300])
            answers.append(text)
    with open_store(hub) as store:
        values = store.query("SELECT record_key, person_pseudonym FROM records").to_pylist()
        denied = store.scalar("SELECT count(*) FROM audit WHERE action = 'hub.denied'")
        actors = {r["actor"] for r in store.releases()}
    everything = "\n".join(answers)  # the report's HTML included
    assert values and not any(v["record_key"] in everything or (v["person_pseudonym"] or "#") in everything
                              for v in values)
    assert denied == sum(1 for _, e in ANALYSIS.values() for s in e.values() if s == 403)
    assert actors <= {"analyst", "steward"}  # a release is made in the token's name
# The web UI's pages for each principal (signed in with the password; the token problems of the
# API become session problems: none, forged, expired or signed out, which go to the sign-in page).
UI_ROUTES = {
    ("GET", "/ui/steward"): {"steward": 200},
    ("GET", "/ui/partner"): {"sub_b": 200, "sub_c": 200},
    ("GET", "/ui/analyst"): {"analyst": 200},
    ("GET", "/ui/auditor"): {"auditor": 200},
    ("POST", "/ui/partner/upload"): {"sub_b": 303, "sub_c": 403},  # sub_c: another org's contribution
    ("POST", "/ui/analyst/report"): {"analyst": 200},
    ("POST", "/ui/analyst/tables"): {"analyst": 200},
    # the steward's, analyst's and account pages (accord.serve.web.steward_pages, .request_pages,
    # .account_pages): a POST with the CSRF token and nothing else is a 400 page for its role
    ("GET", "/ui/steward/requests"): {"steward": 200},
    ("POST", "/ui/steward/requests/approve"): {"steward": 400},
    ("POST", "/ui/steward/requests/reject"): {"steward": 400},
    ("GET", "/ui/steward/budget"): {"steward": 200},
    ("POST", "/ui/steward/budget/set"): {"steward": 400},
    ("POST", "/ui/steward/budget/grant"): {"steward": 400},
    ("POST", "/ui/steward/budget/quota"): {"steward": 400},
    ("GET", "/ui/steward/accounts"): {"steward": 200},
    ("POST", "/ui/steward/accounts/org"): {"steward": 400},
    ("POST", "/ui/steward/accounts/user"): {"steward": 400},
    ("POST", "/ui/steward/accounts/disable"): {"steward": 400},
    ("POST", "/ui/steward/accounts/reset"): {"steward": 400},
    ("POST", "/ui/steward/accounts/reopen"): {"steward": 400},
    ("POST", "/ui/steward/tokens/create"): {"steward": 400},
    ("POST", "/ui/steward/tokens/revoke"): {"steward": 400},
    ("GET", "/ui/analyst/requests"): {"analyst": 200},
    ("POST", "/ui/analyst/requests"): {"analyst": 400},
    ("POST", "/ui/analyst/requests/download"): {"analyst": 400},
    ("GET", "/ui/password"): {p: 200 for p in PRINCIPALS},
    ("POST", "/ui/password"): {p: 400 for p in PRINCIPALS},
    ("POST", "/ui/logout"): {p: 303 for p in PRINCIPALS},  # last: it ends the sessions
}
# A one-time password (e.g. a new account's) opens only the change-password page and sign-out.
ONE_TIME_OPEN = {("GET", "/ui/password"): 200, ("POST", "/ui/password"): 400, ("POST", "/ui/logout"): 303}
UI_PUBLIC = ("/", "/ui", "/ui/login", "/ui/static/hub.css")


def test_web_ui_authorisation_matrix(server: str, accounts: dict[str, Path], hub: str, tmp_path: Path,
                                     case_export: tuple[Path, Path], partner_key: PartnerKey) -> None:
    """Every UI route x every principal over real HTTP; every refusal is audited; no page, report
    or download carries a record key or pseudonym; a session cookie opens no API route."""
    from accord.serve.accounts import Role, User, add_user
    from accord.serve.web.sessions import create_session
    from tests import test_serve_web as web

    archive = _zip(_contribution(tmp_path, case_export, partner_key))
    with open_store(hub) as store:
        add_user(store, "fresh", "agency", Role.STEWARD, "correct horse battery staple", "test", one_time=True)
    cookies = {p: "accord_session=" + web._http_sign_in(server, p, "correct horse battery staple")
               for p in (*PRINCIPALS, "fresh")}
    with open_store(hub) as store:
        expired, _ = create_session(store, User("steward", "agency", Role.STEWARD), minutes=0)
    out_cookies: dict[str, str | None] = {"none": None, "forged": "accord_session=" + "A" * 43,
                                          "expired": f"accord_session={expired}"}
    csrf = {}
    for p, cookie in cookies.items():
        home = {"sub_b": "/ui/partner", "sub_c": "/ui/partner", "analyst": "/ui/analyst",
                "steward": "/ui/steward", "auditor": "/ui/auditor", "fresh": "/ui/password"}[p]
        csrf[p] = web._csrf_of(web._http(server, "GET", home, headers={"Cookie": cookie})[2])
    with open_store(hub) as store:
        denied_before = store.scalar("SELECT count(*) FROM audit WHERE action = 'hub.denied'")

    def call(method: str, path: str, who: str) -> tuple[int, dict[str, str], bytes]:
        cookie = cookies.get(who) or out_cookies.get(who)
        headers = {"Cookie": cookie} if cookie else {}
        token = csrf.get(who, "x")
        if path == "/ui/partner/upload":
            body = (f'--b\r\nContent-Disposition: form-data; name="csrf"\r\n\r\n{token}\r\n--b\r\n'
                    'Content-Disposition: form-data; name="contribution"; filename="c.zip"\r\n'
                    'Content-Type: application/zip\r\n\r\n').encode() + archive + b"\r\n--b--\r\n"
            headers["Content-Type"] = "multipart/form-data; boundary=b"
        else:
            body = f"csrf={token}".encode() if method == "POST" else None
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        return web._http(server, method, path, body, headers)

    bodies: list[bytes] = []
    denied = 0
    for (method, path), expected in UI_ROUTES.items():
        for who in (*PRINCIPALS, "fresh", "none", "forged", "expired"):
            status, headers, body = call(method, path, who)
            if who == "fresh":  # a one-time password: every other page sends it to change it
                want = ONE_TIME_OPEN.get((method, path), 303)
                if want == 303:
                    assert headers["location"] == ("/ui/login" if path == "/ui/logout" else "/ui/password")
            elif who in cookies:
                want = expected.get(who, 403)
                denied += want == 403  # every refusal of a signed-in user is audited
            else:
                want = 303
                assert headers["location"] == "/ui/login", (method, path, who)
            assert status == want, (method, path, who, status, body[:300])
            assert headers["x-frame-options"] == "DENY" and headers["cache-control"] == "no-store"
            bodies.append(body)
    for path in UI_PUBLIC:
        assert web._http(server, "GET", path)[0] in (200, 303), path
    # a session cookie is not an API credential
    assert web._http(server, "GET", "/api/batches", headers={"Cookie": cookies["steward"]})[0] == 401
    with open_store(hub) as store:
        denied_after = store.scalar("SELECT count(*) FROM audit WHERE action = 'hub.denied'")
        values = store.query("SELECT record_key, person_pseudonym FROM records").to_pylist()
    assert denied_after - denied_before == denied
    everything = b"\n".join(bodies)
    assert values and not any(v["record_key"].encode() in everything
                              or (v["person_pseudonym"] or "#").encode() in everything for v in values)
