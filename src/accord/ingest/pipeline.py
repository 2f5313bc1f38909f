"""The partner-side job: export + mapping + key -> contribution (may leave) + quarantine (stays)."""

from __future__ import annotations

import hashlib
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from accord.errors import InputFileError
from accord.ingest.findings import Finding, FindingKind
from accord.ingest.mapping import check_against_header, load_mapping
from accord.ingest.readers import detect_format, read_header, read_table
from accord.ingest.transform import FINDINGS_SCHEMA, transform
from accord.protect.contribution import Manifest, write_contribution
from accord.protect.keys import PartnerKey
from accord.protect.pseudonym import LinkageEncoder, protect_records
from accord.safe_csv import write_arrow_csv
from accord.standard import Standard, load_standard

Progress = Callable[[str], None]


@dataclass
class IngestResult:
    manifest: Manifest
    contribution: Path
    quarantine_report: Path
    findings_table: pa.Table  # line, field, reason, detail, value (raw: partner side only)

    @property
    def rows_in(self) -> int:
        return self.manifest.rows_in

    @property
    def reasons(self) -> Counter[str]:
        counts = pc.value_counts(self.findings_table["reason"]).to_pylist() if self.findings_table.num_rows else []
        return Counter({c["values"]: c["counts"] for c in counts})

    @property
    def findings(self) -> list[Finding]:
        return [Finding(r["line"], r["field"], FindingKind(r["reason"]), r["detail"], r["value"])
                for r in self.findings_table.to_pylist()]


def _quarantine_path(out: Path) -> Path:
    return out.with_name(out.name + ".quarantine.csv")


def write_quarantine(path: Path, findings: pa.Table) -> None:
    """The partner-side report: row, field, reason and the raw value. Never part of a contribution."""
    write_arrow_csv(path, findings.sort_by([("line", "ascending"), ("field", "ascending")]))


def ingest_export(
    export: Path,
    mapping_path: Path,
    partner: str,
    out: Path,
    key: PartnerKey,
    *,
    standard: Standard | None = None,
    quarantine: Path | None = None,
    linkage_encoder: LinkageEncoder | None = None,
    linkage_meta: dict[str, str] | None = None,
    progress: Progress | None = None,
) -> IngestResult:
    standard = standard or load_standard()
    say = progress or (lambda _msg: None)
    if not partner or not partner.replace("-", "").replace("_", "").isalnum():
        raise InputFileError(f"partner id '{partner}' is not valid",
                             hint="use letters, digits, '-' or '_' (e.g. iom-th or unfpa)")
    mapping = load_mapping(mapping_path, standard)  # checked against the standard here
    fmt = detect_format(export, mapping.source.format)
    columns = read_header(export, fmt, mapping.source.encoding, mapping.source.delimiter,
                          mapping.source.sheet)
    check_against_header(mapping, columns, export.name)  # before any row is read
    say("reading")
    raw = read_table(export, fmt, mapping.source.encoding, mapping.source.delimiter,
                     mapping.source.sheet)
    say("mapping and validating")
    batch = transform(raw, mapping, standard)
    structural = pa.table(
        [pa.array([e.line for e in raw.structural_errors], pa.int64()),
         pa.array(["(row)"] * len(raw.structural_errors), pa.string()),
         pa.array([str(FindingKind.STRUCTURE)] * len(raw.structural_errors), pa.string()),
         pa.array([e.reason for e in raw.structural_errors], pa.string()),
         pa.array([e.text for e in raw.structural_errors], pa.string())], schema=FINDINGS_SCHEMA)
    findings = pa.concat_tables([structural, batch.findings])
    rows_in = raw.num_rows + len(raw.structural_errors)
    quarantined = int(batch.quarantined.sum()) + len(raw.structural_errors)
    if raw.num_rows == 0 and not raw.structural_errors:
        raise InputFileError(f"{export.name} has a header but no data rows",
                             hint="export again once the form has submissions")

    say("protecting")
    batch_id = uuid.uuid4().hex
    protected = protect_records(batch.accepted_table, key, standard, partner, batch_id,
                                linkage_encoder=linkage_encoder)
    q_path = quarantine or _quarantine_path(out)
    say("writing contribution")
    manifest = write_contribution(
        out, protected.records, protected.linkage, batch_id=batch_id, partner=partner,
        standard_name=standard.name, standard_version=standard.version, rows_in=rows_in,
        quarantined=quarantined, blank_rows=raw.blank_rows, key_id=key.key_id,
        mapping_sha256=hashlib.sha256(mapping_path.read_bytes()).hexdigest(),
        linkage_meta=linkage_meta,
    )
    write_quarantine(q_path, findings)
    return IngestResult(manifest, out, q_path, findings)
