"""Parsers for one cell of each standard type. Applied to the *distinct* values of a column only,
so that a million-row export costs as many parser calls as it has different values."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import pycountry

from accord.ingest.findings import FindingKind
from accord.ingest.mapping import FieldMapping, country_code
from accord.standard import Field, FieldType

EXCEL_EPOCH = date(1899, 12, 30)
# Date fields that accept a year-only or month-only value, and the quality field that says which.
PARTIAL_DATE_FIELDS = {"registration_date": "registration_date_quality"}
_YEAR_ONLY = re.compile(r"^(?:(?:00|\?\?|xx|XX)[-/. ](?:00|\?\?|xx|XX)[-/. ])?(\d{4})(?:\.0+)?$")
# A month and year without a day: 2019-03, 2019/03, 03/2019, 03.2019.
_MONTH_ONLY = (re.compile(r"^(\d{4})[-/.](\d{1,2})$"), re.compile(r"^(\d{1,2})[-/.](\d{4})$"))


@dataclass(frozen=True)
class Parsed:
    value: Any = None
    kind: FindingKind | None = None
    detail: str = ""
    year_only: bool = False
    month_only: bool = False


MISSING = Parsed()
Parser = Callable[[str], Parsed]


def _code_lookup(field: Field, fm: FieldMapping) -> Callable[[str], str | bool | None]:
    """Returns code, None (mapped to missing), or False (unknown)."""
    explicit = dict(fm.codes or {})
    folded = {k.strip().casefold(): v for k, v in explicit.items()}
    own = {c.code.casefold(): c.code for c in field.codes or ()}
    own.update({c.label.casefold(): c.code for c in field.codes or ()})

    def lookup(text: str) -> str | bool | None:
        if text in explicit:
            return explicit[text]
        key = text.strip().casefold()
        if key in folded:
            return folded[key]
        if not explicit and key in own:
            return own[key]
        return False

    return lookup


def country_of(text: str) -> str | None:
    """The ISO alpha-2 code a country value names (a code, or a name pycountry knows), if any."""
    code = country_code(text)
    if code:
        return code
    try:
        return str(pycountry.countries.lookup(text.strip()).alpha_2)
    except LookupError:
        return None


def _country_lookup(fm: FieldMapping) -> Callable[[str], str | bool | None]:
    explicit = {k.strip().casefold(): v for k, v in (fm.codes or {}).items()}

    def lookup(text: str) -> str | bool | None:
        key = text.strip().casefold()
        if key in explicit:
            target = explicit[key]
            return None if target is None else country_code(target) or False
        return country_of(text) or False

    return lookup


def code_parser(field: Field, fm: FieldMapping) -> Parser:
    lookup = _code_lookup(field, fm)

    def parse(text: str) -> Parsed:
        got = lookup(text)
        if got is False:
            return Parsed(kind=FindingKind.UNKNOWN_CODE, detail=f"not a code of {field.name}")
        return Parsed(got)

    return parse


def country_parser(fm: FieldMapping) -> Parser:
    lookup = _country_lookup(fm)

    def parse(text: str) -> Parsed:
        got = lookup(text)
        if got is False:
            return Parsed(kind=FindingKind.UNKNOWN_COUNTRY, detail="not an ISO 3166 country")
        return Parsed(got)

    return parse


def multi_parser(single: Parser, separator: str | None, missing: frozenset[str]) -> Parser:
    def parse(text: str) -> Parsed:
        parts = text.split(separator) if separator else [text]
        out: list[str] = []
        for part in parts:
            part = part.strip()
            if not part or part in missing:
                continue
            p = single(part)
            if p.kind is not None:
                return p
            if p.value is not None and p.value not in out:
                out.append(p.value)
        return Parsed(out)

    return parse


def _month_only(text: str) -> date | None:
    for i, pattern in enumerate(_MONTH_ONLY):
        m = pattern.match(text)
        if m:
            year, month = (int(m.group(1)), int(m.group(2))) if i == 0 else (int(m.group(2)), int(m.group(1)))
            if 1 <= month <= 12 and year >= 1900:
                return date(year, month, 1)
    return None


def date_parser(fm: FieldMapping, field_name: str, allow_year_only: bool,
                allow_month_only: bool = False) -> Parser:
    fmt = fm.date_format or "%Y-%m-%d"

    def parse(text: str) -> Parsed:
        t = text.strip()
        try:
            return Parsed(datetime.strptime(t, fmt).date())
        except ValueError:
            pass
        if t[:10] != t and len(t) >= 10:
            # Spreadsheet cells carry a time part ("2021-03-04 00:00:00"); the date is what counts.
            try:
                return Parsed(datetime.strptime(t[:10], "%Y-%m-%d").date())
            except ValueError:
                pass
        try:
            return Parsed(date.fromisoformat(t))
        except ValueError:
            pass
        if t.isdigit() and 20000 <= int(t) <= 80000:
            # An Excel serial day number (1954..2119) that lost its date formatting.
            return Parsed(EXCEL_EPOCH + timedelta(days=int(t)))
        m = _YEAR_ONLY.match(t)
        if allow_year_only and m:
            return Parsed(date(int(m.group(1)), 1, 1), year_only=True)
        month = _month_only(t) if allow_month_only else None
        if month is not None:
            return Parsed(month, month_only=True)
        return Parsed(kind=FindingKind.BAD_DATE, detail=f"{field_name} does not match {fmt}")

    return parse


def integer_parser(field: Field) -> Parser:
    def parse(text: str) -> Parsed:
        t = text.strip()
        try:
            number = float(t)
        except ValueError:
            return Parsed(kind=FindingKind.BAD_NUMBER, detail=f"{field.name} is not a number")
        if not number.is_integer():
            return Parsed(kind=FindingKind.BAD_NUMBER, detail=f"{field.name} is not a whole number")
        value = int(number)
        if (field.min is not None and value < field.min) or (field.max is not None and value > field.max):
            return Parsed(kind=FindingKind.OUT_OF_RANGE,
                          detail=f"{field.name} outside {field.min}..{field.max}")
        return Parsed(value)

    return parse


def string_parser(text: str) -> Parsed:
    return Parsed(text.strip())


def parser_for(field: Field, fm: FieldMapping, missing: frozenset[str]) -> Parser:
    if field.type == FieldType.CODE:
        return code_parser(field, fm)
    if field.type == FieldType.COUNTRY:
        return country_parser(fm)
    if field.type == FieldType.CODES:
        return multi_parser(code_parser(field, fm), fm.split, missing)
    if field.type == FieldType.COUNTRIES:
        return multi_parser(country_parser(fm), fm.split, missing)
    if field.type == FieldType.DATE:
        # Partial dates (year or month only) are kept with a quality flag where the standard has
        # one; elsewhere they are an error, since the day would be invented.
        partial = field.name in PARTIAL_DATE_FIELDS
        return date_parser(fm, field.name, allow_year_only=partial or field.name == "date_of_birth",
                           allow_month_only=partial)
    if field.type == FieldType.INTEGER:
        return integer_parser(field)
    return string_parser
