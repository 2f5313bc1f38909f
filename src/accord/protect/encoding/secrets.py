"""The collaborative's shared linkage secret.

Every partner of a collaborative holds the same secret (exchanged out of band); the hub never
does. Without it nobody can compute the encoding of a guessed name, so a dictionary attack on the
encodings needs a partner's help. The file format mirrors the partner pseudonym key file.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets as _secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from accord.errors import KeyMissingError

SECRET_KIND = "accord-linkage-secret"
SECRET_BYTES = 32


@dataclass(frozen=True)
class LinkageSecret:
    """The shared secret. ``repr`` never shows it."""

    secret: bytes = field(repr=False)
    created: str = ""

    @property
    def secret_id(self) -> str:
        # Public: lets partners check they hold the same secret without revealing it.
        return hmac.new(self.secret, b"accord linkage secret id", hashlib.sha256).hexdigest()[:16]

    def domain_key(self, domain: str) -> bytes:
        """A separate key per hash domain, so filters of different fields are unrelated."""
        msg = b"accord-linkage/domain/" + domain.encode("utf-8")
        return hmac.new(self.secret, msg, hashlib.sha256).digest()

    def check_value(self, fingerprint: str) -> str:
        """Keyed check value of (secret, schema): equal iff both were the same (w.h.p.)."""
        msg = b"accord-linkage/check/" + fingerprint.encode("ascii")
        return hmac.new(self.secret, msg, hashlib.sha256).hexdigest()[:32]


def new_linkage_secret(path: Path, *, force: bool = False) -> LinkageSecret:
    """Create a linkage secret file (owner-only). What `accord keys init --linkage` calls."""
    import yaml  # here, not at the top: `accord encode --help` starts without it

    if path.exists() and not force:
        raise KeyMissingError(
            f"a linkage secret already exists at {path}",
            hint="keep using it (a new secret makes old encodings unlinkable); "
                 "pass --force to replace it",
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    key = LinkageSecret(secret=_secrets.token_bytes(SECRET_BYTES),
                        created=datetime.now(UTC).isoformat())
    doc = {
        "kind": SECRET_KIND,
        "version": 1,
        "created": key.created,
        "secret_id": key.secret_id,
        "secret": base64.b64encode(key.secret).decode("ascii"),
    }
    header = ("# Accord linkage secret, shared by all partners of one collaborative.\n"
              "# Give it to partners out of band; never to the hub.\n")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(header + yaml.safe_dump(doc, sort_keys=False))
    return key


def load_linkage_secret(path: Path) -> LinkageSecret:
    import yaml

    make = "create one with `accord keys init --linkage` and share it with every partner"
    if not path.exists():
        raise KeyMissingError(f"no linkage secret at {path}", hint=make)
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        if not isinstance(doc, dict) or doc.get("kind") != SECRET_KIND:
            raise ValueError
        secret = base64.b64decode(str(doc["secret"]), validate=True)
    except (ValueError, KeyError, yaml.YAMLError, UnicodeDecodeError):
        raise KeyMissingError(f"{path} is not an Accord linkage secret file", hint=make) from None
    if len(secret) < 16:
        raise KeyMissingError(f"the linkage secret in {path} is too short", hint=make)
    return LinkageSecret(secret=secret, created=str(doc.get("created", "")))
