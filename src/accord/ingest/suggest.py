"""`accord mapping suggest`: propose a mapping for an export from its headers, labels and values.

The proposal is for a person to review and edit, so every guess is listed with its reason, and
the rules are conservative: a column becomes a coded field only when *every* value it holds maps
to a code (a column with values the standard lacks is reported, never half-mapped); identifier
fields are proposed only from a column's name or form label, never from its values alone, and
each is called out; a column that looks like a direct identifier is never proposed for a field
that leaves the partner. Hand-written because no library matches headers to a data standard.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from accord.errors import MappingError
from accord.ingest.identifiers import identifier_kind, identifier_values
from accord.ingest.readers import detect_format, iter_table, read_header
from accord.ingest.values import _YEAR_ONLY, _month_only, country_of
from accord.standard import Field, FieldRole, FieldType, Standard

SAMPLE_ROWS = 20_000
MAX_DISTINCT = 300
MISSING = frozenset({"", "na", "n/a", "-99", "null", "none", "unknown_missing"})
FLAG_VALUES = frozenset({"0", "1", "0.0", "1.0", "true", "false", "yes", "no"})
SET_BY_INGEST = frozenset({"dob_quality", "registration_date_quality", "age_quality"})


def norm(text: str) -> str:
    """Lower-case letters and digits only: 'Sex / gender' and 'sex_gender' compare equal."""
    spaced = re.sub(r"([a-z])([A-Z])", r"\1 \2", text)
    return re.sub(r"[^0-9a-z]+", "", spaced.casefold())


@dataclass
class Suggestion:
    fields: dict[str, dict[str, Any]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    source: dict[str, Any] = field(default_factory=dict)

    def as_mapping(self) -> dict[str, Any]:
        return {"mapping_version": 1, "description": "Suggested by `accord mapping suggest`: review before use",
                "source": self.source, "missing_values": [""], "fields": self.fields}


def _form_labels(form: Path) -> dict[str, str]:
    """XLSForm question name -> label (the first label column), read with openpyxl."""
    from openpyxl import load_workbook

    try:
        sheet = load_workbook(form, read_only=True)["survey"]
    except KeyError:
        raise MappingError(f"the XLSForm {form} has no 'survey' sheet",
                           hint="give the form's .xlsx file (with a 'survey' sheet)") from None
    except Exception as exc:  # openpyxl raises many types on a missing, non-zip or damaged file
        what = exc.strerror if isinstance(exc, OSError) and exc.strerror else "not a readable .xlsx workbook"
        raise MappingError(f"cannot read the XLSForm {form}: {what}",
                           hint="give the form's .xlsx file (with a 'survey' sheet)") from None
    rows = sheet.iter_rows(values_only=True)
    header = [str(c or "") for c in next(rows)]
    name_i = header.index("name") if "name" in header else -1
    label_i = next((i for i, h in enumerate(header) if h.startswith("label")), -1)
    if name_i < 0 or label_i < 0:
        raise MappingError(f"{form} has no name/label columns in its survey sheet")
    return {str(r[name_i]): str(r[label_i]) for r in rows if r[name_i] and r[label_i]}


def _sample(export: Path, fmt: str) -> tuple[list[str], dict[str, Counter[str]]]:
    columns = read_header(export, fmt, "auto", None, None)
    values: dict[str, Counter[str]] = {c: Counter() for c in columns}
    seen = 0
    for raw in iter_table(export, fmt, "auto", None, None):
        for c in columns:
            counter = values[c]
            for v in raw.table[c].to_pylist()[: SAMPLE_ROWS - seen]:
                v = (v or "").strip()
                if len(counter) < MAX_DISTINCT or v in counter:
                    counter[v] += 1
        seen += raw.num_rows
        if seen >= SAMPLE_ROWS:
            break
    return columns, values


def _code_keys(f: Field) -> dict[str, str]:
    keys: dict[str, str] = {}
    for c in f.codes or ():
        for text in (c.code, c.label, c.htcds, c.ctdc, *c.aliases):
            if text:
                keys.setdefault(norm(text), c.code)
    return keys


def _fit(f: Field, values: Counter[str]) -> tuple[bool, dict[str, Any], list[str]]:
    """Does every non-missing value fit field ``f``? Returns (fits, mapping extras, unmatched values)."""
    present = [v for v in values if v.casefold() not in MISSING]
    if not present:
        return False, {}, []
    if f.type.is_coded:
        keys = _code_keys(f)
        split = None
        if f.type.is_multi and any(" " in v for v in present) and not all(norm(v) in keys for v in present):
            split = " "
        parts = {p for v in present for p in (v.split(split) if split else [v]) if p}
        unmatched = sorted(p for p in parts if norm(p) not in keys)
        codes = {p: keys[norm(p)] for p in sorted(parts) if norm(p) in keys}
        # Written out whole once any value differs from its code: a `codes` block replaces the
        # standard's own codes and labels in the lookup.
        extra: dict[str, Any] = {"codes": codes} if any(p != c for p, c in codes.items()) else {}
        if split:
            extra["split"] = split
        return not unmatched, extra, unmatched
    if f.type in (FieldType.COUNTRY, FieldType.COUNTRIES):
        split = " " if f.type.is_multi and any(" " in v for v in present) and \
            not all(country_of(v) for v in present) else None
        parts = {p for v in present for p in (v.split(split) if split else [v]) if p}
        unmatched = sorted(p for p in parts if country_of(p) is None)
        return not unmatched, ({"split": split} if split else {}), unmatched
    if f.type == FieldType.DATE:
        unmatched = [v for v in present if not (re.match(r"^\d{4}-\d{2}-\d{2}", v) or _YEAR_ONLY.match(v)
                                                or _month_only(v))]
        return not unmatched, {}, sorted(unmatched)
    if f.type == FieldType.INTEGER:
        unmatched = [v for v in present if not re.fullmatch(r"-?\d+(\.0+)?", v)]
        return not unmatched, {}, sorted(unmatched)
    return True, {}, []


_NEEDS = {FieldType.DATE: "a date YYYY-MM-DD, YYYY-MM or YYYY", FieldType.INTEGER: "a whole number",
          FieldType.COUNTRY: "an ISO 3166 country", FieldType.COUNTRIES: "an ISO 3166 country"}
_FIX = {FieldType.DATE: "with a `date_format`", FieldType.INTEGER: "once its values are whole numbers"}


def _unfit_note(f: Field, column: str, values: Counter[str], unmatched: int, standard: Standard) -> str:
    """Why a column named like ``f`` is not mapped, by counts and shape only: the notes are printed
    and kept in the mapping file, and a column's values are record values (a name typed into the
    wrong column, a date), so none is quoted. The fields whose codes do take every value are named,
    which is usually what the reviewer needs (a sex column holding the case type's codes)."""
    present = sum(1 for v in values if v.casefold() not in MISSING)
    of = f"{present}{'+' if len(values) >= MAX_DISTINCT else ''} distinct values sampled"
    if f.type.is_multi:
        what = f"{unmatched} list item{'' if unmatched == 1 else 's'} (in the {of})"
    else:
        what = f"{unmatched} of the {of}"
    others = [g.name for g in standard.fields if g.type.is_coded and g is not f
              and g.role != FieldRole.IDENTIFIER and _fit(g, values)[0]]
    fit = (f" (every value is a code of {', '.join(others)})" if others
           else " (nor a code of any other field)" if f.type.is_coded else "")
    fix = _FIX.get(f.type, "with a `codes` block for the values the standard lacks")
    return (f"{f.name}: '{column}' matches by name but {what} {'is' if unmatched == 1 else 'are'} not "
            f"{_NEEDS.get(f.type, f'a code of {f.name}')}{fit}; not mapped (map the column by hand {fix})")


def _header_matches(f: Field, header: str, label: str | None) -> str | None:
    """Why the column's name or label names field ``f``, or None. ``label`` is the form's other
    name for the column: its label when the header is a question name, or its name when the
    header is a label (Kobo exports either)."""
    leaf = header.rsplit("/", 1)[-1]
    names = {norm(header), norm(leaf)} | ({norm(label)} if label else set())
    if norm(f.name) in names:
        return "header is the field's name"
    if f.ctdc and norm(f.ctdc) in names:
        return f"CTDC column {f.ctdc}"
    if f.htcds and (norm(f.htcds) in names or norm(f.htcds.split("_", 1)[-1]) in names):
        return f"HTCDS field {f.htcds}"
    if norm(f.label) in names:
        return "header is the field's label"
    return None


def suggest_mapping(export: Path, standard: Standard, form: Path | None = None,
                    constants: dict[str, str] | None = None) -> Suggestion:
    fmt = detect_format(export, None)
    columns, values = _sample(export, fmt)
    labels = _form_labels(form) if form else {}
    out = Suggestion(source={"format": fmt})
    used: set[str] = set()
    constants = dict(constants or {})
    for name in constants:
        if name not in standard.field_names:
            raise MappingError(f"--set names '{name}', which is not a field of the standard",
                               hint="`accord standard dictionary` lists the fields")

    by_label = {norm(label): name for name, label in labels.items()}

    def label_of(column: str) -> str | None:
        return labels.get(column) or labels.get(column.rsplit("/", 1)[-1]) or by_label.get(norm(column))

    # 1. Identifier fields: by name or label only, and always called out.
    for f in standard.identifiers:
        if f.name in constants:
            continue
        for c in columns:
            reason = _header_matches(f, c, label_of(c))
            if reason and c not in used:
                out.fields[f.name] = {"column": c}
                used.add(c)
                out.notes.append(f"IDENTIFIER {f.name} <- '{c}' ({reason}): check it; it stays with you")
                break
    # 2. Other fields by name/label, kept only when every value fits.
    for f in standard.fields:
        if f.role == FieldRole.IDENTIFIER or f.name in constants or f.name in SET_BY_INGEST:
            continue
        for c in columns:
            if c in used:
                continue
            reason = _header_matches(f, c, label_of(c))
            if not reason:
                continue
            if identifier_kind(c, label_of(c)) or identifier_values(list(values[c])):
                out.notes.append(f"'{c}' looks like a direct identifier: not proposed for {f.name}")
                continue
            fits, extra, unmatched = _fit(f, values[c])
            if fits:
                out.fields[f.name] = {"column": c, **extra}
                used.add(c)
                out.notes.append(f"{f.name} <- '{c}' ({reason})")
                break
            out.notes.append(_unfit_note(f, c, values[c], len(unmatched), standard))
    # 3. 0/1 flag columns that a crosswalk names as one code of a multi-valued field.
    for f in standard.fields:
        if not f.type.is_multi or f.name in out.fields or f.name in constants:
            continue
        flags: dict[str, str] = {}
        for c in columns:
            if c in used:
                continue
            present = {v.casefold() for v in values[c] if v.casefold() not in MISSING}
            if not present or not present <= FLAG_VALUES:
                continue
            code = next((x.code for x in f.codes or () if x.ctdc and norm(x.ctdc) == norm(c)), None)
            if code and code not in flags.values():
                flags[c] = code
        if flags:
            out.fields[f.name] = {"flags": flags}
            used.update(flags)
            out.notes.append(f"{f.name} <- flag columns {', '.join(flags)} (CTDC crosswalk)")
    # 4. A case number: a column whose sampled values are all distinct, named as a guess.
    if "case_id" not in out.fields and "case_id" not in constants:
        unique = [c for c in columns if c not in used and values[c] and "" not in values[c]
                  and all(n == 1 for n in values[c].values())]
        if unique:
            out.fields["case_id"] = {"column": unique[0]}
            used.add(unique[0])
            out.notes.append(f"IDENTIFIER case_id <- '{unique[0]}' (GUESS: every sampled value is distinct); "
                             "check it is the case number")
    for name, value in constants.items():
        out.fields[name] = {"value": value}
        out.notes.append(f"{name} = {value} (given with --set)")
    for c in columns:
        if c not in used:
            kind = identifier_kind(c, label_of(c)) or identifier_values(list(values[c]))
            out.notes.append(f"'{c}' not mapped" + (f" (looks like a {kind}: an identifier field or nothing)"
                                                    if kind else ""))
    missing = [f.name for f in standard.fields if f.required and f.name not in out.fields]
    if missing:
        out.notes.append("REQUIRED and not found: " + ", ".join(missing)
                         + " (map a column, or pass --set FIELD=VALUE for a constant)")
    if not used:
        raise _nothing_matched(export, len(columns), form is not None)
    order = {n: i for i, n in enumerate(standard.field_names)}
    out.fields = dict(sorted(out.fields.items(), key=lambda kv: order[kv[0]]))
    return out


def _nothing_matched(export: Path, columns: int, with_form: bool) -> MappingError:
    """No column of the export fits a field: a mapping of `--set` constants alone maps nothing of
    it (ingest would refuse every row), so none is written and the user is told what to try."""
    form = "" if with_form else "give --form with the XLSForm the export came from (its labels are matched too), or "
    return MappingError(f"no column of {export} matched a field of the standard by name, form label or values "
                        f"({columns} column{'' if columns == 1 else 's'} read); no mapping written",
                        hint=f"{form}write the mapping by hand (docs/mapping.md; `accord standard dictionary` "
                        "lists the fields)")


def suggestion_yaml(s: Suggestion) -> str:
    import yaml

    notes = "".join(f"#   {n}\n" for n in s.notes)
    return ("# Suggested by `accord mapping suggest`. Review every line before using it (docs/mapping.md).\n"
            + notes + yaml.safe_dump(s.as_mapping(), sort_keys=False, allow_unicode=True))
