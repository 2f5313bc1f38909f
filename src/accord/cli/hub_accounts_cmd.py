"""``accord hub org|user|token``: who may use the shared hub (`accord serve`), and how."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TextIO, TypeVar

import typer

from accord.cli.common import (
    DEFAULT_HUB,
    HubOption,
    JsonOption,
    check_file_name,
    console,
    print_json,
    require_hub,
    user_errors,
)
from accord.errors import AccordError

if TYPE_CHECKING:
    from accord.serve.accounts import Role
    from accord.store import Store

T = TypeVar("T")

org_app = typer.Typer(help="Organisations (partners) of the shared hub.", no_args_is_help=True)
user_app = typer.Typer(help="Users of the shared hub and their roles.", no_args_is_help=True)
token_app = typer.Typer(help="API tokens (for `accord push` and the API).", no_args_is_help=True)

ActorOption = Annotated[str, typer.Option("--actor", help="Who does this (recorded in the audit log).")]


@org_app.command("add")
def org_add(org: Annotated[str, typer.Argument(help="Organisation name; a partner's must be the "
                                                    "partner name of its contributions.")],
            hub: HubOption = DEFAULT_HUB, actor: ActorOption = "hub-steward") -> None:
    """Add an organisation."""
    from accord.serve.accounts import add_org
    from accord.store import open_store

    with user_errors(), open_store(hub) as store:
        add_org(store, org, actor)
    console.print(f"organisation {org} added")


@user_app.command("add")
def user_add(
    username: Annotated[str, typer.Argument(help="User name.")],
    org: Annotated[str, typer.Option("--org", help="The user's organisation.")],
    role: Annotated[str, typer.Option("--role", help="submitter, analyst, steward or auditor.")],
    password_file: Annotated[Path | None, typer.Option(
        "--password-file", help="File holding the password (else asked for at the terminal, not echoed).")] = None,
    one_time: Annotated[bool, typer.Option(
        "--one-time", help="The user must choose a new password at the first web sign-in.")] = False,
    hub: HubOption = DEFAULT_HUB, actor: ActorOption = "hub-steward",
) -> None:
    """Add a user with one role in one organisation (password stored as an argon2 hash)."""
    from accord.serve.accounts import add_user
    from accord.store import open_store

    with user_errors():
        chosen = _role(role)
        if password_file is not None:
            try:
                password = password_file.read_text(encoding="utf-8").strip()
            except (OSError, UnicodeDecodeError):
                raise AccordError(f"cannot read the password file {password_file}") from None
        else:
            password = _ask_password()
        with open_store(hub) as store:
            add_user(store, username, org, chosen, password, actor, one_time=one_time)
    console.print(f"user {username} ({chosen.value}, {org}) added")


def _role(given: str) -> Role:
    from accord.serve.accounts import Role

    try:
        return Role(given)
    except ValueError:
        raise AccordError(f"unknown role {given}",
                          hint="use submitter, analyst, steward or auditor") from None


@user_app.command("role")
def user_role(
    username: Annotated[str, typer.Argument(help="Whose role.")],
    role: Annotated[str, typer.Option("--role", help="submitter, analyst, steward or auditor.")],
    hub: HubOption = DEFAULT_HUB, actor: ActorOption = "hub-steward",
) -> None:
    """Give a user another role, from their next request on (web sessions and API tokens alike);
    not one's own, not a closed account, never the hub's only steward."""
    from accord.serve.accounts import set_role

    with user_errors():
        chosen = _role(role)
        old = _on_existing_hub(hub, lambda store: set_role(store, username, chosen, actor))
    console.print(f"user {username}'s role is now {chosen.value} (was {old.value})")


def _ask_password() -> str:
    """Ask for the password at the terminal; without one (a script, a pipe, CI) say what to pass
    instead (the prompt would otherwise read end-of-input and print only "Aborted.", exit 1)."""
    import sys

    if not sys.stdin.isatty():
        raise AccordError("no password given and standard input is not a terminal to ask for one",
                          hint="pass --password-file FILE (with --one-time the user must replace it "
                               "at the first web sign-in)")
    return str(typer.prompt("password", hide_input=True, confirmation_prompt=True))


def _on_existing_hub(hub: Path, work: Callable[[Store], T]) -> T:
    """``work`` on the hub, which must exist: a typo must not create an empty hub."""
    from accord.store import open_store

    require_hub(hub)
    with open_store(hub) as store:
        return work(store)


@contextmanager
def _private_file(out: Path) -> Iterator[TextIO]:
    """A new file only its owner can read, created *before* the secret is made: a path that exists
    or cannot be written is refused before the hub changes, and the file is removed again if
    making the secret fails (so no secret is stored at the hub that nobody was given)."""
    import os

    check_file_name(out)
    if out.exists():
        raise AccordError(f"{out} exists; refusing to overwrite it", hint="choose a new file")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as exc:
        raise AccordError(f"cannot create {out}: {exc.strerror}", hint="choose a writable path with --out") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            yield f
    except BaseException:
        out.unlink(missing_ok=True)
        raise


def _secret_to_file(hub: Path, out: Path, make: Callable[[Store], str]) -> None:
    """The secret ``make`` creates at the hub, written to a new 0600 file made first (see
    _private_file): a one-time password or a token, shown nowhere else."""
    from accord.store import open_store

    with user_errors():
        require_hub(hub)
        with _private_file(out) as f, open_store(hub) as store:
            f.write(make(store) + "\n")


@user_app.command("reset-password")
def user_reset_password(
    username: Annotated[str, typer.Argument(help="Whose password.")],
    out: Annotated[Path, typer.Option("--out", help="File to write the one-time password to (created "
                                                    "0600; it is shown nowhere else).")],
    hub: HubOption = DEFAULT_HUB, actor: ActorOption = "hub-steward",
) -> None:
    """Give a user a new one-time password (to change at the next web sign-in); their web sessions
    end, their API tokens keep working."""
    from accord.serve.accounts import reset_password

    _secret_to_file(hub, out, lambda store: reset_password(store, username, actor))
    console.print(f"one-time password for {username} written to {out}")


@user_app.command("disable")
def user_disable(username: Annotated[str, typer.Argument(help="Whose account.")],
                 hub: HubOption = DEFAULT_HUB, actor: ActorOption = "hub-steward") -> None:
    """Close an account: no sign-in, its API tokens revoked, its web sessions ended."""
    from accord.serve.accounts import disable_user

    with user_errors():
        _on_existing_hub(hub, lambda store: disable_user(store, username, actor))
    console.print(f"user {username} disabled")


@user_app.command("reopen")
def user_reopen(
    username: Annotated[str, typer.Argument(help="Whose closed account.")],
    out: Annotated[Path, typer.Option("--out", help="File to write the one-time password to (created "
                                                    "0600; it is shown nowhere else).")],
    hub: HubOption = DEFAULT_HUB, actor: ActorOption = "hub-steward",
) -> None:
    """Open a closed account again with a one-time password (to change at the first web sign-in);
    the tokens revoked when it closed stay revoked."""
    from accord.serve.accounts import reopen_user

    _secret_to_file(hub, out, lambda store: reopen_user(store, username, actor))
    console.print(f"user {username} reopened; one-time password written to {out}")


@user_app.command("unlock")
def user_unlock(username: Annotated[str, typer.Argument(help="Whose sign-in lockout to lift.")],
                hub: HubOption = DEFAULT_HUB, actor: ActorOption = "hub-steward") -> None:
    """Lift a web sign-in lockout before it runs out, once you know the failures were the user's
    own: the failed sign-ins counted against the name are forgotten (not those of an address, and
    the password is unchanged: reset it if it may have leaked)."""
    from accord.serve.accounts import unlock_user

    with user_errors():
        cleared = _on_existing_hub(hub, lambda store: unlock_user(store, username, actor))
    console.print(f"user {username} unlocked ({cleared} failed sign-in{'s' if cleared != 1 else ''} "
                  "forgotten)")


@user_app.command("list")
def user_list(hub: HubOption = DEFAULT_HUB, as_json: JsonOption = False) -> None:
    """List users, their organisations, roles and state (never a password)."""
    from accord.serve.accounts import list_users

    with user_errors():
        rows = _on_existing_hub(hub, list_users)
    if as_json:
        print_json(rows)
        return
    for r in rows:
        state = (f"disabled {r['disabled_at']}" if r["disabled_at"] else
                 "must change password" if r["must_change_password"] else "active")
        console.print(f"{r['username']}  {r['org']}  {r['role']}  {state}")


@token_app.command("create")
def token_create(
    username: Annotated[str, typer.Argument(help="Whose token.")],
    out: Annotated[Path, typer.Option("--out", help="File to write the token to (created 0600; "
                                                    "the token is shown nowhere else).")],
    hub: HubOption = DEFAULT_HUB, actor: ActorOption = "hub-steward",
) -> None:
    """Create an API token; the hub keeps only its hash."""
    from accord.serve.accounts import create_token

    made: list[str] = []

    def make(store: Store) -> str:
        token_id, token = create_token(store, username, actor)
        made.append(token_id)
        return token

    _secret_to_file(hub, out, make)
    console.print(f"token {made[0]} for {username} written to {out}")


@token_app.command("revoke")
def token_revoke(token_id: Annotated[str, typer.Argument(help="Token id (see `accord hub token list`).")],
                 hub: HubOption = DEFAULT_HUB, actor: ActorOption = "hub-steward") -> None:
    """Revoke a token: it stops working at once."""
    from accord.serve.accounts import revoke_token

    with user_errors():
        _on_existing_hub(hub, lambda store: revoke_token(store, token_id, actor))
    console.print(f"token {token_id} revoked")


@token_app.command("list")
def token_list(hub: HubOption = DEFAULT_HUB, as_json: JsonOption = False) -> None:
    """List tokens (ids, owners, roles, revocation), never the tokens themselves."""
    from accord.serve.accounts import list_tokens

    with user_errors():
        rows = _on_existing_hub(hub, list_tokens)
    if as_json:
        print_json(rows)
        return
    for r in rows:
        state = f"revoked {r['revoked_at']}" if r["revoked_at"] else "live"
        console.print(f"{r['token_id']}  {r['username']}  {r['org']}  {r['role']}  {state}")
