"""Calling the shared hub's JSON API from the CLI (standard library HTTP, as `accord push` does).

An HTTP refusal becomes an AccordError with the hub's own message and hint (exit 2; 3 when the hub
refused a release); an unreachable hub says so. Nothing here prints a record value: the hub's
messages never hold one.
"""

from __future__ import annotations

import json
import math
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from accord.errors import AccordError, ReleaseRefused


def read_token(token_file: Path) -> str:
    try:
        token = token_file.read_text(encoding="utf-8").strip()
    except OSError:
        raise AccordError(f"cannot read the token file {token_file}",
                          hint="ask the hub steward for a token (`accord hub token create`)") from None
    except UnicodeDecodeError:
        token = ""
    # A token is one line of printable ASCII; anything else is the wrong file (never sent, never shown).
    if not token or not token.isascii() or not token.isprintable() or " " in token:
        raise AccordError(f"{token_file} does not hold a hub token",
                          hint="ask the hub steward for a token (`accord hub token create`)")
    return token


def check_server(server: str) -> str:
    """The hub's http(s) address, checked before anything is sent (as `accord push` checks it)."""
    url = urllib.parse.urlsplit(server.strip())
    try:
        url.port  # noqa: B018 - raises ValueError for a port out of range
    except ValueError:
        url = url._replace(scheme="")
    if url.scheme not in ("http", "https") or not url.hostname:
        raise AccordError("--server must be the hub's http:// or https:// address",
                          hint="for example --server https://hub.example.org")
    return server.strip()


def call(server: str, token_file: Path, method: str, path: str, body: Any = None,
         timeout: float = 600.0, what: str = "the request") -> tuple[bytes, dict[str, str]]:
    """``method path`` on the hub with the token of ``token_file``: the answer's bytes and headers."""
    server = check_server(server)
    if not (math.isfinite(timeout) and 0 < timeout <= 86_400):
        raise AccordError("--timeout must be a number of seconds greater than 0 and at most 86400",
                          hint="for example --timeout 30")
    token = read_token(token_file)
    data = json.dumps(body).encode() if body is not None else None
    headers = {"Authorization": f"Bearer {token}"}
    if data is not None:
        headers["Content-Type"] = "application/json"
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
        message = detail.get("error") or f"the hub answered {err.code}"
        kind = ReleaseRefused if err.code == 409 and "release was refused" in message else AccordError
        raise kind(f"the hub refused {what} ({err.code}): {message}", hint=detail.get("hint")) from None
    except (urllib.error.URLError, TimeoutError, ConnectionError, ValueError) as err:
        reason = getattr(err, "reason", err)
        raise AccordError(f"cannot reach the hub at {server}: {reason}",
                          hint="check the URL and your network") from None


def call_json(server: str, token_file: Path, method: str, path: str, body: Any = None,
              timeout: float = 600.0, what: str = "the request") -> Any:
    raw, _ = call(server, token_file, method, path, body, timeout, what)
    return json.loads(raw)
