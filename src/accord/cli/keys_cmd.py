"""``accord keys``: create the secrets a partner needs."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from accord.cli.common import check_file_name, console, plain, user_errors
from accord.protect.keys import create_partner_key, key_file_path

DEFAULT_LINKAGE_FILE = Path("accord-keys") / "linkage.secret"

app = typer.Typer(help="Create the secrets a partner needs (pseudonym key, shared linkage secret).",
                  no_args_is_help=True)


def _option(key_file: Path | None) -> str:
    """What named the path, for the hints: the option, or also the variable behind the key's default."""
    return "--key-file" if key_file is not None or not os.environ.get("ACCORD_KEY_FILE") \
        else "--key-file (or $ACCORD_KEY_FILE)"


@app.command("init")
def init(
    key_file: Annotated[Path | None, typer.Option(
        "--key-file", help="Where to write the key (default: $ACCORD_KEY_FILE or accord-keys/partner.key).")] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing key (changes every pseudonym).")] = False,
    linkage: Annotated[bool, typer.Option(
        "--linkage", help="Create the collaborative's shared linkage secret instead (one partner makes it and "
        "passes it to the others out of band; the hub never holds it).")] = False,
) -> None:
    """Create the partner's pseudonym key, or with --linkage the shared linkage secret."""
    if linkage:
        from accord.protect.encoding.secrets import new_linkage_secret

        path = key_file or DEFAULT_LINKAGE_FILE
        with user_errors():
            secret = new_linkage_secret(check_file_name(path, "--key-file"), force=force, option="--key-file")
        console.print(f"created linkage secret [bold]{plain(path)}[/] (id {plain(secret.secret_id)}, "
                      "owner-only permissions)", markup=True)
        console.print("Give a copy to every partner of the collaborative by a channel the hub does not see; "
                      "ingest with --linkage-secret so that the hub can link people across partners.")
        return
    path = key_file_path(key_file)
    with user_errors():
        key = create_partner_key(check_file_name(path, _option(key_file)), force=force, option=_option(key_file))
    console.print(f"created pseudonym key [bold]{plain(path)}[/] (key id {plain(key.key_id)}, "
                  "owner-only permissions)", markup=True)
    console.print("Back it up somewhere safe: without it, re-submissions cannot be matched to "
                  "earlier ones. Never send it to the hub.")
