"""The privacy-budget ledger: one lifetime budget for the people of a hub, kept in the hub store.

Unit: the hub's people. Adding, re-adding, replacing or withdrawing records, re-linking, or loading
the same people under new batch ids all change the data version but never the budget: there is one
ledger per hub, and everything ever spent on its people counts against it. A data steward sets the
total (``accord budget set``) and may grant more (``accord budget grant``, e.g. a yearly allowance):
each is an explicit act with its own figure, on the ledger and in the audit trail.

Accounting: zero-concentrated DP (zCDP). Every release's cost is a rho; costs add up (sequential
composition). A budget is set as (epsilon, delta) and kept as the rho that guarantees it
(Bun & Steinke Prop. 1.3). A pure epsilon-DP (Laplace) release costs epsilon**2 / 2. A grant is
given as epsilon at the budget's delta and added in rho.

Display: rho is the unit everything is counted in. An epsilon means nothing without its delta, and
the same rho reads as a smaller epsilon at a larger delta (a release asked for at epsilon 1, delta
1e-9 reads as epsilon 0.82 at the budget's delta 1e-6). So every epsilon shown states its delta,
and every amount of the ledger (budget, spent, left, each spend) is also shown at one delta, the
budget's, next to what the release asked for.

Shares of organisations: a steward may give an organisation of a shared hub a quota (epsilon at
the budget's delta, kept in rho) so that one partner's analysts cannot spend what the others
need. A release by a hub user draws from the hub's budget *and* from their organisation's quota
when it has one; what each organisation has spent is counted whether it has a quota or not (a
quota set later counts past spends). Quotas change nothing about privacy (the hub's budget alone
bounds what the people lose); they divide it. The organisation of a spend is read from the hub's
accounts (``hub_users``) inside the spend's transaction, not taken from the caller, so a caller
cannot charge another organisation; an actor who is not a hub user (the steward's terminal)
draws from the hub's budget only.

Append-only and tamper-evident: ``dp_ledger`` rows are only ever inserted, each chained (see
:mod:`accord.store.chain`) with the ledger's state after it (set figure, granted, spent) under the
chain's MAC. The budget is read from that authenticated state; a spend or budget change is refused
while the chain is broken. Spending happens inside the caller's store transaction, together with
the release record; the chain's sequence number is a primary key, so two concurrent writers cannot
both extend it (one fails and rolls back), and DuckDB lets one process hold the hub file at a time.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

from accord.errors import ParameterError, ReleaseRefused
from accord.release.dp.mechanism import epsilon_from_rho, rho_from_epsilon_delta
from accord.release.dp.params import check_epsilon, check_rho
from accord.store import Store
from accord.store import chain as hub_chain
from accord.store.base import now_iso

DEFAULT_TOTAL_EPSILON = 10.0
DEFAULT_TOTAL_DELTA = 1e-6
COMPOSITION = ("zCDP: the rho of every release adds up (epsilons do not); budget, spent and left "
               "are also shown as epsilon at the budget's delta, with epsilon = rho + "
               "2*sqrt(rho*ln(1/delta)) (Bun & Steinke 2016)")
SCOPE = ("one lifetime budget for the hub's people: adding, re-adding, replacing or withdrawing "
         "records, re-linking or new batches never restore it; only a steward's set or grant does")
_SLACK = 1e-12  # float noise when comparing sums of rho

LEDGER_SQL = """CREATE TABLE IF NOT EXISTS dp_ledger (
    entry_id VARCHAR PRIMARY KEY, event VARCHAR NOT NULL, rho DOUBLE PRECISION NOT NULL,
    epsilon DOUBLE PRECISION, delta DOUBLE PRECISION, release_id VARCHAR, kind VARCHAR,
    actor VARCHAR NOT NULL, purpose VARCHAR NOT NULL, mechanism VARCHAR,
    data_version VARCHAR NOT NULL, detail VARCHAR NOT NULL, recorded_at VARCHAR NOT NULL)"""
_COLUMNS = hub_chain.CHAINED["dp_ledger"]
_LEGACY = ("dp_budget", "dp_spends")  # the per-data-version ledger of Accord before issue 10


@dataclass(frozen=True)
class Budget:
    """The hub's lifetime budget. ``data_version`` is the data version now (for information: the
    budget does not depend on it); ``epsilon``/``delta`` the steward's set figure; ``total_rho`` =
    set + granted."""

    data_version: str
    epsilon: float
    delta: float
    total_rho: float
    spent_rho: float
    granted_rho: float = 0.0
    spends: int = 0

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
        return {"data_version": self.data_version, "scope": SCOPE, "epsilon": self.epsilon,
                "delta": self.delta, "total_rho": self.total_rho,
                "total_epsilon": epsilon_from_rho(self.total_rho, self.delta),
                "granted_rho": self.granted_rho, "spent_rho": self.spent_rho,
                "remaining_rho": self.remaining_rho, "spent_epsilon": self.spent_epsilon,
                "remaining_epsilon": self.remaining_epsilon, "epsilon_delta": self.delta,
                "spends": self.spends, "accounting_unit": "rho (zCDP)",
                "composition": COMPOSITION}


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


# ---------------------------------------------------------------------------- state
def _default_state() -> dict[str, Any]:
    return {"set_epsilon": DEFAULT_TOTAL_EPSILON, "delta": DEFAULT_TOTAL_DELTA,
            "set_rho": rho_from_epsilon_delta(DEFAULT_TOTAL_EPSILON, DEFAULT_TOTAL_DELTA),
            "granted_rho": 0.0, "spent_rho": 0.0, "spends": 0, "explicit": False,
            "quota_rho": {}, "org_spent_rho": {}}


def _state(store: Store) -> dict[str, Any]:
    """The ledger's state as last chained (MAC-covered), or the default before any entry."""
    found = hub_chain.head_state(store)
    return {**_default_state(), **found} if found else _default_state()


def _budget(store: Store, st: dict[str, Any]) -> Budget:
    return Budget(store.data_version(), float(st["set_epsilon"]), float(st["delta"]),
                  float(st["set_rho"]) + float(st["granted_rho"]), float(st["spent_rho"]),
                  float(st["granted_rho"]), int(st["spends"]))


def _write(store: Store, event: str, rho: float, state: dict[str, Any], *, actor: str,
           purpose: str = "", epsilon: float | None = None, delta: float | None = None,
           release_id: str | None = None, kind: str | None = None, mechanism: str | None = None,
           detail: dict[str, Any] | None = None, entry_id: str | None = None,
           data_version: str | None = None, at: str | None = None) -> None:
    row = {"entry_id": entry_id or uuid.uuid4().hex[:12], "event": event, "rho": rho,
           "epsilon": epsilon, "delta": delta, "release_id": release_id, "kind": kind,
           "actor": actor, "purpose": purpose, "mechanism": mechanism,
           "data_version": data_version or store.data_version(),
           "detail": json.dumps(detail or {}, sort_keys=True, default=str),
           "recorded_at": at or now_iso()}
    store.insert_chained("dp_ledger", row, state)


def ensure_ledger(store: Store) -> None:
    """Create the ledger; carry a per-data-version ledger of an older hub over (see _migrate)."""
    store.execute(LEDGER_SQL)
    store.ensure_row_order("dp_ledger")
    if store.table_exists("dp_budget") and "data_version" in store.query(
            "SELECT * FROM dp_budget WHERE 1 = 0").column_names:
        _migrate(store)


def _migrate(store: Store) -> None:
    """Before issue 10 every data version had its own budget, so re-adding data restored it. All
    those versions held the same people: their spends are copied into the one lifetime ledger
    (so lifetime spent = the sum over every version), the latest budget figure set is kept, and
    the old tables are renamed (``*_per_version``), not deleted. If the sum exceeds the budget,
    nothing is left until a steward grants more."""
    budgets = store.query("SELECT data_version, total_rho, epsilon, delta, set_by, set_at "
                          "FROM dp_budget ORDER BY set_at, data_version").to_pylist()
    old_spends = store.query(
        "SELECT spend_id, data_version, release_id, kind, actor, purpose, mechanism, epsilon, "
        "delta, rho, detail, spent_at FROM dp_spends ORDER BY spent_at, spend_id").to_pylist() \
        if store.table_exists("dp_spends") else []
    with store.transaction():
        st = _state(store)
        if budgets:
            last = budgets[-1]
            st.update(set_epsilon=float(last["epsilon"]), delta=float(last["delta"]),
                      set_rho=float(last["total_rho"]), explicit=True)
            _write(store, "set", st["set_rho"], dict(st), actor=str(last["set_by"]),
                   epsilon=st["set_epsilon"], delta=st["delta"],
                   detail={"migrated": "latest figure of the per-data-version ledger",
                           "versions": len(budgets)},
                   data_version=str(last["data_version"]), at=str(last["set_at"]))
        for s in old_spends:
            st["spent_rho"] += float(s["rho"])
            st["spends"] += 1
            _write(store, "spend", float(s["rho"]), dict(st), actor=str(s["actor"]),
                   purpose=str(s["purpose"]), epsilon=s["epsilon"], delta=s["delta"],
                   release_id=s["release_id"], kind=s["kind"], mechanism=s["mechanism"],
                   detail={**json.loads(s["detail"] or "{}"), "migrated": True},
                   entry_id=str(s["spend_id"]), data_version=str(s["data_version"]),
                   at=str(s["spent_at"]))
        over = st["spent_rho"] > st["set_rho"] + st["granted_rho"] + _SLACK
        info = {"versions": len(budgets), "spends": len(old_spends),
                "spent_rho": st["spent_rho"], "budget_rho": st["set_rho"],
                "over_budget": over,
                "note": "the per-data-version ledger was merged into one lifetime ledger: "
                        "everything spent on any version now counts"}
        _write(store, "migrated", 0.0, dict(st), actor="accord", detail=info)
        for name in _LEGACY:
            if store.table_exists(name):
                store.execute(f"ALTER TABLE {name} RENAME TO {name}_per_version")
        store.audit("accord", "dp_ledger.migrated", info)


# ---------------------------------------------------------------------------- the public API
def current_budget(store: Store, create: bool = False, actor: str = "hub") -> Budget:
    """The hub's lifetime budget. ``create`` puts the default figure on record if none was set."""
    ensure_ledger(store)
    st = _state(store)
    if create and not st.get("explicit"):
        with store.transaction():
            st = _state(store)
            if not st.get("explicit"):
                st["explicit"] = True
                _write(store, "set", st["set_rho"], dict(st), actor=actor,
                       epsilon=st["set_epsilon"], delta=st["delta"], detail={"default": True})
    return _budget(store, st)


def set_budget(store: Store, epsilon: float, delta: float, actor: str) -> Budget:
    """Set the hub's total (before grants); never below what is already spent."""
    rho = rho_from_epsilon_delta(epsilon, delta)  # validates both (exit 2) before anything else
    with store.transaction():
        store.lock_chain()  # the state read below is the last committed (concurrent servers)
        ensure_ledger(store)
        store.require_intact()
        st = _state(store)
        if rho + st["granted_rho"] + _SLACK < st["spent_rho"]:
            raise ReleaseRefused("the new budget is smaller than what has already been spent",
                                 hint="a budget can be raised, not taken back below what is spent")
        before = {k: st[k] for k in ("set_epsilon", "delta", "set_rho")}
        st.update(set_epsilon=epsilon, delta=delta, set_rho=rho, explicit=True)
        _write(store, "set", rho, dict(st), actor=actor, epsilon=epsilon, delta=delta,
               detail={"before": before})
        store.audit(actor, "dp_budget_set", {"epsilon": epsilon, "delta": delta, "rho": rho})
    return current_budget(store)


def grant(store: Store, epsilon: float, actor: str, reason: str) -> Budget:
    """Add ``epsilon`` (at the budget's delta) to the lifetime budget: a renewal, e.g. a yearly
    allowance. An explicit, audited act with its own figure and reason."""
    epsilon = check_epsilon(epsilon)
    if not reason.strip():
        raise ParameterError("a grant needs a reason (e.g. '2027 allowance')",
                             hint="give --reason TEXT")
    with store.transaction():
        store.lock_chain()  # the state read below is the last committed (concurrent servers)
        ensure_ledger(store)
        store.require_intact()
        st = _state(store)
        rho = rho_from_epsilon_delta(epsilon, st["delta"])
        st["granted_rho"] += rho
        st["explicit"] = True
        _write(store, "grant", rho, dict(st), actor=actor, purpose=reason, epsilon=epsilon,
               delta=st["delta"], detail={"reason": reason})
        store.audit(actor, "dp_budget_grant", {"epsilon": epsilon, "delta": st["delta"], "rho": rho,
                                               "reason": reason})
    return current_budget(store)


@dataclass(frozen=True)
class Quota:
    """An organisation's share: its quota (None: no quota, only the hub's budget limits it), what
    its users have spent, and what is left of the quota, all in rho."""

    org: str
    quota_rho: float | None
    spent_rho: float

    @property
    def remaining_rho(self) -> float | None:
        return None if self.quota_rho is None else max(self.quota_rho - self.spent_rho, 0.0)

    def to_dict(self, delta: float) -> dict[str, Any]:
        def eps(rho: float | None) -> float | None:
            return None if rho is None else epsilon_from_rho(rho, delta)

        return {"org": self.org, "quota_rho": self.quota_rho, "spent_rho": self.spent_rho,
                "remaining_rho": self.remaining_rho, "quota_epsilon": eps(self.quota_rho),
                "spent_epsilon": eps(self.spent_rho), "remaining_epsilon": eps(self.remaining_rho),
                "epsilon_delta": delta}


def org_of(store: Store, actor: str) -> str | None:
    """The organisation of a hub user (None for an actor who is not one, e.g. the steward's
    terminal). Read here, in the spend's transaction, rather than passed by the caller: the hub's
    accounts decide who pays, so no caller can charge another organisation."""
    if not store.table_exists("hub_users"):
        return None
    rows = store.query("SELECT org FROM hub_users WHERE username = ?", [actor]).to_pylist()
    return str(rows[0]["org"]) if rows else None


def quotas(store: Store) -> list[Quota]:
    """Every organisation with a quota or a spend, by name."""
    ensure_ledger(store)
    st = _state(store)
    given, spent = dict(st.get("quota_rho") or {}), dict(st.get("org_spent_rho") or {})
    return [Quota(org, None if given.get(org) is None else float(given[org]), float(spent.get(org, 0.0)))
            for org in sorted(set(given) | set(spent))]


def set_quota(store: Store, org: str, epsilon: float | None, actor: str, reason: str) -> Quota:
    """Give ``org`` a quota of ``epsilon`` at the budget's delta (None removes it): never below
    what its users have already spent. On the ledger (chained) and the audit log."""
    if epsilon is not None:
        epsilon = check_epsilon(epsilon)
    if not reason.strip():
        raise ParameterError("a quota needs a reason (e.g. 'agreed share for 2027')",
                             hint="give --reason TEXT")
    with store.transaction():
        store.lock_chain()
        ensure_ledger(store)
        store.require_intact()
        if not store.table_exists("hub_orgs") or not store.query(
                "SELECT org FROM hub_orgs WHERE org = ?", [org]).num_rows:
            raise ParameterError(f"no organisation {org} on this hub",
                                 hint="`accord hub org list` shows them; add one with `accord hub org add`")
        st = _state(store)
        given = dict(st.get("quota_rho") or {})
        spent = float(dict(st.get("org_spent_rho") or {}).get(org, 0.0))
        rho = None if epsilon is None else rho_from_epsilon_delta(epsilon, st["delta"])
        if rho is not None and rho + _SLACK < spent:
            raise ReleaseRefused(
                f"the quota is smaller than what {org}'s users have already spent "
                f"({rho_text(spent, st['delta'])})",
                hint="a quota can be set at or above what is spent, or removed")
        before = given.get(org)
        if rho is None:
            given.pop(org, None)
        else:
            given[org] = rho
        st["quota_rho"] = given
        st.setdefault("org_spent_rho", {})
        _write(store, "quota", rho or 0.0, dict(st), actor=actor, purpose=reason, epsilon=epsilon,
               delta=st["delta"], detail={"org": org, "before_rho": before, "removed": rho is None})
        store.audit(actor, "dp_quota_set", {"org": org, "epsilon": epsilon, "rho": rho,
                                            "reason": reason})
    return Quota(org, rho, spent)


def _quota_refusal(st: dict[str, Any], org: str | None, rho: float, what: str) -> str | None:
    """Why ``org``'s quota cannot pay ``rho`` (None when it can, or has no quota)."""
    if org is None:
        return None
    cap = dict(st.get("quota_rho") or {}).get(org)
    if cap is None:
        return None
    spent = float(dict(st.get("org_spent_rho") or {}).get(org, 0.0))
    if spent + rho <= float(cap) + _SLACK:
        return None
    left = max(float(cap) - spent, 0.0)
    return (f"{what} needs {rho_text(rho, st['delta'])} but only {rho_text(left, st['delta'])} "
            f"of {org}'s quota of the hub's budget is left")


def spend(store: Store, rho: float, *, kind: str, actor: str, purpose: str, mechanism: str,
          epsilon: float | None, delta: float | None, detail: dict[str, Any],
          release_id: str | None = None) -> Budget:
    """Draw ``rho`` from the hub's lifetime budget. Call inside ``store.transaction()``.

    Refused (ReleaseRefused, exit 3) when the budget cannot pay or the chain is broken; a
    non-finite or out-of-range rho is refused with exit 2."""
    rho = check_rho(rho)
    with store.transaction():
        store.lock_chain()  # the state read below is the last committed (concurrent servers)
        ensure_ledger(store)
        store.require_intact()
        st = _state(store)
        if not st.get("explicit"):
            current_budget(store, create=True, actor=actor)
            st = _state(store)
        total = st["set_rho"] + st["granted_rho"]
        if st["spent_rho"] + rho > total + _SLACK:
            left = max(total - st["spent_rho"], 0.0)
            raise ReleaseRefused(
                f"this release needs rho {rho:.6g} but only {left:.6g} of the hub's lifetime "
                "budget is left",
                hint="lower --epsilon, or (data steward) grant more with `accord budget grant`")
        org = org_of(store, actor)
        refusal = _quota_refusal(st, org, rho, "this release")
        if refusal:
            raise ReleaseRefused(refusal, hint="lower --epsilon, or (data steward) raise the "
                                 "organisation's quota with `accord budget quota`")
        st["spent_rho"] += rho
        st["spends"] += 1
        if org is not None:
            by_org = dict(st.get("org_spent_rho") or {})
            by_org[org] = float(by_org.get(org, 0.0)) + rho
            st["org_spent_rho"] = by_org
        _write(store, "spend", rho, dict(st), actor=actor, purpose=purpose, epsilon=epsilon,
               delta=delta, release_id=release_id, kind=kind, mechanism=mechanism,
               detail={**detail, "org": org} if org is not None else detail)
    return _budget(store, _state(store))


# A planned cost is what the release asks for; the calibrated noise may cost a hair less (scales
# are nudged up until OpenDP's map fits), so the early refusal leaves this much room for rounding
# and the exact check stays the spend's.
_PLANNED_SLACK = 1e-6


def require_affordable(store: Store, rho: float, what: str = "this release",
                       option: str = "--epsilon", actor: str | None = None) -> Budget:
    """Refuse (ReleaseRefused, exit 3) a release whose planned cost ``rho`` is more than the hub's
    lifetime budget has left, before any record is read or any work waits for its turn: nothing is
    computed or spent. The spend inside the release still makes the exact check, with the chain's.

    Read-only (no lock, no table made): it runs before the release's own transaction, beside
    others, and a write here would meet DuckDB's write-write conflicts."""
    budget = _budget(store, _state(store))
    if rho > budget.remaining_rho * (1 + _PLANNED_SLACK) + _SLACK:
        raise ReleaseRefused(
            f"{what} needs {rho_text(rho, budget.delta)} but only "
            f"{rho_text(budget.remaining_rho, budget.delta)} of the hub's lifetime budget is left; "
            "nothing was computed or spent",
            hint=f"lower {option}, or (data steward) grant more with `accord budget grant`")
    if actor is not None:
        st = _state(store)
        refusal = _quota_refusal(st, org_of(store, actor), rho * (1 - _PLANNED_SLACK), what)
        if refusal:
            raise ReleaseRefused(refusal + "; nothing was computed or spent",
                                 hint=f"lower {option}, or (data steward) raise the organisation's "
                                 "quota with `accord budget quota`")
    return budget


def spends(store: Store) -> list[dict[str, Any]]:
    """Every spend: what the release asked for (``epsilon`` at ``delta``; no delta = pure DP),
    its cost ``rho``, and that cost as ``epsilon_at_budget_delta`` at ``budget_delta`` (the
    hub budget's delta), comparable with the budget's spent and left."""
    ensure_ledger(store)
    at = float(_state(store)["delta"])
    rows = [{"spend_id": r["entry_id"], **{c: r[c] for c in (
        "data_version", "release_id", "kind", "actor", "purpose", "mechanism", "epsilon",
        "delta", "rho")}, "spent_at": r["recorded_at"]} for r in _in_order(store, "= 'spend'")]
    for r in rows:
        r["budget_delta"] = at
        r["epsilon_at_budget_delta"] = epsilon_from_rho(r["rho"], at)
    return rows


def events(store: Store) -> list[dict[str, Any]]:
    """The budget's history: every set, grant and migration, with who, when and the figure."""
    ensure_ledger(store)
    keep = ("entry_id", "event", "rho", "epsilon", "delta", "actor", "purpose", "detail",
            "recorded_at")
    return [{c: r[c] for c in keep} for r in _in_order(store, "<> 'spend'")]


def _in_order(store: Store, event_test: str) -> list[dict[str, Any]]:
    """Ledger rows whose event passes ``event_test`` (SQL), in the order they were written."""
    return hub_chain.rows_in_order(store, "dp_ledger", ("recorded_at", "entry_id"),
                                   where=f"event {event_test}")


def verify(store: Store, expected_head: tuple[int, str] | None = None) -> hub_chain.ChainReport:
    """The whole chain (accord.store.chain.verify), plus the ledger's own invariant: the spent
    recorded on the chain is the sum of the spends on it since the last seal."""
    report = hub_chain.verify(store, expected_head)
    if report.ok and report.sealed_at is not None and store.table_exists("dp_ledger"):
        seal = next(e for e in report.checked if e.seq == report.sealed_at)
        base = float(json.loads(seal.state).get("spent_rho", 0.0)) if seal.state != "{}" else 0.0
        digests = {e.entry_sha256 for e in report.checked
                   if e.seq > report.sealed_at and e.source == "dp_ledger"}
        rows = store.query(f"SELECT {', '.join(_COLUMNS)} FROM dp_ledger "
                           "WHERE event = 'spend'").to_pylist()
        summed = base + sum(float(r["rho"]) for r in rows
                            if hub_chain.row_digest("dp_ledger", r) in digests)
        recorded = float(_state(store)["spent_rho"])
        if abs(summed - recorded) > 1e-9 * max(1.0, recorded):
            report.problems.append(f"dp_ledger: the chain says rho {recorded:.6g} was spent but "
                                   f"its spends add up to {summed:.6g}")
    return report


def resolve(store: Store, actor: str, reason: str) -> dict[str, Any]:
    """A steward's resolution of a broken chain: seal the rows as they are, carrying forward the
    most conservative ledger state. Spent = the largest of what any authentic (MAC-checked)
    chain entry recorded and what the spends still in the table add up to; the total is the last
    authentic figure (nothing is left if the key was lost and no figure can be trusted)."""
    if not reason.strip():
        raise ParameterError("a resolution needs a reason", hint="give --reason TEXT")
    with store.transaction():
        store.execute(LEDGER_SQL)
        report = hub_chain.verify(store)
        key_lost = hub_chain.load_key(store, create=False) is None and report.entries > 0
        entries = report.checked or hub_chain.read_entries(store)
        trusted = [e for e in entries if e.mac_ok and e.state != "{}"]
        st = {**_default_state(), **json.loads(trusted[-1].state)} if trusted else _state(store)
        spent_on_chain = max([float(json.loads(e.state).get("spent_rho", 0.0))
                              for e in entries if e.state != "{}"] + [0.0])
        table = store.query("SELECT rho FROM dp_ledger WHERE event = 'spend'").column(0).to_pylist()
        st["spent_rho"] = max(spent_on_chain, float(sum(table)), float(st["spent_rho"]))
        st["explicit"] = True
        if key_lost:
            st["set_rho"] = st["spent_rho"]
            st["granted_rho"] = 0.0
        info = {"actor": actor, "reason": reason, "problems": report.problems,
                "key_lost": key_lost, "spent_rho": st["spent_rho"]}
        seq = hub_chain.seal(store, now_iso(), st, info, new_key=key_lost)
        store.audit(actor, "hub.chain_resolved", {"seal": seq, "reason": reason,
                                                   "problems": len(report.problems),
                                                   "key_lost": key_lost,
                                                   "spent_rho": st["spent_rho"]})
    return {"seal": seq, "problems_resolved": report.problems, "key_lost": key_lost,
            "budget": _budget(store, st).to_dict()}


def dp_summary(store: Store) -> dict[str, Any]:
    """For the report: the current budget, every spend, and the latest DP tables release."""
    ensure_ledger(store)
    latest = None
    if store.table_exists("releases"):
        rows = store.query("SELECT release_id, created_at, actor, parameters, results FROM releases "
                           "WHERE kind = 'dp_tables' ORDER BY "
                           + store.order_sql("releases", "created_at", "release_id", newest_first=True)
                           + " LIMIT 1").to_pylist()
        if rows:
            latest = {**rows[0], "parameters": json.loads(rows[0]["parameters"]),
                      "results": json.loads(rows[0]["results"])}
    return {"budget": current_budget(store).to_dict(), "spends": spends(store),
            "latest_tables": latest}
