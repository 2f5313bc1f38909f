"""A tamper-evident chain over the hub's audit, release and privacy-ledger entries.

Every row written to ``audit``, ``releases`` or ``dp_ledger`` gets an entry in ``hub_chain``: its
sequence number, the SHA-256 of the row's canonical form, the privacy ledger's state after it, and
an HMAC-SHA256 over all of that and the previous entry's MAC. The HMAC key is a hub secret kept in
a 0600 file *outside* the database (default ``<hub file>.key``; ``$ACCORD_HUB_KEY`` moves it), so
whoever can edit the database (a copy of the hub file, a database administrator) cannot recompute
the chain after changing a row. What verification catches:

* a changed or inserted row: its digest is on no chain entry;
* a deleted row: a chain entry has no row;
* a changed, deleted or reordered chain entry: its MAC (which covers the sequence number and the
  previous MAC) no longer matches, or the sequence has a gap;
* entries cut off the end: the last committed head is also written to ``<key file>.head`` (outside
  the database, after each commit) and into each release's output, and must still be on the chain.

A *seal* entry lists the digests of every row present when it was made: the first seal starts the
chain (hubs created before it existed are sealed as they are), and a steward's resolution of a
broken chain is a new seal. Rows before the last seal are checked against its list; problems in
chain entries before it were resolved by it.

Why hand-written: this is a few lines over ``hmac``/``hashlib`` that must run on every Store
backend (plain SQL with bound parameters, no engine-specific features); no library provides an
append-only, keyed hash chain over rows of an arbitrary SQL store.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import stat
import tempfile
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import TYPE_CHECKING, Any

from accord.errors import LedgerTampered, StoreError

if TYPE_CHECKING:
    from accord.store.base import Store

KEY_ENV = "ACCORD_HUB_KEY"
GENESIS_PREV = "accord-hub-chain-v1"

CHAIN_SQL = """CREATE TABLE IF NOT EXISTS hub_chain (
    seq BIGINT PRIMARY KEY, source VARCHAR NOT NULL, entry_sha256 VARCHAR NOT NULL,
    state VARCHAR NOT NULL, body VARCHAR NOT NULL, recorded_at VARCHAR NOT NULL,
    mac VARCHAR NOT NULL)"""

# The columns each chained table is digested over (named, so that an engine adding its own
# columns does not change the digests).
CHAINED: dict[str, tuple[str, ...]] = {
    "audit": ("occurred_at", "actor", "action", "detail"),
    "releases": ("release_id", "kind", "created_at", "actor", "data_version", "parameters",
                 "results"),
    "dp_ledger": ("entry_id", "event", "rho", "epsilon", "delta", "release_id", "kind", "actor",
                  "purpose", "mechanism", "data_version", "detail", "recorded_at"),
}
# What a broken-chain message may name of a row (never a value of a record: times, ids, actions).
_DESCRIBE = {"audit": ("occurred_at", "action"), "releases": ("release_id",),
             "dp_ledger": ("entry_id", "event")}


def _canon(value: Any) -> Any:
    # A DOUBLE column given an int reads back as a float: 1 and 1.0 must digest alike.
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def row_digest(source: str, row: dict[str, Any]) -> str:
    values = [_canon(row.get(c)) for c in CHAINED[source]]
    text = json.dumps([source, values], separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _mac(key: bytes, prev: str, seq: int, source: str, digest: str, state: str, body: str,
         at: str) -> str:
    msg = json.dumps([prev, seq, source, digest, state, body, at], separators=(",", ":"),
                     ensure_ascii=False)
    return hmac.new(key, msg.encode("utf-8"), hashlib.sha256).hexdigest()


# ---------------------------------------------------------------------------- the key file
def key_path(store: Store) -> Path | None:
    """Where the hub's chain key lives: $ACCORD_HUB_KEY, else ``<hub file>.key``; None only for an
    in-memory DuckDB hub (its key lives as long as the store object). A server engine (no hub
    file) must be given the key's place: a key per process would break the chain at once."""
    env = os.environ.get(KEY_ENV)
    if env:
        return Path(env)
    path = getattr(store, "path", None)
    if isinstance(path, Path):
        return Path(f"{path}.key")
    if store.engine == "duckdb":
        return None
    raise StoreError(f"the {store.engine} hub needs the file of its chain key",
                     hint=f"set ${KEY_ENV} to the hub key file (kept by the steward, outside the "
                          "database server)")


def _head_file(kp: Path) -> Path:
    return Path(f"{kp}.head")


def load_key(store: Store, create: bool) -> bytes | None:
    kp = key_path(store)
    if kp is None:
        if store._chain_mem_key is None and create:
            store._chain_mem_key = secrets.token_bytes(32)
        return store._chain_mem_key
    if kp.exists():
        mode = kp.stat().st_mode
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise StoreError(f"the hub key {kp} can be read by other users",
                             hint=f"chmod 600 {kp} (it must be readable by the hub's steward only)")
        try:
            key = bytes.fromhex(kp.read_text(encoding="ascii").split()[0])
        except (ValueError, IndexError, UnicodeDecodeError):
            raise StoreError(f"{kp} is not an Accord hub key file",
                             hint="restore the hub key from its backup") from None
        if len(key) < 32:
            raise StoreError(f"the hub key in {kp} is too short", hint="restore it from its backup")
        return key
    if not create:
        return None
    kp.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_bytes(32)
    # Created owner-only from the start (never chmod after writing); O_EXCL: never overwrite.
    fd = os.open(kp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as fh:
        fh.write(key.hex() + "\n# Accord hub chain key: keep it away from copies of the hub file, "
                 "back it up with the steward's secrets.\n")
    return key


def _read_witness(kp: Path | None) -> tuple[int, str] | None:
    if kp is None or not _head_file(kp).exists():
        return None
    try:
        seq, mac = _head_file(kp).read_text(encoding="ascii").split()[:2]
        return int(seq), mac
    except (ValueError, UnicodeDecodeError):
        return (-1, "unreadable")


def write_witness(store: Store, seq: int, mac: str) -> None:
    """After a commit: remember the head outside the database (only ever moves forward)."""
    kp = key_path(store)
    if kp is None or not kp.exists():
        return
    target = _head_file(kp)
    # A hub server commits from many threads and processes at once: the read-compare-write is
    # made atomic by an exclusive lock on a file beside the witness (flock: per open file, so it
    # holds between threads too), and each writer has its own temporary file, so the witness is
    # never half-written, mixed from two writers, or moved backwards.
    with _witness_lock(target):
        old = _read_witness(kp)
        if old is not None and old[0] >= seq:
            return
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f"{target.name}.tmp-")
        with os.fdopen(fd, "w", encoding="ascii") as fh:
            fh.write(f"{seq} {mac}\n")
        os.replace(tmp, target)


@contextmanager
def _witness_lock(target: Path) -> Iterator[None]:
    try:
        import fcntl
    except ImportError:  # not POSIX: one writer at a time is the operator's to ensure
        yield
        return
    fd = os.open(f"{target}.lock", os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


# ---------------------------------------------------------------------------- reading
@dataclass(frozen=True)
class ChainEntry:
    seq: int
    source: str
    entry_sha256: str
    state: str
    body: str
    recorded_at: str
    mac: str
    mac_ok: bool | None = None  # None: not checked (no key)


@dataclass
class ChainReport:
    """What ``accord hub verify`` found. ``ok`` means: releases may proceed."""

    entries: int = 0
    head: dict[str, Any] | None = None
    sealed_at: int | None = None
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    checked: list[ChainEntry] = field(default_factory=list)
    broken_seqs: list[int] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "entries": self.entries, "head": self.head,
                "sealed_at": self.sealed_at, "problems": self.problems, "notes": self.notes}


def read_entries(store: Store) -> list[ChainEntry]:
    if not store.table_exists("hub_chain"):
        return []
    rows = store.query("SELECT seq, source, entry_sha256, state, body, recorded_at, mac "
                       "FROM hub_chain ORDER BY seq").to_pylist()
    return [ChainEntry(**r) for r in rows]


def head(store: Store) -> dict[str, Any] | None:
    """The last entry: ``{"seq", "mac"}`` (what a release writes into its output)."""
    if not store.table_exists("hub_chain"):
        return None
    rows = store.query("SELECT seq, mac FROM hub_chain WHERE seq = "
                       "(SELECT max(seq) FROM hub_chain)").to_pylist()
    return {"seq": int(rows[0]["seq"]), "mac": rows[0]["mac"]} if rows else None


def head_state(store: Store) -> dict[str, Any]:
    """The privacy ledger's state recorded on the last entry ({} before the ledger's first entry)."""
    if not store.table_exists("hub_chain"):
        return {}
    rows = store.query("SELECT state FROM hub_chain WHERE seq = "
                       "(SELECT max(seq) FROM hub_chain)").to_pylist()
    return json.loads(rows[0]["state"]) if rows else {}


def sequence_of(store: Store, source: str) -> dict[str, int]:
    """Each chained row's place on the chain, by its digest: the order rows were written in."""
    if not store.table_exists("hub_chain"):
        return {}
    rows = store.query("SELECT seq, entry_sha256 FROM hub_chain WHERE source = ?",
                       [source]).to_pylist()
    return {r["entry_sha256"]: int(r["seq"]) for r in rows}


def in_chain_order(store: Store, source: str, rows: list[dict[str, Any]],
                   fallback: tuple[str, ...], newest_first: bool = False) -> list[dict[str, Any]]:
    """``rows`` (each holding every column ``source`` is digested over, and ``row_order`` where
    the table has it) in the order they were written: by ``row_order`` (which verification
    holds to the chain's order). Rows written before ``row_order`` existed come first, in the
    chain's order (only they are digested), then by ``fallback`` (an older hub's rows from before
    it was sealed)."""
    from accord.store.base import ROW_ORDER

    legacy = any(r.get(ROW_ORDER) is None for r in rows)
    if not legacy and _by_row_order(rows, newest_first):
        return rows  # as the SQL listed them (``store.order_sql``), verified: nothing to sort
    seq = sequence_of(store, source) if legacy else {}

    def key(r: dict[str, Any]) -> tuple[int, int, tuple[str, ...]]:
        order = r.get(ROW_ORDER)
        if order is not None:
            return 1, int(order), ()
        return 0, seq.get(row_digest(source, r), -1), tuple(str(r.get(c)) for c in fallback)

    return sorted(rows, key=key, reverse=newest_first)


def _by_row_order(rows: list[dict[str, Any]], newest_first: bool) -> bool:
    """Whether ``rows``' ``row_order`` values (from the hub's sequence: unique) strictly rise
    (fall when ``newest_first``): the order ``in_chain_order`` gives rows that all have one."""
    from accord.store.base import ROW_ORDER

    orders = [int(r[ROW_ORDER]) for r in rows]
    pairs = pairwise(orders)
    return all(a > b for a, b in pairs) if newest_first else all(a < b for a, b in pairs)


def rows_in_order(store: Store, source: str, fallback: tuple[str, ...], where: str = "",
                  params: tuple[Any, ...] = (), newest_first: bool = False,
                  limit: int | None = None) -> list[dict[str, Any]]:
    """The rows of a chained table (every column; ``where`` an SQL condition) in the order they
    were written, oldest first or ``newest_first``, at most ``limit``."""
    if not store.table_exists(source):
        return []
    sql = (f"SELECT * FROM {source}" + (f" WHERE {where}" if where else "")
           + f" ORDER BY {store.order_sql(source, *fallback, newest_first=newest_first)}"
           + (f" LIMIT {int(limit)}" if limit is not None else ""))
    return in_chain_order(store, source, store.query(sql, params).to_pylist(), fallback,
                          newest_first)


def _table_rows(store: Store, source: str) -> list[dict[str, Any]]:
    if not store.table_exists(source):
        return []
    from accord.store.base import ROW_ORDER

    cols = ", ".join(CHAINED[source] + ((ROW_ORDER,) if store.has_row_order(source) else ()))
    return store.query(f"SELECT {cols} FROM {source}").to_pylist()


def _order_broken(source: str, rows: list[dict[str, Any]], where: dict[str, list[int]]) -> bool:
    """Whether the rows chained after the last seal (``where``: digest -> their entries) are
    listed out of the chain's order: ``row_order`` is not in the digest, so this is what makes an
    edit of it seen. Rows without one (written before it existed) must precede those with one."""
    from accord.store.base import ROW_ORDER

    left = {d: sorted(seqs) for d, seqs in where.items()}
    legacy: list[int] = []
    ordered: list[int] = []
    for r in sorted(rows, key=lambda r: (r.get(ROW_ORDER) is not None, r.get(ROW_ORDER) or 0)):
        seqs = left.get(row_digest(source, r))
        if seqs:
            (legacy if r.get(ROW_ORDER) is None else ordered).append(seqs.pop(0))
    return ordered != sorted(ordered) or bool(legacy and ordered and max(legacy) > ordered[0])


def _describe(source: str, row: dict[str, Any]) -> str:
    return ", ".join(f"{c} {row.get(c)}" for c in _DESCRIBE[source])


# ---------------------------------------------------------------------------- writing
def _any_rows(store: Store) -> bool:
    return any(_table_rows(store, s) for s in CHAINED)


def _insert(store: Store, key: bytes, prev: str, seq: int, source: str, digest: str, state: str,
            body: str, at: str) -> str:
    mac = _mac(key, prev, seq, source, digest, state, body, at)
    store.execute("INSERT INTO hub_chain (seq, source, entry_sha256, state, body, recorded_at, mac) "
                  "VALUES (?, ?, ?, ?, ?, ?, ?)", [seq, source, digest, state, body, at, mac])
    store._chain_pending = (seq, mac)
    return mac


def _sealed_digests(store: Store) -> dict[str, list[str]]:
    return {s: sorted(row_digest(s, r) for r in _table_rows(store, s)) for s in CHAINED}


def _start(store: Store, at: str,
           pending: tuple[str, str] | None = None) -> tuple[bytes, int, str, str]:
    """The key, the next sequence number, the previous MAC and the current state; seals the hub
    first if it has no chain yet (a hub made before the chain existed is sealed as it is, less
    the ``pending`` (source, digest) row being chained now, which gets its own entry)."""
    store.lock_chain()  # concurrent writers take turns from here to their commit
    store.execute(CHAIN_SQL)
    last = store.query("SELECT seq, state, mac FROM hub_chain WHERE seq = "
                       "(SELECT max(seq) FROM hub_chain)").to_pylist()
    if last:
        key = load_key(store, create=False)
        if key is None:
            raise LedgerTampered(f"the hub key {key_path(store)} is missing, so nothing more can be "
                                 "put on the hub's tamper-evident chain",
                                 hint="restore the key file from its backup; if it is lost, a "
                                      "steward runs `accord hub verify --resolve --reason TEXT`")
        return key, int(last[0]["seq"]) + 1, last[0]["mac"], last[0]["state"]
    kp = key_path(store)
    if kp is not None and kp.exists() and _any_rows(store):
        raise LedgerTampered("the hub has audit, release or ledger entries and a chain key, but "
                             "its chain is gone (hub_chain emptied or dropped)",
                             hint="run `accord hub verify` and restore the hub from a backup")
    key = load_key(store, create=True)
    assert key is not None
    sealed = _sealed_digests(store)
    if pending is not None and pending[1] in sealed[pending[0]]:
        sealed[pending[0]].remove(pending[1])
    body = json.dumps({"seal": "genesis", "sealed": sealed}, sort_keys=True)
    digest = hashlib.sha256(body.encode()).hexdigest()
    mac = _insert(store, key, GENESIS_PREV, 1, "seal", digest, "{}", body, at)
    return key, 2, mac, "{}"


def append(store: Store, source: str, row: dict[str, Any], state: dict[str, Any] | None,
           at: str) -> None:
    """Chain one row just written (call in the same transaction as the row's INSERT)."""
    digest = row_digest(source, row)
    key, seq, prev, prev_state = _start(store, at, (source, digest))
    text = json.dumps(state, sort_keys=True) if state is not None else prev_state
    _insert(store, key, prev, seq, source, digest, text, "", at)


def seal(store: Store, at: str, state: dict[str, Any], info: dict[str, Any],
         new_key: bool = False) -> int:
    """A steward's resolution: seal the rows as they are now, with the given ledger state."""
    store.execute(CHAIN_SQL)
    kp = key_path(store)
    if new_key and kp is not None and not kp.exists():
        load_key(store, create=True)
    resolved = verify(store).broken_seqs
    key, seq, prev, _ = _start(store, at)
    body = json.dumps({"seal": "resolution", **info, "resolved_seqs": resolved,
                       "sealed": _sealed_digests(store)}, sort_keys=True, default=str)
    digest = hashlib.sha256(body.encode()).hexdigest()
    _insert(store, key, prev, seq, "seal", digest, json.dumps(state, sort_keys=True), body, at)
    return seq


def after_commit(store: Store) -> None:
    pending, store._chain_pending = store._chain_pending, None
    if pending is None:
        return
    seq, mac = pending
    found = store.query("SELECT mac FROM hub_chain WHERE seq = ?", [seq]).to_pylist()
    if found and found[0]["mac"] == mac:
        write_witness(store, seq, mac)


# ---------------------------------------------------------------------------- verifying
def verify(store: Store, expected_head: tuple[int, str] | None = None) -> ChainReport:
    """Check the whole chain and every chained row; say what is broken where."""
    report = ChainReport()
    entries = read_entries(store)
    kp = key_path(store)
    if not entries:
        if store.table_exists("hub_chain") or (kp is not None and kp.exists()):
            if _any_rows(store):
                report.problems.append("the hub has audit, release or ledger entries but its chain "
                                       "is empty or gone (hub_chain emptied or dropped)")
        else:
            report.notes.append("no chain yet: nothing has been recorded since this Accord "
                                "version; the hub is sealed as it is at its next recorded act")
        return report
    report.entries = len(entries)
    report.head = {"seq": int(entries[-1].seq), "mac": entries[-1].mac}
    key = load_key(store, create=False)
    if key is None:
        report.problems.append(f"the hub key {kp} is missing: the chain cannot be checked")
        return report

    # 1. The MAC walk. Each MAC covers the previous one and the entry's sequence number, so a
    #    changed, removed or reordered entry breaks it.
    prev = GENESIS_PREV
    checked: list[ChainEntry] = []
    expected_seq = 1
    issues: list[tuple[int, str]] = []
    for e in entries:
        if e.seq != expected_seq:
            lo, hi = expected_seq, e.seq - 1
            issues.append((e.seq, f"chain entries {lo}..{hi} are missing (deleted)" if hi >= lo
                           else f"chain entry {e.seq} is out of order"))
        ok = hmac.compare_digest(
            _mac(key, prev, e.seq, e.source, e.entry_sha256, e.state, e.body, e.recorded_at), e.mac)
        if not ok:
            issues.append((e.seq, f"chain entry {e.seq} ({e.source}, recorded {e.recorded_at}) was "
                                  "changed, moved or forged: its MAC does not match"))
        checked.append(ChainEntry(e.seq, e.source, e.entry_sha256, e.state, e.body, e.recorded_at,
                                  e.mac, ok))
        prev = e.mac
        expected_seq = e.seq + 1
    report.checked = checked
    report.broken_seqs = sorted({seq for seq, _ in issues})
    seals = [e for e in checked if e.source == "seal" and e.mac_ok]
    if not seals:
        report.problems.extend(msg for _, msg in issues)
        report.problems.append("the chain has no intact seal entry to start from")
        return report
    last_seal = seals[-1]
    report.sealed_at = int(last_seal.seq)
    # Entries before a seal are history: a problem there is resolved only if a steward's seal
    # recorded it (or came with a new key, so nothing before it can be checked); any other edit
    # of an old entry is still reported.
    resolved: set[int] = set()
    rotated = 0
    for e in seals:
        info = json.loads(e.body)
        resolved.update(int(x) for x in info.get("resolved_seqs", []))
        if info.get("key_lost"):
            rotated = max(rotated, int(e.seq))
    for seq, msg in issues:
        if seq < last_seal.seq and (seq in resolved or seq < rotated):
            report.notes.append(f"{msg} (resolved by a steward's seal)")
        else:
            report.problems.append(msg)

    # 2. Rows against the chain: sealed digests + entries after the seal = the rows present.
    sealed = json.loads(last_seal.body).get("sealed", {})
    after = [e for e in checked if e.seq > last_seal.seq and e.source in CHAINED]
    for source in CHAINED:
        rows = _table_rows(store, source)
        present: dict[str, list[dict[str, Any]]] = {}
        for r in rows:
            present.setdefault(row_digest(source, r), []).append(r)
        have = Counter({d: len(v) for d, v in present.items()})
        want = Counter(sealed.get(source, []))
        where: dict[str, list[int]] = {}
        for e in after:
            if e.source == source:
                want[e.entry_sha256] += 1
                where.setdefault(e.entry_sha256, []).append(int(e.seq))
        for digest, n in (want - have).items():
            seqs = where.get(digest, [])
            for i in range(n):
                if i < len(seqs):
                    report.problems.append(f"{source}: the row of chain entry {seqs[i]} is gone "
                                           "or was changed")
                else:
                    report.problems.append(f"{source}: a row sealed at entry {last_seal.seq} is "
                                           "gone or was changed")
        for digest, n in (have - want).items():
            for r in present[digest][:n]:
                report.problems.append(f"{source}: row ({_describe(source, r)}) is not on the chain "
                                       "(changed or inserted outside Accord)")
        if _order_broken(source, rows, where):
            report.problems.append(f"{source}: rows are out of the order they were written in "
                                   "(their row_order was changed outside Accord)")

    # 3. The end of the chain: the head committed last (outside the database) must still be there.
    by_seq = {int(e.seq): e.mac for e in checked}
    witness = _read_witness(kp)
    for label, w in (("the last head committed (" + str(_head_file(kp)) + ")" if kp else "", witness),
                     ("the head you gave", expected_head)):
        if w is None:
            continue
        seq, mac = w
        if seq not in by_seq:
            report.problems.append(f"{label} is entry {seq}, but the chain ends at entry "
                                   f"{report.head['seq']}: entries were cut off the end (or an "
                                   "older copy of the hub was restored)")
        elif not hmac.compare_digest(by_seq[seq], mac):
            report.problems.append(f"chain entry {seq} is not the one {label} names")
    return report


def require_intact(store: Store) -> None:
    """Refuse (exit 3) while the chain is broken. Checked in full every time (no cache: a cached
    answer would miss an edit made while a long-running process holds the hub)."""
    report = verify(store)
    if not report.ok:
        first = report.problems[0]
        more = f" (and {len(report.problems) - 1} more problems)" if len(report.problems) > 1 else ""
        hub = getattr(store, "path", None)
        raise LedgerTampered(
            f"the hub's audit/release/ledger chain is broken: {first}{more}; every release is "
            "refused until a data steward resolves it",
            hint=f"see what is broken where with `accord hub verify{' --hub ' + str(hub) if hub else ''}`"
                 "; then restore the hub from a backup, or (steward) `accord hub verify --resolve "
                 "--reason TEXT`")
