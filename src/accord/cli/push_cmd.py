"""``accord push``: send a contribution to the shared hub's server (partner side)."""

from __future__ import annotations

import json
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from pathlib import Path
from typing import Annotated

import typer

from accord.cli.common import JsonOption, check_finite_positive, console, print_json, user_errors
from accord.errors import AccordError, ContributionError


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
        url = urllib.parse.urlsplit(server.strip())
        if url.scheme not in ("http", "https") or not url.hostname:
            raise AccordError("--server must be the hub's http:// or https:// address",
                              hint="for example --server https://hub.example.org")
        manifest = read_manifest(contribution)  # a local check first: same message as the hub's
        try:
            token = token_file.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError):
            token = ""
        # A token is one line of printable ASCII; anything else is the wrong file (never sent, never shown).
        if not token or not token.isascii() or not token.isprintable() or " " in token:
            raise AccordError(f"{token_file} does not hold a hub token",
                              hint="ask the hub steward for a token (`accord hub token create`)")
        with tempfile.TemporaryDirectory(prefix="accord-push-") as tmp:
            archive = Path(tmp) / "contribution.zip"
            with zipfile.ZipFile(archive, "w", zipfile.ZIP_STORED) as zf:
                for name in [MANIFEST, *manifest.files]:
                    if not (contribution / name).is_file():
                        raise ContributionError(f"{contribution} lacks {name}")
                    zf.write(contribution / name, arcname=name)
            request = urllib.request.Request(
                server.rstrip("/") + "/api/contributions", data=archive.read_bytes(), method="POST",
                headers={"Authorization": f"Bearer {token}", "Content-Type": "application/zip"})
            try:
                with urllib.request.urlopen(request, timeout=timeout) as response:
                    body = json.loads(response.read())
            except urllib.error.HTTPError as err:
                try:
                    detail = json.loads(err.read())
                except ValueError:
                    detail = {}
                message = detail.get("error") or f"the hub answered {err.code}"
                raise AccordError(f"the hub refused the contribution ({err.code}): {message}",
                                  hint=detail.get("hint")) from None
            except (urllib.error.URLError, TimeoutError, ConnectionError) as err:
                reason = getattr(err, "reason", err)
                raise AccordError(f"cannot reach the hub at {server}: {reason}",
                                  hint="check the URL and your network; a retry is safe (pushes are "
                                       "idempotent)") from None
    if as_json:
        print_json(body)
    elif body.get("duplicate"):
        console.print(f"{contribution}: already in the hub (batch {body['batch_id'][:12]}), nothing added")
    else:
        console.print(f"{contribution}: added {body['added']:,} records from {body['partner']} "
                      f"(batch {body['batch_id'][:12]})")
