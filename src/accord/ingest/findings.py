"""What ingest can find wrong with a row: a typed, catalogued set of findings.

Findings are collected into a report, not raised: one bad cell quarantines its row, not the batch.
The catalogue below is the single source for the docs' list of quarantine reasons.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class FindingKind(StrEnum):
    STRUCTURE = "structure"
    MISSING_REQUIRED = "missing_required"
    UNKNOWN_CODE = "unknown_code"
    UNKNOWN_COUNTRY = "unknown_country"
    BAD_DATE = "bad_date"
    BAD_NUMBER = "bad_number"
    OUT_OF_RANGE = "out_of_range"
    IMPLAUSIBLE_DATE = "implausible_date"
    BAD_FLAG = "bad_flag"
    DUPLICATE_CASE = "duplicate_case"
    UNDECODABLE_TEXT = "undecodable_text"
    SPREADSHEET_ERROR = "spreadsheet_error"


CATALOGUE: dict[FindingKind, tuple[str, str]] = {
    FindingKind.STRUCTURE: ("Row does not fit the header",
                            "the row has more or fewer cells than the header; check quoting and delimiters"),
    FindingKind.MISSING_REQUIRED: ("Required field missing",
                                   "fill the field in the source system, or map the column that holds it"),
    FindingKind.UNKNOWN_CODE: ("Value not in the code list",
                               "add the value to the field's `codes` in the mapping"),
    FindingKind.UNKNOWN_COUNTRY: ("Not an ISO 3166 country",
                                  "use ISO alpha-2/alpha-3 codes, or map names with `codes`"),
    FindingKind.BAD_DATE: ("Date does not parse",
                           "check the field's `date_format` in the mapping"),
    FindingKind.BAD_NUMBER: ("Not a whole number", "correct the value in the source system"),
    FindingKind.OUT_OF_RANGE: ("Number out of range", "correct the value in the source system"),
    FindingKind.IMPLAUSIBLE_DATE: ("Date impossible in context",
                                   "a birth after registration or a registration in the future"),
    FindingKind.BAD_FLAG: ("Flag column is not 0/1",
                           "flag columns hold 1/0, true/false or yes/no"),
    FindingKind.DUPLICATE_CASE: ("Case number repeated in this export",
                                 "each case appears once per export; the first occurrence is kept"),
    FindingKind.UNDECODABLE_TEXT: ("Cell holds bytes that are not text in the file's encoding",
                                   "a character was damaged (mixed encodings, a broken emoji): correct it in "
                                   "the source system; the rest of the file was read normally"),
    FindingKind.SPREADSHEET_ERROR: ("Cell holds a spreadsheet error instead of a value",
                                    "#VALUE!, #REF!, #N/A, ##### and the like: the value was lost in the "
                                    "spreadsheet (a phone formatted as a date?); fix the cell or its format, or "
                                    "list the text in `missing` if it means missing"),
}


@dataclass(frozen=True)
class Finding:
    """One problem with one cell. ``value`` is the raw cell: kept at the partner only."""

    line: int | None
    field: str
    kind: FindingKind
    detail: str
    value: str

    @property
    def title(self) -> str:
        return CATALOGUE[self.kind][0]


def catalogue_markdown() -> str:
    rows = ["| reason | meaning | what to do |", "| --- | --- | --- |"]
    rows += [f"| `{k}` | {t} | {h} |" for k, (t, h) in CATALOGUE.items()]
    return "\n".join(rows) + "\n"
