"""Linkage encodings, made at the partner during protect (issue 3).

Normalisation, keyed Bloom-filter encodings per field, hardening, the declarative encoding
schema with its fingerprint, and the keyed check value. Matching lives in ``accord.link``.
"""

from accord.protect.encoding.bloom import Encoder, make_linkage_encoder
from accord.protect.encoding.files import (
    EncodingFileError,
    EncodingInfo,
    check_compatible,
    read_encodings,
    write_encodings,
)
from accord.protect.encoding.gaps import input_gaps, repeated_ids
from accord.protect.encoding.normalise import DateQuality, normalise_name, parse_date
from accord.protect.encoding.schema import (
    EncodingSchema,
    EncodingSchemaError,
    FieldKind,
    FieldSpec,
    Hardening,
    UnsafeEncodingError,
    check_safe,
    default_schema,
    load_schema,
    scale_note,
    schema_from_fields,
)
from accord.protect.encoding.secrets import LinkageSecret, load_linkage_secret, new_linkage_secret

__all__ = [
    "DateQuality",
    "Encoder",
    "EncodingFileError",
    "EncodingInfo",
    "EncodingSchema",
    "EncodingSchemaError",
    "FieldKind",
    "FieldSpec",
    "Hardening",
    "LinkageSecret",
    "UnsafeEncodingError",
    "check_compatible",
    "check_safe",
    "default_schema",
    "input_gaps",
    "load_linkage_secret",
    "load_schema",
    "make_linkage_encoder",
    "new_linkage_secret",
    "normalise_name",
    "parse_date",
    "read_encodings",
    "repeated_ids",
    "scale_note",
    "schema_from_fields",
    "write_encodings",
]
