"""Generalisation hierarchies derived from the data standard, for hub records.

- age (years) -> CTDC age band -> minor / adult -> *
- country (ISO 3166-1) -> UN M49 sub-region -> M49 region -> *  (table shipped in ``m49.csv``)
- area (ISO 3166-2) -> country -> M49 sub-region -> M49 region -> *
- date -> month -> year -> five-year period -> *
- codes -> group (where the standard's codes have a natural grouping, e.g. sex) -> *

Decisions on lists (multi-select fields), documented in docs/anonymise.md:
- a list used as a quasi-identifier (citizenship) is released as one value: the country if there
  is one, ``multiple`` if there are several; it then generalises like a country.
- a list that is sensitive is checked for l-diversity per flag (each code its own 0/1
  attribute) and released as one 0/1 flag column per code, ``<field>__<code>``.
Missing values are a category of their own (``unknown`` once generalised): an empty cell is
information too, so it is never treated as matching anything.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import pyarrow as pa
import pyarrow.compute as pc

from accord.release.anonymise.hierarchy import SUPPRESSED, Hierarchy, make_hierarchy
from accord.standard.model import Field, FieldType, Standard

UNKNOWN = "unknown"
MULTIPLE = "multiple"
# Groupings of code lists where the codes have an obvious coarser level; others go straight to *.
CODE_GROUPS: dict[str, dict[str, str]] = {
    "sex": {"female": "female", "male": "male", "transgender_female": "gender diverse",
            "transgender_male": "gender diverse", "non_conforming": "gender diverse",
            "unknown": UNKNOWN},
    "migration_status": {"regular": "regular", "irregular": "irregular or undocumented",
                         "undocumented": "irregular or undocumented",
                         "asylum_seeker": "international protection",
                         "refugee": "international protection",
                         "stateless": "international protection",
                         "internally_displaced": "displaced or returning",
                         "returnee": "displaced or returning"},
}


@lru_cache(maxsize=1)
def m49() -> dict[str, tuple[str, str]]:
    """ISO alpha-2 -> (M49 sub-region, M49 region)."""
    text = resources.files("accord.release.anonymise").joinpath("m49.csv").read_text("utf-8")
    lines = [ln for ln in text.splitlines() if ln and not ln.startswith("#")]
    return {r["iso2"]: (r["subregion"], r["region"]) for r in csv.DictReader(io.StringIO(
        "\n".join(lines)))}


def _country_chain(code: str) -> list[str]:
    if code == "":
        return [UNKNOWN, UNKNOWN]
    if code == MULTIPLE:
        return [MULTIPLE, MULTIPLE]
    return list(m49().get(code, ("other", "other")))


def _age_band(standard: Standard, age: int) -> str:
    try:
        bands = standard.derived_field("age_band_ctdc")
        label = bands.band_of(age)
    except KeyError:
        label = None
    return (label or "other").replace("--", "-")


@dataclass(frozen=True)
class PreparedField:
    column: str  # column of the prepared table (strings)
    source: str  # standard field it comes from
    kind: str  # "qi", "sensitive" or "sensitive_flags"
    description: str


def as_strings(column: pa.ChunkedArray, field: Field) -> list[str]:
    """One string per record as the engine sees it ('' for missing)."""
    if field.type.is_multi:
        out = []
        for v in column.to_pylist():
            vals = sorted(str(x) for x in v or [])
            if field.type == FieldType.COUNTRIES:
                out.append("" if not vals else vals[0] if len(vals) == 1 else MULTIPLE)
            else:
                out.append("|".join(vals))
        return out
    if field.type == FieldType.DATE:
        return [v.isoformat() if v is not None else "" for v in column.to_pylist()]
    strings = pc.fill_null(pc.cast(column, pa.string()), "")
    return [str(v) for v in strings.to_pylist()]


def hierarchy_for(field: Field, values: list[str], standard: Standard) -> Hierarchy:
    """A hierarchy covering every value present (plus missing), following the field's type."""
    present = sorted(set(values) | {""})
    rows: list[list[str]] = []
    if field.type == FieldType.INTEGER and field.name == "age":
        for v in present:
            if v == "":
                rows.append(["", UNKNOWN, UNKNOWN, SUPPRESSED])
            else:
                a = int(v)
                rows.append([v, _age_band(standard, a), "minor" if a < 18 else "adult",
                             SUPPRESSED])
    elif field.type in (FieldType.COUNTRY, FieldType.COUNTRIES):
        rows = [[v, *_country_chain(v), SUPPRESSED] for v in present]
    elif field.type == FieldType.DATE:
        for v in present:
            if v == "":
                rows.append(["", UNKNOWN, UNKNOWN, UNKNOWN, SUPPRESSED])
            else:
                y = int(v[:4])
                rows.append([v, v[:7], v[:4], f"{y // 5 * 5}-{y // 5 * 5 + 4}", SUPPRESSED])
    elif field.name == "area_of_registration":
        for v in present:
            country = v.split("-")[0] if v else ""
            rows.append([v, country or UNKNOWN, *_country_chain(country), SUPPRESSED])
    elif field.name in CODE_GROUPS:
        groups = CODE_GROUPS[field.name]
        rows = [[v, groups.get(v, UNKNOWN if v == "" else "other"), SUPPRESSED] for v in present]
    else:
        rows = [[v, SUPPRESSED] for v in present]
    return make_hierarchy(field.name, rows)
