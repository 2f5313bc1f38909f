"""The analyst's commands against a shared hub's server (`--server URL --token-file T`).

The server runs the same library calls as the local command and answers with the published
figures; the command then prints and writes exactly what it prints and writes locally. The
server's refusals keep their exit codes (2 a bad request, 3 a refused release).
"""

from __future__ import annotations

import json
import urllib.error
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


def read_token(token_file: Path | None) -> str:
    if token_file is None:
        raise AccordError("--server needs --token-file",
                          hint="ask the hub steward for a token (`accord hub token create`)")
    try:
        token = token_file.read_text(encoding="utf-8").strip()
    except OSError:
        raise AccordError(f"cannot read the token file {token_file}",
                          hint="ask the hub steward for a token (`accord hub token create`)") from None
    if not token:
        raise AccordError(f"the token file {token_file} is empty")
    return token


def call(server: str, token_file: Path | None, method: str, path: str,
         body: dict[str, Any] | None = None, timeout: float = 600.0) -> tuple[bytes, dict[str, str]]:
    """One request to the hub's server; an error answer becomes an AccordError with its exit code."""
    token = read_token(token_file)
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        server.rstrip("/") + path, data=data, method=method,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
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
        message = f"the hub refused ({err.code}): {detail.get('error') or 'no reason given'}"
        if detail.get("exit_code") == ReleaseRefused.exit_code:
            raise ReleaseRefused(message, hint=detail.get("hint")) from None
        raise AccordError(message, hint=detail.get("hint")) from None
    except (urllib.error.URLError, TimeoutError, ConnectionError) as err:
        reason = getattr(err, "reason", err)
        raise AccordError(f"cannot reach the hub at {server}: {reason}",
                          hint="check the URL and your network, then retry") from None


def call_json(server: str, token_file: Path | None, method: str, path: str,
              body: dict[str, Any] | None = None) -> Any:
    raw, _ = call(server, token_file, method, path, body)
    return json.loads(raw)
