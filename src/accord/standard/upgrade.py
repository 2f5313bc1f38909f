"""Upgrade protected records of an earlier standard version to the current record layout.

The only upgrade so far is 0.1 -> 0.2: every field 0.2 added is empty, except consent, which 0.1
never asked for and which becomes "not_recorded" (never "yes": research releases, which need
"yes", leave such records out). See docs/standard.md, "Versions".
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from accord.standard.arrow import record_schema
from accord.standard.model import Standard

CONSENT_FIELDS = ("consent_statistics", "consent_linkage", "consent_research")
NOT_RECORDED = "not_recorded"


def upgrade_records(records: pa.Table, standard: Standard) -> pa.Table:
    """Records of an earlier compatible version, in ``standard``'s record schema."""
    schema = record_schema(standard)
    n = records.num_rows
    columns: list[pa.Array | pa.ChunkedArray] = []
    for f in schema:
        if f.name in records.column_names:
            columns.append(records[f.name].cast(f.type))
        elif f.name in CONSENT_FIELDS:
            columns.append(pa.array([NOT_RECORDED] * n, f.type))
        elif f.name == "registration_date_quality" and "registration_date" in records.column_names:
            # 0.1 accepted full registration dates only.
            known = pc.is_valid(records["registration_date"])
            columns.append(pc.if_else(known, pa.scalar("exact"), pa.scalar(None, pa.string())))
        else:
            columns.append(pa.nulls(n, f.type))
    return pa.Table.from_arrays(columns, schema=schema)
