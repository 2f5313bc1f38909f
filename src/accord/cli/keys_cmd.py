"""``accord keys``: create the secrets a partner needs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from accord.cli.common import console, user_errors
from accord.protect.keys import create_partner_key, key_file_path

app = typer.Typer(help="Create the secrets a partner needs (pseudonym key).", no_args_is_help=True)


@app.command("init")
def init(
    key_file: Annotated[Path | None, typer.Option(
        "--key-file", help="Where to write the key (default: $ACCORD_KEY_FILE or accord-keys/partner.key).")] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing key (changes every pseudonym).")] = False,
) -> None:
    """Create the partner's pseudonym key (kept at the partner, never sent)."""
    path = key_file_path(key_file)
    with user_errors():
        key = create_partner_key(path, force=force)
    console.print(f"created pseudonym key [bold]{path}[/] (key id {key.key_id}, owner-only permissions)")
    console.print("Back it up somewhere safe: without it, re-submissions cannot be matched to "
                  "earlier ones. Never send it to the hub.")
