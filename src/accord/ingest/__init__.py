"""Ingest: read a partner export, map it to the standard and validate every row.

`validate_export` yields the accepted rows chunk by chunk and accounts for every row; the
partner-side job that protects them and writes a contribution is `accord.protect.job`.
"""

from accord.ingest.pipeline import ExportAccount, validate_export, write_quarantine

__all__ = ["ExportAccount", "validate_export", "write_quarantine"]
