"""The data dictionary, generated from the standard."""

from __future__ import annotations

from accord.standard.model import Standard


def _cell(text: str | None) -> str:
    return (text or "").replace("|", "\\|").replace("\n", " ")


def dictionary_markdown(standard: Standard) -> str:
    out = [
        f"# Data dictionary: {standard.name} {standard.version}",
        "",
        f"Aligned with HTCDS v{standard.htcds_version} and the CTDC published columns.",
        "",
        "| field | type | role | label | HTCDS | CTDC | description |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for f in standard.fields:
        out.append(
            f"| `{f.name}` | {f.type} | {f.role} | {_cell(f.label)} | {_cell(f.htcds)} "
            f"| {_cell(f.ctdc)} | {_cell(f.description)} |"
        )
    out += ["", "## Derived columns", "",
            "| column | from | label | CTDC | bands | definition | source |",
            "| --- | --- | --- | --- | --- | --- | --- |"]
    for d in standard.derived:
        bands = (", ".join(d.band_labels) if d.bands else
                 ", ".join(f"{c.code} ({c.label})" for c in d.codes or ()))
        out.append(f"| `{d.name}` | `{d.source}` | {_cell(d.label)} | {_cell(d.ctdc)} | {bands} "
                   f"| {_cell(d.description)} | {_cell(d.reference)} |")
    out += ["", "## Code lists", ""]
    for f in standard.fields:
        if not f.codes:
            continue
        out += [f"### `{f.name}`", "", "| code | label | HTCDS | CTDC |", "| --- | --- | --- | --- |"]
        for c in f.codes:
            out.append(f"| `{c.code}` | {_cell(c.label)} | {_cell(c.htcds)} | {_cell(c.ctdc)} |")
        out.append("")
    return "\n".join(out) + "\n"
