"""Mapping files: how one partner's export becomes records of the standard (see docs/mapping.md).

A mapping is checked twice before any row is read: against the standard when loaded, and against
the export's header when applied.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import pycountry
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from accord.errors import MappingError
from accord.ingest.identifiers import identifier_kind
from accord.ingest.raw import first_row_is_data, folded, header_missing_error, visible
from accord.input_files import refuse_special_file
from accord.standard import FieldType, Standard
from accord.yamlio import load_yaml


class SourceOptions(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    format: Literal["csv", "xlsx", "kobo_json"] | None = None
    delimiter: str | None = None
    encoding: str = "auto"
    sheet: str | int | None = None  # a sheet's exact name, or its position (1 = first)


class FieldMapping(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    column: str | None = None
    value: str | None = None
    flags: dict[str, str] | None = None
    codes: dict[str, str | None] | None = None
    split: str | None = None
    date_format: str | None = None
    missing: tuple[str, ...] = ()

    @model_validator(mode="before")
    @classmethod
    def _stringify(cls, data: Any) -> Any:
        # YAML turns F/M/1/yes into other types; source values are always compared as text.
        if isinstance(data, dict):
            data = dict(data)
            if isinstance(data.get("codes"), dict):
                data["codes"] = {_yaml_text(k): (None if v is None else _yaml_text(v))
                                 for k, v in data["codes"].items()}
            if isinstance(data.get("flags"), dict):
                data["flags"] = {str(k): str(v) for k, v in data["flags"].items()}
            if "value" in data and data["value"] is not None:
                data["value"] = _yaml_text(data["value"])
            if "missing" in data:
                data["missing"] = tuple(_yaml_text(v) for v in data["missing"] or ())
        return data

    @model_validator(mode="after")
    def _one_source(self) -> FieldMapping:
        given = [x for x in (self.column, self.value, self.flags) if x is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of 'column', 'value' or 'flags'")
        return self

    @property
    def source_columns(self) -> tuple[str, ...]:
        if self.column is not None:
            return (self.column,)
        return tuple(self.flags or ())


class Mapping(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    mapping_version: int = 1
    description: str | None = None
    source: SourceOptions = Field(default_factory=SourceOptions)
    missing_values: tuple[str, ...] = ("",)
    fields: dict[str, FieldMapping]

    @model_validator(mode="before")
    @classmethod
    def _stringify_missing(cls, data: Any) -> Any:
        if isinstance(data, dict) and "missing_values" in data:
            data = dict(data)
            data["missing_values"] = tuple(_yaml_text(v) for v in data["missing_values"] or ())
        return data


def _yaml_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


# "ZZ" (user-assigned in ISO 3166-1, used for "unknown" by CLDR and UN/LOCODE) records a country
# that is known to be unknown, which a blank cannot say.
UNKNOWN_COUNTRY = "ZZ"
_UNKNOWN_WORDS = frozenset({"zz", "zzz", "unknown"})


def _country_code(text: str) -> str | None:
    t = text.strip().upper()
    if t.casefold() in _UNKNOWN_WORDS:
        return UNKNOWN_COUNTRY
    if len(t) == 2 and pycountry.countries.get(alpha_2=t) is not None:
        return t
    if len(t) == 3:
        c = pycountry.countries.get(alpha_3=t)
        return c.alpha_2 if c is not None else None
    return None


def check_against_standard(mapping: Mapping, standard: Standard, source: str) -> None:
    problems: list[str] = []
    known = set(standard.field_names)
    for name, fm in mapping.fields.items():
        if name not in known:
            problems.append(f"'{name}' is not a field of the standard")
            continue
        f = standard.field(name)
        targets: list[str] = []
        if fm.codes:
            targets += [v for v in fm.codes.values() if v is not None]
        if fm.flags:
            targets += list(fm.flags.values())
            if not f.type.is_multi:
                problems.append(f"'{name}': 'flags' only fits multi-valued fields")
        if fm.value is not None and (f.type.is_coded or f.type in (FieldType.COUNTRY,)):
            targets.append(fm.value)
        if fm.split and not f.type.is_multi:
            problems.append(f"'{name}': 'split' only fits multi-valued fields")
        if fm.date_format and f.type != FieldType.DATE:
            problems.append(f"'{name}': 'date_format' only fits date fields")
        if f.type.is_coded:
            bad = sorted({t for t in targets if t not in f.code_values})
            if bad:
                problems.append(f"'{name}': codes not in the standard: {', '.join(bad)} "
                                f"(allowed: {', '.join(f.code_values)})")
        elif f.type in (FieldType.COUNTRY, FieldType.COUNTRIES):
            bad = sorted({t for t in targets if _country_code(t) is None})
            if bad:
                problems.append(f"'{name}': not ISO 3166 country codes: {', '.join(bad)}")
        elif fm.codes:
            problems.append(f"'{name}' is of type {f.type} and cannot have 'codes'")
    problems += _identifier_leaks(mapping, standard)
    missing_required = [f.name for f in standard.fields if f.required and f.name not in mapping.fields]
    if missing_required:
        problems.append(f"required fields not mapped: {', '.join(missing_required)}")
    if problems:
        raise MappingError(f"{source} does not fit the standard {standard.version}: "
                           + "; ".join(problems),
                           hint="fix the mapping; `accord standard dictionary` lists fields and codes")


def _identifier_leaks(mapping: Mapping, standard: Standard) -> list[str]:
    """A column that holds a direct identifier may feed only identifier fields, never one that leaves."""
    known = set(standard.field_names)
    id_fields = {f.name for f in standard.identifiers}
    id_columns = {c for name, fm in mapping.fields.items() if name in id_fields for c in fm.source_columns}
    problems = []
    for name, fm in mapping.fields.items():
        if name not in known or name in id_fields:
            continue
        for column in fm.source_columns:
            if column in id_columns:
                problems.append(f"'{name}' reads column '{column}', which is also mapped to an identifier; "
                                "a direct identifier must never reach a field that leaves the partner")
            elif (kind := identifier_kind(column)) is not None:
                problems.append(f"'{name}' reads column '{column}', whose name says it holds a {kind} "
                                "(a direct identifier); map it to an identifier field or leave it out")
    return problems


def check_against_header(mapping: Mapping, columns: list[str], source: str) -> None:
    """Every column the mapping reads must be in the header.

    The export's own columns are never listed: when the header row is missing, the first row is a
    record (a case number, a name, a phone). Only a column that matches a missing one except for
    case, spacing or invisible characters is shown, with those characters made visible.
    """
    have = set(columns)
    wanted = sorted({c for fm in mapping.fields.values() for c in fm.source_columns})
    missing = [c for c in wanted if c not in have]
    if not missing:
        return
    near = {folded(c): c for c in columns}
    hints: list[str] = []
    for name in missing:
        match = near.get(folded(name))
        if match is not None:
            hints.append(f"the export has {visible(match)} for {visible(name)}"
                         + (" (it holds invisible characters)" if visible(match) != match else
                            " (case or spacing differs)"))
    found = len(wanted) - len(missing)
    if found == 0 and first_row_is_data(columns):
        raise header_missing_error(columns, source)
    if found == 0:
        hint = (f"none of the mapping's {len(wanted)} columns is in the first row of {source} "
                f"({len(columns)} cells): is the header row missing, or is this mapping for another export?")
    else:
        hint = f"{found} of the mapping's {len(wanted)} columns are in {source}; check the names of the others"
    if hints:
        hint = "; ".join(hints) + ". " + hint
    raise MappingError(
        f"the mapping refers to {len(missing)} column(s) the export does not have: "
        + ", ".join(visible(c) for c in missing[:40]) + (" ..." if len(missing) > 40 else ""),
        hint=hint,
    )


def load_mapping(path: Path, standard: Standard) -> Mapping:
    refuse_special_file(path, "mapping")
    try:
        raw = load_yaml(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise MappingError(f"cannot read mapping {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise MappingError(f"{path} is not a mapping: it is not UTF-8 text",
                           hint="give the mapping's .yaml file (docs/mapping.md)") from None
    except yaml.YAMLError as exc:
        raise MappingError(f"{path} is not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise MappingError(f"{path} must be a YAML mapping with a 'fields' section",
                           hint="see docs/mapping.md for the format")
    try:
        mapping = Mapping.model_validate(raw)
    except ValidationError as exc:
        details = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        raise MappingError(f"{path} is not a valid mapping: {details}",
                           hint="see docs/mapping.md for the format") from None
    check_against_standard(mapping, standard, str(path))
    return mapping


country_code = _country_code
