"""Typed model of the data standard, loaded from ``standard.yaml`` and validated on load."""

from __future__ import annotations

from enum import StrEnum
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from accord.errors import StandardError
from accord.input_files import refuse_special_file
from accord.yamlio import load_yaml

DEFAULT_STANDARD = "standard.yaml"
# Earlier versions shipped with the package, for `accord standard diff` and contribution upgrades.
PACKAGED_VERSIONS = {"0.1": "standard_0.1.yaml", "0.2": DEFAULT_STANDARD}


class FieldRole(StrEnum):
    IDENTIFIER = "identifier"
    QUASI_IDENTIFIER = "quasi_identifier"
    SENSITIVE = "sensitive"
    ATTRIBUTE = "attribute"


class FieldType(StrEnum):
    STRING = "string"
    DATE = "date"
    INTEGER = "integer"
    CODE = "code"
    CODES = "codes"
    COUNTRY = "country"
    COUNTRIES = "countries"

    @property
    def is_multi(self) -> bool:
        return self in (FieldType.CODES, FieldType.COUNTRIES)

    @property
    def is_coded(self) -> bool:
        return self in (FieldType.CODE, FieldType.CODES)


class Code(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    code: str
    label: str
    htcds: str | None = None
    ctdc: str | None = None
    range: tuple[int, int] | None = None  # for band codes: the ages the band covers, inclusive
    aliases: tuple[str, ...] = ()  # other spellings seen in partner systems and public files


class Field(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    type: FieldType
    label: str
    role: FieldRole
    required: bool = False
    description: str | None = None
    htcds: str | None = None
    ctdc: str | None = None
    codes: tuple[Code, ...] | None = None
    min: int | None = None
    max: int | None = None

    @model_validator(mode="after")
    def _check_codes(self) -> Field:
        if self.type.is_coded:
            if not self.codes:
                raise ValueError(f"field '{self.name}' is of type {self.type} but has an empty code list")
            seen: set[str] = set()
            for code in self.codes:
                if code.code in seen:
                    raise ValueError(f"field '{self.name}' has duplicate code '{code.code}'")
                seen.add(code.code)
        elif self.codes:
            raise ValueError(f"field '{self.name}' of type {self.type} cannot have a code list")
        return self

    @property
    def code_values(self) -> tuple[str, ...]:
        return tuple(c.code for c in self.codes or ())

    def label_of(self, code: str) -> str:
        for c in self.codes or ():
            if c.code == code:
                return c.label
        return code


class DerivedField(BaseModel):
    """A column computed by ingest from a standard field (age bands, registration year)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    source: str
    label: str
    ctdc: str | None = None
    bands: tuple[tuple[int, int, str], ...] | None = None
    rule: Literal["wg_ss", "sexual_violence"] | None = None
    # The values a rule gives, with their labels (a flag's yes / no), so that tables count it
    # like a band and show labels, not codes.
    codes: tuple[Code, ...] | None = None
    description: str | None = None  # definition, for the data dictionary
    reference: str | None = None  # where the definition comes from (UN, UNFPA, WHO, CTDC)
    sources: tuple[str, ...] = ()  # every field a rule reads (source is the first)

    @model_validator(mode="before")
    @classmethod
    def _rename_from(cls, data: Any) -> Any:
        if isinstance(data, dict) and "from" in data:
            data = dict(data)
            src = data.pop("from")
            if isinstance(src, list):
                data["sources"] = tuple(src)
                src = src[0] if src else ""
            data["source"] = src
        return data

    @property
    def band_labels(self) -> tuple[str, ...]:
        """The column's values in order: its bands, or the codes of a rule that has them."""
        if self.codes:
            return tuple(c.code for c in self.codes)
        return tuple(b[2] for b in self.bands or ())

    @property
    def categorical(self) -> bool:
        """Counted by category in tables (bands, or a rule with a code list)."""
        return bool(self.bands or self.codes)

    def label_of(self, code: str) -> str:
        for c in self.codes or ():
            if c.code == code:
                return c.label
        return code

    def band_of(self, value: int | None) -> str | None:
        if value is None:
            return None
        for low, high, label in self.bands or ():
            if low <= value <= high:
                return label
        return None


class Standard(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    version: str
    htcds_version: str
    fields: tuple[Field, ...]
    derived: tuple[DerivedField, ...] = ()
    compatible_with: tuple[str, ...] = ()  # earlier versions whose contributions the hub upgrades

    @model_validator(mode="after")
    def _check_names(self) -> Standard:
        names = [f.name for f in self.fields] + [d.name for d in self.derived]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"duplicate field names: {', '.join(dupes)}")
        field_names = {f.name for f in self.fields}
        for d in self.derived:
            for src in (d.source, *d.sources):
                if src not in field_names:
                    raise ValueError(f"derived field '{d.name}' comes from unknown field '{src}'")
        for f in self.fields:
            for c in f.codes or ():
                if c.range is not None and c.range[0] > c.range[1]:
                    raise ValueError(f"field '{f.name}': code '{c.code}' has an empty range")
        return self

    def field(self, name: str) -> Field:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(name)

    def derived_field(self, name: str) -> DerivedField:
        for d in self.derived:
            if d.name == name:
                return d
        raise KeyError(name)

    @property
    def field_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields)

    def by_role(self, role: FieldRole) -> tuple[Field, ...]:
        return tuple(f for f in self.fields if f.role == role)

    @property
    def identifiers(self) -> tuple[Field, ...]:
        return self.by_role(FieldRole.IDENTIFIER)

    @property
    def published_fields(self) -> tuple[Field, ...]:
        """Fields that may leave the partner (everything but identifiers)."""
        return tuple(f for f in self.fields if f.role != FieldRole.IDENTIFIER)


def _format_validation_error(err: ValidationError) -> str:
    lines = []
    for e in err.errors():
        where = ".".join(str(p) for p in e["loc"])
        lines.append(f"{where}: {e['msg']}" if where else e["msg"])
    return "; ".join(lines)


def parse_standard(text: str, source: str = "<standard>") -> Standard:
    try:
        raw = load_yaml(text)
    except yaml.YAMLError as exc:
        raise StandardError(f"{source} is not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise StandardError(f"{source} must be a mapping with 'name', 'version' and 'fields'")
    try:
        return Standard.model_validate(raw)
    except ValidationError as exc:
        raise StandardError(
            f"{source} is not a valid Accord standard: {_format_validation_error(exc)}",
            hint="roles are identifier, quasi_identifier, sensitive or attribute; code lists "
            "must be non-empty and without duplicates",
        ) from None


@lru_cache(maxsize=8)
def _load_packaged(name: str) -> Standard:
    text = resources.files("accord.standard").joinpath(name).read_text(encoding="utf-8")
    return parse_standard(text, source=name)


def load_version(version: str) -> Standard:
    """A packaged version of the standard by its number ("0.1", "0.2" or "0.2.0")."""
    short = ".".join(version.split(".")[:2])
    if short not in PACKAGED_VERSIONS:
        raise StandardError(f"no packaged standard version '{version}'",
                            hint=f"packaged versions: {', '.join(PACKAGED_VERSIONS)}")
    return _load_packaged(PACKAGED_VERSIONS[short])


def load_standard(path: Path | str | None = None) -> Standard:
    """Load the packaged standard, or a custom one from ``path``."""
    if path is None:
        return _load_packaged(DEFAULT_STANDARD)
    p = Path(path)
    refuse_special_file(p, "standard file")
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise StandardError(f"cannot read standard file {p}: {exc.strerror}") from None
    return parse_standard(text, source=str(p))
