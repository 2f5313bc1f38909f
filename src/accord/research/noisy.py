"""Tables that can be published every month: one differentially private draw per data version.

Why noise and not suppression for a sequence of releases (docs/statistics.md, "Releases over
time"): against an attacker who knows every other record, any deterministic function of the data
(suppression, rounding, a cell key fixed per record) leaves unchanged cells unchanged and moves
only the new person's cells, so comparing two releases shows where the person is. Only randomness
the attacker cannot remove, bounded over time by the population's budget, stops that.

So every data version gets one draw: the standard's tables over their fixed public categories
(``accord.release.dp``: OpenDP discrete Gaussian on the total, the one-way margins and the cells;
non-negative least squares and integer rounding, margins = sums of cells), paid from the ledger
once. The draw is kept in the hub (``dp_draws``) and served again for the same data version, so
the same data give the same numbers and looking twice costs nothing. A new data version gets a
fresh draw: re-using the noise of unchanged cells would again show which cells changed.

Tables of one draw agree: every margin two tables share (people, people by sex, migration status
x sex, ...) is reconciled to one number (``accord.release.dp.consistent``, post-processing).

What a reader sees is post-processing of that draw: categories with a noisy total of 0 left out
(code lists, countries; age bands always shown), and every value from 1 to threshold-1 shown as
"<threshold", so no count 1-9 is ever shown (and the ones that are shown are noisy).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pyarrow as pa

from accord.errors import LedgerTampered, ParameterError
from accord.release.dp import ledger
from accord.release.dp.consistent import FittedTable, ReconcileError, reconcile
from accord.release.dp.mechanism import epsilon_from_rho
from accord.release.dp.params import in_range
from accord.release.dp.standard_tables import MAX_VALUES, levels_for, load_people, people_of
from accord.release.dp.tables import MISSING as DP_MISSING
from accord.release.dp.tables import Cache, PublishedTable, count_table, measure, postprocess
from accord.release.dp.tables import TableSpec as DPSpec
from accord.research.specs import MISSING, Dim, label_of
from accord.standard import Standard
from accord.standard.tables import DimKind, TableSpec, standard_tables
from accord.store import Store
from accord.store import chain as hub_chain
from accord.store.base import now_iso
from accord.store.groups import EMBEDDED, GroupEngine

# Calibration (docs/statistics.md): zCDP rho is (sqrt(2 rho))-Gaussian DP for the Gaussian
# mechanism; two values of one person's cell differ by a replacement, so the best attacker's
# success at telling them apart from what one data version publishes is Phi(sqrt(rho));
# <= chance + 5 points needs rho <= 0.0158 for everything a data version publishes. Default
# per data version: 0.01 for the stats tables + 0.005 for the estimates' draw = 0.015.
DEFAULT_RHO = 0.01
ESTIMATE_RHO = 0.005
SPEND_DELTA = 1e-6  # the delta at which a spend's rho is also shown as epsilon
DRAWS_SQL = """CREATE TABLE IF NOT EXISTS dp_draws (
    data_version VARCHAR NOT NULL, draw_key VARCHAR NOT NULL, rho DOUBLE NOT NULL,
    payload VARCHAR NOT NULL, created_at VARCHAR NOT NULL)"""


# Below this, the noise's scale overflows OpenDP's arithmetic; such a rho publishes nothing but noise.
MIN_RHO = 1e-12


def check_rho(rho: float) -> float:
    """A usable per-release rho: finite and in [MIN_RHO, 1]; anything else is refused before reading."""
    hint = (f"the defaults ({DEFAULT_RHO} for tables, {ESTIMATE_RHO} for estimates) keep one data "
            "version within 5 points of chance against an attacker who knows everyone else")
    x = in_range(rho, "--rho", 1.0, hint)
    if x < MIN_RHO:
        raise ParameterError(f"--rho must be at least {MIN_RHO:g}", hint=hint)
    return x


def draw_stored(store: Store, draw_key: str, rho: float) -> bool:
    """Whether the current data version's draw under ``draw_key`` and ``rho`` is in the hub
    (served again at no cost; checked against the ledger when it is served)."""
    if not store.table_exists("dp_draws"):
        return False
    return bool(store.scalar("SELECT count(*) FROM dp_draws WHERE data_version = ? AND "
                             "draw_key = ? AND rho = ?", [store.data_version(), draw_key, rho]))


def require_draws_affordable(store: Store, draws: Sequence[tuple[str, float]],
                             what: str, actor: str | None = None) -> None:
    """Refuse (ReleaseRefused, exit 3), before a record is read, a release whose draws (key, rho)
    the hub does not hold yet and the budget left cannot pay for together, or (for a hub user,
    ``actor``) their organisation's quota cannot: nothing computed, and no draw paid for while a
    later one of the same release is refused."""
    cost = sum(rho for key, rho in draws if not draw_stored(store, key, rho))
    if cost > 0:
        ledger.require_affordable(store, cost, what, option="--rho", actor=actor)


def stats_draw_key(standard: Standard, years: tuple[int, int] | None) -> str:
    # The table list is part of the key: a draw stored before tables were added (a new
    # release of Accord on the same data) does not hold them, so the new list draws afresh.
    ids = ",".join(t.id for t in stats_specs(standard))
    return f"stats:years={years}:tables={hashlib.sha256(ids.encode()).hexdigest()[:12]}"


def reuse_or_draw(store: Store, draw_key: str, rho: float, draw: Callable[[], dict[str, Any]],
                  *, actor: str, kind: str, purpose: str) -> tuple[dict[str, Any], bool]:
    """The draw of this data version under ``draw_key`` and ``rho``: the stored one if there is
    one (no spend), else a new one paid from the ledger in the same transaction.

    Returns the payload and whether it was re-used.
    """
    store.ensure_meta()  # the data version of a hub without meta tables would change under us
    with store.transaction():
        store.lock_chain()  # one draw per data version, even when two requests ask at once
        store.execute(DRAWS_SQL)
        version = store.data_version()
        rows = store.query("SELECT payload FROM dp_draws WHERE data_version = ? AND draw_key = ? "
                           "AND rho = ? ORDER BY created_at LIMIT 1",
                           [version, draw_key, rho]).to_pylist()
        if rows:
            _check_stored_draw(store, rows[0]["payload"])
            return json.loads(rows[0]["payload"]), True
        payload = draw()
        spent = float(payload.get("rho", rho))
        text = json.dumps(payload, separators=(",", ":"))
        # The spend (a chained ledger row) carries the digest of what it paid for, so a stored
        # draw cannot be swapped for other numbers (say the true counts) without breaking the chain.
        ledger.spend(store, spent, kind=kind, actor=actor, purpose=purpose, mechanism="gaussian",
                     epsilon=epsilon_from_rho(spent, SPEND_DELTA), delta=SPEND_DELTA,
                     detail={"draw": draw_key, "data_version": version,
                             "payload_sha256": hashlib.sha256(text.encode()).hexdigest()})
        store.execute("INSERT INTO dp_draws VALUES (?, ?, ?, ?, ?)",
                      [version, draw_key, rho, text, now_iso()])
    return payload, False


def _check_stored_draw(store: Store, text: str) -> None:
    """A stored draw is served again only if the chain is intact and a chained spend paid for
    exactly these numbers; anything else is an edit behind Accord's back (exit 3)."""
    hub_chain.require_intact(store)
    digest = hashlib.sha256(text.encode()).hexdigest()
    paid = store.query("SELECT detail FROM dp_ledger WHERE event = 'spend'").column("detail").to_pylist()
    if not any(json.loads(d).get("payload_sha256") == digest for d in paid):
        raise LedgerTampered(
            "a stored noisy release (dp_draws) matches no spend on the hub's ledger: it was "
            "changed or added behind Accord's back; nothing was published",
            hint="see `accord hub verify`; restore the hub from a backup, or (steward) remove the "
                 "changed row from dp_draws so that a new draw is made and paid for")


def stats_specs(standard: Standard) -> tuple[TableSpec, ...]:
    """The tables ``accord stats`` publishes (the same ids with either method)."""
    return standard_tables(standard, "suppressed")


def _to_array(table: PublishedTable) -> np.ndarray:
    """The published rows as an array with the total at the last position of every axis."""
    k = len(table.spec.dims)
    levels = [list(lv) for lv in _levels_of(table)]
    arr = np.zeros(tuple(len(lv) + 1 for lv in levels), dtype=np.int64)
    for row in table.rows:
        idx = tuple(len(levels[i]) if row[i] == "Total" else levels[i].index(str(row[i]))
                    for i in range(k))
        arr[idx] = int(row[k])  # type: ignore[call-overload]
    return arr


def _levels_of(table: PublishedTable) -> list[tuple[str, ...]]:
    k = len(table.spec.dims)
    out: list[list[str]] = [[] for _ in range(k)]
    for row in table.rows:
        for i in range(k):
            v = str(row[i])
            if v != "Total" and v not in out[i]:
                out[i].append(v)
    return [tuple(x) for x in out]


def draw_tables(people: pa.Table, standard: Standard, rho: float,
                years: tuple[int, int] | None = None,
                test_seed: int | None = None, consistent: bool = True,
                groups: GroupEngine = EMBEDDED) -> dict[str, Any]:
    """One noisy draw of every stats table: fixed public levels and the post-processed values
    (non-negative integers; every margin the sum of its cells; with ``consistent``, every margin
    two tables share is the same number in both). ``test_seed`` only in tests."""
    specs = stats_specs(standard)
    levels = {c: levels_for(standard, c, years) for t in specs for c in t.columns}
    caches: dict[object, Cache] = {}  # one per population: codes are cached per column
    exact = [count_table(people_of(people, t.where), DPSpec(t.id, t.columns),
                         {c: levels[c] for c in t.columns}, MAX_VALUES,
                         caches.setdefault(t.where or "", {}), groups) for t in specs]
    noisy = measure(exact, "gaussian", rho, test_seed=test_seed)
    del exact  # only noisy measurements from here on
    published = postprocess(noisy, covariance=False)  # margins of error are not shown
    scales = {t.spec.name: [g.noise.scale for g in t.groups] for t in noisy.tables}
    arrays = [_reorder(_to_array(pub), _levels_of(pub), noisy_t.levels)
              for pub, noisy_t in zip(published, noisy.tables, strict=True)]
    if consistent:
        arrays = _reconciled(specs, arrays, scales)
    out: dict[str, Any] = {"rho": noisy.rho, "tables": {}}
    for spec, arr, noisy_t in zip(specs, arrays, noisy.tables, strict=True):
        out["tables"][spec.id] = {"levels": [list(lv) for lv in noisy_t.levels],
                                  "values": arr.tolist(), "scales": scales[spec.id]}
    return out


def _reconciled(specs: Sequence[TableSpec], arrays: list[np.ndarray],
                scales: dict[str, list[float]]) -> list[np.ndarray]:
    """The tables with every shared margin one number (``release.dp.consistent``): people by
    sex is the same in every table that shows it. Post-processing of the noisy values only."""
    fitted = [FittedTable(tuple(spec.columns), family_of(spec),
                          arr[tuple(slice(0, -1) for _ in range(arr.ndim))],
                          float(scales[spec.id][-1]) ** 2)
              for spec, arr in zip(specs, arrays, strict=True)]
    try:
        return [_with_totals(cells) for cells in reconcile(fitted)]
    except ReconcileError:
        # Margins decided one at a time can admit no non-negative integer table (three two-way
        # margins need not have a common table). Rare; the draw is then published as each
        # table's own post-processed values, as before reconciling existed (consistent within
        # each table, not across tables). A global joint fit would remove this case.
        return arrays


def family_of(spec: TableSpec) -> str:
    """The tables whose shared margins must agree: the same units (people, or people x a list
    field's items) of the same population. A table of a subpopulation (``where``) counts other
    people than the same table over everyone, so its margins are its own."""
    units = f"units*{spec.multi.column}" if spec.multi is not None else "units"
    return units + (f" where {spec.where!r}" if spec.where else "")


def _with_totals(cells: np.ndarray) -> np.ndarray:
    out = np.asarray(cells, dtype=np.int64)
    for axis in range(out.ndim):
        out = np.concatenate([out, out.sum(axis=axis, keepdims=True)], axis=axis)
    return out


def _reorder(arr: np.ndarray, have: Sequence[tuple[str, ...]],
             want: Sequence[tuple[str, ...]]) -> np.ndarray:
    """Put the axes' levels in the declared order (rows come out in published order)."""
    for axis, (h, w) in enumerate(zip(have, want, strict=True)):
        order = [h.index(x) for x in w] + [len(h)]
        arr = np.take(arr, order, axis=axis)
    return arr


def _keep(kind: DimKind, margin: np.ndarray, codes: Sequence[str]) -> list[int]:
    """Positions shown on one axis: bands in full; years from the first to the last non-zero;
    code lists and countries where the noisy margin is above 0 (a post-processing choice)."""
    nonzero = [i for i in range(len(codes)) if margin[i] > 0]
    if kind == DimKind.BAND:
        return [i for i in range(len(codes)) if codes[i] != DP_MISSING or margin[i] > 0]
    if kind == DimKind.YEAR:
        real = [i for i in nonzero if codes[i] != DP_MISSING]
        span = list(range(real[0], real[-1] + 1)) if real else []
        return span + [i for i in nonzero if codes[i] == DP_MISSING]
    return nonzero


def publish(payload: dict[str, Any], standard: Standard, threshold: int,
            unit: str) -> list[tuple[TableSpec, tuple[Dim, ...], list[Any], int, int]]:
    """What readers see of a draw: (spec, dims, nested values with totals, hidden, cells).

    Values 1..threshold-1 become None (shown as "<threshold"); zeros are shown.
    """
    out = []
    for spec in stats_specs(standard):
        entry = payload["tables"][spec.id]
        arr = np.asarray(entry["values"], dtype=np.int64)
        dims: list[Dim] = []
        for axis, (dspec, codes) in enumerate(zip(spec.dims, entry["levels"], strict=True)):
            others = tuple(a for a in range(arr.ndim) if a != axis)
            margin = arr[tuple(slice(None) if a == axis else -1 for a in range(arr.ndim))] \
                if others else arr
            keep = _keep(dspec.kind, margin, codes)
            arr = np.take(arr, [*keep, len(codes)], axis=axis)
            shown = tuple(MISSING if codes[i] == DP_MISSING else codes[i] for i in keep)
            dims.append(Dim(dspec.column, dspec.title, shown,
                            tuple(label_of(standard, dspec, c) for c in shown)))
        hidden = (arr > 0) & (arr < threshold)
        shown_values = arr.astype(object)
        shown_values[hidden] = None
        values = _plain(shown_values.tolist())
        out.append((spec, tuple(dims), values, int(hidden.sum()), int(arr.size)))
    return out


def _plain(v: Any) -> Any:
    if isinstance(v, list):
        return [_plain(x) for x in v]
    return None if v is None else int(v)


def noise_sd(payload: dict[str, Any], table_id: str) -> float:
    """Standard deviation of the noise on one cell of the table's finest measurement."""
    scales = payload["tables"][table_id]["scales"]
    return float(scales[-1])


def load_and_draw(store: Store, standard: Standard, rho: float, years: tuple[int, int] | None,
                  actor: str, purpose: str,
                  test_seed: int | None = None, groups: GroupEngine = EMBEDDED,
                  ) -> tuple[dict[str, Any], bool, str]:
    """The stats draw of the hub's current data version (re-used, or drawn and paid for)."""
    columns = list(dict.fromkeys(c for t in stats_specs(standard)
                                 for c in (*t.columns, *t.where_columns)))
    unit_box: list[str] = []

    def draw() -> dict[str, Any]:
        people, unit = load_people(store, columns)
        unit_box.append(unit)
        payload = draw_tables(people, standard, rho, years, test_seed, groups=groups)
        payload["unit"] = unit
        return payload

    payload, reused = reuse_or_draw(store, stats_draw_key(standard, years), rho, draw, actor=actor, kind="dp_stats",
                                    purpose=purpose or "accord stats / report")
    return payload, reused, str(payload.get("unit", unit_box[0] if unit_box else "persons"))
