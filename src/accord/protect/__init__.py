"""Protect: replace identifiers by keyed pseudonyms (and, later, linkage encodings), then drop them.

Runs at the partner. What comes out of here may leave the partner; nothing else may.

The names below are loaded on first use: `accord encode` needs only `protect.encoding`, and
importing the pseudonym pipeline (the data standard, pydantic models) would cost it a third of
its start-up.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from accord.protect.contribution import Manifest, read_manifest, write_contribution
    from accord.protect.keys import PartnerKey, create_partner_key, load_partner_key
    from accord.protect.pseudonym import protect_records

_WHERE = {
    "Manifest": "contribution", "read_manifest": "contribution",
    "write_contribution": "contribution", "PartnerKey": "keys", "create_partner_key": "keys",
    "load_partner_key": "keys", "protect_records": "pseudonym",
}

__all__ = [
    "Manifest",
    "PartnerKey",
    "create_partner_key",
    "load_partner_key",
    "protect_records",
    "read_manifest",
    "write_contribution",
]


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(f"accord.protect.{_WHERE[name]}"), name)
    raise AttributeError(f"module 'accord.protect' has no attribute {name!r}")
