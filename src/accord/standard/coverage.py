"""The HTCDS 2.0 core-field coverage table of docs/standard.md, from ``htcds_coverage.yaml``."""

from __future__ import annotations

from importlib import resources
from typing import Any

from accord.standard.model import Standard
from accord.yamlio import load_yaml


def coverage_entries() -> list[dict[str, Any]]:
    text = resources.files("accord.standard").joinpath("htcds_coverage.yaml").read_text(encoding="utf-8")
    entries: list[dict[str, Any]] = load_yaml(text)["core"]
    return entries


def coverage_markdown(standard: Standard) -> str:
    rows = ["| HTCDS 2.0 core field | Accord field(s) | note or reason left out |", "| --- | --- | --- |"]
    for e in coverage_entries():
        fields = ", ".join(f"`{n}`" for n in e.get("accord", [])) or "left out"
        for name in e.get("accord", []):
            standard.field(name)  # KeyError if the table names a field the standard lacks
        rows.append(f"| `{e['htcds']}` | {fields} | {e.get('reason') or e.get('note') or ''} |")
    return "\n".join(rows) + "\n"
