"""The encoding schema: a versioned, declarative file that every partner of a collaborative uses.

It says which identifier columns are encoded, how (kind, filter size, hashes per token, q-gram
size, salt) and how the hub may compare them (Dice thresholds of the comparison levels). Its
fingerprint goes into every encoding file, so the hub can refuse to link encodings made with
different schemas.
"""

from __future__ import annotations

import hashlib
import json
import re
from enum import StrEnum
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from accord.errors import AccordError

SCHEMA_FORMAT = "accord-linkage-schema"
# 2: names and codes are normalised by `accord.protect.normalise` (the pseudonyms' definition);
# format 1 had a second, Python normaliser that differed on some non-Latin scripts (spacing vowel
# signs, Cherokee, Greek iota subscript), so its encodings of such names are not comparable.
# 3: name filters are diffused (each bit the XOR of `hardening.diffusion` key-chosen bits) and a
# name field may encode several columns as one name (`columns`); the default schema encodes the
# given and family names together. Format-2 encodings (plain per-part name filters) let a curious
# hub label 47-78 % of the names it holds (benchmarks/results/attacks/linkage.md), so they are
# refused, not mixed.
# 4: a date field has a third filter, its year with day and month in canonical order
# (`tokens.unordered_date_tokens`), so that a day/month swap agrees at a level of its own: in
# format 3 a swap was told from a same-month date only by the broad "partial date" level, and
# at 1M x 1M a third of the swapped pairs fell below the threshold
# (benchmarks/results/dateswap.md). Format-3 encodings lack that filter and are refused.
SCHEMA_FORMAT_VERSION = 4
# The weakest settings measured safe by the attack harness (see docs/linkage.md, Threat model).
MIN_DIFFUSION = 3
MIN_FLIP = 0.02
# Up to this many encoded records the harness measured the default within its targets (names at
# the clear-attribute baseline, full names <= 5 %); the full-name figure grows with the records
# a hub holds (5.3 % at 345k; benchmarks/results/harden.md), so a hub holding more is refused
# (`accord link`, unless --unsafe-encoding; the linkage-unit layout is the way past it) and
# `accord match` says so.
MEASURED_RECORDS = 250_000
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class EncodingSchemaError(AccordError):
    """An encoding schema (file or --fields list) is malformed."""


class FieldKind(StrEnum):
    NAME = "name"  # person names: word-order-free q-grams, comparable across name fields
    DATE = "date"  # a date: year/month/day tokens plus a year-only filter for defaulted dates
    YEAR = "year"  # a year (or the year of a date): exact and +/-1 tokens
    TEXT = "text"  # free text such as an address: q-grams of the whole string
    CODE = "code"  # codes (sex, citizenship; several allowed): one token per code


# (bits, hashes per token, Dice thresholds of the comparison levels, best first)
_KIND_DEFAULTS: dict[FieldKind, tuple[int, int, tuple[float, ...]]] = {
    FieldKind.NAME: (256, 8, (0.85, 0.7, 0.6)),
    FieldKind.TEXT: (256, 6, (0.85, 0.7, 0.5)),
    FieldKind.DATE: (128, 6, (0.85, 0.55, 0.3)),
    FieldKind.YEAR: (64, 6, (0.8, 0.3)),
    FieldKind.CODE: (64, 6, (0.5,)),
}


class FieldSpec(BaseModel):
    """One encoded field: ``name`` is its column in the encoding file, ``column`` the input's."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    kind: FieldKind
    column: str | None = None
    # name fields: several input columns encoded together as one name (their words joined), so
    # the filter is of the whole name, not of its parts (see docs/linkage.md, Hardening)
    columns: tuple[str, ...] | None = None
    bits: int | None = None
    hashes: int | None = Field(default=None, ge=1, le=64)
    ngram: int = Field(default=2, ge=1, le=4)
    salt: str | None = None
    domain: str | None = None
    levels: tuple[float, ...] | None = None
    # date fields: a column with the standard's dob_quality codes, used when present in the input
    quality_column: str | None = None

    @model_validator(mode="after")
    def _check(self) -> FieldSpec:
        if not _NAME.match(self.name):
            raise ValueError(f"field name {self.name!r} must be letters, digits and underscores")
        if self.columns is not None:
            if self.kind is not FieldKind.NAME:
                raise ValueError(f"field {self.name}: only name fields take several columns")
            if self.column is not None or not self.columns:
                raise ValueError(f"field {self.name}: give either column or columns (non-empty)")
        if self.bits is not None and (self.bits < 64 or self.bits % 64):
            raise ValueError(f"field {self.name}: bits must be a positive multiple of 64")
        if self.levels is not None and (
            not self.levels or list(self.levels) != sorted(self.levels, reverse=True)
            or not all(0 < t <= 1 for t in self.levels)
        ):
            raise ValueError(
                f"field {self.name}: levels must be Dice thresholds in (0, 1], best first")
        return self

    @property
    def source(self) -> str:
        return self.column or self.name

    @property
    def sources(self) -> tuple[str, ...]:
        """The input columns whose values the field encodes."""
        return self.columns or (self.source,)

    @property
    def n_bits(self) -> int:
        return self.bits or _KIND_DEFAULTS[self.kind][0]

    @property
    def n_hashes(self) -> int:
        return self.hashes or _KIND_DEFAULTS[self.kind][1]

    @property
    def dice_levels(self) -> tuple[float, ...]:
        return self.levels or _KIND_DEFAULTS[self.kind][2]

    @property
    def hash_domain(self) -> str:
        # Name fields share one domain by default, so a given name can be compared with a
        # family name (swapped names, compound names split differently).
        if self.domain:
            return self.domain
        return "name" if self.kind is FieldKind.NAME else f"field:{self.name}"


class Hardening(BaseModel):
    """Protection of the filters against frequency and pattern attacks (see docs/linkage.md)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    # Randomised response on every bit (BLIP): each bit of a non-empty filter is flipped with
    # this probability, so two encodings of the same value are (almost) never identical.
    flip_probability: float = Field(default=0.02, ge=0.0, lt=0.5)
    # Diffusion of name filters: each output bit is the XOR of this many input bits chosen with
    # the secret (0: off), so no bit position belongs to one q-gram (pattern mining) and the
    # number of bits set no longer tells a name's length.
    diffusion: int = Field(default=3, ge=0, le=16)


class EncodingSchema(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    format: Literal["accord-linkage-schema"] = "accord-linkage-schema"
    format_version: int = SCHEMA_FORMAT_VERSION
    name: str = "custom"
    version: str = "1"
    fields: tuple[FieldSpec, ...]
    hardening: Hardening = Hardening()

    @model_validator(mode="after")
    def _check(self) -> EncodingSchema:
        if self.format_version != SCHEMA_FORMAT_VERSION:
            raise ValueError(
                f"unsupported schema format_version {self.format_version}: this version of "
                f"Accord reads format_version {SCHEMA_FORMAT_VERSION} (encodings made with an "
                f"older format must be made again)")
        if not self.fields:
            raise ValueError("a schema needs at least one field")
        names = [f.name for f in self.fields]
        if len(set(names)) != len(names):
            raise ValueError("field names must be unique")
        sizes: dict[str, int] = {}
        for f in self.fields:
            if sizes.setdefault(f.hash_domain, f.n_bits) != f.n_bits:
                raise ValueError(f"fields of hash domain {f.hash_domain!r} must have equal bits")
        return self

    def unsafe_reasons(self) -> list[str]:
        """Settings the attack harness (tests/attacks/test_linkage_privacy.py) shows let a
        curious hub label names beyond what sex and citizenship in clear tell it."""
        out: list[str] = []
        names = [f for f in self.fields if f.kind is FieldKind.NAME]
        if len(names) > 1:
            out.append(f"{len(names)} name fields: each part of a name is encoded on its own, so "
                       "its filters cluster by that part's frequency (encode the parts together "
                       "in one field with `columns:`)")
        if names and self.hardening.diffusion < MIN_DIFFUSION:
            out.append(f"diffusion {self.hardening.diffusion} < {MIN_DIFFUSION}: bit positions "
                       "of name filters can be tied to q-grams (pattern mining)")
        if self.hardening.flip_probability < MIN_FLIP:
            out.append(f"flip_probability {self.hardening.flip_probability:g} < {MIN_FLIP:g}: "
                       "equal values give equal filters that can be counted")
        return out

    def canonical_json(self) -> str:
        return json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))

    def fingerprint(self) -> str:
        """A public digest of the schema: equal fingerprints mean identical encodings rules."""
        return hashlib.sha256(self.canonical_json().encode("utf-8")).hexdigest()[:32]

    def field(self, name: str) -> FieldSpec:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(name)


def scale_note(records: int) -> str | None:
    """A note for a link of more encoded records than the attack harness measured safe."""
    if records <= MEASURED_RECORDS:
        return None
    return (f"{records:,} encoded records: above the {MEASURED_RECORDS:,} up to which the attack "
            "harness keeps a curious hub's full-name re-identification under 5 % (it grows with "
            "the records linked; docs/linkage.md, Threat model)")


class UnsafeEncodingError(EncodingSchemaError):
    """A schema the attack harness shows to be unsafe, used without --unsafe-encoding."""


# Columns that a linkage unit must not hold encoded next to the names: equal codes cluster
# trivially, so their filters would give the unit the groups within which name frequencies are
# steep (citizenship: the harness's attack conditioned on sex and citizenship labels 5.3 % of
# full names at 345k records, on sex alone about 1 %; benchmarks/results/linkpriv2.md).
UNIT_EXCLUDED_COLUMNS = ("citizenship",)


# The unit schema's extra name level (see unit_schema).
UNIT_NAME_LEVEL = 0.55


def unit_schema() -> EncodingSchema:
    """The default schema of the linkage-unit layout: the default one without citizenship."""
    doc = default_schema().model_dump(mode="json", exclude_none=True)
    doc["name"] = "accord-unit-identifiers"
    doc["fields"] = [f for f in doc["fields"]
                     if not set(UNIT_EXCLUDED_COLUMNS) & set(EncodingSchema.model_validate(
                         {**doc, "fields": [f]}).fields[0].sources)]
    # One more name level: Dice 0.55-0.6 apart from the rest of "else" (comparison only; the
    # encodings are the default schema's). On the three-partner simulator 4.7 % of true pairs
    # and 6.8 % of random pairs fall there, 0.8 % and 92 % below it: lumped together, a pair
    # with an equal birth date and a name sharing a part (compound, transliterated) was
    # scored like one with an unrelated name, and without citizenship nothing else lifted it
    # (benchmarks/results/linkunit.md).
    for f in doc["fields"]:
        if f["kind"] == FieldKind.NAME.value and "levels" not in f:
            f["levels"] = [*_KIND_DEFAULTS[FieldKind.NAME][2], UNIT_NAME_LEVEL]
    return schema_from_dict(doc, "unit schema")


def unit_unsafe_reasons(schema: EncodingSchema) -> list[str]:
    """What makes a schema unsafe for the linkage unit on top of `unsafe_reasons`."""
    out = [f"field {f.name!r} encodes {c}: the linkage unit could group the name encodings by "
           "it (use the unit schema, which leaves it to the hub)"
           for f in schema.fields for c in f.sources if c in UNIT_EXCLUDED_COLUMNS]
    # A salt splits the name filters by its value: the unit might recover those groups from
    # the names' structure (names of one language share bigrams within a salt); not measured.
    return out + [f"field {f.name!r} is salted with {f.salt}: its groups may be recoverable at "
                  "the linkage unit (not measured)"
                  for f in schema.fields if f.salt in UNIT_EXCLUDED_COLUMNS]


def check_safe(schema: EncodingSchema, allow_unsafe: bool, unit: bool = False) -> list[str]:
    """The schema's unsafe settings; refused unless the user accepted them explicitly."""
    reasons = schema.unsafe_reasons() + (unit_unsafe_reasons(schema) if unit else [])
    if reasons and not allow_unsafe:
        raise UnsafeEncodingError(
            f"the encoding schema is unsafe: {'; '.join(reasons)}",
            hint="use the default schema (docs/linkage.md, Hardening), or pass --unsafe-encoding "
                 "to accept the risk (the encodings and the link record then say so)")
    return reasons


def schema_from_dict(doc: Any, source: str = "schema") -> EncodingSchema:
    try:
        return EncodingSchema.model_validate(doc)
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise EncodingSchemaError(
            f"{source}: {first['msg']} (at {where or 'top level'})",
            hint="see docs/linkage.md, section 'Encoding schema', for the format",
        ) from None


def load_schema(path: Path) -> EncodingSchema:
    if not path.exists():
        raise EncodingSchemaError(f"no encoding schema at {path}", hint="check the --schema path")
    import yaml  # here, not at the top: `accord encode --help` starts without it

    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError):
        raise EncodingSchemaError(f"{path} is not YAML", hint="fix the file's syntax") from None
    return schema_from_dict(doc, str(path))


def default_schema() -> EncodingSchema:
    """The schema for the standard's identifiers (used by the protect step)."""
    import yaml

    text = resources.files("accord.protect.encoding").joinpath("default_schema.yaml").read_text(
        encoding="utf-8")
    return schema_from_dict(yaml.safe_load(text), "default_schema.yaml")


def schema_from_fields(spec: str, flip_probability: float | None = None) -> EncodingSchema:
    """Build a schema from ``COL:KIND,COL:KIND`` (the CLI's --fields)."""
    fields = []
    for part in (p.strip() for p in spec.split(",")):
        if not part:
            continue
        col, sep, kind = part.rpartition(":")
        if not sep or not col:
            raise EncodingSchemaError(
                f"--fields item {part!r} is not COL:KIND",
                hint="write e.g. --fields given:name,surname:name,dob:date,sex:code")
        kinds = [k.value for k in FieldKind]
        if kind not in kinds:
            raise EncodingSchemaError(f"unknown kind {kind!r} for column {col!r}",
                                      hint=f"use one of {', '.join(kinds)}")
        name = re.sub(r"\W", "_", col.strip())
        if not name or name[0].isdigit():
            name = f"f_{name}"
        cols = [c.strip() for c in col.split("+")]
        if len(cols) > 1:
            if not all(cols):
                raise EncodingSchemaError(f"--fields item {part!r} has an empty column",
                                          hint="write e.g. given+family:name")
            fields.append({"name": name, "columns": cols, "kind": kind})
        else:
            fields.append({"name": name, "column": col.strip(), "kind": kind})
    doc: dict[str, Any] = {"name": "from-fields", "fields": fields}
    if flip_probability is not None:
        doc["hardening"] = {"flip_probability": flip_probability}
    return schema_from_dict(doc, "--fields")


def write_schema(schema: EncodingSchema, path: Path) -> None:
    import yaml

    path.write_text(yaml.safe_dump(schema.model_dump(mode="json", exclude_none=True),
                                   sort_keys=False), encoding="utf-8")
