"""``accord serve``: run the shared hub's HTTP API (uvicorn)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from accord.cli.common import DEFAULT_HUB, hub_location, require_hub, user_errors
from accord.errors import AccordError


def serve(
    hub: Annotated[Path, typer.Option(
        "--hub", "--db", help="Hub store: a DuckDB file, or the shared hub's postgresql:// URL. "
        "Defaults to $ACCORD_HUB or ./accord-hub.duckdb.", envvar="ACCORD_HUB", parser=hub_location,
    )] = DEFAULT_HUB,
    bind: Annotated[str, typer.Option("--bind", help="HOST:PORT to listen on.")] = "127.0.0.1:8000",
    max_upload_mb: Annotated[int, typer.Option("--max-upload-mb", min=1,
                                               help="Largest contribution upload accepted.")] = 2048,
    ssl_certfile: Annotated[Path | None, typer.Option("--ssl-certfile", help="TLS certificate "
                                                      "(else put a TLS reverse proxy in front).")] = None,
    ssl_keyfile: Annotated[Path | None, typer.Option("--ssl-keyfile", help="TLS private key.")] = None,
    secure_cookies: Annotated[bool | None, typer.Option(
        "--secure-cookies/--no-secure-cookies", help="Web UI: mark the session cookie Secure (default: "
        "when the request came over https, directly or through a trusted proxy).")] = None,
    session_minutes: Annotated[int, typer.Option("--session-minutes", min=1,
                                                 help="Web UI: a sign-in lasts this long.")] = 480,
) -> None:
    """Serve the hub over HTTP: partners push contributions, roles read what they may (docs/hub.md)."""
    with user_errors():
        host, _, port = bind.rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise AccordError(f"--bind {bind} is not HOST:PORT",
                              hint="for example 127.0.0.1:8000 (a port from 1 to 65535)")
        import uvicorn

        from accord.serve.app import ServerConfig, create_app
        from accord.serve.web import WebSettings
        from accord.store import open_store

        # Open the hub once before listening: a wrong --hub (a text file, an unreachable server)
        # is refused here with its reason, not on every request after the server looks healthy.
        if hub.exists():  # a new hub may be started empty; an existing path must be a hub
            require_hub(hub)
        with open_store(hub):
            pass
        web = WebSettings(session_minutes=session_minutes, secure_cookies=secure_cookies)
        app = create_app(ServerConfig(hub, max_upload_mb * 1024 * 1024, web=web))
        uvicorn.run(app, host=host, port=int(port), log_level="info", server_header=False,
                    ssl_certfile=str(ssl_certfile) if ssl_certfile else None,
                    ssl_keyfile=str(ssl_keyfile) if ssl_keyfile else None)
