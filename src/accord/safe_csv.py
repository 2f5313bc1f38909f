"""CSV output that spreadsheet programs cannot execute.

A cell starting with = + - @ (or a tab/carriage return) is run as a formula by Excel and
LibreOffice. Every CSV Accord writes goes through here, which prefixes such cells with an
apostrophe (OWASP's advice), so the text is shown, not run.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def neutralise(value: Any) -> Any:
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        # Plain negative numbers are data, not formulas.
        try:
            float(value)
            return value
        except ValueError:
            return "'" + value
    return value


def write_csv(path: Path, header: Sequence[str], rows: Iterable[Sequence[Any]],
              delimiter: str = ",") -> int:
    n = 0
    with path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh, delimiter=delimiter)
        w.writerow([neutralise(h) for h in header])
        for row in rows:
            w.writerow(["" if v is None else neutralise(v) for v in row])
            n += 1
    return n
