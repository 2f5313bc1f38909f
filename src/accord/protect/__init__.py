"""Protect: replace identifiers by keyed pseudonyms (and, later, linkage encodings), then drop them.

Runs at the partner. What comes out of here may leave the partner; nothing else may.
"""

from accord.protect.contribution import Manifest, read_manifest, write_contribution
from accord.protect.keys import PartnerKey, create_partner_key, load_partner_key
from accord.protect.pseudonym import protect_records

__all__ = [
    "Manifest",
    "PartnerKey",
    "create_partner_key",
    "load_partner_key",
    "protect_records",
    "read_manifest",
    "write_contribution",
]
