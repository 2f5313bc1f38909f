"""Encoding files: Parquet with one row per record, the record id, and the schema, its
fingerprint and the keyed check value in the file's metadata (no secret, no identifier)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

from accord.errors import AccordError
from accord.protect.encoding.schema import EncodingSchema, schema_from_dict

ENCODING_FORMAT = "accord-linkage-encoding"
META_KEY = b"accord.linkage"


class EncodingFileError(AccordError):
    """A file is not an Accord encoding file, or encodings cannot be compared."""


@dataclass(frozen=True)
class EncodingInfo:
    schema: EncodingSchema
    fingerprint: str
    check_value: str

    def to_json(self) -> str:
        return json.dumps({
            "format": ENCODING_FORMAT,
            "format_version": 1,
            "schema": self.schema.model_dump(mode="json"),
            "fingerprint": self.fingerprint,
            "check_value": self.check_value,
            # Derived from the schema, recorded so that a reader of the file sees it at once.
            "unsafe_encoding": self.schema.unsafe_reasons(),
        }, sort_keys=True)

    @classmethod
    def from_json(cls, text: str | bytes, source: str) -> EncodingInfo:
        try:
            doc: dict[str, Any] = json.loads(text)
            if doc.get("format") != ENCODING_FORMAT:
                raise ValueError
            schema = schema_from_dict(doc["schema"], source)
            info = cls(schema, str(doc["fingerprint"]), str(doc["check_value"]))
        except (ValueError, KeyError, TypeError):
            raise EncodingFileError(f"{source} has no valid Accord encoding metadata",
                                    hint="make it with `accord encode`") from None
        if schema.fingerprint() != info.fingerprint:
            raise EncodingFileError(f"{source}: schema and fingerprint disagree (edited file?)",
                                    hint="re-encode the identifiers with `accord encode`")
        return info


def with_info(table: pa.Table, info: EncodingInfo) -> pa.Table:
    meta = dict(table.schema.metadata or {})
    meta[META_KEY] = info.to_json().encode("utf-8")
    return table.replace_schema_metadata(meta)


def write_encodings(path: Path, table: pa.Table, info: EncodingInfo) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    import pyarrow.parquet as pq  # here: it loads pyarrow.fs and ssl, a quarter of start-up

    pq.write_table(with_info(table, info), path, compression="zstd")


def read_info(table: pa.Table, source: str) -> EncodingInfo:
    meta = table.schema.metadata or {}
    if META_KEY not in meta:
        raise EncodingFileError(f"{source} is not an Accord encoding file",
                                hint="make it with `accord encode`")
    return EncodingInfo.from_json(meta[META_KEY], source)


def read_encodings(path: Path) -> tuple[pa.Table, EncodingInfo]:
    if not path.exists():
        raise EncodingFileError(f"no encoding file at {path}", hint="check the path")
    import pyarrow.parquet as pq  # here, as in write_encodings

    try:
        table = pq.read_table(path)
    except (pa.ArrowInvalid, OSError):
        raise EncodingFileError(f"{path} is not a Parquet file",
                                hint="make it with `accord encode`") from None
    return table, read_info(table, str(path))


def check_compatible(a: EncodingInfo, b: EncodingInfo) -> None:
    """Refuse to compare encodings made with different schemas or secrets."""
    if a.fingerprint != b.fingerprint:
        raise EncodingFileError(
            "the two encodings were made with different encoding schemas",
            hint="every partner must encode with the same schema file (compare fingerprints)")
    if a.check_value != b.check_value:
        raise EncodingFileError(
            "the two encodings were made with different linkage secrets",
            hint="every partner must encode with the collaborative's one linkage secret")
