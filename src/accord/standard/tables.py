"""The standard's disaggregated tables, declared once in ``tables.yaml``.

Both ways of publishing them read this list: ``accord.research`` (small-cell suppression:
``accord stats``, ``accord report``) and ``accord.release.dp`` (``accord release tables``). It sits
in the standard because that is the one stage both may import (the pipeline runs one way).

What each method does with a dimension (which categories, how rare ones are grouped, how many
values of a list a person may contribute) is the method's business; this module only says which
tables exist, what they cross, and what kind of column each dimension is, taken from the
standard so that the list cannot name a column the standard does not have.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache
from importlib import resources
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from accord.errors import StandardError
from accord.standard.model import FieldType, Standard
from accord.yamlio import load_yaml

TABLES_FILE = "tables.yaml"

Method = Literal["suppressed", "dp"]
METHODS: tuple[Method, ...] = ("suppressed", "dp")


class DimKind(StrEnum):
    CODE = "code"  # one code of a code list
    BAND = "band"  # a derived band (age band, age group, minor/adult)
    YEAR = "year"  # an integer year, shown as a continuous range
    MULTI = "multi"  # several codes per record: a record counts under each (method-bounded)
    PRIMARY_COUNTRY = "primary_country"  # the first country of a list of countries


@dataclass(frozen=True)
class DimSpec:
    column: str
    kind: DimKind
    title: str
    # Merge codes that share a CTDC crosswalk value when one of them is rare (below the
    # threshold): sex then reads Female / Male / Transgender or non-conforming, as CTDC publishes.
    group_rare_by_crosswalk: bool = False
    item: str = ""  # for a list: what one value is called in the notes ("type", "need")


@dataclass(frozen=True)
class TableSpec:
    id: str
    title: str
    dims: tuple[DimSpec, ...]
    note: str = ""
    methods: tuple[Method, ...] = METHODS
    # Only people whose column holds one of the codes count (``case_type: [gbv_survivor]``):
    # the table describes a subpopulation, and its margins are that subpopulation's.
    where: tuple[tuple[str, tuple[str, ...]], ...] = ()

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(d.column for d in self.dims)

    @property
    def where_columns(self) -> tuple[str, ...]:
        return tuple(c for c, _ in self.where)

    @property
    def population(self) -> str:
        """Who the table counts, as a key: tables share a margin only within one population."""
        return ";".join(f"{c}={'|'.join(v)}" for c, v in self.where) or "all"

    @property
    def multi(self) -> DimSpec | None:
        return next((d for d in self.dims if d.kind == DimKind.MULTI), None)

    @property
    def multi_column(self) -> str | None:
        m = self.multi
        return m.column if m is not None else None


class _Dim(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    column: str
    title: str | None = None
    group_rare: Literal["crosswalk"] | None = None
    item: str | None = None


class _Table(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    title: str
    dims: tuple[_Dim, ...] = Field(min_length=1)
    note: str = ""
    methods: tuple[Method, ...] = METHODS
    where: dict[str, tuple[str, ...]] = Field(default_factory=dict)


class _Tables(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    tables: tuple[_Table, ...]


def _kind(standard: Standard, column: str) -> DimKind:
    if column in standard.field_names:
        ftype = standard.field(column).type
        kinds = {FieldType.CODE: DimKind.CODE, FieldType.CODES: DimKind.MULTI,
                 FieldType.COUNTRIES: DimKind.PRIMARY_COUNTRY}
        if ftype not in kinds:
            raise StandardError(f"table column '{column}' is of type {ftype}, which no table can "
                                "count", hint="use a code list, a list of countries or a derived "
                                "band or year")
        return kinds[ftype]
    if column in {d.name for d in standard.derived}:
        return DimKind.BAND if standard.derived_field(column).categorical else DimKind.YEAR
    raise StandardError(f"table column '{column}' is not in the standard",
                        hint="name a field or a derived column of standard.yaml")


def _title(standard: Standard, column: str) -> str:
    if column in standard.field_names:
        return standard.field(column).label
    return standard.derived_field(column).label


def _dim(standard: Standard, raw: _Dim) -> DimSpec:
    kind = _kind(standard, raw.column)
    if raw.item and kind != DimKind.MULTI:
        raise StandardError(f"table column '{raw.column}' is not a list, so it takes no 'item'")
    if kind == DimKind.MULTI and not raw.item:
        raise StandardError(f"table column '{raw.column}' is a list: give 'item' (the word for "
                            "one of its values, used in the table notes)")
    return DimSpec(raw.column, kind, raw.title or _title(standard, raw.column),
                   group_rare_by_crosswalk=raw.group_rare == "crosswalk", item=raw.item or "")


def _where(standard: Standard, table_id: str, column: str,
           codes: tuple[str, ...]) -> tuple[str, tuple[str, ...]]:
    """A filter on a single-code column, checked against its code list."""
    kind = _kind(standard, column)
    if kind not in (DimKind.CODE, DimKind.BAND):
        raise StandardError(f"table {table_id} filters on '{column}', which is not one code per "
                            "person", hint="filter on a code field or a derived band or flag")
    known = (standard.field(column).code_values if kind == DimKind.CODE
             else standard.derived_field(column).band_labels)
    unknown = [c for c in codes if c not in known]
    if unknown or not codes:
        raise StandardError(f"table {table_id} filters '{column}' on codes it does not have",
                            hint=f"use codes of {column}'s list")
    return column, tuple(codes)


def parse_tables(text: str, standard: Standard, source: str = TABLES_FILE) -> tuple[TableSpec, ...]:
    """Read and check a table list against the standard."""
    try:
        raw = _Tables.model_validate(load_yaml(text))
    except (yaml.YAMLError, ValidationError) as exc:
        raise StandardError(f"{source} is not a valid table list: {exc}") from None
    ids = [t.id for t in raw.tables]
    if len(set(ids)) != len(ids):
        raise StandardError(f"{source} lists a table id twice")
    out = []
    for t in raw.tables:
        dims = tuple(_dim(standard, d) for d in t.dims)
        if sum(d.kind == DimKind.MULTI for d in dims) > 1:
            raise StandardError(f"table {t.id} crosses two list columns",
                                hint="keep at most one list column per table")
        out.append(TableSpec(t.id, t.title, dims, t.note, t.methods,
                             tuple(_where(standard, t.id, c, v) for c, v in t.where.items())))
    return tuple(out)


@lru_cache(maxsize=4)
def _packaged(standard: Standard) -> tuple[TableSpec, ...]:
    text = resources.files("accord.standard").joinpath(TABLES_FILE).read_text(encoding="utf-8")
    return parse_tables(text, standard)


def standard_tables(standard: Standard, method: Method | None = None) -> tuple[TableSpec, ...]:
    """The packaged tables, in publication order; with ``method``, only those it publishes."""
    tables = _packaged(standard)
    return tables if method is None else tuple(t for t in tables if method in t.methods)
