"""Contributions: what leaves the partner. A directory of Parquet files plus a manifest.

The manifest lets the hub verify what it receives (standard, counts, SHA-256 of every file) and
refuse a tampered, truncated or repeated contribution. A contribution is written to a temporary
directory and renamed into place, so a crash never leaves half of one behind.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from accord import __version__
from accord.errors import ContributionError

FORMAT = "accord-contribution"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
RECORDS = "records.parquet"
LINKAGE = "linkage.parquet"


@dataclass(frozen=True)
class FileEntry:
    sha256: str
    bytes: int
    rows: int


@dataclass(frozen=True)
class Manifest:
    batch_id: str
    partner: str
    standard: str
    standard_version: str
    created_at: str
    rows_in: int
    accepted: int
    quarantined: int
    blank_rows: int
    key_id: str
    files: dict[str, FileEntry]
    mapping_sha256: str = ""
    linkage: dict[str, Any] = field(default_factory=dict)
    # Rows kept at the partner because the person did not consent to sharing for statistics.
    withheld: int = 0
    # How many rows each consent gate held back: no_statistics_consent (= withheld),
    # no_linkage_consent and no_research_consent (among the shared rows).
    consent: dict[str, int] = field(default_factory=dict)
    format: str = FORMAT
    format_version: int = FORMAT_VERSION
    accord_version: str = __version__

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    @property
    def data_sha256(self) -> str:
        """One digest over all data files: identifies the contribution's content."""
        h = hashlib.sha256()
        for name in sorted(self.files):
            h.update(f"{name}:{self.files[name].sha256}\n".encode())
        return h.hexdigest()


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def remove_stale_temporaries(out: Path) -> list[Path]:
    """Remove the temporary directories of ``out`` left by jobs that were killed.

    Only directories named ``.<out>.<pid>.<random>`` whose process is gone are removed; a job still
    writing (its process alive) is left alone.
    """
    removed = []
    for path in out.parent.glob(f".{out.name}.*"):
        pid = path.name[len(out.name) + 2:].split(".", 1)[0]
        if path.is_dir() and pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


class ContributionWriter:
    """Writes a contribution chunk by chunk into a temporary directory, renamed into place at the end.

    Chunks keep memory flat on large exports; the rename makes the contribution appear whole or
    not at all, whatever happens to the process in between.
    """

    def __init__(self, out: Path, records_schema: pa.Schema) -> None:
        if out.exists():
            raise ContributionError(f"{out} already exists",
                                    hint="choose a new --out directory; contributions are never overwritten")
        out.parent.mkdir(parents=True, exist_ok=True)
        self.out = out
        remove_stale_temporaries(out)
        # The temporary directory carries our process id, so that a later run can tell a
        # directory left by a killed job (SIGKILL cannot be caught) from one still being written.
        self.tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.{os.getpid()}.", dir=out.parent))
        self._records = pq.ParquetWriter(self.tmp / RECORDS, records_schema, compression="zstd")
        self._linkage: pq.ParquetWriter | None = None
        self.rows = {RECORDS: 0, LINKAGE: 0}

    def write(self, records: pa.Table, linkage: pa.Table | None = None) -> None:
        self._records.write_table(records)
        self.rows[RECORDS] += records.num_rows
        if linkage is not None:
            if self._linkage is None:
                self._linkage = pq.ParquetWriter(self.tmp / LINKAGE, linkage.schema, compression="zstd")
            self._linkage.write_table(linkage)
            self.rows[LINKAGE] += linkage.num_rows

    def _entry(self, name: str) -> FileEntry:
        path = self.tmp / name
        return FileEntry(sha256=sha256_file(path), bytes=path.stat().st_size, rows=self.rows[name])

    def finish(self, **fields: Any) -> Manifest:
        self._records.close()
        files = {RECORDS: self._entry(RECORDS)}
        if self._linkage is not None:
            self._linkage.close()
            files[LINKAGE] = self._entry(LINKAGE)
        manifest = Manifest(files=files, accepted=self.rows[RECORDS], created_at=datetime.now(UTC).isoformat(),
                            **fields)
        (self.tmp / MANIFEST).write_text(manifest.to_json(), encoding="utf-8")
        os.replace(self.tmp, self.out)
        return manifest

    def abort(self) -> None:
        self._records.close()
        if self._linkage is not None:
            self._linkage.close()
        shutil.rmtree(self.tmp, ignore_errors=True)


def write_contribution(
    out: Path,
    records: pa.Table,
    linkage: pa.Table | None,
    *,
    batch_id: str,
    partner: str,
    standard_name: str,
    standard_version: str,
    rows_in: int,
    quarantined: int,
    blank_rows: int,
    key_id: str,
    mapping_sha256: str,
    linkage_meta: dict[str, Any] | None = None,
) -> Manifest:
    """Write a whole contribution at once (the chunked form is `ContributionWriter`)."""
    writer = ContributionWriter(out, records.schema)
    try:
        writer.write(records, linkage)
        return writer.finish(batch_id=batch_id, partner=partner, standard=standard_name,
                             standard_version=standard_version, rows_in=rows_in, quarantined=quarantined,
                             blank_rows=blank_rows, key_id=key_id, mapping_sha256=mapping_sha256,
                             linkage=linkage_meta or {})
    except BaseException:
        writer.abort()
        raise


def read_manifest(contribution: Path) -> Manifest:
    path = contribution / MANIFEST if contribution.is_dir() else contribution
    hint = "this is not an Accord contribution directory; make one with `accord ingest`"
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ContributionError(f"no manifest in {contribution}", hint=hint) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        raise ContributionError(f"the manifest in {contribution} is unreadable", hint=hint) from None
    if not isinstance(raw, dict) or raw.get("format") != FORMAT:
        raise ContributionError(f"{contribution} is not an Accord contribution", hint=hint)
    if raw.get("format_version") != FORMAT_VERSION:
        raise ContributionError(
            f"{contribution} has contribution format {raw.get('format_version')}, "
            f"this Accord reads {FORMAT_VERSION}", hint="ingest again with the same Accord version as the hub")
    try:
        raw["files"] = {k: FileEntry(**v) for k, v in raw["files"].items()}
        return Manifest(**raw)
    except (TypeError, KeyError, AttributeError):
        raise ContributionError(f"the manifest in {contribution} is incomplete", hint=hint) from None


def verify_files(contribution: Path, manifest: Manifest) -> None:
    """Every listed file exists with its recorded size, digest and row count; nothing extra."""
    listed = set(manifest.files) | {MANIFEST}
    present = {p.name for p in contribution.iterdir() if not p.name.startswith(".")}
    extra = sorted(present - listed)
    if extra:
        raise ContributionError(f"{contribution} holds files the manifest does not list: {', '.join(extra)}",
                                hint="a contribution must be sent exactly as `accord ingest` wrote it")
    for name, entry in manifest.files.items():
        path = contribution / name
        if not path.exists():
            raise ContributionError(f"{contribution} is missing {name}",
                                    hint="copy the whole contribution directory again")
        if path.stat().st_size != entry.bytes or sha256_file(path) != entry.sha256:
            raise ContributionError(
                f"{name} in {contribution} does not match its manifest (changed or truncated)",
                hint="ask the partner to send the contribution again; do not edit it")
        rows = pq.ParquetFile(path).metadata.num_rows
        if rows != entry.rows:
            raise ContributionError(f"{name} has {rows} rows, the manifest says {entry.rows}",
                                    hint="ask the partner to send the contribution again")
    if manifest.accepted != manifest.files[RECORDS].rows:
        raise ContributionError("the manifest's accepted count does not match its records",
                                hint="ask the partner to send the contribution again")
    if manifest.rows_in != manifest.accepted + manifest.quarantined + manifest.withheld:
        raise ContributionError("the manifest's counts do not add up "
                                "(rows in != accepted + quarantined + withheld)",
                                hint="ask the partner to send the contribution again")
