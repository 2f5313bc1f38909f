"""Organisations, users, roles and API tokens of the shared hub, kept in the hub store itself.

Passwords are stored as argon2id hashes (argon2-cffi's defaults). API tokens are 256-bit random
secrets shown once; the store keeps only their SHA-256 (a fast hash is right for a secret with
256 bits of entropy: nothing to brute-force), and a token names its row by a public id so the check
is one look-up and a constant-time comparison. Revocation is a timestamp, never a deletion, so the
audit log can still say whose token did what. SQL is portable (DuckDB and PostgreSQL).

An account's state is kept beside it (``hub_user_state``, a row only for an account that has one, so
older hubs need no migration): a *one-time* password (a demo account's, or one a steward set with a
reset) must be changed at the first sign-in to the web UI before any other page opens; a
*disabled* account can no longer sign in, its API tokens are revoked and its web sessions end.
A password change or reset ends every web session of the account; API tokens are not touched.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from enum import StrEnum

from accord.errors import AccordError
from accord.store import Store
from accord.store.base import now_iso

ACCOUNT_TABLES_SQL = (
    """CREATE TABLE IF NOT EXISTS hub_orgs (
        org VARCHAR PRIMARY KEY, created_at VARCHAR NOT NULL, created_by VARCHAR NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS hub_users (
        username VARCHAR PRIMARY KEY, org VARCHAR NOT NULL, role VARCHAR NOT NULL,
        password_hash VARCHAR NOT NULL, created_at VARCHAR NOT NULL, created_by VARCHAR NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS hub_tokens (
        token_id VARCHAR PRIMARY KEY, username VARCHAR NOT NULL, token_sha256 VARCHAR NOT NULL,
        created_at VARCHAR NOT NULL, revoked_at VARCHAR)""",
    """CREATE TABLE IF NOT EXISTS hub_user_state (
        username VARCHAR PRIMARY KEY, must_change_password BOOLEAN NOT NULL, disabled_at VARCHAR,
        updated_at VARCHAR NOT NULL, updated_by VARCHAR NOT NULL)""",
)
MIN_PASSWORD = 12
WRONG_CURRENT = "the current password is not right"
TOKEN_PREFIX = "accord"
_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,62}$")


class Role(StrEnum):
    SUBMITTER = "submitter"  # a partner: pushes its contributions, sees its own batches
    ANALYST = "analyst"  # runs and reads releases
    STEWARD = "steward"  # runs the hub
    AUDITOR = "auditor"  # reads the audit log


class AccountError(AccordError):
    """An account operation cannot be done (unknown organisation, duplicate user, bad name...)."""


@dataclass(frozen=True)
class User:
    username: str
    org: str
    role: Role


def ensure_accounts(store: Store) -> None:
    for sql in ACCOUNT_TABLES_SQL:
        store.execute(sql)
    store.ensure_row_order("hub_tokens")


def _check_name(kind: str, name: str) -> None:
    if not _NAME.match(name):
        raise AccountError(f"invalid {kind} name",
                           hint="use 1-63 lower-case letters, digits, '-', '_' or '.', starting "
                                "with a letter or digit")


def add_org(store: Store, org: str, actor: str) -> None:
    _check_name("organisation", org)
    with store.transaction():
        ensure_accounts(store)
        if store.query("SELECT org FROM hub_orgs WHERE org = ?", [org]).num_rows:
            raise AccountError(f"organisation {org} already exists")
        store.execute("INSERT INTO hub_orgs VALUES (?, ?, ?)", [org, now_iso(), actor])
        store.audit(actor, "hub.org_add", {"org": org})


def _hasher():  # type: ignore[no-untyped-def]
    from argon2 import PasswordHasher

    return PasswordHasher()


def _check_password_text(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise AccountError("the password is too short", hint=f"use at least {MIN_PASSWORD} characters")
    if len(password) > 1024:
        raise AccountError("the password is too long", hint="use at most 1024 characters")


def one_time_password() -> str:
    """A random password for a steward to hand over (16 characters, 96 bits); to be changed."""
    return secrets.token_urlsafe(12)


def add_user(store: Store, username: str, org: str, role: Role, password: str, actor: str,
             one_time: bool = False) -> None:
    """Add a user; ``one_time``: the password must be changed at the first web sign-in."""
    _check_name("user", username)
    _check_password_text(password)
    digest = _hasher().hash(password)
    with store.transaction():
        ensure_accounts(store)
        if not store.query("SELECT org FROM hub_orgs WHERE org = ?", [org]).num_rows:
            raise AccountError(f"no organisation {org}", hint="add it first with `accord hub org add`")
        if store.query("SELECT username FROM hub_users WHERE username = ?", [username]).num_rows:
            raise AccountError(f"user {username} already exists")
        store.execute("INSERT INTO hub_users (username, org, role, password_hash, created_at, "
                      "created_by) VALUES (?, ?, ?, ?, ?, ?)",
                      [username, org, role.value, digest, now_iso(), actor])
        if one_time:
            _set_state(store, username, actor, must_change=True)
        store.audit(actor, "hub.user_add", {"user": username, "org": org, "role": role.value,
                                            "one_time_password": one_time})


def check_password(store: Store, username: str, password: str) -> User | None:
    """The user if the password is theirs; None otherwise (same work whether the user exists)."""
    from argon2.exceptions import VerificationError

    ensure_accounts(store)
    rows = store.query("SELECT u.username, u.org, u.role, u.password_hash, st.disabled_at "
                       "FROM hub_users u LEFT JOIN hub_user_state st ON st.username = u.username "
                       "WHERE u.username = ?", [username]).to_pylist()
    hasher = _hasher()
    stored = rows[0]["password_hash"] if rows else hasher.hash(secrets.token_hex(16))
    try:
        hasher.verify(stored, password)
    except VerificationError:
        return None
    if not rows or rows[0]["disabled_at"] is not None:
        return None
    return User(rows[0]["username"], rows[0]["org"], Role(rows[0]["role"]))


# ---- account state: one-time passwords, disabled accounts ---------------------------------------
def _state_row(store: Store, username: str) -> dict[str, object] | None:
    rows = store.query("SELECT must_change_password, disabled_at FROM hub_user_state WHERE username = ?",
                       [username]).to_pylist()
    return rows[0] if rows else None


def _set_state(store: Store, username: str, actor: str, *, must_change: bool | None = None,
               disabled: bool | None = None) -> None:
    """Change one account's state inside the caller's transaction (delete + insert: portable)."""
    row = _state_row(store, username) or {"must_change_password": False, "disabled_at": None}
    change = bool(row["must_change_password"]) if must_change is None else must_change
    off = row["disabled_at"] if disabled is None else (row["disabled_at"] or now_iso() if disabled else None)
    store.execute("DELETE FROM hub_user_state WHERE username = ?", [username])
    store.execute("INSERT INTO hub_user_state (username, must_change_password, disabled_at, updated_at, "
                  "updated_by) VALUES (?, ?, ?, ?, ?)", [username, change, off, now_iso(), actor])


def _end_web_sessions(store: Store, username: str) -> int:
    """End every web session of ``username`` (the web UI's table; accord.serve.web.sessions)."""
    if not store.table_exists("hub_web_sessions"):
        return 0
    n = int(store.scalar("SELECT count(*) FROM hub_web_sessions WHERE username = ?", [username]) or 0)
    store.execute("DELETE FROM hub_web_sessions WHERE username = ?", [username])
    return n


def clear_sign_in_failures(store: Store, username: str) -> int:
    """Forget the failed sign-ins counted against ``username`` (the web UI's limit,
    accord.serve.web.sessions, keyed by the name's SHA-256); returns how many. The failures
    counted against a client address stay: one address guessing many accounts stays limited."""
    if not store.table_exists("hub_login_failures"):
        return 0
    key = [secret_digest(username)]
    n = int(store.scalar("SELECT count(*) FROM hub_login_failures WHERE kind = 'user' AND "
                         "key_sha256 = ?", key) or 0)
    store.execute("DELETE FROM hub_login_failures WHERE kind = 'user' AND key_sha256 = ?", key)
    return n


def unlock_user(store: Store, username: str, actor: str) -> int:
    """Lift a sign-in lockout before it runs out (the user proved who they are to the steward by
    another channel): the failed sign-ins counted against the name are forgotten; returns how
    many. Audited as ``hub.user_unlock``; the password is unchanged (reset it if it leaked)."""
    with store.transaction():
        ensure_accounts(store)
        if _existing(store, username)["disabled_at"] is not None:
            raise AccountError(f"user {username} is disabled",
                               hint="reopen it with `accord hub user reopen` (a new one-time password)")
        cleared = clear_sign_in_failures(store, username)
        store.audit(actor, "hub.user_unlock", {"user": username, "failures_cleared": cleared})
    return cleared


def _existing(store: Store, username: str) -> dict[str, object]:
    rows = store.query("SELECT u.username, u.org, u.role, st.disabled_at FROM hub_users u "
                       "LEFT JOIN hub_user_state st ON st.username = u.username WHERE u.username = ?",
                       [username]).to_pylist()
    if not rows:
        raise AccountError(f"no user {username}", hint="the steward's accounts page lists them")
    return rows[0]


def must_change_password(store: Store, username: str) -> bool:
    ensure_accounts(store)
    row = _state_row(store, username)
    return bool(row and row["must_change_password"])


def reset_password(store: Store, username: str, actor: str) -> str:
    """Give ``username`` a new one-time password (returned, shown once): it must be changed at the
    next web sign-in. The account's web sessions end; its API tokens keep working."""
    password = one_time_password()
    digest = _hasher().hash(password)
    with store.transaction():
        ensure_accounts(store)
        if _existing(store, username)["disabled_at"] is not None:
            raise AccountError(f"user {username} is disabled",
                               hint="reopen it with `accord hub user reopen` (a new one-time password)")
        store.execute("UPDATE hub_users SET password_hash = ? WHERE username = ?", [digest, username])
        _set_state(store, username, actor, must_change=True)
        ended = _end_web_sessions(store, username)
        # The new password is the steward's: a lockout from guesses at the old one ends with it.
        cleared = clear_sign_in_failures(store, username)
        store.audit(actor, "hub.password_reset", {"user": username, "sessions_ended": ended,
                                                   "failures_cleared": cleared})
    return password


def change_password(store: Store, username: str, old: str, new: str) -> User:
    """The user's own change: the old password must be right, the new one long enough and not the
    same. Every web session of the account ends (the caller opens a new one)."""
    user = check_password(store, username, old)
    if user is None:
        raise AccountError(WRONG_CURRENT)
    _check_password_text(new)
    if new == old:
        raise AccountError("the new password is the same as the old one", hint="choose a new one")
    digest = _hasher().hash(new)
    with store.transaction():
        ensure_accounts(store)
        store.execute("UPDATE hub_users SET password_hash = ? WHERE username = ?", [digest, username])
        _set_state(store, username, username, must_change=False)
        ended = _end_web_sessions(store, username)
        store.audit(username, "hub.password_change", {"user": username, "sessions_ended": ended})
    return user


def disable_user(store: Store, username: str, actor: str) -> None:
    """Close an account: no sign-in, its live API tokens revoked, its web sessions ended. The row
    stays (the audit log names it). One's own account cannot be disabled (a hub must keep a steward)."""
    if username == actor:
        raise AccountError("you cannot disable your own account",
                           hint="another steward can, if it must be closed")
    with store.transaction():
        ensure_accounts(store)
        row = _existing(store, username)
        if row["disabled_at"] is not None:
            raise AccountError(f"user {username} is disabled already")
        if Role(str(row["role"])) == Role.STEWARD:
            _keep_a_steward(store, username)
        _set_state(store, username, actor, disabled=True)
        revoked = int(store.scalar("SELECT count(*) FROM hub_tokens WHERE username = ? AND revoked_at IS NULL",
                                   [username]) or 0)
        store.execute("UPDATE hub_tokens SET revoked_at = ? WHERE username = ? AND revoked_at IS NULL",
                      [now_iso(), username])
        ended = _end_web_sessions(store, username)
        store.audit(actor, "hub.user_disable", {"user": username, "tokens_revoked": revoked,
                                                "sessions_ended": ended})


def reopen_user(store: Store, username: str, actor: str) -> str:
    """Open a closed account again, with a new one-time password (returned, shown once) to be
    changed at the first web sign-in: the old password does not come back, nor do the tokens that
    were revoked when it closed (the steward makes new ones). Audited as ``hub.user_reopen``."""
    password = one_time_password()
    digest = _hasher().hash(password)
    with store.transaction():
        ensure_accounts(store)
        if _existing(store, username)["disabled_at"] is None:
            raise AccountError(f"user {username} is not closed", hint="only a closed account can be reopened")
        store.execute("UPDATE hub_users SET password_hash = ? WHERE username = ?", [digest, username])
        _set_state(store, username, actor, must_change=True, disabled=False)
        cleared = clear_sign_in_failures(store, username)
        store.audit(actor, "hub.user_reopen", {"user": username, "failures_cleared": cleared})
    return password


def set_role(store: Store, username: str, role: Role, actor: str) -> Role:
    """Give ``username`` another role (returns the old one). It applies at their next request:
    the role is read from the hub at each one, for web sessions and API tokens alike. Not one's
    own (another steward changes it), not a closed account, and never the hub's last steward
    (a hub must keep one). Audited as ``hub.user_role``."""
    if username == actor:
        raise AccountError("you cannot change your own role", hint="another steward can")
    with store.transaction():
        ensure_accounts(store)
        row = _existing(store, username)
        if row["disabled_at"] is not None:
            raise AccountError(f"user {username} is disabled",
                               hint="reopen it first with `accord hub user reopen`")
        old = Role(str(row["role"]))
        if old == role:
            raise AccountError(f"user {username} is a {role.value} already")
        if old == Role.STEWARD:
            _keep_a_steward(store, username)
        store.execute("UPDATE hub_users SET role = ? WHERE username = ?", [role.value, username])
        store.audit(actor, "hub.user_role", {"user": username, "from": old.value, "to": role.value})
    return old


def _keep_a_steward(store: Store, username: str) -> None:
    """Refuse to take the steward role from ``username`` (by a role change or by closing the
    account) when no other open account holds it: a hub without one cannot approve, reopen or
    unlock anything, and only the server's command line could mend it."""
    others = int(store.scalar(
        "SELECT count(*) FROM hub_users u LEFT JOIN hub_user_state st ON st.username = "
        "u.username WHERE u.role = ? AND u.username <> ? AND st.disabled_at IS NULL",
        [Role.STEWARD.value, username]) or 0)
    if not others:
        raise AccountError(f"user {username} is the hub's only open steward account",
                           hint="give another person the steward role first")


def list_users(store: Store) -> list[dict[str, object]]:
    """Every account with its state (never a password hash)."""
    ensure_accounts(store)
    rows = store.query("SELECT u.username, u.org, u.role, u.created_at, st.must_change_password, "
                       "st.disabled_at FROM hub_users u LEFT JOIN hub_user_state st "
                       "ON st.username = u.username ORDER BY u.org, u.username").to_pylist()
    for r in rows:
        r["must_change_password"] = bool(r["must_change_password"])
    return rows


def secret_digest(secret: str) -> str:
    """How the hub stores a token, a session cookie or a sign-in name it counts failures
    against: a SHA-256 digest, never the value (these are long random secrets, or names
    looked up by equality, so a slow password hash buys nothing)."""
    return hashlib.sha256(secret.encode()).hexdigest()


def create_token(store: Store, username: str, actor: str) -> tuple[str, str]:
    """A new API token for ``username``: (token id, the token). The token is shown only here."""
    token_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    with store.transaction():
        ensure_accounts(store)
        if not store.query("SELECT username FROM hub_users WHERE username = ?", [username]).num_rows:
            raise AccountError(f"no user {username}", hint="add it first with `accord hub user add`")
        if _existing(store, username)["disabled_at"] is not None:
            raise AccountError(f"user {username} is disabled", hint="a disabled account gets no token")
        store.execute("INSERT INTO hub_tokens (token_id, username, token_sha256, created_at) "
                      "VALUES (?, ?, ?, ?)",
                      [token_id, username, secret_digest(secret), now_iso()])
        store.audit(actor, "hub.token_create", {"token_id": token_id, "user": username})
    return token_id, f"{TOKEN_PREFIX}_{token_id}_{secret}"


def revoke_token(store: Store, token_id: str, actor: str) -> None:
    with store.transaction():
        ensure_accounts(store)
        rows = store.query("SELECT revoked_at FROM hub_tokens WHERE token_id = ?", [token_id]).to_pylist()
        if not rows:
            raise AccountError(f"no token {token_id}", hint="`accord hub token list` shows the token ids")
        if rows[0]["revoked_at"] is None:
            store.execute("UPDATE hub_tokens SET revoked_at = ? WHERE token_id = ?", [now_iso(), token_id])
        store.audit(actor, "hub.token_revoke", {"token_id": token_id})


def list_tokens(store: Store) -> list[dict[str, object]]:
    ensure_accounts(store)
    return store.query("SELECT t.token_id, t.username, u.org, u.role, t.created_at, t.revoked_at "
                       "FROM hub_tokens t JOIN hub_users u ON u.username = t.username "
                       "ORDER BY " + store.order_sql("hub_tokens", "t.created_at", "t.token_id")
                       ).to_pylist()


def user_of_token(store: Store, token: str) -> User | None:
    """The user a live token belongs to; None for a malformed, unknown or revoked token."""
    parts = token.split("_", 2)
    if len(parts) != 3 or parts[0] != TOKEN_PREFIX or not parts[1] or not parts[2]:
        return None
    if not store.table_exists("hub_tokens"):
        return None
    rows = store.query("SELECT t.token_sha256, t.revoked_at, u.username, u.org, u.role FROM hub_tokens t "
                       "JOIN hub_users u ON u.username = t.username WHERE t.token_id = ?",
                       [parts[1]]).to_pylist()
    # A disabled account's tokens were revoked when it was disabled (disable_user): no extra look-up.
    if not rows:
        return None
    row = rows[0]
    if not hmac.compare_digest(row["token_sha256"], secret_digest(parts[2])) or row["revoked_at"] is not None:
        return None
    return User(row["username"], row["org"], Role(row["role"]))
