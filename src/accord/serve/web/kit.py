"""What the web UI's page modules share: the bounded form reader and a :class:`Kit` of the
router's helpers (page rendering, the role guard, the CSRF check, the store), so each module of
pages (accord.serve.web.routes, .steward_pages, .account_pages, .request_pages) answers the same way.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from fastapi import Request
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.types import Message

from accord.errors import AccordError, StoreError
from accord.serve.accounts import Role
from accord.serve.deps import AnalysisLimit
from accord.serve.web.sessions import LoginLimiter, Session
from accord.store import Store

SMALL_FORM = 16 * 1024  # sign-in, sign-out and the buttons and short forms: a few short fields
T = TypeVar("T")


class TooLarge(Exception):
    pass


async def read_form(request: Request, limit: int, max_files: int, max_fields: int) -> FormData:
    """The request's form, read through a counter: more than ``limit`` bytes raises TooLarge
    before more is read (starlette bounds the number of parts, not their total size)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise TooLarge
    seen = 0

    async def receive() -> Message:
        nonlocal seen
        message = await request.receive()
        seen += len(message.get("body", b""))
        if seen > limit:
            raise TooLarge
        return message

    try:
        return await Request(request.scope, receive).form(max_files=max_files, max_fields=max_fields)
    except HTTPException as err:
        # starlette's answer to more fields or files than allowed is a JSON 400 for an API
        # client; a browser gets the page that says the form sent more than the page takes
        if str(err.detail).startswith("Too many"):
            raise TooLarge from None
        raise


def text_field(form: FormData, name: str, limit: int = 1000) -> str:
    """A form field as stripped text ('' when absent or a file), cut at ``limit`` characters."""
    value = form.get(name)
    return value.strip()[:limit] if isinstance(value, str) else ""


def attempt(action: Callable[[], T], refused: Callable[[AccordError], Response]) -> T | Response:
    """``action()``, or the page ``refused`` makes of the AccordError it raised (a refusal said in
    plain words on the page the form came from). A StoreError is not a refusal: the hub cannot be
    reached, and it goes on to the router's one "not available" page (503)."""
    try:
        return action()
    except StoreError:
        raise
    except AccordError as err:
        return refused(err)


@dataclass(frozen=True)
class Kit:
    """The helpers of one ``ui_router`` (see accord.serve.web.routes for what each does)."""

    page: Callable[..., HTMLResponse]
    problem: Callable[..., HTMLResponse]
    guard: Callable[[Request, Store, set[Role]], Session | Response]
    check_csrf: Callable[[Request, Store, Session, Any], Response | None]
    with_store: Callable[[Callable[[Store], Any]], Any]
    too_large: Callable[[], HTMLResponse]
    secure: Callable[[Request], bool]
    session_minutes: int
    limiter: LoginLimiter  # the sign-in limit; wrong current passwords on the change page count too
    lockout_minutes: int
    analyses: AnalysisLimit  # the app's limit on analyses at once (accord.serve.deps)

    def get(self, request: Request, roles: set[Role],
            show: Callable[[Store, Session], Response]) -> Response:
        """A page for ``roles``: the guard, then ``show``."""
        def run(s: Store) -> Response:
            session = self.guard(request, s, roles)
            return session if not isinstance(session, Session) else show(s, session)
        answer: Response = self.with_store(run)
        return answer

    def post(self, request: Request, roles: set[Role], max_fields: int,
             act: Callable[[Store, Session, FormData], Response],
             check: Callable[[Store, Session, FormData], Response | None] | None = None,
             analysis: str | None = None) -> Awaitable[Response]:
        """A short form's POST for ``roles``: read (bounded), the guard, the CSRF check, then ``act``
        in a worker thread with the hub store. ``check`` (if given) runs first with its own short
        use of the store: an answer from it (a confirmation page, a refusal) is the answer and
        ``act`` does not run. With ``analysis`` (its name), ``act`` waits for its turn in the
        app's limit on analyses at once; ``check`` does not."""
        async def handle() -> Response:
            try:
                form = await read_form(request, SMALL_FORM, max_files=0, max_fields=max_fields)
            except TooLarge:
                return self.too_large()

            def run(s: Store, step: Callable[[Store, Session, FormData], Response | None]) -> Response | None:
                session = self.guard(request, s, roles)
                if not isinstance(session, Session):
                    return session
                refused = self.check_csrf(request, s, session, form.get("csrf"))
                return refused or step(s, session, form)

            if check is not None:
                first: Response | None = await run_in_threadpool(self.with_store, lambda s: run(s, check))
                if first is not None:
                    return first
            if analysis is not None:
                answer: Response = await self.analyses.run(analysis, self.with_store, lambda s: run(s, act))
            else:
                answer = await run_in_threadpool(self.with_store, lambda s: run(s, act))
            return answer
        return handle()
