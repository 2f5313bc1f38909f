"""What a plain table brought to ``anonymise`` or ``risk`` must not be: identifiers, or counts.

``identifier_columns``: columns that look like direct identifiers, by name (name, phone, email,
document, address, date of birth) or by content (phone numbers, e-mail addresses, document
numbers, personal names). ``accord anonymise`` passes every column it is not told about through
unchanged, so such a column would be published as it is.

``count_columns``: a table of counts (UNODC GLOTIP-style: one row per category, a column of
numbers of people) is not microdata; its "classes" are categories, not people, so k, l and
re-identification risk computed on it mean nothing.

Only column names and the kind of pattern are ever reported, never a value. The patterns are
plain regular expressions on a sample of values (no library detects these reliably for the
mixed-language exports partners send; presidio and the like need models we do not ship).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

SAMPLE = 2000
_SHARE = 0.5  # share of the sampled non-empty values that must match a content pattern

_NAME_WORDS = {
    "name": "a name", "names": "a name", "fullname": "a name", "firstname": "a name",
    "givenname": "a name", "lastname": "a name", "familyname": "a name", "surname": "a name",
    "middlename": "a name", "fathername": "a name", "mothername": "a name",
    "phone": "a phone number", "phonenumber": "a phone number", "mobile": "a phone number",
    "mobilephone": "a phone number", "telephone": "a phone number", "tel": "a phone number",
    "cell": "a phone number", "whatsapp": "a phone number",
    "email": "an e-mail address", "emailaddress": "an e-mail address", "mail": "an e-mail address",
    "passport": "a document number", "passportnumber": "a document number",
    "documentnumber": "a document number", "document": "a document number",
    "idnumber": "a document number", "nationalid": "a document number",
    "nationalidnumber": "a document number", "identitynumber": "a document number",
    "ssn": "a document number", "nin": "a document number",
    "address": "an address", "streetaddress": "an address", "homeaddress": "an address",
    "dob": "a date of birth", "dateofbirth": "a date of birth", "birthdate": "a date of birth",
    "birthday": "a date of birth",
}

_PHONE = re.compile(r"^\+?[\d\s().\-/]{7,20}$")
_DATE = re.compile(r"^\d{1,4}[-/.]\d{1,2}[-/.]\d{1,4}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$")
_DOCUMENT = re.compile(r"^(?=.*\d)(?=.*[A-Za-z])[A-Za-z0-9\-]{6,15}$")
_PERSON_NAME = re.compile(r"^[^\W\d_][^\W\d_'\-]+(?:[\s'\-][^\W\d_][^\W\d_'\-]+){1,4}$")

_COUNT_NAMES = {"count", "counts", "n", "freq", "frequency", "frequencies", "total", "totals",
                "value", "values", "txtvalue", "obsvalue", "number", "numberof", "cases",
                "victims", "persons", "people", "nvictims", "ncases", "numvictims"}
_COUNT = re.compile(r"^(?:\d+(?:\.0+)?|<\s*\d+|\d+\s*-\s*\d+)$")
_UNIT_NAMES = {"unit", "units", "unitofmeasurement", "unitofmeasure", "measure", "unitmeasure"}


def _normalise(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def _sample(column: pa.ChunkedArray) -> list[str]:
    values = pc.cast(column, pa.string()).to_pylist()
    out = [v.strip() for v in values[: SAMPLE * 4] if v is not None and v.strip() != ""]
    return out[:SAMPLE]


def _share(values: list[str], pattern: re.Pattern[str]) -> float:
    return sum(1 for v in values if pattern.match(v)) / len(values) if values else 0.0


@dataclass(frozen=True)
class Finding:
    column: str
    looks_like: str  # "a phone number", ... (never a value)
    by: str  # "name" or "content"


def identifier_columns(table: pa.Table, columns: Iterable[str] | None = None) -> list[Finding]:
    """Columns that look like direct identifiers, by name or by content."""
    out = []
    for name in columns if columns is not None else table.column_names:
        kind = _NAME_WORDS.get(_normalise(name))
        if kind is not None:
            out.append(Finding(name, kind, "name"))
            continue
        values = _sample(table.column(name))
        if len(values) < 3:
            continue
        distinct = len(set(values)) / len(values)
        digits = [v for v in values if sum(ch.isdigit() for ch in v) >= 7 and not _DATE.match(v)]
        if _share(values, _EMAIL) >= _SHARE:
            out.append(Finding(name, "an e-mail address", "content"))
        elif len(digits) / len(values) >= _SHARE and _share(digits, _PHONE) >= _SHARE:
            out.append(Finding(name, "a phone number", "content"))
        elif distinct >= _SHARE and _share(values, _DOCUMENT) >= _SHARE:
            out.append(Finding(name, "a document number", "content"))
        elif distinct >= _SHARE and _share(values, _PERSON_NAME) >= _SHARE and any(
                ch.isupper() for v in values[:50] for ch in v[:1]):
            out.append(Finding(name, "a name", "content"))
    return out


def count_columns(table: pa.Table, exclude: Iterable[str] = ()) -> list[str]:
    """Columns that make the table look like a table of counts (one row per category)."""
    skip = set(exclude)
    found = []
    for name in table.column_names:
        if name in skip:
            continue
        norm = _normalise(name)
        values = _sample(table.column(name))
        if not values:
            continue
        if (norm in _COUNT_NAMES and _share(values, _COUNT) >= 0.9) or (norm in _UNIT_NAMES and _share(
                values, re.compile(r"^(?:counts?|number|persons|people|victims)$", re.I)) >= 0.5):
            found.append(name)
    return found
