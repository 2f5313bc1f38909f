"""The partner-side job: export + mapping + key -> contribution + quarantine report.

Ingest validates the export chunk by chunk; each chunk's accepted rows are protected here
(pseudonyms, linkage encodings, identifiers dropped) and appended to a contribution that only
becomes visible, by rename, when the whole export has been read.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from accord.ingest import ExportAccount, validate_export, write_quarantine
from accord.ingest.findings import Finding, FindingKind
from accord.ingest.pipeline import check_partner_id
from accord.protect.contribution import ContributionWriter, Manifest
from accord.protect.keys import PartnerKey
from accord.protect.pseudonym import LinkageEncoder, protect_records
from accord.protect.unit import UNIT_LAYOUT, UnitFileWriter, unit_rows
from accord.standard import Standard, load_standard
from accord.standard.arrow import record_schema

Progress = Callable[[str], None]


@dataclass(frozen=True)
class ContributionResult:
    manifest: Manifest
    contribution: Path
    quarantine_report: Path
    findings_table: pa.Table  # line, field, reason, detail, value (raw: partner side only)
    notices: Counter[str] = field(default_factory=Counter)  # what ingest noticed about the file (no values)

    @property
    def rows_in(self) -> int:
        return self.manifest.rows_in

    @property
    def reasons(self) -> Counter[str]:
        table = self.findings_table
        counts = pc.value_counts(table["reason"]).to_pylist() if table.num_rows else []
        return Counter({c["values"]: c["counts"] for c in counts})

    @property
    def findings(self) -> list[Finding]:
        return [Finding(r["line"], r["field"], FindingKind(r["reason"]), r["detail"], r["value"])
                for r in self.findings_table.to_pylist()]


CONSENT_GATES = ("no_statistics_consent", "no_linkage_consent", "no_research_consent")


def _consent_gates(accepted: pa.Table, gates: Counter[str], standard: Standard) -> tuple[pa.Table, pa.Array]:
    """Rows that may be shared (statistics consent "yes") and, among them, those that may be linked.

    Consent is enforced here, at the partner, before anything is protected or written: a row
    without statistics consent never leaves, a row without linkage consent gets no linkage
    encoding and no person pseudonym. Only "yes" opens a gate; a missing consent never does.
    """
    def given(name: str, table: pa.Table) -> pa.Array:
        if name not in standard.field_names:
            # A standard before 0.2 has no consent fields: sharing was agreed for the whole export.
            return pa.array([True] * table.num_rows, pa.bool_())
        if name not in table.column_names:
            return pa.array([False] * table.num_rows, pa.bool_())
        column = table[name]
        chunked = column if isinstance(column, pa.ChunkedArray) else pa.chunked_array([column])
        return pc.fill_null(pc.equal(chunked.combine_chunks(), "yes"), False)

    share = given("consent_statistics", accepted)
    shared = accepted.filter(share)
    gates["no_statistics_consent"] += accepted.num_rows - shared.num_rows
    linkable = given("consent_linkage", shared)
    gates["no_linkage_consent"] += shared.num_rows - int(pc.sum(linkable).as_py() or 0)
    research = given("consent_research", shared)
    gates["no_research_consent"] += shared.num_rows - int(pc.sum(research).as_py() or 0)
    return shared, linkable


def _without_person_pseudonym(records: pa.Table) -> pa.Table:
    i = records.schema.get_field_index("person_pseudonym")
    return records.set_column(i, records.schema.field(i), pa.nulls(records.num_rows, pa.string()))


def quarantine_path(out: Path) -> Path:
    return out.with_name(out.name + ".quarantine.csv")


def build_contribution(
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
    linkage_unit: Path | None = None,
    progress: Progress | None = None,
) -> ContributionResult:
    """With ``linkage_unit`` the encodings go to that unit file, not into the contribution
    (the linkage-unit layout, `accord.protect.unit`)."""
    standard = standard or load_standard()
    say = progress or (lambda _msg: None)
    check_partner_id(partner)
    account = ExportAccount()
    batch_id = uuid.uuid4().hex
    meta = dict(linkage_meta or {})
    if linkage_unit is not None:
        meta["layout"] = UNIT_LAYOUT
    writer = ContributionWriter(out, record_schema(standard))
    gates: Counter[str] = Counter()
    unit: UnitFileWriter | None = None
    try:
        unit = UnitFileWriter(linkage_unit) if linkage_unit is not None else None
        for accepted in validate_export(export, mapping_path, standard, account, progress):
            shared, linkable = _consent_gates(accepted, gates, standard)
            for rows, may_link in ((shared.filter(linkable), True), (shared.filter(pc.invert(linkable)), False)):
                if not rows.num_rows:
                    continue
                protected = protect_records(rows, key, standard, partner, batch_id,
                                            linkage_encoder=linkage_encoder if may_link else None)
                records = protected.records if may_link else _without_person_pseudonym(protected.records)
                if unit is not None and protected.linkage is not None:
                    unit.write(unit_rows(records, protected.linkage))
                    writer.write(records, None)
                else:
                    writer.write(records, protected.linkage)
        say("writing contribution")
        if unit is not None:
            unit.finish()
            meta["unit_records"] = str(unit.rows)
        manifest = writer.finish(
            batch_id=batch_id, partner=partner, standard=standard.name, standard_version=standard.version,
            rows_in=account.rows_in, quarantined=account.quarantined, blank_rows=account.blank_rows,
            key_id=key.key_id, mapping_sha256=account.mapping_sha256, linkage=meta,
            withheld=gates["no_statistics_consent"],
            consent={k: gates[k] for k in CONSENT_GATES},
        )
    except BaseException:
        writer.abort()
        if unit is not None:
            unit.abort()
        raise
    q_path = quarantine or quarantine_path(out)
    findings = account.findings_table()
    write_quarantine(q_path, findings)
    return ContributionResult(manifest, out, q_path, findings, account.notices)
