"""Browser sessions of the hub's web UI, and the limit on failed sign-ins.

A session is server-side: the cookie holds a 256-bit random id, the store keeps only its SHA-256
(as for API tokens: nothing to brute-force, and a stolen database yields no live session), with
the user, a per-session CSRF token and an absolute expiry. Logging out deletes the row, so a copied
cookie dies with it, which a signed cookie cannot do; and every server process sharing the hub
sees the same sessions. SQL is portable (DuckDB and PostgreSQL).

The sign-in limit is kept in the server process's memory (a restart clears it; one process serves
a hub): starlette and FastAPI have no limiter, and a library for a sliding window of failures
would be larger than this class.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass

from accord.serve.accounts import Role, User, ensure_accounts
from accord.store import Store
from accord.store.base import now_iso

SESSIONS_SQL = """CREATE TABLE IF NOT EXISTS hub_web_sessions (
    session_sha256 VARCHAR PRIMARY KEY, username VARCHAR NOT NULL, csrf VARCHAR NOT NULL,
    created_at VARCHAR NOT NULL, expires_at DOUBLE PRECISION NOT NULL)"""


@dataclass(frozen=True)
class WebSettings:
    """How the web UI treats sessions and sign-ins (``ServerConfig.web``).

    ``secure_cookies``: None sets the Secure flag when the request came over https (uvicorn with a
    certificate, or a proxy whose X-Forwarded-Proto uvicorn trusts); True/False force it."""

    session_minutes: int = 480
    secure_cookies: bool | None = None
    max_failures_per_user: int = 5
    max_failures_per_address: int = 20
    lockout_minutes: int = 15


@dataclass(frozen=True)
class Session:
    user: User
    csrf: str
    session_sha256: str
    must_change_password: bool = False  # a one-time password: only the change-password page opens


def _sha256(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_session(store: Store, user: User, minutes: int) -> tuple[str, str]:
    """A new session for ``user``: (the cookie value, its CSRF token). Expired rows are swept."""
    secret = secrets.token_urlsafe(32)
    csrf = secrets.token_urlsafe(32)
    now = time.time()
    with store.transaction():
        store.execute(SESSIONS_SQL)
        store.execute("DELETE FROM hub_web_sessions WHERE expires_at <= ?", [now])
        store.execute("INSERT INTO hub_web_sessions VALUES (?, ?, ?, ?, ?)",
                      [_sha256(secret), user.username, csrf, now_iso(), now + 60 * minutes])
    return secret, csrf


def session_of(store: Store, cookie: str | None) -> Session | None:
    """The live session a cookie names; None when absent, unknown, expired, or its user is gone or
    disabled."""
    if not cookie or len(cookie) > 200 or not store.table_exists("hub_web_sessions"):
        return None
    ensure_accounts(store)
    rows = store.query("SELECT s.session_sha256, s.csrf, s.expires_at, u.username, u.org, u.role, "
                       "st.must_change_password, st.disabled_at "
                       "FROM hub_web_sessions s JOIN hub_users u ON u.username = s.username "
                       "LEFT JOIN hub_user_state st ON st.username = u.username "
                       "WHERE s.session_sha256 = ?", [_sha256(cookie)]).to_pylist()
    if not rows or float(rows[0]["expires_at"]) <= time.time() or rows[0]["disabled_at"] is not None:
        return None
    row = rows[0]
    return Session(User(row["username"], row["org"], Role(row["role"])), row["csrf"], row["session_sha256"],
                   bool(row["must_change_password"]))


def end_session(store: Store, session: Session) -> None:
    store.execute("DELETE FROM hub_web_sessions WHERE session_sha256 = ?", [session.session_sha256])


def same_token(expected: str, given: str | None) -> bool:
    return bool(given) and hmac.compare_digest(expected.encode(), (given or "").encode())


class LoginLimiter:
    """Failed sign-ins in a sliding window, per user name and per client address.

    A key with ``limit`` failures within the last ``window`` seconds is locked until the oldest of
    them leaves the window. A successful sign-in clears the user name's failures (not the
    address's: one address guessing many accounts stays limited)."""

    def __init__(self, per_user: int, per_address: int, window_s: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._limits = {"user": per_user, "address": per_address}
        self._window = window_s
        self._clock = clock
        self._failures: dict[tuple[str, str], deque[float]] = defaultdict(deque)
        self._lock = threading.Lock()

    def _recent(self, key: tuple[str, str]) -> deque[float]:
        q = self._failures[key]
        cutoff = self._clock() - self._window
        while q and q[0] <= cutoff:
            q.popleft()
        return q

    def locked(self, username: str, address: str) -> bool:
        with self._lock:
            return any(len(self._recent(k)) >= self._limits[k[0]]
                       for k in (("user", username), ("address", address)))

    def failed(self, username: str, address: str) -> None:
        with self._lock:
            now = self._clock()
            for key in (("user", username), ("address", address)):
                self._recent(key).append(now)

    def succeeded(self, username: str) -> None:
        with self._lock:
            self._failures.pop(("user", username), None)
