"""Arrow schemas derived from the standard: the shape of a protected record everywhere downstream."""

from __future__ import annotations

import pyarrow as pa

from accord.standard.model import FieldType, Standard

# Columns every protected record carries besides the standard's published fields.
PROVENANCE_COLUMNS: tuple[tuple[str, pa.DataType], ...] = (
    ("batch_id", pa.string()),
    ("partner", pa.string()),
    ("record_key", pa.string()),
    ("person_pseudonym", pa.string()),
)

_ARROW_TYPES: dict[FieldType, pa.DataType] = {
    FieldType.STRING: pa.string(),
    FieldType.DATE: pa.date32(),
    FieldType.INTEGER: pa.int32(),
    FieldType.CODE: pa.string(),
    FieldType.CODES: pa.list_(pa.string()),
    FieldType.COUNTRY: pa.string(),
    FieldType.COUNTRIES: pa.list_(pa.string()),
}


def arrow_type(field_type: FieldType) -> pa.DataType:
    return _ARROW_TYPES[field_type]


def derived_arrow_type(standard: Standard, name: str) -> pa.DataType:
    d = standard.derived_field(name)
    return pa.string() if d.bands or d.rule else pa.int32()


def record_schema(standard: Standard) -> pa.Schema:
    """Schema of the `records` table: provenance, published fields, derived columns. No identifiers."""
    fields = [pa.field(n, t) for n, t in PROVENANCE_COLUMNS]
    fields += [pa.field(f.name, arrow_type(f.type)) for f in standard.published_fields]
    fields += [pa.field(d.name, derived_arrow_type(standard, d.name)) for d in standard.derived]
    return pa.schema(fields, metadata={"accord_standard": f"{standard.name}/{standard.version}"})
