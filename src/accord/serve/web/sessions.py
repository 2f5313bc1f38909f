"""Browser sessions of the hub's web UI, and the limit on failed sign-ins.

A session is server-side: the cookie holds a 256-bit random id, the store keeps only its SHA-256
(as for API tokens: nothing to brute-force, and a stolen database yields no live session), with
the user, a per-session CSRF token and an absolute expiry. Logging out deletes the row, so a copied
cookie dies with it, which a signed cookie cannot do; and every server process sharing the hub
sees the same sessions. SQL is portable (DuckDB and PostgreSQL).

The sign-in limit is kept in the hub's store too (`hub_login_failures`: the SHA-256 of the user
name or address and the time of each failure within the window), so a restart does not clear it
and every server process sharing a hub counts the same failures; only failures still inside the
window are kept (swept at each failure), so the table stays as small as the limit allows.
Starlette and FastAPI have no limiter, and a library for a sliding window of failures would be
larger than this class.
"""

from __future__ import annotations

import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from accord.serve.accounts import (
    Role,
    User,
    clear_sign_in_failures,
    ensure_accounts,
    secret_digest,
)
from accord.store import Store
from accord.store.base import now_iso

SESSIONS_SQL = """CREATE TABLE IF NOT EXISTS hub_web_sessions (
    session_sha256 VARCHAR PRIMARY KEY, username VARCHAR NOT NULL, csrf VARCHAR NOT NULL,
    created_at VARCHAR NOT NULL, expires_at DOUBLE PRECISION NOT NULL)"""
LOGIN_FAILURES_SQL = """CREATE TABLE IF NOT EXISTS hub_login_failures (
    kind VARCHAR NOT NULL, key_sha256 VARCHAR NOT NULL, failed_at DOUBLE PRECISION NOT NULL)"""


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


def create_session(store: Store, user: User, minutes: int) -> tuple[str, str]:
    """A new session for ``user``: (the cookie value, its CSRF token). Expired rows are swept."""
    secret = secrets.token_urlsafe(32)
    csrf = secrets.token_urlsafe(32)
    now = time.time()
    with store.transaction():
        store.execute(SESSIONS_SQL)
        store.execute("DELETE FROM hub_web_sessions WHERE expires_at <= ?", [now])
        store.execute("INSERT INTO hub_web_sessions VALUES (?, ?, ?, ?, ?)",
                      [secret_digest(secret), user.username, csrf, now_iso(), now + 60 * minutes])
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
                       "WHERE s.session_sha256 = ?", [secret_digest(cookie)]).to_pylist()
    if not rows or float(rows[0]["expires_at"]) <= time.time() or rows[0]["disabled_at"] is not None:
        return None
    row = rows[0]
    return Session(User(row["username"], row["org"], Role(row["role"])), row["csrf"], row["session_sha256"],
                   bool(row["must_change_password"]))


def end_session(store: Store, session: Session) -> None:
    store.execute("DELETE FROM hub_web_sessions WHERE session_sha256 = ?", [session.session_sha256])


def same_token(expected: str, given: str | None) -> bool:
    return bool(given) and hmac.compare_digest(expected.encode(), (given or "").encode())


@dataclass(frozen=True)
class LoginLimiter:
    """Failed sign-ins in a sliding window, per user name and per client address, in the hub's store.

    A key with ``per_user`` (``per_address``) failures within the last ``window_s`` seconds is
    locked until the oldest of them leaves the window. A successful sign-in clears the user name's
    failures (not the address's: one address guessing many accounts stays limited). The clock is
    wall time (``time.time``), the one clock every server process of a hub shares."""

    per_user: int
    per_address: int
    window_s: float
    clock: Callable[[], float] = time.time

    def _keys(self, username: str, address: str) -> tuple[tuple[str, str, int], ...]:
        return (("user", secret_digest(username), self.per_user),
                ("address", secret_digest(address), self.per_address))

    def locked(self, store: Store, username: str, address: str) -> bool:
        if not store.table_exists("hub_login_failures"):
            return False
        cutoff = self.clock() - self.window_s
        return any(int(store.scalar("SELECT count(*) FROM hub_login_failures WHERE kind = ? AND "
                                    "key_sha256 = ? AND failed_at > ?", [kind, key, cutoff]) or 0) >= limit
                   for kind, key, limit in self._keys(username, address))

    def failed(self, store: Store, username: str, address: str) -> None:
        now = self.clock()
        with store.transaction():
            store.execute(LOGIN_FAILURES_SQL)
            store.execute("DELETE FROM hub_login_failures WHERE failed_at <= ?", [now - self.window_s])
            for kind, key, _ in self._keys(username, address):
                store.execute("INSERT INTO hub_login_failures VALUES (?, ?, ?)", [kind, key, now])

    def succeeded(self, store: Store, username: str) -> None:
        clear_sign_in_failures(store, username)

    def locked_names(self, store: Store, usernames: list[str]) -> set[str]:
        """Which of ``usernames`` are locked by their own failures now (for the steward's page;
        an address's lock is not a user's)."""
        if not store.table_exists("hub_login_failures") or not usernames:
            return set()
        cutoff = self.clock() - self.window_s
        counts = {r["key_sha256"]: int(r["n"]) for r in store.query(
            "SELECT key_sha256, count(*) AS n FROM hub_login_failures WHERE kind = 'user' AND "
            "failed_at > ? GROUP BY key_sha256", [cutoff]).to_pylist()}
        return {u for u in usernames if counts.get(secret_digest(u), 0) >= self.per_user}
