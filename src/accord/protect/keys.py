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

import yaml

from accord.errors import KeyMissingError

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


def create_partner_key(path: Path, *, force: bool = False) -> PartnerKey:
    if path.exists() and not force:
        raise KeyMissingError(
            f"a key already exists at {path}",
            hint="keep using it (a new key changes every pseudonym); pass --force only to rotate it",
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
    header = "# Accord partner pseudonym key. Secret: keep it at the partner, never send it.\n"
    # Create with owner-only permissions from the start, not chmod after writing.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(header + yaml.safe_dump(doc, sort_keys=False))
    return key


def load_partner_key(path: Path | None = None) -> PartnerKey:
    p = key_file_path(path)
    make = "create one with `accord keys init` (or point --key-file / ACCORD_KEY_FILE at it)"
    if not p.exists():
        raise KeyMissingError(f"no pseudonym key at {p}: Accord will not protect data without one",
                              hint=make)
    try:
        doc = yaml.safe_load(p.read_text(encoding="utf-8"))
        if not isinstance(doc, dict) or doc.get("kind") != KEY_KIND:
            raise ValueError
        secret = base64.b64decode(str(doc["secret"]), validate=True)
    except (ValueError, KeyError, yaml.YAMLError, UnicodeDecodeError):
        raise KeyMissingError(f"{p} is not an Accord pseudonym key file", hint=make) from None
    if len(secret) < 16:
        raise KeyMissingError(f"the key in {p} is too short", hint=make)
    return PartnerKey(secret=secret, created=str(doc.get("created", "")))
