"""The CLI's one client of the shared hub's server (`--server URL --token-file T`).

Every command that talks to the server (`push`, `withdraw`, `request`, `download` and the analyst's
`stats|report|release tables|estimate|budget --server`) goes through `call`: the address, the token
file and the timeout are checked before anything is sent; a refusal becomes an AccordError with
the hub's own message and hint, keeping its exit code (2 a bad request, 3 a refused release); an
unreachable hub says so. Nothing here prints a record value: the hub's messages never hold one.
Standard-library HTTP: one request at a time needs no client library.
"""

from __future__ import annotations

import json
import math
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Annotated, Any

import typer

from accord.errors import AccordError, ReleaseRefused

ServerOption = Annotated[str | None, typer.Option(
    "--server", help="Run on the shared hub's server at this URL (with --token-file) instead of "
                     "a local --hub.")]
TokenFileOption = Annotated[Path | None, typer.Option(
    "--token-file", help="With --server: file holding your API token.")]

_TOKEN_HINT = "ask the hub steward for a token (`accord hub token create`)"


def check_server(server: str) -> str:
    """The hub's http(s) address, checked before anything is sent."""
    url = urllib.parse.urlsplit(server.strip())
    try:
        url.port  # noqa: B018 - raises ValueError for a port out of range
    except ValueError:
        url = url._replace(scheme="")
    if url.scheme not in ("http", "https") or not url.hostname:
        raise AccordError("--server must be the hub's http:// or https:// address",
                          hint="for example --server https://hub.example.org")
    return server.strip()


def read_token(token_file: Path | None) -> str:
    if token_file is None:
        raise AccordError("--server needs --token-file", hint=_TOKEN_HINT)
    try:
        token = token_file.read_text(encoding="utf-8").strip()
    except OSError:
        raise AccordError(f"cannot read the token file {token_file}", hint=_TOKEN_HINT) from None
    except UnicodeDecodeError:
        token = ""
    # A token is one line of printable ASCII; anything else is the wrong file (never sent, never shown).
    if not token or not token.isascii() or not token.isprintable() or " " in token:
        raise AccordError(f"{token_file} does not hold a hub token", hint=_TOKEN_HINT)
    return token


def call(server: str, token_file: Path | None, method: str, path: str, body: Any = None,
         timeout: float = 600.0, what: str = "the request", *, data: bytes | None = None,
         content_type: str = "application/json",
         retry_hint: str = "check the URL and your network, then retry") -> tuple[bytes, dict[str, str]]:
    """``method path`` on the hub with the token of ``token_file``: the answer's bytes and headers.
    ``body`` is sent as JSON, or ``data`` as it is (a contribution's zip)."""
    server = check_server(server)
    if not (math.isfinite(timeout) and 0 < timeout <= 86_400):
        raise AccordError("--timeout must be a number of seconds greater than 0 and at most 86400",
                          hint="for example --timeout 30")
    token = read_token(token_file)
    if data is None and body is not None:
        data = json.dumps(body).encode()
    headers = {"Authorization": f"Bearer {token}"}
    if data is not None:
        headers["Content-Type"] = content_type
    request = urllib.request.Request(server.rstrip("/") + path, data=data, method=method,
                                     headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.read(), {k.lower(): v for k, v in response.headers.items()}
    except urllib.error.HTTPError as err:
        try:
            detail = json.loads(err.read())
        except ValueError:
            detail = {}
        if not isinstance(detail, dict):
            detail = {}
        message = f"the hub refused {what} ({err.code}): {detail.get('error') or 'no reason given'}"
        kind = ReleaseRefused if detail.get("exit_code") == ReleaseRefused.exit_code else AccordError
        raise kind(message, hint=detail.get("hint")) from None
    except (urllib.error.URLError, TimeoutError, ConnectionError, ValueError) as err:
        reason = getattr(err, "reason", err)
        raise AccordError(f"cannot reach the hub at {server}: {reason}", hint=retry_hint) from None


def call_json(server: str, token_file: Path | None, method: str, path: str, body: Any = None,
              timeout: float = 600.0, what: str = "the request") -> Any:
    raw, _ = call(server, token_file, method, path, body, timeout, what)
    return json.loads(raw)
