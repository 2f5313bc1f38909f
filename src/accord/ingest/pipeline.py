"""Read one partner export chunk by chunk, map it to the standard and validate every row.

`validate_export` yields the accepted rows of each chunk and keeps the account of the whole file
(rows in, quarantined, blank rows, findings). It knows nothing of keys or contributions: the
partner-side job that protects the accepted rows and writes the contribution is
`accord.protect.job.build_contribution`, the next stage.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from accord.errors import InputFileError
from accord.ingest.findings import FindingKind
from accord.ingest.mapping import check_against_header, load_mapping
from accord.ingest.readers import RawTable, detect_format, iter_table, read_header
from accord.ingest.transform import FINDINGS_SCHEMA, transform
from accord.safe_csv import write_arrow_csv
from accord.standard import Standard

Progress = Callable[[str], None]


@dataclass
class ExportAccount:
    """Where every row of an export went; filled in while the chunks are read."""

    mapping_sha256: str = ""
    rows_in: int = 0
    quarantined: int = 0
    blank_rows: int = 0
    structural: int = 0
    finding_tables: list[pa.Table] = field(default_factory=list)
    # What the readers noticed about the file (fixed sentences with counts, never a value).
    notices: Counter[str] = field(default_factory=Counter)
    structural_cells: Counter[int] = field(default_factory=Counter)  # cells per row of rows that do not fit

    def findings_table(self) -> pa.Table:
        """line, field, reason, detail, value (the raw value: partner side only)."""
        return pa.concat_tables(self.finding_tables) if self.finding_tables else FINDINGS_SCHEMA.empty_table()


def check_partner_id(partner: str) -> None:
    if not partner or not partner.replace("-", "").replace("_", "").isalnum():
        raise InputFileError(f"partner id '{partner}' is not valid",
                             hint="use letters, digits, '-' or '_' (e.g. iom-th or unfpa)")


def validate_export(export: Path, mapping_path: Path, standard: Standard, account: ExportAccount | None = None,
                    progress: Progress | None = None) -> Iterator[pa.Table]:
    """Yield the accepted rows of each chunk (typed, in the standard's record schema).

    The file is checked whole before any row is yielded (mapping against the standard, header
    against the mapping), and a file with a header but no rows is rejected once read. Pass an
    `ExportAccount` to receive the counts and findings.
    """
    say = progress or (lambda _msg: None)
    mapping = load_mapping(mapping_path, standard)
    fmt = detect_format(export, mapping.source.format)
    src = mapping.source
    columns = read_header(export, fmt, src.encoding, src.delimiter, src.sheet)
    check_against_header(mapping, columns, export.name)
    acc = account if account is not None else ExportAccount()
    acc.mapping_sha256 = hashlib.sha256(mapping_path.read_bytes()).hexdigest()
    seen_cases: set[str] = set()
    for raw in iter_table(export, fmt, src.encoding, src.delimiter, src.sheet, columns=columns):
        say(f"mapping, validating and protecting rows {acc.rows_in + 1:,}-{acc.rows_in + raw.num_rows:,}")
        batch = transform(raw, mapping, standard, seen_cases=seen_cases)
        acc.finding_tables += [_structural_findings(raw), batch.findings]
        acc.rows_in += raw.num_rows + len(raw.structural_errors)
        acc.quarantined += int(batch.quarantined.sum()) + len(raw.structural_errors)
        acc.structural += len(raw.structural_errors)
        acc.structural_cells.update(e.cells for e in raw.structural_errors if e.cells is not None)
        acc.blank_rows += raw.blank_rows
        acc.notices.update(raw.notices)
        yield batch.accepted_table
    if acc.rows_in == 0:
        raise InputFileError(f"{export.name} has a header but no data rows",
                             hint="export again once the form has submissions")
    _refuse_broken_file(acc, len(columns), export.name)


def _refuse_broken_file(acc: ExportAccount, width: int, name: str) -> None:
    """Most rows not fitting the header is a broken file, not a few bad rows: refuse it whole."""
    if acc.structural * 2 <= acc.rows_in:
        return
    cells, _ = acc.structural_cells.most_common(1)[0] if acc.structural_cells else (None, 0)
    shape = f"; most have {cells} cells" if cells is not None else ""
    if cells == width + 1:
        hint = ("every row seems to end with an extra delimiter (or the header lacks a name for the last column): "
                "remove the trailing delimiter or name the column, then ingest again")
    else:
        hint = "check the delimiter (source.delimiter in the mapping) and the quoting, then export again"
    raise InputFileError(f"{name} is broken: {acc.structural:,} of {acc.rows_in:,} rows do not fit the header's "
                         f"{width} columns{shape}", hint=hint)


# A quarantined value is shown to the partner's data officer so they can fix it at the source; a
# few hundred characters identify it. A huge cell (a pasted document, a hostile export) would make
# the report unreadable in a spreadsheet (Excel keeps 32,767 characters per cell) and in CSV
# readers with field limits, so longer values are cut with a marker that says how long they were.
QUARANTINE_VALUE_CHARS = 1_000


def _shorten(value: str | None) -> str | None:
    if value is None or len(value) <= QUARANTINE_VALUE_CHARS:
        return value
    return f"{value[:QUARANTINE_VALUE_CHARS]}... [cut: {len(value):,} characters in all]"


def write_quarantine(path: Path, findings: pa.Table) -> None:
    """The partner-side report: row, field, reason and the raw value. Never part of a contribution."""
    values = findings.column("value")
    longest = pc.max(pc.utf8_length(values)).as_py() if len(values) else None
    if longest is not None and longest > QUARANTINE_VALUE_CHARS:
        short = pa.array([_shorten(v) for v in values.to_pylist()], pa.string())
        findings = findings.set_column(findings.schema.get_field_index("value"), "value", short)
    write_arrow_csv(path, findings.sort_by([("line", "ascending"), ("field", "ascending")]))


def _structural_findings(raw: RawTable) -> pa.Table:
    errors = raw.structural_errors
    return pa.table(
        [pa.array([e.line for e in errors], pa.int64()), pa.array(["(row)"] * len(errors), pa.string()),
         pa.array([str(FindingKind.STRUCTURE)] * len(errors), pa.string()),
         pa.array([e.reason for e in errors], pa.string()), pa.array([e.text for e in errors], pa.string())],
        schema=FINDINGS_SCHEMA)
