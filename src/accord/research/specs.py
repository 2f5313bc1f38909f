"""How the standard tables are published with suppression: categories, labels, notes.

Which tables exist is declared once in ``accord.standard.tables`` (shared with the DP release).

Category lists come from the standard (code lists, derived bands), so that the SQL that counts
them is a fixed template over column names, never over values.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

import pycountry

from accord.standard import Standard
from accord.standard.tables import DimKind, DimSpec, TableSpec, standard_tables

MISSING = "_missing"
OTHER = "_other"
MISSING_LABEL = "Not recorded"
GROUP_SEP = "+"  # a merged category's code joins its members' codes
OTHER_LABEL = "Other"

_MAJORITY_LABELS = {"minor": "Minor (under 18)", "adult": "Adult (18 and over)"}


@dataclass(frozen=True)
class Dim:
    """A dimension as published: codes in display order and their labels."""

    name: str
    title: str
    codes: tuple[str, ...]
    labels: tuple[str, ...]

    def to_dict(self) -> dict[str, object]:
        return {"name": self.name, "title": self.title, "codes": list(self.codes),
                "labels": list(self.labels)}


def default_specs(standard: Standard) -> tuple[TableSpec, ...]:
    """The standard's tables (``accord.standard.tables``) that are published with suppression,
    with the notes that say how this method counts them."""
    return tuple(replace(t, note=" ".join(n for n in (t.note, *_method_notes(t)) if n))
                 for t in standard_tables(standard, "suppressed"))


def _method_notes(spec: TableSpec) -> tuple[str, ...]:
    notes = []
    if (m := spec.multi) is not None:
        notes.append(f"A person with several {m.item}s counts once under each {m.item}, so the "
                     f"totals over {m.item}s exceed the number of people; people with no "
                     f"{m.item} recorded are not counted.")
    if any(d.kind == DimKind.PRIMARY_COUNTRY for d in spec.dims):
        notes.append('The most frequent countries are shown; all others are grouped as "Other".')
    return tuple(notes)


def band_label(column: str, code: str) -> str:
    if column == "majority_status":
        return _MAJORITY_LABELS.get(code, code)
    return code.replace("--", "\u2013")  # CTDC writes "9--17"; show an en dash


def country_label(code: str) -> str:
    country = pycountry.countries.get(alpha_2=code)
    return str(country.name) if country is not None else code


def crosswalk_groups(standard: Standard, column: str) -> list[tuple[str, ...]]:
    """Codes of a field that share one CTDC value (groups of two or more, in code-list order)."""
    by_value: dict[str, list[str]] = {}
    for c in standard.field(column).codes or ():
        if c.ctdc:
            by_value.setdefault(c.ctdc, []).append(c.code)
    return [tuple(g) for g in by_value.values() if len(g) > 1]


def group_label(standard: Standard, column: str, members: list[str]) -> str:
    """Label of merged codes: their shared CTDC value made readable ("Transgender /
    Non-Conforming"), else the members' labels joined."""
    field = standard.field(column)
    values = {c.ctdc for c in field.codes or () if c.code in members}
    if len(values) == 1 and (value := values.pop()):
        return re.sub(r"(?<=[a-z])(?=[A-Z])", "-", value).replace("/", " / ")
    return " / ".join(field.label_of(c) for c in members)


def label_of(standard: Standard, spec: DimSpec, code: str) -> str:
    if GROUP_SEP in code and spec.kind == DimKind.CODE:
        return group_label(standard, spec.column, code.split(GROUP_SEP))
    if code == MISSING:
        return MISSING_LABEL
    if code == OTHER:
        return OTHER_LABEL
    if spec.kind in (DimKind.CODE, DimKind.MULTI):
        return standard.field(spec.column).label_of(code)
    if spec.kind == DimKind.BAND:
        derived = standard.derived_field(spec.column)
        return derived.label_of(code) if derived.codes else band_label(spec.column, code)
    if spec.kind == DimKind.PRIMARY_COUNTRY:
        return country_label(code)
    return code


def known_codes(standard: Standard, spec: DimSpec) -> tuple[str, ...]:
    """Codes in display order before looking at the data (empty for years and countries)."""
    if spec.kind in (DimKind.CODE, DimKind.MULTI):
        return standard.field(spec.column).code_values
    if spec.kind == DimKind.BAND:
        return standard.derived_field(spec.column).band_labels
    return ()
