"""The file format of Accord's secrets (a partner's pseudonym key, the collaborative's linkage
secret): a comment, then YAML with ``kind``, ``version``, ``created``, an id and the secret in
base64, written owner-only (0600) from the start (not chmod after writing). One reader and one
writer for both, so both refuse a missing, foreign or short file in the same way.

``yaml`` is imported in the functions: `accord encode --help` starts without it.
"""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Any

from accord.errors import KeyMissingError
from accord.input_files import refuse_special_file

MIN_SECRET_BYTES = 16


def refuse_directory(path: Path, example: str, option: str | None = None) -> None:
    """A directory where a secret file is to be made: said as such (it was 'a key already
    exists at DIR', and with --force an OSError), before the exists check. ``option`` is the
    command-line option that gave the path; a library caller (None) is told of its argument."""
    if path.is_dir():
        what = f"give {option} the file to create" if option else "pass the path of the file to create"
        raise KeyMissingError(f"{path} is a directory, not a secret file", hint=f"{what}, e.g. {path / example}")


def replace_flag(option: str | None) -> str:
    """How the caller asks to replace an existing secret: `--force` on the command line."""
    return "--force" if option else "force=True"


def write_secret_file(path: Path, doc: dict[str, Any], header: str) -> None:
    import yaml

    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(header + yaml.safe_dump(doc, sort_keys=False))


def read_secret_file(path: Path, kind: str, *, missing: str, what: str, short: str,
                     hint: str) -> tuple[bytes, str]:
    """The secret and its creation time from a file of ``kind``. Refused (KeyMissingError, with
    ``hint``): no file (``missing``), not a ``what`` file, a secret shorter than 16 bytes
    (``short``). The secret is never in a message."""
    import yaml

    if not path.exists():
        raise KeyMissingError(missing, hint=hint)
    refuse_special_file(path, what)
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        if not isinstance(doc, dict) or doc.get("kind") != kind:
            raise ValueError
        secret = base64.b64decode(str(doc["secret"]), validate=True)
    except (ValueError, KeyError, yaml.YAMLError, UnicodeDecodeError):
        raise KeyMissingError(f"{path} is not an Accord {what} file", hint=hint) from None
    if len(secret) < MIN_SECRET_BYTES:
        raise KeyMissingError(f"the {short} in {path} is too short", hint=hint)
    return secret, str(doc.get("created", ""))
