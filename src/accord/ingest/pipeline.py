"""The partner-side job: export + mapping + key -> contribution (may leave) + quarantine (stays)."""

from __future__ import annotations

import hashlib
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from accord.errors import InputFileError
from accord.ingest.findings import Finding, FindingKind
from accord.ingest.mapping import check_against_header, load_mapping
from accord.ingest.readers import detect_format, read_header, read_table
from accord.ingest.transform import transform
from accord.protect.contribution import Manifest, write_contribution
from accord.protect.keys import PartnerKey
from accord.protect.pseudonym import LinkageEncoder, protect_records
from accord.safe_csv import write_csv
from accord.standard import Standard, load_standard

Progress = Callable[[str], None]


@dataclass
class IngestResult:
    manifest: Manifest
    contribution: Path
    quarantine_report: Path
    findings: list[Finding]
    reasons: Counter[str] = field(default_factory=Counter)

    @property
    def rows_in(self) -> int:
        return self.manifest.rows_in


def _quarantine_path(out: Path) -> Path:
    return out.with_name(out.name + ".quarantine.csv")


def write_quarantine(path: Path, findings: list[Finding]) -> None:
    """The partner-side report: row, field, reason and the raw value. Never part of a contribution."""
    rows = sorted(findings, key=lambda f: (f.line or 0, f.field))
    write_csv(path, ["line", "field", "reason", "detail", "value"],
              ([f.line, f.field, str(f.kind), f.detail, f.value] for f in rows))


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
    findings = [Finding(e.line, "(row)", FindingKind.STRUCTURE, e.reason, e.text)
                for e in raw.structural_errors] + batch.findings
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
    reasons: Counter[str] = Counter(str(f.kind) for f in findings)
    return IngestResult(manifest, out, q_path, findings, reasons)
