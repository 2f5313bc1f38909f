"""What the API's routers share: the hub store of the running app, the caller and their role.

The same rules as ``accord.serve.app``'s own routes: a live bearer token or 401; a role outside the
route's roles is 403 and an audit entry; a store that cannot be reached is 503. The app puts its
``ServerConfig`` on ``app.state.config``; routers read it from the request.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from fastapi import HTTPException, Request

from accord.errors import StoreError
from accord.serve.accounts import Role, User, user_of_token
from accord.store import Store, open_store


def error(status: int, message: str, hint: str | None = None) -> HTTPException:
    return HTTPException(status, {"error": message, "hint": hint})


@contextmanager
def hub_store(request: Request) -> Iterator[Store]:
    try:
        with open_store(request.app.state.config.hub) as s:
            yield s
    except StoreError as err:
        raise error(503, "the hub store is not available", err.hint) from None


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
