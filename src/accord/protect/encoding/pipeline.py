"""The protect step's linkage encoder: what `build_contribution(linkage_encoder=...)` (protect/job.py) calls.

Encoded columns get a ``bf_`` prefix in contributions and in the hub's ``linkage_encodings``
table, so that no hub column carries an identifier's name; every row also carries the schema
fingerprint and the keyed check value, so the hub can refuse a mix of schemas or secrets.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from accord.protect.encoding.bloom import Encoder
from accord.protect.encoding.schema import (
    EncodingSchema,
    check_safe,
    default_schema,
    unit_schema,
)
from accord.protect.encoding.secrets import LinkageSecret

ENCODED_PREFIX = "bf_"
FINGERPRINT_COLUMN = "schema_fingerprint"
CHECK_COLUMN = "check_value"


@dataclass(frozen=True)
class PipelineEncoder:
    """The seam function and the manifest's ``linkage`` entry."""

    encode: Callable[[pa.Table], pa.Table]
    manifest: dict[str, str]


def pipeline_encoder(secret: LinkageSecret, schema: EncodingSchema | None = None,
                     allow_unsafe: bool = False, unit: bool = False,
                     rng: np.random.Generator | None = None) -> PipelineEncoder:
    """``unit``: the encodings go to a linkage unit (`accord.protect.unit`), whose default
    schema leaves citizenship out and refuses a schema that encodes it. ``rng``: the source of
    the randomised response, for tests and benchmarks that must rebuild the same encodings;
    never given by a command (the flips must be unpredictable: fresh from the OS)."""
    sch = schema or (unit_schema() if unit else default_schema())
    unsafe = check_safe(sch, allow_unsafe, unit=unit)
    encoder = Encoder(sch, secret, rng)

    def encode(ids: pa.Table) -> pa.Table:
        enc = encoder.encode(ids)
        n = enc.num_rows
        cols: dict[str, pa.Array | pa.ChunkedArray] = {
            ENCODED_PREFIX + c: enc[c] for c in enc.column_names}
        cols[FINGERPRINT_COLUMN] = pa.array([encoder.fingerprint] * n, pa.string())
        cols[CHECK_COLUMN] = pa.array([encoder.check_value] * n, pa.string())
        return pa.table(cols)

    manifest = {"schema": sch.name, "schema_version": sch.version,
                "schema_fingerprint": encoder.fingerprint, "check_value": encoder.check_value}
    if unsafe:
        manifest["unsafe_encoding"] = "; ".join(unsafe)
    return PipelineEncoder(encode, manifest)
