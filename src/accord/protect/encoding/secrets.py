"""The collaborative's shared linkage secret.

Every partner of a collaborative holds the same secret (exchanged out of band); the hub never
does. Without it nobody can compute the encoding of a guessed name, so a dictionary attack on the
encodings needs a partner's help. The file format mirrors the partner pseudonym key file.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets as _secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from accord.errors import KeyMissingError
from accord.protect.secret_file import read_secret_file, refuse_directory, replace_flag, write_secret_file

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


def new_linkage_secret(path: Path, *, force: bool = False, option: str | None = None) -> LinkageSecret:
    """Create a linkage secret file (owner-only). What `accord keys init --linkage` calls, with
    ``option`` the command-line option that named the path (the hints name it and --force)."""
    refuse_directory(path, "linkage.secret", option)
    if path.exists() and not force:
        raise KeyMissingError(
            f"a linkage secret already exists at {path}",
            hint="keep using it (a new secret makes old encodings unlinkable); "
                 f"pass {replace_flag(option)} to replace it",
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
    write_secret_file(path, doc, "# Accord linkage secret, shared by all partners of one collaborative.\n"
                                 "# Give it to partners out of band; never to the hub.\n")
    return key


def load_linkage_secret(path: Path) -> LinkageSecret:
    secret, created = read_secret_file(
        path, SECRET_KIND, missing=f"no linkage secret at {path}", what="linkage secret",
        short="linkage secret",
        hint="create one with `accord keys init --linkage` and share it with every partner")
    return LinkageSecret(secret=secret, created=created)
