"""The Accord data standard: fields, code lists, roles and the crosswalk to HTCDS and CTDC."""

from accord.standard.model import (
    Code,
    DerivedField,
    Field,
    FieldRole,
    FieldType,
    Standard,
    load_standard,
)

__all__ = [
    "Code",
    "DerivedField",
    "Field",
    "FieldRole",
    "FieldType",
    "Standard",
    "load_standard",
]
