"""Shared by the budget attack tests and benchmarks/attacks_budget.py: small hubs made through
the public API, the attacker's operations, and the unprotected behaviour emulated as a negative
control (the per-data-version ledger Accord had before issue 10)."""

from __future__ import annotations

import json
import random
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from accord.errors import AccordError
from accord.protect.job import build_contribution
from accord.protect.keys import PartnerKey, create_partner_key
from accord.release.dp import ledger
from accord.release.dp.mechanism import epsilon_from_rho, rho_from_epsilon_delta
from accord.release.dp.release import release_tables
from accord.store import Store, add_contribution, open_store
from accord.store import chain as hub_chain
from tests.conftest import CASE_MAPPING, write_case_export

BUDGET_DELTA = ledger.DEFAULT_TOTAL_DELTA
BUDGET_RHO = rho_from_epsilon_delta(ledger.DEFAULT_TOTAL_EPSILON, BUDGET_DELTA)
RELEASE_DELTA = 1e-9
TABLE = ["case_type_by_sex"]


@dataclass
class Lab:
    """A directory with a partner key, a mapping and a hub; contributions made on demand."""

    root: Path
    key: PartnerKey
    mapping: Path
    hub: Path
    made: int = 0
    extra_people: int = 0

    def contribution(self, rows: list[str] | None = None) -> Path:
        self.made += 1
        export = write_case_export(self.root / f"export{self.made}.csv", rows)
        out = self.root / f"contrib{self.made}"
        build_contribution(export, self.mapping, "ngo-b", out, self.key)
        return out


def make_lab(root: Path) -> Lab:
    root.mkdir(parents=True, exist_ok=True)
    key_path = root / "partner.key"
    key = create_partner_key(key_path)
    mapping = root / "cases.mapping.yaml"
    mapping.write_text(CASE_MAPPING, encoding="utf-8")
    lab = Lab(root, key, mapping, root / "hub.duckdb")
    with open_store(lab.hub) as store:
        add_contribution(store, lab.contribution())
    return lab


# ---------------------------------------------------------------------------- hub operations
def readd(lab: Lab, store: Store) -> None:
    """The same export ingested again: a new batch id and data version, the same people."""
    add_contribution(store, lab.contribution())


def add_new(lab: Lab, store: Store) -> None:
    """New people: one more accepted record with a fresh case number."""
    lab.extra_people += 1
    row = f"N{lab.extra_people};Ana;Diaz;01/01/1990;F;MX;01/03/2022;TV;FL;0;0;"
    add_contribution(store, lab.contribution([row]))


def replace(lab: Lab, store: Store) -> None:
    """An update of an existing record (A1's case type changes)."""
    row = "A1;Maria;Lopez;03/04/1990;F;MX;01/02/2022;GBV;;;;"
    add_contribution(store, lab.contribution([row]))


def withdraw(lab: Lab, store: Store) -> None:
    """A partner withdraws one of its records (accord.store.withdraw, as `accord withdraw` does),
    which changes the data version."""
    from accord.store.withdraw import withdraw as withdraw_records

    rows = store.query("SELECT partner, record_key FROM records ORDER BY record_key LIMIT 1").to_pylist()
    if rows:
        withdraw_records(store, rows[0]["partner"], "partner", record_keys=[rows[0]["record_key"]])


@dataclass
class PerVersionLedger:
    """The unprotected behaviour (Accord before issue 10): one fresh budget per data version."""

    spent: dict[str, float] = field(default_factory=dict)
    lifetime: float = 0.0

    def pay(self, version: str, rho: float) -> bool:
        if self.spent.get(version, 0.0) + rho > BUDGET_RHO + 1e-12:
            return False
        self.spent[version] = self.spent.get(version, 0.0) + rho
        self.lifetime += rho
        return True


@dataclass
class Outcome:
    steps: int = 0
    releases_asked: int = 0
    released: int = 0
    lifetime_rho: float = 0.0
    baseline_released: int = 0
    baseline_rho: float = 0.0

    @property
    def lifetime_epsilon(self) -> float:
        return epsilon_from_rho(self.lifetime_rho, BUDGET_DELTA)

    @property
    def baseline_epsilon(self) -> float:
        return epsilon_from_rho(self.baseline_rho, BUDGET_DELTA)


OPS: dict[str, Callable[[Lab, Store], None]] = {
    "readd": readd, "add_new": add_new, "replace": replace, "withdraw": withdraw}


def run_sequence(lab: Lab, steps: list[tuple[str, float]], seed: int = 0) -> Outcome:
    """Apply ``steps`` (operation, epsilon for releases) to the lab's hub; every release is asked
    of the real ledger and of the emulated per-version one."""
    out = Outcome()
    baseline = PerVersionLedger()
    with open_store(lab.hub) as store:
        for i, (op, eps) in enumerate(steps):
            out.steps += 1
            if op != "release":
                OPS[op](lab, store)
                continue
            out.releases_asked += 1
            rho = rho_from_epsilon_delta(eps, RELEASE_DELTA)
            version = store.data_version()
            try:
                rel = release_tables(store, eps, delta=RELEASE_DELTA, names=TABLE, actor="attacker",
                                     test_seed=seed * 1000 + i)
            except AccordError:
                pass
            else:
                out.released += 1
                out.lifetime_rho += float(rel.parameters["rho"])
            if baseline.pay(version, rho):
                out.baseline_released += 1
        out.baseline_rho = baseline.lifetime
        assert abs(ledger.current_budget(store).spent_rho - out.lifetime_rho) < 1e-9
    return out


def reset_attack(lab: Lab, rounds: int, epsilon: float = 10.0) -> Outcome:
    """The issue's attack: re-submit the same records, release at full strength, repeat."""
    steps: list[tuple[str, float]] = []
    for _ in range(rounds):
        steps += [("readd", 0.0), ("release", epsilon)]
    return run_sequence(lab, steps)


def random_steps(rng: random.Random, n: int) -> list[tuple[str, float]]:
    ops = ["readd", "add_new", "replace", "withdraw", "release", "release", "release"]
    return [(op, rng.choice([1.0, 2.0, 5.0, 10.0, 10.0]) if op == "release" else 0.0)
            for op in (rng.choice(ops) for _ in range(n))]


# ---------------------------------------------------------------------------- tampering
def prepared_hub(root: Path) -> Lab:
    """A hub with history: contributions, two DP releases, a grant, an audit trail."""
    lab = make_lab(root)
    with open_store(lab.hub) as store:
        readd(lab, store)
        release_tables(store, 1.0, delta=RELEASE_DELTA, names=TABLE, actor="analyst", test_seed=1)
        ledger.grant(store, 1.0, "steward", "2027 allowance")
        release_tables(store, 2.0, delta=RELEASE_DELTA, names=TABLE, actor="analyst", test_seed=2)
        add_new(lab, store)
    return lab


def copy_hub(lab: Lab, dest: Path) -> Path:
    """A copy of the hub file with its key and committed head (a separate hub to attack)."""
    dest.mkdir(parents=True, exist_ok=True)
    hub = dest / "hub.duckdb"
    shutil.copy(lab.hub, hub)
    for suffix in (".key", ".key.head"):
        src = Path(f"{lab.hub}{suffix}")
        if src.exists():
            shutil.copy(src, Path(f"{hub}{suffix}"))
    return hub


def _sql(hub: Path, *statements: str, params: list[list[object]] | None = None) -> None:
    con = duckdb.connect(str(hub))
    try:
        for i, s in enumerate(statements):
            con.execute(s, (params or [[]] * len(statements))[i])
    finally:
        con.close()


def _one(hub: Path, sql: str) -> list[tuple[object, ...]]:
    con = duckdb.connect(str(hub))
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def tamper_named(hub: Path, name: str) -> None:
    """The attacks named in the issue and their variants, as SQL on the hub file."""
    if name == "zero_spent":  # the UPDATE, on the lifetime ledger
        _sql(hub, "UPDATE dp_ledger SET rho = 0 WHERE event = 'spend'")
    elif name == "delete_spends":
        _sql(hub, "DELETE FROM dp_ledger WHERE event = 'spend'")
    elif name == "delete_last_spend_and_its_chain_tail":
        # a clean truncation: the chain from the last spend on, and exactly the rows it chained
        seq = _one(hub, "SELECT max(seq) FROM hub_chain WHERE source = 'dp_ledger'")[0][0]
        gone = {str(d) for (d,) in _one(hub, f"SELECT entry_sha256 FROM hub_chain WHERE seq >= {seq}")}
        _sql(hub, "DELETE FROM hub_chain WHERE seq >= ?", params=[[seq]])
        for table, cols in hub_chain.CHAINED.items():
            for rowid, *values in _one(hub, f"SELECT rowid, {', '.join(cols)} FROM {table}"):
                if hub_chain.row_digest(table, dict(zip(cols, values, strict=True))) in gone:
                    _sql(hub, f"DELETE FROM {table} WHERE rowid = ?", params=[[rowid]])
    elif name == "zero_state_on_chain":
        head = _one(hub, "SELECT seq, state FROM hub_chain ORDER BY seq DESC LIMIT 1")[0]
        st = json.loads(str(head[1]))
        st["spent_rho"] = 0.0
        _sql(hub, "UPDATE hub_chain SET state = ? WHERE seq = ?",
             params=[[json.dumps(st, sort_keys=True), head[0]]])
    elif name == "forged_grant":
        _sql(hub, "INSERT INTO dp_ledger (entry_id, event, rho, epsilon, delta, release_id, kind, "
                  "actor, purpose, mechanism, data_version, detail, recorded_at) VALUES ('forged', "
                  "'grant', 100, 100, 1e-6, NULL, NULL, 'x', 'x', NULL, 'v', '{}', "
                  "'2026-01-01T00:00:00+00:00')")
    elif name == "drop_chain":
        _sql(hub, "DROP TABLE hub_chain")
    elif name == "empty_chain":
        _sql(hub, "DELETE FROM hub_chain")
    elif name == "reorder_chain":  # swap two entries' positions
        _sql(hub, "UPDATE hub_chain SET seq = -1 WHERE seq = 2",
             "UPDATE hub_chain SET seq = 2 WHERE seq = 3", "UPDATE hub_chain SET seq = 3 WHERE seq = -1")
    elif name == "reorder_ledger_rows":  # two ledger rows swap places (contents)
        cols = [c for c in hub_chain.CHAINED["dp_ledger"] if c != "entry_id"]
        rows = _one(hub, f"SELECT entry_id, {', '.join(cols)} FROM dp_ledger "
                         "WHERE event IN ('spend', 'grant') ORDER BY recorded_at, entry_id LIMIT 2")
        sets = ", ".join(f"{c} = ?" for c in cols)
        _sql(hub, f"UPDATE dp_ledger SET {sets} WHERE entry_id = ?",
             f"UPDATE dp_ledger SET {sets} WHERE entry_id = ?",
             params=[[*rows[1][1:], rows[0][0]], [*rows[0][1:], rows[1][0]]])
    elif name == "rewrite_audit_actor":
        _sql(hub, "UPDATE audit SET actor = 'someone-else'")
    elif name == "delete_release_record":
        _sql(hub, "DELETE FROM releases WHERE kind = 'dp_tables'")
    elif name == "recompute_digest_without_key":
        # edit a spend and recompute its digest on the chain: the MAC (keyed) still gives it away
        cols = list(hub_chain.CHAINED["dp_ledger"])
        row = _one(hub, f"SELECT {', '.join(cols)} FROM dp_ledger WHERE event = 'spend' LIMIT 1")[0]
        old = dict(zip(cols, row, strict=True))
        new = {**old, "rho": 0.0}
        _sql(hub, "UPDATE dp_ledger SET rho = 0 WHERE entry_id = ?",
             "UPDATE hub_chain SET entry_sha256 = ? WHERE entry_sha256 = ?",
             params=[[old["entry_id"]], [hub_chain.row_digest("dp_ledger", new),
                                         hub_chain.row_digest("dp_ledger", old)]])
    else:
        raise ValueError(name)


NAMED = ("zero_spent", "delete_spends", "delete_last_spend_and_its_chain_tail",
         "zero_state_on_chain", "forged_grant", "drop_chain", "empty_chain", "reorder_chain",
         "reorder_ledger_rows", "rewrite_audit_actor", "delete_release_record",
         "recompute_digest_without_key")


def tamper_random(hub: Path, rng: random.Random) -> str:
    """One random edit, deletion or reordering of a chained row or chain entry."""
    kind = rng.choice(["edit", "delete", "reorder", "edit_chain", "delete_chain"])
    table = rng.choice(list(hub_chain.CHAINED))
    if kind in ("edit_chain", "delete_chain", "reorder"):
        seqs = [int(str(r[0])) for r in _one(hub, "SELECT seq FROM hub_chain ORDER BY seq")]
        if kind == "reorder":
            a, b = rng.sample(seqs, 2)
            _sql(hub, "UPDATE hub_chain SET seq = -1 WHERE seq = ?",
                 "UPDATE hub_chain SET seq = ? WHERE seq = ?", "UPDATE hub_chain SET seq = ? WHERE seq = -1",
                 params=[[a], [a, b], [b]])
            return f"reorder chain entries {a} and {b}"
        seq = rng.choice(seqs)
        if kind == "delete_chain":
            _sql(hub, "DELETE FROM hub_chain WHERE seq = ?", params=[[seq]])
            return f"delete chain entry {seq}"
        col = rng.choice(["source", "entry_sha256", "state", "recorded_at"])
        _sql(hub, f"UPDATE hub_chain SET {col} = {col} || ' ' WHERE seq = ?", params=[[seq]])
        return f"edit chain entry {seq} {col}"
    cols = hub_chain.CHAINED[table]
    n = int(str(_one(hub, f"SELECT count(*) FROM {table}")[0][0]))
    if n == 0:
        return tamper_random(hub, rng)
    pick = rng.randrange(n)
    # DuckDB's rowid addresses one row whatever its values (two audit rows may be identical).
    rowid = _one(hub, f"SELECT rowid FROM {table} ORDER BY rowid LIMIT 1 OFFSET {pick}")[0][0]
    if kind == "delete":
        _sql(hub, f"DELETE FROM {table} WHERE rowid = ?", params=[[rowid]])
        return f"delete a {table} row"
    if kind == "reorder":  # unreachable (handled above); kept for clarity
        return "reorder"
    col = rng.choice(cols)
    numeric = table == "dp_ledger" and col in ("rho", "epsilon", "delta")
    change = f"coalesce({col}, 0) * 0.5 + 0.001" if numeric else f"coalesce({col}, '') || 'x'"
    _sql(hub, f"UPDATE {table} SET {col} = {change} WHERE rowid = ?", params=[[rowid]])
    return f"edit {table}.{col}"
