"""``accord push``: send a contribution to the shared hub's server (partner side)."""

from __future__ import annotations

import json
import tempfile
import zipfile
from pathlib import Path
from typing import Annotated

import typer

from accord.cli.common import JsonOption, check_finite_positive, console, print_json, user_errors
from accord.cli.remote import call, check_server, read_token
from accord.errors import ContributionError


def push(
    contribution: Annotated[Path, typer.Argument(help="Contribution directory from `accord ingest`.")],
    server: Annotated[str, typer.Option("--server", help="The hub's URL, e.g. https://hub.example.org.")],
    token_file: Annotated[Path, typer.Option("--token-file", help="File holding your API token.")],
    timeout: Annotated[float, typer.Option("--timeout", help="Seconds to wait for the hub.")] = 600.0,
    as_json: JsonOption = False,
) -> None:
    """Upload a contribution; the hub verifies it as `accord hub add` does and loads it whole."""
    from accord.protect.contribution import MANIFEST, read_manifest

    with user_errors():
        check_finite_positive(timeout, "--timeout")
        check_server(server)
        manifest = read_manifest(contribution)  # a local check first: same message as the hub's
        read_token(token_file)  # the wrong file is refused before the zip is built
        with tempfile.TemporaryDirectory(prefix="accord-push-") as tmp:
            archive = Path(tmp) / "contribution.zip"
            with zipfile.ZipFile(archive, "w", zipfile.ZIP_STORED) as zf:
                for name in [MANIFEST, *manifest.files]:
                    if not (contribution / name).is_file():
                        raise ContributionError(f"{contribution} lacks {name}")
                    zf.write(contribution / name, arcname=name)
            raw, _ = call(server, token_file, "POST", "/api/contributions", timeout=timeout,
                          what="the contribution", data=archive.read_bytes(),
                          content_type="application/zip",
                          retry_hint="check the URL and your network; a retry is safe (pushes are "
                                     "idempotent)")
        body = json.loads(raw)
    if as_json:
        print_json(body)
    elif body.get("duplicate"):
        console.print(f"{contribution}: already in the hub (batch {body['batch_id'][:12]}), nothing added")
    else:
        console.print(f"{contribution}: added {body['added']:,} records from {body['partner']} "
                      f"(batch {body['batch_id'][:12]})")
