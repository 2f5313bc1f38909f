"""Where a hub lives: a DuckDB file path, or a PostgreSQL URL (light: no database driver imported)."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

URL_SCHEMES = ("postgresql", "postgres")
_URL = re.compile(rf"^({'|'.join(URL_SCHEMES)}):/+(.*)$", re.DOTALL)


def _text(location: Path | str) -> str:
    # a HubLocation (cli.common) keeps the URL exactly as typed in `.url`
    return str(getattr(location, "url", location))


def is_server_url(location: Path | str) -> bool:
    """True for a PostgreSQL URL (also after `pathlib.Path` collapsed its double slash)."""
    return _URL.match(_text(location)) is not None


def normalise_url(location: Path | str) -> str:
    """The URL as typed, or rebuilt from a Path (which turns `postgresql://h/db` into `postgresql:/h/db`)."""
    text = _text(location)
    m = _URL.match(text)
    if m and not text.startswith(f"{m.group(1)}://"):
        return f"{m.group(1)}://{m.group(2)}"
    return text


def redact(url: str) -> str:
    """The URL without its password, for messages."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return "(unparsable URL)"
    if password is None:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.replace(f":{password}@", ":***@")))
