"""Hub operations on any store: open, and add a verified contribution as one all-or-nothing batch."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pyarrow.parquet as pq

from accord.errors import ContributionError
from accord.protect.contribution import LINKAGE, RECORDS, read_manifest, verify_files
from accord.protect.encoding.bloom import UNORDERED_SUFFIX
from accord.protect.encoding.schema import SCHEMA_FORMAT_VERSION
from accord.standard import FieldRole, Standard, load_standard
from accord.standard.arrow import record_schema
from accord.standard.model import load_version
from accord.standard.upgrade import upgrade_records
from accord.store.base import INSERT_BATCH_SQL, AddOutcome, Store, now_iso
from accord.store.duckdb_store import DuckDBStore
from accord.store.urls import is_server_url, normalise_url

# Test hook: lets the atomicity test kill `hub add` at the worst moment (inside the transaction,
# after the rows are written, before the commit). Inert unless the variable is set.
_PAUSE_ENV = "ACCORD_TEST_PAUSE_BEFORE_COMMIT"


def open_store(path: Path | str, read_only: bool = False) -> Store:
    """Open (or create) a hub store: a `postgresql://` URL is the shared hub on PostgreSQL, anything
    else an embedded DuckDB file."""
    if is_server_url(path):
        from accord.store.postgres_store import PostgresStore  # psycopg is loaded only when used

        return PostgresStore(normalise_url(path), read_only=read_only)
    return DuckDBStore(path, read_only=read_only)


def _check_schema(contribution: Path, standard: Standard) -> None:
    expected = record_schema(standard)
    got = pq.read_schema(contribution / RECORDS)
    identifiers = {f.name for f in standard.by_role(FieldRole.IDENTIFIER)}
    leaked = sorted(identifiers & set(got.names))
    if leaked:
        raise ContributionError(
            f"{contribution} contains identifier columns ({', '.join(leaked)}); refused",
            hint="contributions must come from `accord ingest`, which drops identifiers")
    if got.names != expected.names or not all(
        g.type.equals(e.type) for g, e in zip(got, expected, strict=True)
    ):
        raise ContributionError(f"{contribution} does not have the records layout of standard "
                                f"{standard.version}",
                                hint="ingest again with the Accord version the hub runs")


def _check_hub_layout(store: Store, standard: Standard) -> None:
    """A hub whose records were loaded under another standard cannot take this one's rows."""
    if not store.table_exists("records"):
        return
    have = store.query("SELECT * FROM records LIMIT 0").column_names
    expected = record_schema(standard).names
    if have != expected:
        missing = [c for c in expected if c not in have]
        raise ContributionError(
            f"the hub's records follow another version of the standard (missing {len(missing)} column(s) "
            f"of {standard.name} {standard.version}, e.g. {', '.join(missing[:3]) or 'none'}); "
            "refusing to mix versions",
            hint="build a new hub with this Accord version and add the contributions again; "
            "contributions of earlier compatible versions are upgraded on the way in")


# What to do with a hub's encodings of an older format (or another schema): `hub add` and
# `accord link` both refuse them with this one hint.
REENCODE_HINT = ("withdraw the batches with those encodings (`accord hub withdraw --partner P "
                 "--batch B`, or each partner's `accord withdraw --batch B`; `accord hub status` "
                 "lists them), have their partners protect their records again with this version "
                 "of Accord, and add the new contributions (docs/linkage.md, Encoding schema)")


def _batches_with_encodings(store: Store) -> list[str]:
    rows = store.query("SELECT DISTINCT r.partner, r.batch_id FROM records r JOIN linkage_encodings e "
                       "ON r.partner = e.partner AND r.record_key = e.record_key "
                       "ORDER BY r.partner, r.batch_id").to_pylist()
    return [f"{r['partner']}:{r['batch_id']}" for r in rows]


def _check_linkage_layout(store: Store, contribution: Path) -> bool:
    """Refuse linkage encodings of another encoding format (or schema) than those the hub holds:
    they cannot be linked together, and one table cannot hold both. True if the hub's encodings
    table is empty (its partners withdrew every batch) and is to be made again for these."""
    if not store.table_exists("linkage_encodings"):
        return False
    have = set(store.query("SELECT * FROM linkage_encodings LIMIT 0").column_names)
    incoming = set(pq.read_schema(contribution / LINKAGE).names)
    if have == incoming:
        return False
    if not store.scalar("SELECT count(*) FROM linkage_encodings"):
        return True
    held = _batches_with_encodings(store)
    shown = ", ".join(held[:5]) + (f" and {len(held) - 5} more" if len(held) > 5 else "")
    if any(c.endswith(UNORDERED_SUFFIX) for c in incoming - have):
        raise ContributionError(
            f"{contribution} has linkage encodings of the current encoding format "
            f"({SCHEMA_FORMAT_VERSION}), but the hub holds encodings of an older format (format 3 "
            f"or before, from {len(held)} batch(es), partner:batch {shown}); the two cannot be "
            "linked together, so nothing was added",
            hint=REENCODE_HINT)
    if any(c.endswith(UNORDERED_SUFFIX) for c in have - incoming):
        raise ContributionError(
            f"{contribution} has linkage encodings of an older encoding format (format 3 or "
            f"before) than the hub's ({SCHEMA_FORMAT_VERSION}); nothing was added",
            hint="protect the records again with this version of Accord (`accord ingest "
                 "--linkage-secret ...`) and send the new contribution")
    raise ContributionError(
        f"{contribution} has linkage encodings of another encoding schema than the hub's (its "
        "encoded fields differ); nothing was added",
        hint="every partner encodes with the collaborative's one schema (`accord ingest "
             "--linkage-schema`); protect the records again with it")


def add_contribution(store: Store, contribution: Path, actor: str = "hub",
                     standard: Standard | None = None) -> AddOutcome:
    """Verify and load one contribution. Idempotent: the same contribution twice adds nothing.

    Records whose (partner, record_key) already exist from an earlier batch are updates: the new
    rows replace the old ones in the same transaction.
    """
    standard = standard or load_standard()
    if not contribution.exists():
        raise ContributionError(f"no such contribution: {contribution}",
                                hint="give the directory that `accord ingest --out` wrote")
    manifest = read_manifest(contribution)
    upgrade = manifest.standard_version != standard.version
    if manifest.standard != standard.name or (upgrade and manifest.standard_version not in standard.compatible_with):
        raise ContributionError(
            f"{contribution} follows standard {manifest.standard} {manifest.standard_version}; "
            f"the hub uses {standard.name} {standard.version}, which can take contributions of "
            f"{', '.join((standard.version, *standard.compatible_with))} only",
            hint="ingest the export again with the hub's standard")
    verify_files(contribution, manifest)
    _check_schema(contribution, load_version(manifest.standard_version) if upgrade else standard)
    _check_hub_layout(store, standard)

    store.ensure_meta()
    known = store.query("SELECT batch_id FROM batches WHERE batch_id = ? OR data_sha256 = ?",
                        [manifest.batch_id, manifest.data_sha256])
    if known.num_rows:
        return AddOutcome(manifest.batch_id, manifest.partner, 0, 0, duplicate=True)

    remake_encodings = LINKAGE in manifest.files and _check_linkage_layout(store, contribution)
    records_file = contribution / RECORDS
    with store.transaction():
        if not store.table_exists("records"):
            store.write_table("records", record_schema(standard).empty_table(), mode="create")
        store.write_table("_incoming", pq.read_table(records_file, columns=["partner", "record_key"]),
                          mode="replace")
        replaced = int(store.scalar(
            "SELECT count(*) FROM records r JOIN _incoming i "
            "ON r.partner = i.partner AND r.record_key = i.record_key"))
        if replaced:
            store.execute("DELETE FROM records WHERE (partner, record_key) IN "
                          "(SELECT partner, record_key FROM _incoming)")
            if store.table_exists("linkage_encodings"):
                store.execute("DELETE FROM linkage_encodings WHERE (partner, record_key) IN "
                              "(SELECT partner, record_key FROM _incoming)")
        store.execute("DROP TABLE _incoming")
        if upgrade:
            store.write_table("records", upgrade_records(pq.read_table(records_file), standard))
        else:
            store.append_parquet("records", records_file)
        if LINKAGE in manifest.files:
            if remake_encodings:
                store.execute("DROP TABLE linkage_encodings")
            store.append_parquet("linkage_encodings", contribution / LINKAGE)
        store.execute(
            INSERT_BATCH_SQL,
            [manifest.batch_id, manifest.partner, manifest.standard_version, manifest.rows_in,
             manifest.accepted, manifest.quarantined, manifest.blank_rows, replaced,
             manifest.data_sha256, manifest.key_id, manifest.created_at, now_iso()],
        )
        store.audit(actor, "hub.add", {"batch_id": manifest.batch_id, "partner": manifest.partner,
                                       "accepted": manifest.accepted, "replaced": replaced})
        pause = os.environ.get(_PAUSE_ENV)
        if pause:
            Path(pause).write_text("in transaction", encoding="utf-8")
            time.sleep(60)
    return AddOutcome(manifest.batch_id, manifest.partner, manifest.accepted, replaced, duplicate=False)
