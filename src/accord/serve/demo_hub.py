"""Demo accounts for `accord demo --serve`: one user per role and a partner organisation per demo
partner, each with a password and an API token made now and shown once.

Passwords are random (never a fixed demo password that would work on every demo hub); only their
argon2 hashes and the tokens' SHA-256 are kept in the hub, as for real accounts. Token files are
written 0600 beside the hub so the printed commands work as they stand.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from accord.serve.accounts import Role, add_org, add_user, create_token, ensure_accounts
from accord.store import Store

HUB_ORG = "demo-hub"  # the collaborative's own organisation: steward, analyst, auditor
ACTOR = "accord-demo"


@dataclass(frozen=True)
class DemoAccount:
    username: str
    org: str
    role: Role
    password: str | None  # None: the user existed already (its password is not known here)
    token: str
    token_file: Path


def _write_secret(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text + "\n")


def demo_accounts(store: Store, token_dir: Path) -> list[DemoAccount]:
    """Make (or top up) the demo's accounts in ``store``: a submitter per partner with records in
    the hub, and a steward, an analyst and an auditor; a fresh token for each."""
    ensure_accounts(store)
    partners = sorted({b["partner"] for b in store.batches()})
    orgs = {r["org"] for r in store.query("SELECT org FROM hub_orgs").to_pylist()}
    users = {r["username"] for r in store.query("SELECT username FROM hub_users").to_pylist()}
    wanted = [(p, p, Role.SUBMITTER) for p in partners] + [
        (f"{role.value}", HUB_ORG, role) for role in (Role.STEWARD, Role.ANALYST, Role.AUDITOR)]
    accounts = []
    for username, org, role in wanted:
        if org not in orgs:
            add_org(store, org, ACTOR)
            orgs.add(org)
        password = None
        if username not in users:
            password = secrets.token_urlsafe(12)
            add_user(store, username, org, role, password, ACTOR, one_time=True)  # changed at first sign-in
        _, token = create_token(store, username, ACTOR)
        path = token_dir / f"{username}.token"
        _write_secret(path, token)
        accounts.append(DemoAccount(username, org, role, password, token, path))
    return accounts
