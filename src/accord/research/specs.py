"""What the standard tables are: dimensions, where their categories and labels come from.

Category lists come from the standard (code lists, derived bands), so that the SQL that counts
them is a fixed template over column names, never over values.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import pycountry

from accord.standard import Standard

MISSING = "_missing"
OTHER = "_other"
MISSING_LABEL = "Not recorded"
OTHER_LABEL = "Other"

_MAJORITY_LABELS = {"minor": "Minor (under 18)", "adult": "Adult (18 and over)"}


class DimKind(StrEnum):
    CODE = "code"  # one code of a code list
    BAND = "band"  # a derived band (age band, age group, minor/adult)
    YEAR = "year"  # an integer year, shown as a continuous range
    MULTI = "multi"  # several codes per record: a record counts once per code
    COUNTRY_TOP = "country_top"  # first country of a list, top N kept, the rest as "other"


@dataclass(frozen=True)
class DimSpec:
    column: str
    kind: DimKind
    title: str


@dataclass(frozen=True)
class TableSpec:
    id: str
    title: str
    dims: tuple[DimSpec, ...]
    note: str = ""

    @property
    def multi_column(self) -> str | None:
        for d in self.dims:
            if d.kind == DimKind.MULTI:
                return d.column
        return None


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
    """The tables of issue 2, titled from the standard's field labels."""
    def code(col: str) -> DimSpec:
        return DimSpec(col, DimKind.CODE, standard.field(col).label)

    def band(col: str, title: str | None = None) -> DimSpec:
        return DimSpec(col, DimKind.BAND, title or standard.derived_field(col).label)

    def multi(col: str) -> DimSpec:
        return DimSpec(col, DimKind.MULTI, standard.field(col).label)

    sex = code("sex")
    return (
        TableSpec("sex_by_age_band", "People by sex and age band (CTDC bands)",
                  (sex, band("age_band_ctdc", "Age band"))),
        TableSpec("case_type_by_sex", "People by case type and sex", (code("case_type"), sex)),
        TableSpec("exploitation_by_sex_by_majority",
                  "Type of exploitation by sex and age group (minor / adult)",
                  (multi("type_of_exploitation"), sex, band("majority_status")),
                  note="A person with several types of exploitation counts once under each type, "
                       "so the totals over types exceed the number of people; people with no "
                       "type recorded are not counted."),
        TableSpec("migration_status_by_sex", "People by migration status and sex",
                  (code("migration_status"), sex)),
        TableSpec("citizenship_by_sex", "People by citizenship and sex",
                  (DimSpec("citizenship", DimKind.COUNTRY_TOP, "Citizenship (primary)"), sex),
                  note="Primary citizenship (the first one recorded); the most frequent "
                       "countries are shown, all others are grouped as \"Other\"."),
        TableSpec("rh_needs_by_age_group", "Reproductive-health needs by age group",
                  (multi("rh_needs"), band("age_group")),
                  note="A person with several needs counts once under each need; people with no "
                       "need recorded are not counted."),
        TableSpec("registrations_by_year", "Registrations by year",
                  (DimSpec("registration_year", DimKind.YEAR, "Year of registration"),)),
    )


def band_label(column: str, code: str) -> str:
    if column == "majority_status":
        return _MAJORITY_LABELS.get(code, code)
    return code.replace("--", "\u2013")  # CTDC writes "9--17"; show an en dash


def country_label(code: str) -> str:
    country = pycountry.countries.get(alpha_2=code)
    return str(country.name) if country is not None else code


def label_of(standard: Standard, spec: DimSpec, code: str) -> str:
    if code == MISSING:
        return MISSING_LABEL
    if code == OTHER:
        return OTHER_LABEL
    if spec.kind in (DimKind.CODE, DimKind.MULTI):
        return standard.field(spec.column).label_of(code)
    if spec.kind == DimKind.BAND:
        return band_label(spec.column, code)
    if spec.kind == DimKind.COUNTRY_TOP:
        return country_label(code)
    return code


def known_codes(standard: Standard, spec: DimSpec) -> tuple[str, ...]:
    """Codes in display order before looking at the data (empty for years and countries)."""
    if spec.kind in (DimKind.CODE, DimKind.MULTI):
        return standard.field(spec.column).code_values
    if spec.kind == DimKind.BAND:
        return standard.derived_field(spec.column).band_labels
    return ()
