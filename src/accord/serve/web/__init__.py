"""The hub's web UI: server-rendered pages per role (Jinja2, one CSS file, no JavaScript).

Every page reads the hub through the same plain functions as the CLI (the store, the accounts,
the ledger); nothing here calls the JSON API over HTTP. See ``accord.serve.app`` for who may see
which page, and docs/hub.md ("Web UI").
"""

from accord.serve.web.routes import ui_router
from accord.serve.web.sessions import WebSettings

__all__ = ["WebSettings", "ui_router"]
