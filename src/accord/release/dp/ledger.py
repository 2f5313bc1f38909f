"""The privacy-budget ledger: one budget per dataset version, kept in the hub store.

Accounting: zero-concentrated DP (zCDP). Every release's cost is a rho; costs add up (sequential
composition). A budget is set as (epsilon, delta) and kept as the rho that guarantees it
(Bun & Steinke Prop. 1.3). A pure epsilon-DP (Laplace) release costs epsilon**2 / 2.

Display: rho is the unit everything is counted in. An epsilon means nothing without its delta, and
the same rho reads as a smaller epsilon at a larger delta (a release asked for at epsilon 1, delta
1e-9 reads as epsilon 0.82 at the budget's delta 1e-6). So every epsilon shown states its delta,
and every amount of the ledger (budget, spent, left, each spend) is also shown at one delta, the
budget's, next to what the release asked for.

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
COMPOSITION = ("zCDP: the rho of every release adds up (epsilons do not); budget, spent and left "
               "are also shown as epsilon at the budget's delta, with epsilon = rho + "
               "2*sqrt(rho*ln(1/delta)) (Bun & Steinke 2016)")
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
        """What has been spent, as epsilon at the budget's delta."""
        return epsilon_from_rho(self.spent_rho, self.delta)

    @property
    def remaining_epsilon(self) -> float:
        """What is left, as epsilon at the budget's delta."""
        return epsilon_from_rho(self.remaining_rho, self.delta)

    def to_dict(self) -> dict[str, Any]:
        return {"data_version": self.data_version, "epsilon": self.epsilon, "delta": self.delta,
                "total_rho": self.total_rho, "spent_rho": self.spent_rho,
                "remaining_rho": self.remaining_rho, "spent_epsilon": self.spent_epsilon,
                "remaining_epsilon": self.remaining_epsilon, "epsilon_delta": self.delta,
                "accounting_unit": "rho (zCDP)", "composition": COMPOSITION}


def loss_text(epsilon: float | None, delta: float | None) -> str:
    """An epsilon with its delta, as every screen shows it ("epsilon 1 at delta 1e-09")."""
    if epsilon is None:
        return ""
    if delta is None:
        return f"epsilon {epsilon:.3g} (pure DP)"
    return f"epsilon {epsilon:.3g} at delta {delta:g}"


def rho_text(rho: float, delta: float) -> str:
    """A rho and the epsilon it means at ``delta`` ("rho 0.02031 = epsilon 0.819 at delta 1e-06")."""
    return f"rho {rho:.4g} = {loss_text(epsilon_from_rho(rho, delta), delta)}"


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
    """Every spend: what the release asked for (``epsilon`` at ``delta``; no delta = pure DP),
    its cost ``rho``, and that cost as ``epsilon_at_budget_delta`` at ``budget_delta`` (the delta
    of its data version's budget), comparable with the budget's spent and left."""
    ensure_ledger(store)
    rows = store.query(
        "SELECT s.spend_id, s.data_version, s.release_id, s.kind, s.actor, s.purpose, "
        "s.mechanism, s.epsilon, s.delta, s.rho, s.spent_at, b.delta AS budget_delta "
        "FROM dp_spends s LEFT JOIN dp_budget b ON b.data_version = s.data_version "
        "ORDER BY s.spent_at, s.spend_id").to_pylist()
    for r in rows:
        r["budget_delta"] = r["budget_delta"] or DEFAULT_TOTAL_DELTA
        r["epsilon_at_budget_delta"] = epsilon_from_rho(r["rho"], r["budget_delta"])
    return rows


def dp_summary(store: Store) -> dict[str, Any]:
    """For the report: the current budget, every spend, and the latest DP tables release."""
    ensure_ledger(store)
    latest = None
    if store.table_exists("releases"):
        rows = store.query("SELECT release_id, created_at, actor, parameters, results FROM releases "
                           "WHERE kind = 'dp_tables' ORDER BY created_at DESC LIMIT 1").to_pylist()
        if rows:
            latest = {**rows[0], "parameters": json.loads(rows[0]["parameters"]),
                      "results": json.loads(rows[0]["results"])}
    return {"budget": current_budget(store).to_dict(), "spends": spends(store),
            "latest_tables": latest}
