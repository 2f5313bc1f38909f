"""Apply a mapping to a raw table: typed standard columns, derived columns and findings."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Protocol

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from accord.ingest.findings import FindingKind
from accord.ingest.mapping import FieldMapping, Mapping
from accord.ingest.readers import RawTable
from accord.ingest.values import MISSING, PARTIAL_DATE_FIELDS, Parsed, Parser, parser_for
from accord.standard import Field, FieldType, Standard
from accord.standard.arrow import arrow_type, derived_arrow_type

# "1.0"/"0.0": flag columns that passed through a float column (pandas, Stata, CTDC's files).
TRUE_FLAGS = frozenset({"1", "1.0", "true", "yes", "y"})
FALSE_FLAGS = frozenset({"0", "0.0", "false", "no", "n"})


class Recorder(Protocol):
    def __call__(self, mask: np.ndarray, field: str, kind_arr: np.ndarray | FindingKind,
                 detail_arr: np.ndarray | str, source_col: str | None) -> None: ...


FINDINGS_SCHEMA = pa.schema([("line", pa.int64()), ("field", pa.string()), ("reason", pa.string()),
                             ("detail", pa.string()), ("value", pa.string())])


@dataclass
class StandardisedBatch:
    """Rows in the standard's shape (identifiers still present), with what was wrong with them."""

    table: pa.Table  # one column per standard field + derived columns
    lines: np.ndarray  # source line per row
    findings: pa.Table  # FINDINGS_SCHEMA; `value` is the raw cell (partner side only)
    quarantined: np.ndarray  # bool per row

    @property
    def accepted_table(self) -> pa.Table:
        return self.table.filter(pa.array(~self.quarantined))


@dataclass
class _Column:
    values: pa.Array
    kinds: np.ndarray  # object array: FindingKind or None per row
    details: np.ndarray  # object array
    year_only: np.ndarray | None = None
    month_only: np.ndarray | None = None


def _bulk_dates(uniques: pa.Array, date_format: str | None) -> list[object]:
    """Dates that parse with the declared format, in C++; None where Python must look closer."""
    fmt = date_format or "%Y-%m-%d"
    text = pc.utf8_trim_whitespace(uniques)
    parsed = pc.strptime(text, format=fmt, unit="s", error_is_null=True)
    # Arrow rolls impossible dates over (31/02 becomes 03/03); keep only those that format back
    # to exactly what was written, and let the strict Python parser judge the rest.
    exact = pc.fill_null(pc.equal(pc.strftime(parsed, format=fmt), text), False)
    return pc.cast(pc.if_else(exact, parsed, pa.scalar(None, parsed.type)), pa.date32()).to_pylist()


def _apply_unique(raw: pa.ChunkedArray, parse: Parser, missing: frozenset[str],
                  out_type: pa.DataType, date_format: str | None = None) -> _Column:
    encoded = pc.dictionary_encode(raw).combine_chunks()
    uniques = encoded.dictionary.to_pylist()
    fast: list[object] = (_bulk_dates(encoded.dictionary, date_format) if pa.types.is_date32(out_type)
                          else [None] * len(uniques))
    parsed = [MISSING if u.strip() in missing else (Parsed(f) if f is not None else parse(u))
              for u, f in zip(uniques, fast, strict=True)]
    indices = encoded.indices.to_numpy(zero_copy_only=False)
    values = pc.take(pa.array([p.value for p in parsed], type=out_type), encoded.indices)
    kinds = np.array([p.kind for p in parsed] + [None], dtype=object)[:-1]
    details = np.array([p.detail for p in parsed] + [""], dtype=object)[:-1]
    year_only = np.array([p.year_only for p in parsed] + [False], dtype=bool)[:-1]
    month_only = np.array([p.month_only for p in parsed] + [False], dtype=bool)[:-1]
    return _Column(values, kinds[indices], details[indices], year_only[indices], month_only[indices])


def _apply_flags(raw: RawTable, fm: FieldMapping, missing: frozenset[str]) -> _Column:
    flags = fm.flags or {}
    n = raw.num_rows
    set_mask = np.zeros((n, len(flags)), dtype=bool)
    known = np.zeros((n, len(flags)), dtype=bool)
    kinds = np.full(n, None, dtype=object)
    details = np.full(n, "", dtype=object)
    for j, column in enumerate(flags):
        text = pc.utf8_lower(pc.utf8_trim_whitespace(raw.table[column]))
        is_true = np.asarray(pc.is_in(text, pa.array(sorted(TRUE_FLAGS))))
        is_false = np.asarray(pc.is_in(text, pa.array(sorted(FALSE_FLAGS))))
        is_missing = np.asarray(pc.is_in(text, pa.array(sorted(m.lower() for m in missing))))
        bad = ~(is_true | is_false | is_missing)
        kinds[bad & (kinds == None)] = FindingKind.BAD_FLAG  # noqa: E711 (numpy elementwise)
        details[bad] = f"flag column {column} is not 0/1"
        set_mask[:, j] = is_true
        known[:, j] = is_true | is_false
    codes = np.array(list(flags.values()), dtype=object)
    counts = set_mask.sum(axis=1)
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int32)
    _, cols = np.nonzero(set_mask)
    values = pa.ListArray.from_arrays(pa.array(offsets), pa.array(codes[cols].tolist(), pa.string()))
    # A row with no flag recorded at all is "unknown", not "none of these".
    values = pc.if_else(pa.array(known.any(axis=1)), values, pa.nulls(n, values.type))
    return _Column(values, kinds, details)


def _apply_field(raw: RawTable, field: Field, fm: FieldMapping, mapping: Mapping) -> _Column:
    missing = frozenset(mapping.missing_values) | frozenset(fm.missing)
    out_type = arrow_type(field.type)
    if fm.flags is not None:
        return _apply_flags(raw, fm, missing)
    if field.type == FieldType.STRING and fm.column is not None:
        # Free text and identifiers are mostly distinct per row: trim and blank out in C++.
        text = pc.utf8_trim_whitespace(raw.table[fm.column])
        absent = pc.is_in(text, pa.array(sorted(missing), pa.string()))
        values = pc.if_else(absent, pa.scalar(None, pa.string()), text).combine_chunks()
        n = raw.num_rows
        return _Column(values, np.full(n, None, dtype=object), np.full(n, "", dtype=object))
    parse = parser_for(field, fm, missing)
    if fm.value is not None:
        parsed: Parsed = parse(fm.value)
        n = raw.num_rows
        return _Column(pa.array([parsed.value] * n, type=out_type),
                       np.full(n, parsed.kind, dtype=object), np.full(n, parsed.detail, dtype=object))
    assert fm.column is not None
    return _apply_unique(raw.table[fm.column], parse, missing, out_type, fm.date_format)


def _precision(col: _Column, n: int) -> pa.Array:
    """exact / month_only / year_only per row; null where the date is missing."""
    year = col.year_only if col.year_only is not None else np.zeros(n, dtype=bool)
    month = col.month_only if col.month_only is not None else np.zeros(n, dtype=bool)
    labels = np.where(year, "year_only", np.where(month, "month_only", "exact")).astype(object)
    labels[~np.asarray(pc.is_valid(col.values))] = None
    return pa.array(labels.tolist(), pa.string())


# What a spreadsheet writes where it lost a value: error literals, and a run of '#' for a number or
# date too wide for its column (Excel writes what is displayed when it saves CSV).
_SPREADSHEET_ERROR = (r"^(#(VALUE!|REF!|DIV/0!|N/A|NAME\?|NUM!|NULL!|SPILL!|CALC!|FIELD!|BLOCKED!|CONNECT!"
                      r"|UNKNOWN!|BUSY!|GETTING_DATA)|#{3,})$")


def _broken_cells(raw: RawTable, fm: FieldMapping, missing: frozenset[str], field: str,
                  record: Recorder) -> np.ndarray:
    """Cells whose value was lost before Accord saw it: bytes that were not text (U+FFFD) and
    spreadsheet error values. They quarantine their row whatever the field's type: a damaged
    identifier would otherwise become a wrong pseudonym and silently break linkage."""
    n = raw.num_rows
    broken = np.zeros(n, dtype=bool)
    for column in fm.source_columns:
        text = raw.table[column]
        undecodable = np.asarray(pc.fill_null(pc.match_substring(text, "\ufffd"), False)) & ~broken
        record(undecodable, field, FindingKind.UNDECODABLE_TEXT,
               f"{field}: bytes that are not text in the file's encoding", column)
        broken |= undecodable
        trimmed = pc.utf8_trim_whitespace(text)
        error = np.asarray(pc.fill_null(pc.match_substring_regex(trimmed, _SPREADSHEET_ERROR), False))
        if missing:
            error &= ~np.asarray(pc.is_in(trimmed, pa.array(sorted(missing), pa.string())))
        error &= ~broken
        record(error, field, FindingKind.SPREADSHEET_ERROR, f"{field}: a spreadsheet error instead of a value",
               column)
        broken |= error
    return broken


def _age_from_dates(dob: pa.Array, reg: pa.Array) -> np.ndarray:
    """Whole years between birth and registration; -1 where either is missing."""
    d = pc.fill_null(dob, date(1, 1, 1))
    r = pc.fill_null(reg, date(1, 1, 1))
    years = np.asarray(pc.year(r)) - np.asarray(pc.year(d))
    before_birthday = (np.asarray(pc.month(r)) * 100 + np.asarray(pc.day(r))) < (
        np.asarray(pc.month(d)) * 100 + np.asarray(pc.day(d)))
    age = years - before_birthday.astype(np.int64)
    known = np.asarray(pc.is_valid(dob)) & np.asarray(pc.is_valid(reg))
    return np.where(known, age, -1)


def transform(raw: RawTable, mapping: Mapping, standard: Standard,
              today: date | None = None, seen_cases: set[str] | None = None) -> StandardisedBatch:
    """Map one chunk. ``seen_cases`` carries the case numbers of earlier chunks of the same export."""
    n = raw.num_rows
    today = today or date.today()
    columns: dict[str, pa.Array] = {}
    findings: list[pa.Table] = []
    quarantined = np.zeros(n, dtype=bool)
    year_only = np.zeros(n, dtype=bool)
    precision: dict[str, pa.Array] = {}
    field_bad: dict[str, np.ndarray] = {}

    def record(mask: np.ndarray, field: str, kind_arr: np.ndarray | FindingKind,
               detail_arr: np.ndarray | str, source_col: str | None) -> None:
        rows = np.nonzero(mask)[0]
        if not len(rows):
            return
        m = len(rows)
        kinds = [str(kind_arr)] * m if isinstance(kind_arr, FindingKind) else [str(k) for k in kind_arr[rows]]
        details = [detail_arr] * m if isinstance(detail_arr, str) else list(detail_arr[rows])
        values = raw.table[source_col].take(pa.array(rows)) if source_col else pa.array([""] * m)
        findings.append(pa.table([pa.array(raw.line_numbers[rows]), pa.array([field] * m), pa.array(kinds),
                                  pa.array(details, pa.string()), values], schema=FINDINGS_SCHEMA))
        quarantined[rows] = True

    for field in standard.fields:
        fm = mapping.fields.get(field.name)
        if fm is None:
            columns[field.name] = pa.nulls(n, arrow_type(field.type))
            continue
        col = _apply_field(raw, field, fm, mapping)
        columns[field.name] = col.values
        broken = _broken_cells(raw, fm, frozenset(mapping.missing_values) | frozenset(fm.missing), field.name,
                               record)
        bad = (col.kinds != None) & ~broken  # noqa: E711 (numpy elementwise)
        field_bad[field.name] = bad | broken
        record(bad, field.name, col.kinds, col.details, fm.column)
        if field.name == "date_of_birth" and col.year_only is not None:
            year_only = col.year_only
        if field.name in PARTIAL_DATE_FIELDS:
            precision[PARTIAL_DATE_FIELDS[field.name]] = _precision(col, n)

    for field in standard.fields:
        if not field.required:
            continue
        values = columns[field.name]
        empty = ~np.asarray(pc.is_valid(values))
        if field.type.is_multi:
            empty |= np.asarray(pc.fill_null(pc.equal(pc.list_value_length(values), 0), True))
        fm = mapping.fields.get(field.name)
        # A value that failed to parse already has its finding; "missing" would say it twice.
        empty &= ~field_bad.get(field.name, np.zeros(n, dtype=bool))
        record(empty, field.name, FindingKind.MISSING_REQUIRED, f"{field.name} is required",
               fm.column if fm else None)

    for quality, values in precision.items():
        if quality in columns:
            columns[quality] = values
    _derive(columns, standard, year_only, today, record, mapping)
    _flag_duplicate_cases(columns, raw, record, mapping, seen_cases)

    table = pa.table({name: columns[name] for name in columns})
    all_findings = pa.concat_tables(findings) if findings else FINDINGS_SCHEMA.empty_table()
    return StandardisedBatch(table, raw.line_numbers, all_findings, quarantined)


def _derive(columns: dict[str, pa.Array], standard: Standard, year_only: np.ndarray,
            today: date, rec: Recorder, mapping: Mapping) -> None:
    dob = columns["date_of_birth"]
    reg = columns["registration_date"]
    n = len(reg)
    dob_col = mapping.fields["date_of_birth"].column if "date_of_birth" in mapping.fields else None
    reg_col = mapping.fields["registration_date"].column if "registration_date" in mapping.fields else None
    born_after = np.asarray(pc.fill_null(pc.greater(dob, reg), False))
    rec(born_after, "date_of_birth", FindingKind.IMPLAUSIBLE_DATE,
        "date of birth after registration", dob_col)
    future = np.asarray(pc.fill_null(pc.greater(reg, pa.scalar(today, pa.date32())), False))
    rec(future, "registration_date", FindingKind.IMPLAUSIBLE_DATE,
        "registration date in the future", reg_col)

    from_dates = _age_from_dates(dob, reg)
    reported = np.asarray(pc.fill_null(columns["age"], -1), dtype=np.int64)
    age = np.where(from_dates >= 0, from_dates, reported)
    age_field = standard.field("age")
    too_old = age > (age_field.max or 200)
    rec(too_old & (from_dates >= 0), "age", FindingKind.OUT_OF_RANGE,
        "age from date of birth outside the plausible range", dob_col)
    known = age >= 0
    columns["age"] = pc.if_else(pa.array(known), pa.array(age.astype(np.int32)),
                                pa.nulls(n, pa.int32()))
    band_low, band_high = _reported_band(columns, standard, n)
    if "age_quality" in columns:
        quality_age = np.where(from_dates >= 0, "from_date_of_birth",
                               np.where(known, "reported", np.where(band_low >= 0, "band_only", "unknown")))
        columns["age_quality"] = pa.array(quality_age.tolist(), pa.string())

    has_dob = np.asarray(pc.is_valid(dob))
    jan1 = has_dob & (np.asarray(pc.fill_null(pc.month(dob), 0)) == 1) & (
        np.asarray(pc.fill_null(pc.day(dob), 0)) == 1)
    quality = np.where(~has_dob, "unknown", np.where(year_only, "year_only",
                                                     np.where(jan1, "default_jan_1", "exact")))
    columns["dob_quality"] = pa.array(quality.tolist(), pa.string())

    # Where only a band was reported, a derived band is known when the reported band lies
    # wholly inside it (9-17 gives "minor" but not a 5-11 / 12-17 age group).
    low = np.where(known, age, band_low)
    high = np.where(known, age, band_high)
    for d in standard.derived:
        if d.bands:
            columns[d.name] = _bands_of_range(low, high, d.bands)
        elif d.rule == "wg_ss":
            columns[d.name] = _wg_ss(columns, d.sources or (d.source,), n)
        elif d.rule == "sexual_violence":
            columns[d.name] = _sexual_violence(columns, n)
        elif d.source == "registration_date":
            columns[d.name] = pc.cast(pc.year(reg), derived_arrow_type(standard, d.name))


def _reported_band(columns: dict[str, pa.Array], standard: Standard, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The age range of each row's reported band; -1 where there is none."""
    low = np.full(n, -1, dtype=np.int64)
    high = np.full(n, -1, dtype=np.int64)
    if "age_band_reported" not in columns or "age_band_reported" not in standard.field_names:
        return low, high
    ranges = {c.code: c.range for c in standard.field("age_band_reported").codes or () if c.range}
    for i, code in enumerate(columns["age_band_reported"].to_pylist()):
        r = ranges.get(code) if code is not None else None
        if r is not None:
            low[i], high[i] = r
    return low, high


def _bands_of_range(low: np.ndarray, high: np.ndarray, bands: tuple[tuple[int, int, str], ...]) -> pa.Array:
    """The band holding the whole range [low, high] of each row (an exact age has low == high)."""
    out = np.full(len(low), None, dtype=object)
    for b_low, b_high, label in bands:
        inside = (low >= 0) & (low >= b_low) & (high <= b_high)
        out[inside] = label
    return pa.array(out.tolist(), pa.string())


# What counts as sexual violence for the survivor flag (standard.yaml, sexual_violence_survivor).
SEXUAL_VIOLENCE = {"gbv_incident_type": ("rape", "sexual_assault"),
                   "type_of_exploitation": ("sexual_exploitation",)}


def _sexual_violence(columns: dict[str, pa.Array], n: int) -> pa.Array:
    """"yes" when any source list holds one of its sexual-violence codes; "no" when at least
    one source list is recorded without any; not recorded (null) when every source is empty."""
    yes = np.zeros(n, dtype=bool)
    recorded = np.zeros(n, dtype=bool)
    for name, codes in SEXUAL_VIOLENCE.items():
        if name not in columns:
            continue
        col = columns[name]
        lengths = np.asarray(pc.fill_null(pc.list_value_length(col), 0))
        recorded |= lengths > 0
        flat = pc.list_flatten(col)
        parents = np.asarray(pc.list_parent_indices(col).to_numpy(zero_copy_only=False),
                             dtype=np.int64)
        hit = np.asarray(pc.fill_null(pc.is_in(flat, pa.array(codes)), False), dtype=bool)
        yes[parents[hit]] = True
    out = np.full(n, None, dtype=object)
    out[recorded] = "no"
    out[yes] = "yes"
    return pa.array(out.tolist(), pa.string())


WG_DISABILITY = frozenset({"a_lot_of_difficulty", "cannot_do"})
WG_ANSWERED = frozenset({"no_difficulty", "some_difficulty"})


def _wg_ss(columns: dict[str, pa.Array], domains: tuple[str, ...], n: int) -> pa.Array:
    """The Washington Group's recommended cut-off: "a lot of difficulty" or worse in any domain.

    "no" needs every domain answered below the cut-off; otherwise the status is unknown (null).
    """
    disabled = np.zeros(n, dtype=bool)
    all_answered = np.ones(n, dtype=bool)
    for name in domains:
        values = pc.fill_null(columns[name], "")
        disabled |= np.asarray(pc.is_in(values, pa.array(sorted(WG_DISABILITY))))
        all_answered &= np.asarray(pc.is_in(values, pa.array(sorted(WG_ANSWERED | WG_DISABILITY))))
    out = np.full(n, None, dtype=object)
    out[all_answered] = "no"
    out[disabled] = "yes"
    return pa.array(out.tolist(), pa.string())


def _flag_duplicate_cases(columns: dict[str, pa.Array], raw: RawTable, record: Recorder,
                          mapping: Mapping, seen_cases: set[str] | None) -> None:
    case = columns["case_id"]
    if case.null_count == len(case):
        return
    if seen_cases:
        # A Python set lookup per row is cheaper than rebuilding an Arrow hash table of every
        # earlier case number for each chunk (that grew quadratically with the export).
        values = case.to_pylist()
        earlier = np.fromiter((v in seen_cases for v in values), dtype=bool, count=len(values))
        record(earlier, "case_id", FindingKind.DUPLICATE_CASE, "case number already seen earlier in this export",
               mapping.fields["case_id"].column if "case_id" in mapping.fields else None)
    if seen_cases is not None:
        seen_cases.update(v for v in pc.unique(case).to_pylist() if v is not None)
    encoded = pc.dictionary_encode(case)
    idx = np.asarray(pc.fill_null(encoded.indices, -1))
    order = np.argsort(idx, kind="stable")
    sorted_idx = idx[order]
    dup_sorted = np.zeros(len(idx), dtype=bool)
    dup_sorted[1:] = (sorted_idx[1:] == sorted_idx[:-1]) & (sorted_idx[1:] >= 0)
    dup = np.zeros(len(idx), dtype=bool)
    dup[order] = dup_sorted
    col = mapping.fields["case_id"].column if "case_id" in mapping.fields else None
    record(dup, "case_id", FindingKind.DUPLICATE_CASE,
           "case number already seen earlier in this export", col)

