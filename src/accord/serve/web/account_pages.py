"""The change-password page (every role), and the rule behind it: an account with a one-time
password (a demo account, a new account or a steward's reset) sees only this page until it has
chosen its own password (the guard in accord.serve.web.routes sends every other page here).

A change ends every web session of the account (accord.serve.accounts.change_password), so a
session opened elsewhere with the old password dies; this browser gets a new session. API tokens
are not touched: they are separate credentials with their own revocation.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse
from starlette.datastructures import FormData
from starlette.responses import Response

from accord.errors import AccordError
from accord.serve.accounts import MIN_PASSWORD, WRONG_CURRENT, Role, change_password
from accord.serve.web.kit import Kit, attempt
from accord.serve.web.sessions import Session, create_session
from accord.store import Store

SESSION_COOKIE = "accord_session"  # the same cookie as accord.serve.web.routes
HOMES = {Role.STEWARD: "/ui/steward", Role.SUBMITTER: "/ui/partner", Role.ANALYST: "/ui/analyst",
         Role.AUDITOR: "/ui/auditor"}


def add_routes(router: APIRouter, kit: Kit) -> None:
    def show(s: Store, session: Session, status: int = 200, error: str | None = None,
             hint: str | None = None) -> Response:
        return kit.page("password.html.j2", status, session, title="Choose your password",
                        minimum=MIN_PASSWORD, error=error, hint=hint)

    @router.get("/ui/password")
    def password_form(request: Request) -> Response:
        return kit.get(request, set(Role), show)

    @router.post("/ui/password")
    async def password_change(request: Request) -> Response:
        def act(s: Store, session: Session, form: FormData) -> Response:
            old = form.get("current")
            new = form.get("new")
            again = form.get("again")
            if not all(isinstance(v, str) and v for v in (old, new, again)):
                return show(s, session, 400, "Fill in all three fields.")
            assert isinstance(old, str) and isinstance(new, str)
            if new != again:
                return show(s, session, 400, "The two new passwords are not the same. Type the "
                            "new one twice.")
            name = session.user.username
            where = request.client.host if request.client else "unknown"
            if kit.limiter.locked(s, name, where):
                s.audit(name, "hub.password_change_refused", {"reason": "too many wrong passwords"})
                return show(s, session, 429, f"Too many wrong passwords. Wait {kit.lockout_minutes} "
                            "minutes and try again.")
            def refused(err: AccordError) -> Response:  # audited without what was typed
                if err.message == WRONG_CURRENT:
                    kit.limiter.failed(s, name, where)
                s.audit(name, "hub.password_change_refused", {"reason": err.message})
                return show(s, session, 400, f"The password was not changed: {err.message}.", err.hint)

            user = attempt(lambda: change_password(s, name, old[:1024], new[:1025]), refused)
            if isinstance(user, Response):
                return user
            kit.limiter.succeeded(s, name)
            cookie, _ = create_session(s, user, kit.session_minutes)
            response = RedirectResponse(HOMES[user.role], status_code=303)
            response.set_cookie(SESSION_COOKIE, cookie, max_age=60 * kit.session_minutes, path="/",
                                httponly=True, samesite="strict", secure=kit.secure(request))
            return response
        return await kit.post(request, set(Role), 4, act)
