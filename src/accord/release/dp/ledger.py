"""The privacy-budget ledger: one budget per dataset version, kept in the hub store.

Accounting: zero-concentrated DP (zCDP). Every release's cost is a rho; costs add up (sequential
composition). A budget is set as (epsilon, delta) and kept as the rho that guarantees it
(Bun & Steinke Prop. 1.3); what has been spent is reported back as (epsilon, delta) the same way.
A pure epsilon-DP (Laplace) release costs epsilon**2 / 2.

Spending happens inside the caller's store transaction, together with the release record: a
conditional update of the one budget row, which DuckDB serialises (a concurrent writer of the same
row fails its transaction; other processes cannot even open the hub file meanwhile). A spend that
would exceed the budget is refused and nothing is written.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

from accord.errors import ReleaseRefused
from accord.release.dp.mechanism import epsilon_from_rho, rho_from_epsilon_delta
from accord.store import Store
from accord.store.base import now_iso

DEFAULT_TOTAL_EPSILON = 10.0
DEFAULT_TOTAL_DELTA = 1e-6
COMPOSITION = ("zCDP: the rho of every release adds up; budget and spend are shown as "
               "(epsilon, delta) with epsilon = rho + 2*sqrt(rho*ln(1/delta)) (Bun & Steinke 2016)")
_SLACK = 1e-12  # float noise when comparing sums of rho

LEDGER_SQL = (
    """CREATE TABLE IF NOT EXISTS dp_budget (
        data_version VARCHAR PRIMARY KEY, total_rho DOUBLE NOT NULL, spent_rho DOUBLE NOT NULL,
        epsilon DOUBLE NOT NULL, delta DOUBLE NOT NULL, set_by VARCHAR NOT NULL,
        set_at VARCHAR NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS dp_spends (
        spend_id VARCHAR PRIMARY KEY, data_version VARCHAR NOT NULL, release_id VARCHAR,
        kind VARCHAR NOT NULL, actor VARCHAR NOT NULL, purpose VARCHAR NOT NULL,
        mechanism VARCHAR NOT NULL, epsilon DOUBLE, delta DOUBLE, rho DOUBLE NOT NULL,
        detail VARCHAR NOT NULL, spent_at VARCHAR NOT NULL)""",
)


@dataclass(frozen=True)
class Budget:
    data_version: str
    epsilon: float
    delta: float
    total_rho: float
    spent_rho: float

    @property
    def remaining_rho(self) -> float:
        return max(self.total_rho - self.spent_rho, 0.0)

    @property
    def spent_epsilon(self) -> float:
        return epsilon_from_rho(self.spent_rho, self.delta)

    def to_dict(self) -> dict[str, Any]:
        return {"data_version": self.data_version, "epsilon": self.epsilon, "delta": self.delta,
                "total_rho": self.total_rho, "spent_rho": self.spent_rho,
                "remaining_rho": self.remaining_rho, "spent_epsilon": self.spent_epsilon,
                "composition": COMPOSITION}


def ensure_ledger(store: Store) -> None:
    for sql in LEDGER_SQL:
        store.execute(sql)


def _row(store: Store, version: str) -> Budget | None:
    rows = store.query("SELECT data_version, epsilon, delta, total_rho, spent_rho FROM dp_budget "
                       "WHERE data_version = ?", [version]).to_pylist()
    return Budget(**rows[0]) if rows else None


def current_budget(store: Store, create: bool = False, actor: str = "hub") -> Budget:
    """The budget of the store's current data version (the default one if none was set)."""
    ensure_ledger(store)
    version = store.data_version()
    found = _row(store, version)
    if found is not None:
        return found
    default = Budget(version, DEFAULT_TOTAL_EPSILON, DEFAULT_TOTAL_DELTA,
                     rho_from_epsilon_delta(DEFAULT_TOTAL_EPSILON, DEFAULT_TOTAL_DELTA), 0.0)
    if create:
        store.execute("INSERT INTO dp_budget VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                      [version, default.total_rho, 0.0, default.epsilon, default.delta, actor,
                       now_iso()])
    return default


def set_budget(store: Store, epsilon: float, delta: float, actor: str) -> Budget:
    """Set the total budget of the current data version; never below what is already spent."""
    rho = rho_from_epsilon_delta(epsilon, delta)
    with store.transaction():
        spent = current_budget(store, create=True, actor=actor).spent_rho
        if rho + _SLACK < spent:
            raise ReleaseRefused("the new budget is smaller than what has already been spent",
                                 hint="a budget can be raised, or set for new data, not taken back")
        store.execute("UPDATE dp_budget SET total_rho = ?, epsilon = ?, delta = ?, set_by = ?, "
                      "set_at = ? WHERE data_version = ?",
                      [rho, epsilon, delta, actor, now_iso(), store.data_version()])
        store.audit(actor, "dp_budget_set", {"epsilon": epsilon, "delta": delta, "rho": rho})
    return current_budget(store)


def spend(store: Store, rho: float, *, kind: str, actor: str, purpose: str, mechanism: str,
          epsilon: float | None, delta: float | None, detail: dict[str, Any],
          release_id: str | None = None) -> Budget:
    """Draw ``rho`` from the current version's budget. Call inside ``store.transaction()``."""
    if rho <= 0:
        raise ReleaseRefused("a DP release must cost a positive rho")
    budget = current_budget(store, create=True, actor=actor)
    if budget.spent_rho + rho > budget.total_rho + _SLACK:
        raise ReleaseRefused(
            f"this release needs rho {rho:.6g} but only {budget.remaining_rho:.6g} of the budget "
            f"for data version {budget.data_version} is left",
            hint="lower --epsilon, or (data steward) raise it with `accord budget set`")
    store.execute("UPDATE dp_budget SET spent_rho = spent_rho + ? WHERE data_version = ?",
                  [rho, budget.data_version])
    store.execute("INSERT INTO dp_spends VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                  [uuid.uuid4().hex[:12], budget.data_version, release_id, kind, actor, purpose,
                   mechanism, epsilon, delta, rho, json.dumps(detail, sort_keys=True, default=str),
                   now_iso()])
    after = _row(store, budget.data_version)
    if after is None or after.spent_rho > after.total_rho + _SLACK:  # belt and braces
        raise ReleaseRefused("the privacy budget would be overspent; nothing was released")
    return after


def spends(store: Store) -> list[dict[str, Any]]:
    ensure_ledger(store)
    return store.query("SELECT spend_id, data_version, release_id, kind, actor, purpose, "
                       "mechanism, epsilon, delta, rho, spent_at FROM dp_spends "
                       "ORDER BY spent_at, spend_id").to_pylist()
