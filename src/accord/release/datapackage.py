"""A Frictionless data package (``datapackage.json``) for every release that writes files.

Each file of the release becomes a resource with its size and SHA-256; a CSV becomes a tabular
data resource with a Table Schema whose field types are read from the file itself (pyarrow's
CSV reader), so the descriptor cannot drift from what was written. A CSV with an HXL hashtag row
under its header is described with every field as a string (the tag row is not data of the
column's type) and says so. Written by hand: the descriptor is a small JSON document, and the
``frictionless`` library (with its many dependencies) is not needed to write one.
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv

DESCRIPTOR = "datapackage.json"
MEDIA = {".csv": "text/csv", ".json": "application/json", ".parquet": "application/vnd.apache.parquet",
         ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
         ".md": "text/markdown", ".html": "text/html", ".xml": "application/xml"}


def _field_type(t: pa.DataType) -> str:
    if pa.types.is_integer(t):
        return "integer"
    if pa.types.is_floating(t) or pa.types.is_decimal(t):
        return "number"
    if pa.types.is_boolean(t):
        return "boolean"
    if pa.types.is_date(t):
        return "date"
    if pa.types.is_timestamp(t):
        return "datetime"
    return "string"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _delimiter(path: Path) -> str:
    with path.open(encoding="utf-8", newline="") as fh:
        first = fh.readline()
    return ";" if first.count(";") > first.count(",") else ","


def _hxl_row(path: Path, delimiter: str) -> bool:
    with path.open(encoding="utf-8", newline="") as fh:
        rows = csv.reader(fh, delimiter=delimiter)
        next(rows, None)
        second = next(rows, None)
    if not second:
        return False
    return all(not c or c.startswith("#") for c in second) and any(second)


def table_schema(path: Path) -> tuple[dict[str, Any], dict[str, Any], bool]:
    """(Table Schema, CSV dialect, has an HXL row) of a CSV file as written."""
    delimiter = _delimiter(path)
    hxl = _hxl_row(path, delimiter)
    with path.open(encoding="utf-8", newline="") as fh:
        header = next(csv.reader(fh, delimiter=delimiter), [])
    types: dict[str, str] = {}
    if not hxl:
        # Every column read as it is (empty strings are nulls): the types are those of the data.
        table = pacsv.read_csv(path, parse_options=pacsv.ParseOptions(delimiter=delimiter),
                               convert_options=pacsv.ConvertOptions(strings_can_be_null=True))
        types = {f.name: _field_type(f.type) for f in table.schema}
    fields = [{"name": h, "type": types.get(h, "string")} for h in header]
    return {"fields": fields, "missingValues": [""]}, {"delimiter": delimiter, "header": True}, hxl


_JSON_TYPES = {"integer": "integer", "number": "number", "boolean": "boolean"}


def row_json_schema(title: str, table_schema: dict[str, Any]) -> dict[str, Any]:
    """JSON Schema (2020-12) of one row of a CSV, read as an object of typed values (empty cells
    null), from its Table Schema."""
    props: dict[str, Any] = {}
    for f in table_schema["fields"]:
        prop: dict[str, Any] = {"type": [_JSON_TYPES.get(f["type"], "string"), "null"]}
        if f["type"] in ("date", "datetime"):
            prop["format"] = "date" if f["type"] == "date" else "date-time"
        props[f["name"]] = prop
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "title": title,
            "type": "object", "properties": props, "required": list(props),
            "additionalProperties": False}


def _name(path: Path) -> str:
    return re.sub(r"[^a-z0-9._-]+", "-", path.name.lower()).strip("-") or "file"


def write_datapackage(out_dir: Path, name: str, title: str, files: Iterable[Path | str],
                      description: str = "", properties: dict[str, Any] | None = None) -> Path:
    """Describe ``files`` (inside ``out_dir``) in ``out_dir/datapackage.json``; return its path."""
    resources = []
    seen: set[Path] = set()
    files = list(files)
    # A JSON Schema of one row beside each CSV (issue 15: a JSON Schema for every release).
    for f in list(files):
        path = Path(f)
        if path.suffix.lower() == ".csv" and path.is_file():
            schema, _, _ = table_schema(path)
            target = path.with_name(f"{path.stem}.schema.json")
            target.write_text(json.dumps(row_json_schema(f"One row of {path.name}", schema),
                                         indent=2) + "\n", encoding="utf-8")
            files.append(target)
    for f in files:
        path = Path(f)
        if path.name == DESCRIPTOR or path in seen or not path.is_file():
            continue
        seen.add(path)
        rel = path.resolve().relative_to(out_dir.resolve()).as_posix()
        res: dict[str, Any] = {"name": _name(path), "path": rel, "bytes": path.stat().st_size,
                               "hash": f"sha256:{_sha256(path)}",
                               "format": path.suffix.lstrip(".").lower(),
                               "mediatype": MEDIA.get(path.suffix.lower(), "application/octet-stream")}
        if path.suffix.lower() == ".csv":
            schema, dialect, hxl = table_schema(path)
            res.update(profile="tabular-data-resource", encoding="utf-8", schema=schema,
                       dialect=dialect)
            if hxl:
                res["description"] = ("The row under the header holds HXL hashtags "
                                      "(hxlstandard.org), so every field is read as text.")
        resources.append(res)
    # No "created" time: the same release content gives the same descriptor byte for byte (a
    # render that differed with the clock would tell two releases apart for no reason).
    package = {"name": name, "title": title, "profile": "data-package",
               **({"description": description} if description else {}),
               **(properties or {}), "resources": resources}
    path = out_dir / DESCRIPTOR
    path.write_text(json.dumps(package, indent=2, default=str) + "\n", encoding="utf-8")
    return path
