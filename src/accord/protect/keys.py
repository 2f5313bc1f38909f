"""Partner secrets. A key file never leaves the partner; its value never appears in logs or outputs."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from accord.errors import KeyMissingError
from accord.protect.secret_file import read_secret_file, refuse_directory, replace_flag, write_secret_file

KEY_KIND = "accord-pseudonym-key"
KEY_BYTES = 32
DEFAULT_KEY_FILE = Path("accord-keys") / "partner.key"


@dataclass(frozen=True)
class PartnerKey:
    """The partner's pseudonym secret. ``repr`` never shows the secret."""

    secret: bytes = field(repr=False)
    created: str

    @property
    def key_id(self) -> str:
        # A public fingerprint: lets the hub notice a rotated key without learning anything of it.
        return hmac.new(self.secret, b"accord key id", hashlib.sha256).hexdigest()[:16]


def key_file_path(path: Path | None) -> Path:
    if path is not None:
        return path
    env = os.environ.get("ACCORD_KEY_FILE")
    return Path(env) if env else DEFAULT_KEY_FILE


def create_partner_key(path: Path, *, force: bool = False, option: str | None = None) -> PartnerKey:
    """A new key at ``path``; ``option`` is the command-line option that named it (the hints
    name it and --force; a library caller's name its arguments)."""
    refuse_directory(path, "partner.key", option)
    if path.exists() and not force:
        raise KeyMissingError(
            f"a key already exists at {path}",
            hint=f"keep using it (a new key changes every pseudonym); pass {replace_flag(option)} only to "
                 "rotate it",
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    key = PartnerKey(secret=secrets.token_bytes(KEY_BYTES), created=datetime.now(UTC).isoformat())
    doc = {
        "kind": KEY_KIND,
        "version": 1,
        "created": key.created,
        "key_id": key.key_id,
        "secret": base64.b64encode(key.secret).decode("ascii"),
    }
    write_secret_file(path, doc, "# Accord partner pseudonym key. Secret: keep it at the partner, never send it.\n")
    return key


def load_partner_key(path: Path | None = None) -> PartnerKey:
    p = key_file_path(path)
    secret, created = read_secret_file(
        p, KEY_KIND, missing=f"no pseudonym key at {p}: Accord will not protect data without one",
        what="pseudonym key", short="key",
        hint="create one with `accord keys init` (or point --key-file / ACCORD_KEY_FILE at it)")
    return PartnerKey(secret=secret, created=created)
