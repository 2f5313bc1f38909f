"""What the API's routers share: the hub store of the running app, the caller and their role.

The same rules as ``accord.serve.app``'s own routes: a live bearer token or 401; a role outside the
route's roles is 403 and an audit entry; a store that cannot be reached is 503. The app puts its
``ServerConfig`` on ``app.state.config``; routers read it from the request.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import Any, TypeVar

from fastapi import HTTPException, Request
from starlette.concurrency import run_in_threadpool

from accord.errors import StoreError
from accord.serve.accounts import Role, User, user_of_token
from accord.store import Store, open_store
from accord.store.urls import is_server_url

T = TypeVar("T")


def error(status: int, message: str, hint: str | None = None, exit_code: int = 2) -> HTTPException:
    """An error answer; ``exit_code`` is the one the CLI exits with (3 for a refused release)."""
    return HTTPException(status, {"error": message, "hint": hint, "exit_code": exit_code})


def store_guard(hub: Path | str) -> AbstractContextManager[object]:
    """What every route holds while it uses the hub. An embedded DuckDB file takes one writer at
    a time (two at once fail with a write conflict), so its requests are serialised; PostgreSQL
    handles concurrent requests itself (the chain's advisory lock orders the writes that matter)."""
    return nullcontext() if is_server_url(hub) else threading.RLock()


class AnalysisLimit:
    """At most ``size`` analyses (a release, a report, an estimate, an approved request's release)
    run at once in one server process, whichever route or page asked; the others wait their turn
    (accord.serve.analysis.MAX_CONCURRENT_ANALYSES says why). Waiting happens on the event loop,
    before a worker thread is taken, so cheap requests are not starved of threads.

    ``running`` and ``waiting`` count the analyses in and before their turn; ``on_start`` (if
    given) is called in the worker thread as each one starts, with its name (tests observe the
    limit through it)."""

    def __init__(self, size: int, on_start: Callable[[str], None] | None = None) -> None:
        if size < 1:
            raise ValueError("an analysis limit needs at least one turn")
        self.size = size
        self.running = 0
        self.waiting = 0
        self._on_start = on_start
        self._turns = asyncio.Semaphore(size)  # bound to the server's loop on first wait

    async def run(self, what: str, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` in a worker thread once a turn is free. The turn lasts as long as the
        work: a thread cannot be stopped, so if the request's task is cancelled (its client went
        away) the work runs on in its own task, which gives the turn back when it ends;
        otherwise a client could start any number of analyses at once by disconnecting."""
        self.waiting += 1
        try:
            await self._turns.acquire()
        finally:
            self.waiting -= 1
        self.running += 1
        try:
            work = asyncio.ensure_future(run_in_threadpool(self._start, what, fn, *args))
        except BaseException:
            self._end(None)
            raise
        work.add_done_callback(self._end)
        return await asyncio.shield(work)

    def _end(self, work: asyncio.Future[Any] | None) -> None:
        if work is not None and not work.cancelled():
            work.exception()  # retrieved here: nobody awaits it once its request was cancelled
        self.running -= 1
        self._turns.release()

    def _start(self, what: str, fn: Callable[..., T], *args: Any) -> T:
        if self._on_start is not None:
            self._on_start(what)
        return fn(*args)


def analysis_limit(request: Request) -> AnalysisLimit:
    """The app's one limit (made by accord.serve.app.create_app)."""
    limit: AnalysisLimit = request.app.state.analysis_limit
    return limit


@contextmanager
def hub_store(request: Request) -> Iterator[Store]:
    config = request.app.state.config
    with request.app.state.store_guard:
        try:
            with open_store(config.hub) as s:
                yield s
        except StoreError as err:
            raise error(503, "the hub store is not available", err.hint or "retry in a moment") from None


def authenticate(request: Request, s: Store) -> User:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise error(401, "a bearer token is required",
                    "pass --token-file with a token from `accord hub token create`")
    user = user_of_token(s, token.strip())
    if user is None:
        raise error(401, "the token is not valid (unknown, malformed or revoked)")
    return user


def deny(request: Request, s: Store, user: User, reason: str | None = None) -> None:
    """Put a refusal on the audit trail."""
    detail = {"route": request.url.path, "method": request.method, "role": user.role.value}
    if reason:
        detail["reason"] = reason
    s.audit(user.username, "hub.denied", detail)


def allow(request: Request, s: Store, roles: set[Role]) -> User:
    """The caller, if their token is live and their role is one of ``roles``; a refusal is audited."""
    user = authenticate(request, s)
    if user.role not in roles:
        deny(request, s, user)
        raise error(403, f"the role {user.role.value} may not use this route")
    return user


async def json_object(request: Request, limit: int = 64 * 1024) -> dict[str, Any]:
    """The request's body as a JSON object, or 400 (the message never repeats the body)."""
    body = await request.body()
    if len(body) > limit:
        raise error(413, "the request body is larger than the server accepts")
    try:
        value = json.loads(body or b"{}")
    except ValueError:
        raise error(400, "the request body is not JSON", "send a JSON object") from None
    if not isinstance(value, dict):
        raise error(400, "the request body must be a JSON object") from None
    return value
