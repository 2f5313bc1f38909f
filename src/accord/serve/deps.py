"""What the API's routers share: the hub store of the running app, the caller and their role.

The same rules as ``accord.serve.app``'s own routes: a live bearer token or 401; a role outside the
route's roles is 403 and an audit entry; a store that cannot be reached is 503. The app puts its
``ServerConfig`` on ``app.state.config``; routers read it from the request.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import Any

from fastapi import HTTPException, Request

from accord.errors import StoreError
from accord.serve.accounts import Role, User, user_of_token
from accord.store import Store, open_store
from accord.store.urls import is_server_url


def error(status: int, message: str, hint: str | None = None, exit_code: int = 2) -> HTTPException:
    """An error answer; ``exit_code`` is the one the CLI exits with (3 for a refused release)."""
    return HTTPException(status, {"error": message, "hint": hint, "exit_code": exit_code})


def store_guard(hub: Path | str) -> AbstractContextManager[object]:
    """What every route holds while it uses the hub. An embedded DuckDB file takes one writer at
    a time (two at once fail with a write conflict), so its requests are serialised; PostgreSQL
    handles concurrent requests itself (the chain's advisory lock orders the writes that matter)."""
    return nullcontext() if is_server_url(hub) else threading.RLock()


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
