"""Ingest: read a partner export, map it to the standard, validate every row, and protect it.

`ingest_export` is the partner-side job: export + mapping + key -> contribution + quarantine.
"""

from accord.ingest.pipeline import IngestResult, ingest_export

__all__ = ["IngestResult", "ingest_export"]
