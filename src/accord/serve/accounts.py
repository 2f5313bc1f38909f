"""Organisations, users, roles and API tokens of the shared hub, kept in the hub store itself.

Passwords are stored as argon2id hashes (argon2-cffi's defaults). API tokens are 256-bit random
secrets shown once; the store keeps only their SHA-256 (a fast hash is right for a secret with
256 bits of entropy: nothing to brute-force), and a token names its row by a public id so the check
is one look-up and a constant-time comparison. Revocation is a timestamp, never a deletion, so the
audit log can still say whose token did what. SQL is portable (DuckDB and PostgreSQL).
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
)
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


def add_user(store: Store, username: str, org: str, role: Role, password: str, actor: str) -> None:
    _check_name("user", username)
    if len(password) < 12:
        raise AccountError("the password is too short", hint="use at least 12 characters")
    digest = _hasher().hash(password)
    with store.transaction():
        ensure_accounts(store)
        if not store.query("SELECT org FROM hub_orgs WHERE org = ?", [org]).num_rows:
            raise AccountError(f"no organisation {org}", hint="add it first with `accord hub org add`")
        if store.query("SELECT username FROM hub_users WHERE username = ?", [username]).num_rows:
            raise AccountError(f"user {username} already exists")
        store.execute("INSERT INTO hub_users VALUES (?, ?, ?, ?, ?, ?)",
                      [username, org, role.value, digest, now_iso(), actor])
        store.audit(actor, "hub.user_add", {"user": username, "org": org, "role": role.value})


def check_password(store: Store, username: str, password: str) -> User | None:
    """The user if the password is theirs; None otherwise (same work whether the user exists)."""
    from argon2.exceptions import VerificationError

    ensure_accounts(store)
    rows = store.query("SELECT username, org, role, password_hash FROM hub_users WHERE username = ?",
                       [username]).to_pylist()
    hasher = _hasher()
    stored = rows[0]["password_hash"] if rows else hasher.hash(secrets.token_hex(16))
    try:
        hasher.verify(stored, password)
    except VerificationError:
        return None
    return User(rows[0]["username"], rows[0]["org"], Role(rows[0]["role"])) if rows else None


def _sha256(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_token(store: Store, username: str, actor: str) -> tuple[str, str]:
    """A new API token for ``username``: (token id, the token). The token is shown only here."""
    token_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    with store.transaction():
        ensure_accounts(store)
        if not store.query("SELECT username FROM hub_users WHERE username = ?", [username]).num_rows:
            raise AccountError(f"no user {username}", hint="add it first with `accord hub user add`")
        store.execute("INSERT INTO hub_tokens VALUES (?, ?, ?, ?, NULL)",
                      [token_id, username, _sha256(secret), now_iso()])
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
                       "ORDER BY t.created_at, t.token_id").to_pylist()


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
    if not rows:
        return None
    row = rows[0]
    if not hmac.compare_digest(row["token_sha256"], _sha256(parts[2])) or row["revoked_at"] is not None:
        return None
    return User(row["username"], row["org"], Role(row["role"]))
