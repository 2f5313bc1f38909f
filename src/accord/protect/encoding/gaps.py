"""What an identifiers file gives the encoder less of than it seems: blank values, and dates or
years that cannot be read (encoded as unknown). Counts only, never a value: `accord encode` says
them, so that weaker linkage evidence is not silent."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from accord.protect.encoding.schema import EncodingSchema, FieldKind
from accord.protect.encoding.tokens import parse_dates


def input_gaps(schema: EncodingSchema, table: pa.Table) -> dict[str, dict[str, int]]:
    """Per encoded field with any: how many records hold no value ("blank") and, for dates and
    years, how many hold one that is not read as a date ("unread": compared as unknown) or only
    as a year ("year only")."""
    out: dict[str, dict[str, int]] = {}
    for f in schema.fields:
        values = [_text(table[c]) for c in f.sources]
        blank = np.logical_and.reduce([v.to_numpy(zero_copy_only=False) == "" for v in values])
        gaps = {"blank": int(blank.sum())}
        if f.kind in (FieldKind.DATE, FieldKind.YEAR):
            y, m, _ = parse_dates(values[0])
            gaps["unread"] = int(((y == 0) & ~blank).sum())
            if f.kind is FieldKind.DATE:
                gaps["year only"] = int(((y > 0) & (m == 0)).sum())
        if any(gaps.values()):
            out[f.name] = {k: n for k, n in gaps.items() if n}
    return out


def _text(column: pa.ChunkedArray | pa.Array) -> pa.Array:
    """A column as trimmed text, missing values empty."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    return pc.utf8_trim_whitespace(pc.fill_null(column.cast(pa.string()), ""))


def repeated_ids(ids: pa.ChunkedArray | pa.Array) -> tuple[int, int]:
    """(records whose id another record has too, records without an id)."""
    text = _text(ids)
    blank = int(pc.sum(pc.equal(text, "")).as_py() or 0)
    counts = pc.value_counts(pc.drop_null(pc.if_else(pc.equal(text, ""), None, text)))
    repeated = sum(n for n in counts.field("counts").to_pylist() if n > 1)
    return repeated, blank
