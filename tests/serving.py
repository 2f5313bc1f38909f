"""`accord serve`'s app on 127.0.0.1 in a thread (uvicorn), for the tests of the server and its web UI."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import uvicorn
from fastapi import FastAPI

from accord.protect.keys import PartnerKey
from accord.serve.accounts import Role, add_org, add_user, create_token, revoke_token
from accord.serve.app import ServerConfig, create_app
from accord.store import open_store

PASSWORD = "correct horse battery staple"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serving(config: ServerConfig | FastAPI) -> Iterator[str]:
    """The server's base URL while it runs; it stops (and its thread ends) on leaving."""
    app = config if isinstance(config, FastAPI) else create_app(config)
    port = free_port()
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not srv.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        srv.should_exit = True
        thread.join(timeout=15)


def accounts_with_tokens(hub: str | Path, folder: Path, orgs: Iterable[str],
                         users: Mapping[str, tuple[str, Role]]) -> dict[str, Path]:
    """The organisations, one user each of ``users`` (name: (org, role)) with a token file under
    ``folder``, and a revoked token of the steward (``"revoked"``), made through the account
    functions in one session."""
    tokens: dict[str, Path] = {}
    folder.mkdir(parents=True, exist_ok=True)
    with open_store(hub) as store:
        for org in orgs:
            add_org(store, org, "test")
        for user, (org, role) in users.items():
            add_user(store, user, org, role, PASSWORD, "test")
            tokens[user] = folder / f"{user}.token"
            tokens[user].write_text(create_token(store, user, "test")[1])
        token_id, token = create_token(store, "steward", "test")
        revoke_token(store, token_id, "test")
    tokens["revoked"] = folder / "revoked.token"
    tokens["revoked"].write_text(token)
    return tokens


@contextmanager
def accord_serve(*args: str) -> Iterator[str]:
    """`accord serve ARGS --bind 127.0.0.1:PORT` as its own process, once it answers /api/health;
    stopped with SIGTERM on leaving (and waited for)."""
    import signal
    import subprocess
    import sys
    import urllib.request

    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "accord.cli.main", "serve", *args, "--bind", f"127.0.0.1:{port}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            try:
                with urllib.request.urlopen(url + "/api/health", timeout=10):
                    break
            except OSError:
                assert time.monotonic() < deadline, "accord serve did not answer"
                time.sleep(0.2)
        yield url
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)


def partner_hub_with_tokens(hub: str | Path, tmp_path: Path, export: tuple[Path, Path], key: PartnerKey,
                            orgs: Iterable[str], users: Mapping[str, tuple[str, Role]]) -> dict[str, Path]:
    """A hub holding partner ngo-b's records of ``export`` (its CSV and mapping, protected with
    ``key``), then `accounts_with_tokens` for ``orgs`` and ``users``."""
    from accord.protect.job import build_contribution
    from accord.store import add_contribution

    contribution = tmp_path / "contribution"
    build_contribution(export[0], export[1], "ngo-b", contribution, key)
    with open_store(hub) as store:
        add_contribution(store, contribution)
    return accounts_with_tokens(hub, tmp_path / "tokens", orgs, users)
