"""A partner withdraws its own records from the hub: by record key, or a whole batch.

Withdrawn records leave every table that holds them (``records``, ``linkage_encodings``, the linked
``persons``) in one transaction, so every later release (tables, estimates, microdata, synthetic
data, the report) is computed without them. The withdrawal is a row of ``withdrawals`` (which
changes the data version) and an entry of the audit trail (on the tamper-evident chain). The
privacy budget is not restored: the ledger is one lifetime budget for the hub's people
(``accord.release.dp.ledger.SCOPE``), and what earlier releases said about these people stays said.

A partner names records only within its own: keys are looked up under its own partner name, a
batch of another partner is refused (:class:`NotYours`), and a request naming any key the partner
does not hold is refused whole (the message gives counts, never a key), so a withdrawal is never
partial and says nothing about another partner's records. The batch row itself stays, so the same
contribution pushed again is still recognised as already received (nothing is re-added).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from accord.errors import AccordError
from accord.store.base import Store, now_iso

WITHDRAWALS_SQL = """CREATE TABLE IF NOT EXISTS withdrawals (
    withdrawal_id VARCHAR PRIMARY KEY, partner VARCHAR NOT NULL, batch_id VARCHAR,
    requested BIGINT NOT NULL, withdrawn BIGINT NOT NULL, actor VARCHAR NOT NULL,
    withdrawn_at VARCHAR NOT NULL)"""
# How many records each withdrawal took out of each batch (a withdrawal by record key can take
# records of several batches), so a batch's counts can say loaded, withdrawn and still in the hub.
WITHDRAWN_BY_BATCH_SQL = """CREATE TABLE IF NOT EXISTS withdrawn_by_batch (
    withdrawal_id VARCHAR NOT NULL, batch_id VARCHAR NOT NULL, withdrawn BIGINT NOT NULL)"""
# Tables keyed by (partner, record_key) that hold a record or something derived from it.
RECORD_TABLES = ("records", "linkage_encodings", "persons")
MAX_KEYS = 1_000_000


class WithdrawalError(AccordError):
    """A withdrawal cannot be done as asked (nothing was withdrawn)."""


class NotYours(WithdrawalError):
    """The batch belongs to another partner."""


class NoSuchBatch(WithdrawalError):
    """No batch with that id is in the hub."""


@dataclass(frozen=True)
class WithdrawOutcome:
    withdrawal_id: str
    partner: str
    batch_id: str | None
    withdrawn: int
    data_version: str

    def to_dict(self) -> dict[str, Any]:
        return {"withdrawal_id": self.withdrawal_id, "partner": self.partner,
                "batch_id": self.batch_id, "withdrawn": self.withdrawn,
                "data_version": self.data_version}


def _keys_of_batch(store: Store, partner: str, batch_id: str) -> list[str]:
    store.ensure_meta()
    owner = store.scalar("SELECT partner FROM batches WHERE batch_id = ?", [batch_id])
    if owner is None:
        raise NoSuchBatch(f"no batch {batch_id} in the hub",
                          hint="`accord hub status` (or GET /api/batches) lists the batches")
    if owner != partner:
        raise NotYours("the batch belongs to another partner; a partner withdraws only its own records")
    if not store.table_exists("records"):
        return []
    rows = store.query("SELECT record_key FROM records WHERE partner = ? AND batch_id = ?",
                       [partner, batch_id])
    return [str(k) for k in rows.column("record_key").to_pylist()]


def withdraw(store: Store, partner: str, actor: str, *, batch_id: str | None = None,
             record_keys: Sequence[str] | None = None) -> WithdrawOutcome:
    """Withdraw ``partner``'s records: every record of ``batch_id`` still in the hub, or the records
    of ``record_keys``. All or nothing: a key the partner does not hold refuses the whole request.

    Records of a batch that a later batch replaced belong to the later batch and stay."""
    if (batch_id is None) == (record_keys is None):
        raise WithdrawalError("give either a batch or record keys to withdraw",
                              hint="--batch ID or --records FILE (one record key per line)")
    with store.transaction():
        if batch_id is not None:
            keys = _keys_of_batch(store, partner, batch_id)
            requested = len(keys)
        else:
            keys = sorted({str(k).strip() for k in record_keys or () if str(k).strip()})
            requested = len(keys)
            if not keys:
                raise WithdrawalError("no record keys given", hint="give one record key per line")
            if len(keys) > MAX_KEYS:
                raise WithdrawalError(f"more than {MAX_KEYS:,} record keys in one withdrawal",
                                      hint="withdraw a whole batch, or split the list")
        withdrawn = 0
        per_batch: list[dict[str, Any]] = []
        if keys and store.table_exists("records"):
            store.write_table("_withdraw", pa.table({
                "partner": pa.array([partner] * len(keys), pa.string()),
                "record_key": pa.array(keys, pa.string())}), mode="replace")
            withdrawn = int(store.scalar(
                "SELECT count(*) FROM records r JOIN _withdraw w "
                "ON r.partner = w.partner AND r.record_key = w.record_key"))
            if withdrawn != len(keys):
                store.execute("DROP TABLE _withdraw")
                raise WithdrawalError(
                    f"{len(keys) - withdrawn:,} of the {len(keys):,} record keys are not records of "
                    f"{partner} in the hub; nothing was withdrawn",
                    hint="give keys of your own records still in the hub (as in your contribution's "
                         "records.parquet, column record_key)")
            per_batch = store.query(
                "SELECT r.batch_id, count(*) AS withdrawn FROM records r JOIN _withdraw w "
                "ON r.partner = w.partner AND r.record_key = w.record_key "
                "GROUP BY r.batch_id ORDER BY r.batch_id").to_pylist()
            for table in RECORD_TABLES:
                if store.table_exists(table):
                    store.execute(f"DELETE FROM {table} WHERE (partner, record_key) IN "
                                  "(SELECT partner, record_key FROM _withdraw)")
            store.execute("DROP TABLE _withdraw")
        elif keys:
            raise WithdrawalError(f"none of the {len(keys):,} record keys are records of {partner} "
                                  "in the hub; nothing was withdrawn")
        store.execute(WITHDRAWALS_SQL)
        store.ensure_row_order("withdrawals")
        withdrawal_id = f"w-{uuid.uuid4().hex[:12]}"
        store.execute("INSERT INTO withdrawals (withdrawal_id, partner, batch_id, requested, withdrawn, "
                      "actor, withdrawn_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                      [withdrawal_id, partner, batch_id, requested, withdrawn, actor, now_iso()])
        store.execute(WITHDRAWN_BY_BATCH_SQL)
        for row in per_batch:
            store.execute("INSERT INTO withdrawn_by_batch (withdrawal_id, batch_id, withdrawn) "
                          "VALUES (?, ?, ?)", [withdrawal_id, row["batch_id"], int(row["withdrawn"])])
        store.audit(actor, "hub.withdraw", {"withdrawal_id": withdrawal_id, "partner": partner,
                                            "batch_id": batch_id, "withdrawn": withdrawn,
                                            "by": "batch" if batch_id is not None else "record_keys",
                                            "budget": "not restored"})
        version = store.data_version()
    return WithdrawOutcome(withdrawal_id, partner, batch_id, withdrawn, version)


def withdrawals(store: Store, partner: str | None = None) -> list[dict[str, Any]]:
    """The withdrawals made (one partner's, or all)."""
    if not store.table_exists("withdrawals"):
        return []
    order = store.order_sql("withdrawals", "withdrawn_at", "withdrawal_id")
    if partner is None:
        return store.query("SELECT * FROM withdrawals ORDER BY " + order).to_pylist()
    return store.query("SELECT * FROM withdrawals WHERE partner = ? ORDER BY " + order,
                       [partner]).to_pylist()


def withdrawn_per_batch(store: Store) -> dict[str, int]:
    """Records withdrawn from each batch so far. A withdrawal made before this accounting existed
    counts against its batch when it named one (a withdrawal by key then is not attributed)."""
    out: dict[str, int] = {}
    if store.table_exists("withdrawn_by_batch"):
        for r in store.query("SELECT batch_id, sum(withdrawn) AS n FROM withdrawn_by_batch "
                             "GROUP BY batch_id").to_pylist():
            out[str(r["batch_id"])] = int(r["n"])
    if store.table_exists("withdrawals"):
        attributed = "withdrawn_by_batch" if store.table_exists("withdrawn_by_batch") else None
        legacy = store.query(
            "SELECT batch_id, sum(withdrawn) AS n FROM withdrawals w WHERE batch_id IS NOT NULL"
            + (" AND NOT EXISTS (SELECT 1 FROM withdrawn_by_batch b WHERE b.withdrawal_id = "
               "w.withdrawal_id)" if attributed else "")
            + " GROUP BY batch_id").to_pylist()
        for r in legacy:
            out[str(r["batch_id"])] = out.get(str(r["batch_id"]), 0) + int(r["n"])
    return out


def read_record_keys(text: str) -> list[str]:
    """Record keys from a file's text: one per line, or a CSV whose header names ``record_key``
    (its first column otherwise). Blank lines and a ``record_key`` header are skipped."""
    import csv
    import io

    rows = [r for r in csv.reader(io.StringIO(text)) if r and any(c.strip() for c in r)]
    if not rows:
        return []
    header = [c.strip().lower() for c in rows[0]]
    column = header.index("record_key") if "record_key" in header else None
    body = rows[1:] if column is not None else rows
    col = column or 0
    return [r[col].strip() for r in body if len(r) > col and r[col].strip()]
