"""The routes of the web UI (under /ui). Who may see which page: the table in accord.serve.app."""

from __future__ import annotations

import io
import json
import secrets
import shutil
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, PackageLoader, StrictUndefined
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from accord.errors import AccordError, StoreError
from accord.serve.accounts import Role, check_password, ensure_accounts, must_change_password
from accord.serve.deps import AnalysisLimit
from accord.serve.web.kit import SMALL_FORM, Kit, TooLarge, attempt, read_form
from accord.serve.web.sessions import (
    LoginLimiter,
    Session,
    WebSettings,
    create_session,
    end_session,
    same_token,
    session_of,
)
from accord.store import Store, open_store
from accord.store import chain as hub_chain

if TYPE_CHECKING:
    from accord.serve.app import ServerConfig

SESSION_COOKIE = "accord_session"
LOGIN_CSRF_COOKIE = "accord_login_csrf"
HOME = {Role.STEWARD: "/ui/steward", Role.SUBMITTER: "/ui/partner", Role.ANALYST: "/ui/analyst",
        Role.AUDITOR: "/ui/auditor"}
ROLE_NAMES = {Role.STEWARD: "data steward", Role.SUBMITTER: "partner", Role.ANALYST: "analyst",
              Role.AUDITOR: "auditor"}
# The pages load one style sheet from this server and nothing else: no script at all.
UI_CSP = ("default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
          "frame-ancestors 'none'; base-uri 'none'")
# The report is the CLI's self-contained page: its style sheet and its charts' colours are inline
# (no script in it either), so styles may be inline there, nothing else.
REPORT_CSP = ("default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'none'; "
              "frame-ancestors 'none'; base-uri 'none'")
STATIC = Path(__file__).parent / "static"
PASSWORD_PAGE = "/ui/password"
# With a one-time password, only these open (the change page, and signing out).
ONE_TIME_PATHS = frozenset({PASSWORD_PAGE, "/ui/logout"})
T = TypeVar("T")


def _environment() -> Environment:
    env = Environment(loader=PackageLoader("accord.serve.web", "templates"), autoescape=True,
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.globals["role_names"] = {r.value: n for r, n in ROLE_NAMES.items()}
    env.filters["num"] = lambda v: f"{v:,}" if isinstance(v, int) else v
    env.filters["eps"] = lambda v: f"{v:.3g}"
    env.filters["when"] = lambda v: str(v or "")[:19].replace("T", " ")
    return env


def _detail_text(detail: str | None) -> str:
    """An audit or release JSON detail as short "key: value" text (ids, counts, parameters)."""
    try:
        data = json.loads(detail or "{}")
    except ValueError:
        return str(detail)
    if not isinstance(data, dict):
        return str(data)
    return "; ".join(f"{k}: {json.dumps(v, default=str) if isinstance(v, dict | list) else v}"
                     for k, v in data.items())


def ui_router(config: ServerConfig, store_lock: AbstractContextManager[object],
              analyses: AnalysisLimit) -> APIRouter:
    """The web UI's routes; ``store_lock`` is the app's (accord.serve.deps.store_guard), ``analyses``
    its limit on analyses at once (the report and tables pages, approvals take their turn in it)."""
    settings: WebSettings = getattr(config, "web", WebSettings())
    limiter = LoginLimiter(settings.max_failures_per_user, settings.max_failures_per_address,
                           60.0 * settings.lockout_minutes)
    env = _environment()
    hours, minutes = divmod(settings.session_minutes, 60)
    session_text = (f"{hours} hour{'s' if hours != 1 else ''}" if hours and not minutes
                    else f"{settings.session_minutes} minutes")
    router = APIRouter(include_in_schema=False)

    # ---------------------------------------------------------------- helpers
    def page(template: str, status: int = 200, session: Session | None = None, **values: Any) -> HTMLResponse:
        html = env.get_template(template).render(
            user=session.user if session else None, csrf=session.csrf if session else "",
            home=HOME[session.user.role] if session else "/ui/login",
            one_time=bool(session and session.must_change_password), path=values.pop("path", ""),
            **values)
        return HTMLResponse(html, status_code=status, headers={"Content-Security-Policy": UI_CSP})

    def problem(status: int, title: str, message: str, session: Session | None = None,
                hint: str | None = None) -> HTMLResponse:
        return page("problem.html.j2", status, session, title=title, message=message, hint=hint)

    @contextmanager
    def store() -> Iterator[Store]:
        with store_lock, open_store(config.hub) as s:  # the app's (accord.serve.deps.store_guard)
            yield s

    def unavailable(err: StoreError) -> HTMLResponse:
        return problem(503, "The hub is not available", "The hub's database cannot be reached just "
                       "now. Nothing was changed. Try again in a few minutes.", hint=None)

    def too_large() -> HTMLResponse:
        return problem(413, "The form was too large", "The form sent more than this page takes. "
                       "Nothing was changed.")

    def secure(request: Request) -> bool:
        return settings.secure_cookies if settings.secure_cookies is not None else request.url.scheme == "https"

    def address(request: Request) -> str:
        return request.client.host if request.client else "unknown"

    def guard(request: Request, s: Store, roles: set[Role]) -> Session | Response:
        """The caller's live session if its role is one of ``roles``; else the answer to give
        (to the sign-in page, or a 403 page that is audited)."""
        session = session_of(s, request.cookies.get(SESSION_COOKIE))
        if session is None:
            return RedirectResponse("/ui/login", status_code=303)
        if session.must_change_password and request.url.path not in ONE_TIME_PATHS:
            return RedirectResponse(PASSWORD_PAGE, status_code=303)  # before any other page
        if session.user.role not in roles:
            s.audit(session.user.username, "hub.denied", {"route": request.url.path, "method": request.method,
                                                         "role": session.user.role.value})
            return problem(403, "This page is not for your role",
                           f"You are signed in as a {ROLE_NAMES[session.user.role]}. This page is "
                           "for another role, so it is not shown. The attempt is on the audit log.",
                           session)
        return session

    def check_csrf(request: Request, s: Store, session: Session, given: Any) -> Response | None:
        if same_token(session.csrf, given if isinstance(given, str) else None):
            return None
        s.audit(session.user.username, "hub.csrf_refused", {"route": request.url.path})
        return problem(403, "This form was not accepted",
                       "The form did not carry this session's security code, so it may not have "
                       "come from this site. Nothing was changed. Open the page again and resend "
                       "the form from there.", session)

    def with_store(fn: Callable[[Store], T]) -> T | HTMLResponse:
        try:
            with store() as s:
                return fn(s)
        except StoreError as err:
            return unavailable(err)

    # ---------------------------------------------------------------- static, home, sign-in
    @router.get("/ui/static/hub.css")
    def css() -> Response:
        return Response((STATIC / "hub.css").read_bytes(), media_type="text/css")

    @router.get("/")
    @router.get("/ui")
    @router.get("/ui/")
    def home(request: Request) -> Response:
        def run(s: Store) -> Response:
            session = session_of(s, request.cookies.get(SESSION_COOKIE))
            where = "/ui/login" if session is None else (
                PASSWORD_PAGE if session.must_change_password else HOME[session.user.role])
            return RedirectResponse(where, status_code=303)
        return with_store(run)

    def login_page(request: Request, status: int = 200, error: str | None = None,
                   username: str = "") -> HTMLResponse:
        token = secrets.token_urlsafe(32)
        response = page("login.html.j2", status, None, login_csrf=token, error=error, username=username,
                        max_failures=settings.max_failures_per_user, lockout=settings.lockout_minutes,
                        session_text=session_text, title="Sign in")
        response.set_cookie(LOGIN_CSRF_COOKIE, token, max_age=3600, path="/ui", httponly=True,
                            samesite="strict", secure=secure(request))
        return response

    @router.get("/ui/login")
    def login_form(request: Request) -> Response:
        def run(s: Store) -> Response:
            session = session_of(s, request.cookies.get(SESSION_COOKIE))
            if session is not None:
                return RedirectResponse(PASSWORD_PAGE if session.must_change_password
                                        else HOME[session.user.role], status_code=303)
            return login_page(request)
        return with_store(run)

    @router.post("/ui/login")
    async def login(request: Request) -> Response:
        try:
            form = await read_form(request, SMALL_FORM, max_files=0, max_fields=5)
        except TooLarge:
            return too_large()
        username = str(form.get("username") or "").strip()[:64]
        password = str(form.get("password") or "")[:1024]
        given = str(form.get("csrf") or "")
        expected = request.cookies.get(LOGIN_CSRF_COOKIE, "")
        return await run_in_threadpool(_login, request, username, password, given, expected)

    def _login(request: Request, username: str, password: str, given: str, expected: str) -> Response:
        where = address(request)

        def run(s: Store) -> Response:
            ensure_accounts(s)
            if not expected or not same_token(expected, given):
                s.audit("anonymous", "hub.csrf_refused", {"route": "/ui/login", "address": where})
                return login_page(request, 403, "The sign-in form had expired or did not come from "
                                  "this site. Please sign in again.")
            if not username or not password:
                return login_page(request, 400, "Enter your user name and your password.", username)
            lockout = (f"Too many failed sign-ins for this account or from this computer. Wait "
                       f"{settings.lockout_minutes} minutes and try again, or ask the hub's data "
                       "steward to help.")
            # The log names the account only if there is one: a password typed into the user
            # name field must not end up on the audit log.
            known = bool(s.query("SELECT username FROM hub_users WHERE username = ?", [username]).num_rows)
            who = {"user": username if known else "(no such user)", "address": where}
            if limiter.locked(s, username, where):
                s.audit("anonymous", "hub.login_locked", who)
                return login_page(request, 429, lockout, username)
            user = check_password(s, username, password)
            if user is None:
                limiter.failed(s, username, where)
                s.audit("anonymous", "hub.login_failed", who)
                if limiter.locked(s, username, where):
                    return login_page(request, 429, lockout, username)
                return login_page(request, 401, "The user name or the password is not right.", username)
            limiter.succeeded(s, username)
            cookie, _ = create_session(s, user, settings.session_minutes)
            s.audit(user.username, "hub.login", {"address": where})
            first = PASSWORD_PAGE if must_change_password(s, user.username) else HOME[user.role]
            response = RedirectResponse(first, status_code=303)
            response.set_cookie(SESSION_COOKIE, cookie, max_age=60 * settings.session_minutes, path="/",
                                httponly=True, samesite="strict", secure=secure(request))
            response.delete_cookie(LOGIN_CSRF_COOKIE, path="/ui")
            return response
        return with_store(run)

    @router.post("/ui/logout")
    async def logout(request: Request) -> Response:
        try:
            given = (await read_form(request, SMALL_FORM, max_files=0, max_fields=3)).get("csrf")
        except TooLarge:
            return too_large()

        def run(s: Store) -> Response:
            session = guard(request, s, set(Role))
            if not isinstance(session, Session):
                return session
            refused = check_csrf(request, s, session, given)
            if refused:
                return refused
            end_session(s, session)
            s.audit(session.user.username, "hub.logout", {})
            response = RedirectResponse("/ui/login", status_code=303)
            response.delete_cookie(SESSION_COOKIE, path="/")
            return response
        return await run_in_threadpool(with_store, run)

    # ---------------------------------------------------------------- steward
    @router.get("/ui/steward")
    def steward(request: Request) -> Response:
        def run(s: Store) -> Response:
            session = guard(request, s, {Role.STEWARD})
            if not isinstance(session, Session):
                return session
            from accord.release.dp import ledger

            ensure_accounts(s)
            orgs = s.query("SELECT org, created_at FROM hub_orgs ORDER BY org").to_pylist()
            users = s.query("SELECT username, org, role, created_at FROM hub_users "
                            "ORDER BY org, username").to_pylist()
            batches = s.batches()
            per_org: dict[str, dict[str, int]] = {}
            for b in batches:
                t = per_org.setdefault(b["partner"], {"batches": 0, "accepted": 0, "quarantined": 0})
                t["batches"] += 1
                t["accepted"] += int(b["accepted"])
                t["quarantined"] += int(b["quarantined"])
            audit = hub_chain.rows_in_order(s, "audit", ("occurred_at",), newest_first=True,
                                            limit=15)
            for a in audit:
                a["detail"] = _detail_text(a["detail"])
            from accord.serve.requests import PENDING, list_requests

            return page("steward.html.j2", 200, session, title="Steward dashboard", orgs=orgs,
                        path="/ui/steward", pending=len(list_requests(s, status=PENDING)),
                        users=users, batches=list(reversed(batches)), per_org=per_org,
                        budget=ledger.current_budget(s), audit=audit,
                        totals={k: sum(t[k] for t in per_org.values()) for k in
                                ("batches", "accepted", "quarantined")})
        return with_store(run)

    # ---------------------------------------------------------------- partner
    def partner_page(s: Store, session: Session, status: int = 200, error: str | None = None,
                     hint: str | None = None, done: dict[str, Any] | None = None) -> HTMLResponse:
        own = [b for b in s.batches() if b["partner"] == session.user.org]
        return page("partner.html.j2", status, session, title="Your contributions",
                    batches=list(reversed(own)), error=error, hint=hint, done=done,
                    max_mb=max(config.max_upload_bytes // (1024 * 1024), 1),
                    totals={k: sum(int(b[k]) for b in own) for k in ("rows_in", "accepted", "quarantined")})

    @router.get("/ui/partner")
    def partner(request: Request, added: str | None = None) -> Response:
        def run(s: Store) -> Response:
            session = guard(request, s, {Role.SUBMITTER})
            if not isinstance(session, Session):
                return session
            done = None
            if added:
                done = next((b for b in s.batches() if b["batch_id"] == added
                             and b["partner"] == session.user.org), None)
            return partner_page(s, session, done=done)
        return with_store(run)

    @router.post("/ui/partner/upload")
    async def upload(request: Request) -> Response:
        first = await run_in_threadpool(with_store, lambda s: guard(request, s, {Role.SUBMITTER}))
        if not isinstance(first, Session):
            return first
        session = first
        limit = config.max_upload_bytes + 64 * 1024  # the form's own fields and boundaries
        work = Path(tempfile.mkdtemp(prefix="accord-upload-"))
        try:
            try:
                form = await read_form(request, limit, max_files=1, max_fields=2)
            except TooLarge:
                return await run_in_threadpool(with_store, lambda s: partner_page(
                    s, session, 413, "The file is larger than this hub accepts, so nothing was loaded.",
                    f"Uploads are limited to {max(config.max_upload_bytes // (1024 * 1024), 1)} MB."))
            given = form.get("csrf")
            upload = form.get("contribution")
            archive = work / "upload.zip"
            if isinstance(upload, UploadFile):
                with archive.open("wb") as out:
                    while chunk := await upload.read(1 << 20):
                        out.write(chunk)
            await form.close()
            return await run_in_threadpool(with_store, lambda s: _load(request, s, session, given, archive, work))
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def _load(request: Request, s: Store, session: Session, given: Any, archive: Path, work: Path) -> Response:
        """Verify and load an uploaded contribution as ``POST /api/contributions`` does."""
        from accord.protect.contribution import read_manifest
        from accord.serve.app import safe_extract
        from accord.store import add_contribution

        refused = check_csrf(request, s, session, given)
        if refused:
            return refused
        if not archive.exists() or archive.stat().st_size == 0:
            return partner_page(s, session, 400, "Choose the zip file of a contribution to upload.")
        contribution = work / "contribution"
        contribution.mkdir()

        def load() -> Response:
            safe_extract(archive, contribution, config.max_upload_bytes * 4)
            manifest = read_manifest(contribution)
            if manifest.partner != session.user.org:
                s.audit(session.user.username, "hub.denied", {"route": "/ui/partner/upload",
                                                             "reason": "partner is another organisation"})
                return partner_page(s, session, 403, "This contribution belongs to another organisation, "
                                    "so it was not loaded.", "Upload only your organisation's contributions.")
            outcome = add_contribution(s, contribution, actor=session.user.username)
            return RedirectResponse(f"/ui/partner?added={outcome.batch_id}", status_code=303)

        def not_loaded(err: AccordError) -> Response:
            def here(text: str | None) -> str | None:
                return text.replace(str(contribution), "the upload") if text else text
            return partner_page(s, session, 422, f"The upload was refused and nothing was loaded: "
                                f"{here(err.message)}", here(err.hint))
        return attempt(load, not_loaded)

    # ---------------------------------------------------------------- analyst
    def analyst_page(s: Store, session: Session, status: int = 200, error: str | None = None,
                     hint: str | None = None) -> HTMLResponse:
        from accord.release.dp import ledger
        from accord.research.noisy import DEFAULT_RHO
        from accord.serve.requests import list_requests

        mine = {"pending": 0, "approved": 0, "rejected": 0}
        for rq in list_requests(s, requester=session.user.username):
            mine[rq["status"]] = mine.get(rq["status"], 0) + 1
        releases = list(reversed(s.releases()))
        for r in releases:
            r["parameters"] = _detail_text(r["parameters"])
        return page("analyst.html.j2", status, session, title="Releases and report", releases=releases,
                    budget=ledger.current_budget(s), rho=DEFAULT_RHO,
                    rho_eps=ledger.epsilon_from_rho(DEFAULT_RHO, ledger.current_budget(s).delta),
                    data_version=s.data_version(), error=error, hint=hint, mine=mine)

    @router.get("/ui/analyst")
    def analyst(request: Request) -> Response:
        def run(s: Store) -> Response:
            session = guard(request, s, {Role.ANALYST})
            return session if isinstance(session, Response) else analyst_page(s, session)
        return with_store(run)

    def analyst_post(request: Request, given: Any, make: Callable[[Store, Session, Path], Response]) -> Response:
        def run(s: Store) -> Response:
            session = guard(request, s, {Role.ANALYST})
            if not isinstance(session, Session):
                return session
            refused = check_csrf(request, s, session, given)
            if refused:
                return refused
            work = Path(tempfile.mkdtemp(prefix="accord-ui-release-"))
            try:
                return attempt(lambda: make(s, session, work), lambda err: analyst_page(
                    s, session, 409, f"Nothing was published: {err.message}", err.hint))
            finally:
                shutil.rmtree(work, ignore_errors=True)
        return with_store(run)

    @router.post("/ui/analyst/report")
    async def report(request: Request) -> Response:
        try:
            given = (await read_form(request, SMALL_FORM, max_files=0, max_fields=3)).get("csrf")
        except TooLarge:
            return too_large()

        def make(s: Store, session: Session, work: Path) -> Response:
            from accord.release.suppression import SuppressionRules
            from accord.research.report.stages import publish_report

            out = work / "report.html"
            # The CLI's `accord report --privacy dp`: the data version's one noisy draw (paid once,
            # then shown again at no cost), recorded as a release and audited with who looked.
            publish_report(s, out, SuppressionRules(threshold=10), actor=session.user.username, method="dp")
            return HTMLResponse(out.read_text(encoding="utf-8"), headers={"Content-Security-Policy": REPORT_CSP})
        return await analyses.run(request.url.path, analyst_post, request, given, make)

    @router.post("/ui/analyst/tables")
    async def tables(request: Request) -> Response:
        try:
            given = (await read_form(request, SMALL_FORM, max_files=0, max_fields=3)).get("csrf")
        except TooLarge:
            return too_large()

        def make(s: Store, session: Session, work: Path) -> Response:
            from accord.research.export import write_tables
            from accord.research.stats import compute_dp_tables, record_tables_release

            result = compute_dp_tables(s, 10, None, actor=session.user.username, purpose="tables")
            record_tables_release(s, result, "tables", session.user.username)
            buf = io.BytesIO()
            with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
                for path in write_tables(result, work / "tables", hxl=True):
                    zf.write(path, arcname=path.name)
            name = f"accord-tables-{result.data_version}.zip"
            return Response(buf.getvalue(), media_type="application/zip",
                            headers={"Content-Disposition": f'attachment; filename="{name}"'})
        return await analyses.run(request.url.path, analyst_post, request, given, make)

    # ---------------------------------------------------------------- auditor
    @router.get("/ui/auditor")
    def auditor(request: Request) -> Response:
        def run(s: Store) -> Response:
            session = guard(request, s, {Role.AUDITOR})
            if not isinstance(session, Session):
                return session
            from accord.release.dp import ledger

            report = ledger.verify(s)
            total = s.scalar("SELECT count(*) FROM audit") if s.table_exists("audit") else 0
            rows = hub_chain.rows_in_order(s, "audit", ("occurred_at",), newest_first=True,
                                           limit=500)
            for a in rows:
                a["detail"] = _detail_text(a["detail"])
            return page("auditor.html.j2", 200, session, title="Audit log", chain=report, audit=rows,
                        total=total)
        return with_store(run)

    # ---------------------------------------------------------------- the other page modules
    from accord.serve.web import account_pages, request_pages, steward_pages

    kit = Kit(page=page, problem=problem, guard=guard, check_csrf=check_csrf, with_store=with_store,
              too_large=too_large, secure=secure, session_minutes=settings.session_minutes,
              limiter=limiter, lockout_minutes=settings.lockout_minutes, analyses=analyses)
    account_pages.add_routes(router, kit)
    steward_pages.add_routes(router, kit)
    request_pages.add_routes(router, kit)
    return router
