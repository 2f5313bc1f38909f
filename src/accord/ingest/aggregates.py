"""Aggregate tables in (GLOTIP-shaped: country, year, sex, age group, form of exploitation, count).

Agencies that publish only counts (UNODC's Global Report, national rapporteurs) contribute
tables, not records. A table is checked whole against the standard's code lists before anything
is stored: an unknown code, a year or a count that is not a whole number, or a negative count
refuses the file, naming the row and the column. A suppression mark (`<5`) is kept as a mark,
never turned into a number. Rows of a GLOTIP export that are not counts of detected victims by
form of exploitation (offences, prosecutions, by citizenship...) are counted as out of scope.
"""

from __future__ import annotations

import csv
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pycountry

from accord.errors import InputFileError
from accord.input_files import refuse_special_file
from accord.standard import Standard

TOTAL = "_T"
SCHEMA = pa.schema([("country", pa.string()), ("year", pa.int32()), ("sex", pa.string()),
                    ("age", pa.string()), ("form", pa.string()), ("count", pa.int64()), ("mark", pa.string())])
SIMPLE = ("country", "year", "sex", "age_group", "form_of_exploitation", "count")
GLOTIP = ("Iso3_code", "Country", "Indicator", "Dimension", "Category", "Sex", "Age", "Year", "txtVALUE")
GLOTIP_INDICATOR = "Detected trafficking victims"
GLOTIP_DIMENSIONS = ("Total", "by form of exploitation")
MARK = re.compile(r"^<\s*(\d+)$")
# Age groups of aggregate tables: the standard's majority_status bands, as UNODC words them too.
AGES = {"minor": "minor", "0 to 17 years": "minor", "0-17": "minor", "adult": "adult",
        "18 years or over": "adult", "18+": "adult", "unknown": "unknown"}
MAX_PROBLEMS = 50


@dataclass
class AggregateTable:
    table: pa.Table  # SCHEMA
    out_of_scope: Counter[str] = field(default_factory=Counter)
    rows_in: int = 0
    duplicates: int = 0  # repeated rows with the same key and the same value (one kept)
    conflicting: int = 0  # rows whose key repeats with another value: none of them kept
    first_conflict: int | None = None  # source row of the first conflicting key

    @property
    def marks(self) -> int:
        return sum(1 for m in self.table["mark"].to_pylist() if m)


def _norm(text: str) -> str:
    return re.sub(r"[^0-9a-z+]+", " ", text.casefold()).strip()


def _lookup(standard: Standard, field_name: str, extra: dict[str, str]) -> dict[str, str]:
    f = standard.field(field_name)
    keys = {_norm(k): v for k, v in extra.items()}
    for c in f.codes or ():
        for text in (c.code, c.label, *c.aliases):
            keys.setdefault(_norm(text), c.code)
    keys[_norm("total")] = TOTAL
    return keys


def _country(text: str, overrides: dict[str, str]) -> str | None:
    t = text.strip()
    if t.casefold() in overrides:
        return overrides[t.casefold()]
    for get in (lambda: pycountry.countries.get(alpha_3=t.upper()), lambda: pycountry.countries.get(alpha_2=t.upper())):
        c = get() if len(t) in (2, 3) else None
        if c is not None:
            return str(c.alpha_2)
    return None


def _count(text: str) -> tuple[int | None, str | None, bool]:
    """(count, mark, ok). Thousands separators are accepted ("1,282"); "<5" is a mark."""
    t = text.strip()
    if MARK.match(t):
        return None, "<" + MARK.match(t).group(1), True  # type: ignore[union-attr]
    if re.fullmatch(r"\d{1,3}(,\d{3})+|\d+(\.0+)?", t):
        return int(float(t.replace(",", ""))), None, True
    return None, None, False


def read_aggregates(path: Path, standard: Standard, country_overrides: dict[str, str] | None = None
                    ) -> AggregateTable:
    overrides = {k.casefold(): v.upper() for k, v in (country_overrides or {}).items()}
    for name, code in overrides.items():
        if pycountry.countries.get(alpha_2=code) is None:
            raise InputFileError(f"--country {name}={code}: {code} is not an ISO 3166 alpha-2 code")
    refuse_special_file(path, "aggregate table")
    try:
        fh = path.open(encoding="utf-8-sig", newline="")
    except OSError as exc:
        raise InputFileError(f"cannot read {path}: {exc.strerror}") from None
    with fh:
        reader = csv.DictReader(fh)
        header = reader.fieldnames or []
        glotip = all(c in header for c in GLOTIP)
        lower = {h.strip().casefold(): h for h in header}
        if not glotip and not all(c in lower for c in SIMPLE):
            # One header cell holding the others: the file is not comma-separated (a spreadsheet
            # saved with ';' or tabs), which is said, not left to "needs the columns".
            other = next((sep for sep in (";", "\t", "|") if len(header) == 1 and sep in header[0]), None)
            raise InputFileError(
                f"{path.name} is not an aggregate table: it needs the columns {', '.join(SIMPLE)} "
                "(or a UNODC GLOTIP export)"
                + (f"; its header is one column holding {other!r}: it is not comma-separated" if other else ""),
                hint=("save it as CSV with commas between the columns; " if other else "")
                + "docs/interop.md (aggregate tables) describes both shapes")
        col = ({"country": "Iso3_code", "year": "Year", "sex": "Sex", "age": "Age", "form": "Category",
                "count": "txtVALUE"} if glotip else
               {"country": lower["country"], "year": lower["year"], "sex": lower["sex"],
                "age": lower["age_group"], "form": lower["form_of_exploitation"], "count": lower["count"]})
        sexes = _lookup(standard, "sex", {"other": "other"})
        forms = _lookup(standard, "type_of_exploitation", {})
        ages = {_norm(k): v for k, v in AGES.items()} | {_norm("total"): TOTAL}
        out: dict[str, list[object]] = {n: [] for n in (*SCHEMA.names, "line")}
        scope: Counter[str] = Counter()
        problems: list[str] = []
        rows = 0
        for line, row in enumerate(reader, start=2):
            rows += 1
            if glotip and (row["Indicator"] != GLOTIP_INDICATOR or row["Dimension"] not in GLOTIP_DIMENSIONS):
                scope[f"{row['Indicator']} / {row['Dimension']}"] += 1
                continue
            where = f"row {line}"
            country_text = row[col["country"]] or (row.get("Country") or "" if glotip else "")
            country = _country(country_text, overrides)
            if country is None:
                problems.append(f"{where}, column {col['country']}: not an ISO 3166 country"
                                # UNODC's public export names the country: that name is what --country maps
                                + (f" ({row.get('Country')}; map it with --country NAME=CODE)" if glotip else ""))
            year_text = (row[col["year"]] or "").strip()
            if not re.fullmatch(r"(19|20)\d\d", year_text):
                problems.append(f"{where}, column {col['year']}: not a year")
            sex = sexes.get(_norm(row[col["sex"]] or ""))
            if sex is None:
                problems.append(f"{where}, column {col['sex']}: not a sex code of the standard")
            age = ages.get(_norm(row[col["age"]] or ""))
            if age is None:
                problems.append(f"{where}, column {col['age']}: not an age group "
                                "(minor / adult / unknown / total)")
            form = TOTAL if glotip and row["Dimension"] == "Total" else forms.get(_norm(row[col["form"]] or ""))
            if form is None:
                problems.append(f"{where}, column {col['form']}: not a form of "
                                "exploitation of the standard")
            count, mark, ok = _count(row[col["count"]] or "")
            if not ok:
                text = (row[col["count"]] or "").strip()
                problems.append(f"{where}, column {col['count']}: "
                                + ("a negative count" if text.startswith("-") else "not a count or a '<n' mark"))
            if len(problems) >= MAX_PROBLEMS:
                break
            for k, v in (("country", country), ("year", int(year_text) if year_text.isdigit() else None),
                         ("sex", sex), ("age", age), ("form", form), ("count", count), ("mark", mark),
                         ("line", line)):
                out[k].append(v)
    if problems:
        raise InputFileError(f"{path.name} is refused: " + "; ".join(problems[:3])
                             + (f" (and {len(problems) - 3} more problems)" if len(problems) > 3 else ""),
                             hint="correct the table; nothing was stored")
    if not out["country"]:
        raise InputFileError(f"{path.name} holds no counts of detected victims",
                             hint="an aggregate table needs at least one row in scope")
    lines = out.pop("line")
    return _deduplicate(AggregateTable(pa.table(out, schema=SCHEMA), scope, rows), lines)


def _deduplicate(result: AggregateTable, lines: list[object]) -> AggregateTable:
    """One row per (country, year, sex, age, form). A key given twice with different values (UNODC's
    own export has some) cannot be resolved here: all its rows are left out and counted."""
    rows = result.table.to_pylist()
    by_key: dict[tuple[object, ...], list[int]] = {}
    for i, r in enumerate(rows):
        by_key.setdefault((r["country"], r["year"], r["sex"], r["age"], r["form"]), []).append(i)
    keep: list[int] = []
    for idx in by_key.values():
        values = {(rows[i]["count"], rows[i]["mark"]) for i in idx}
        if len(values) == 1:
            keep.append(idx[0])
            result.duplicates += len(idx) - 1
        else:
            result.conflicting += len(idx)
            first = min(int(lines[i]) for i in idx)  # type: ignore[call-overload]
            result.first_conflict = first if result.first_conflict is None else min(result.first_conflict, first)
    result.table = result.table.take(pa.array(sorted(keep), pa.int64()))
    return result
