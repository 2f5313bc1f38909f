"""Disaggregated count tables over the hub store, every one disclosure-controlled before it leaves.

Raw counts live only inside this module: the public ``StatTable`` carries the published values
(after suppression), never the counts underneath.

Counting unit: records, or people once linkage has written the ``persons`` table. For people,
each person is described by one representative record (the earliest registration, ties broken by
partner and record key), so that every table still adds up to its margins; a record that linkage
has not seen yet counts as its own person.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np

from accord.errors import AccordError
from accord.release.suppression import (
    LINKED,
    PRIMARY,
    SuppressionRules,
    TableSuppression,
    suppress_table,
    with_margins,
)
from accord.research.history import moved_cells, remember
from accord.research.linked import complement_for, joint_weak_cells
from accord.research.specs import (
    GROUP_SEP,
    MISSING,
    OTHER,
    Dim,
    DimKind,
    DimSpec,
    TableSpec,
    crosswalk_groups,
    default_specs,
    known_codes,
    label_of,
)
from accord.standard import Standard, load_standard
from accord.store import Store
from accord.store.groups import EMBEDDED, GroupEngine

Unit = Literal["records", "persons"]
AUDIT_ACTION = "tables.release"

_UNITS_SQL: dict[str, str] = {
    "records": "SELECT * FROM records",
    "persons": (
        "SELECT r.* FROM records r LEFT JOIN persons p "
        "ON p.partner = r.partner AND p.record_key = r.record_key "
        "QUALIFY row_number() OVER ("
        "PARTITION BY coalesce(CAST(p.person_id AS VARCHAR), r.partner || ':' || r.record_key) "
        "ORDER BY r.registration_date NULLS LAST, r.partner, r.record_key) = 1"
    ),
}


class StatsError(AccordError):
    """The hub cannot produce the tables (empty, or not an Accord hub)."""


@dataclass(frozen=True)
class StatTable:
    """A published table: values with a total at the last position of every axis, None = hidden."""

    id: str
    title: str
    dims: tuple[Dim, ...]
    unit: str
    published: list[Any]
    suppressed: int
    cells: int
    notes: tuple[str, ...] = ()
    extra_rows: tuple[tuple[str, int | None], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "title": self.title, "unit": self.unit,
                "dims": [d.to_dict() for d in self.dims], "values": self.published,
                "suppressed_cells": self.suppressed, "cells": self.cells,
                "notes": list(self.notes),
                "extra_rows": [{"label": k, "value": v} for k, v in self.extra_rows]}

    def value(self, *codes: str | None) -> int | None:
        """Published value at the given codes (``None`` for a dimension's total)."""
        idx = []
        for dim, code in zip(self.dims, codes, strict=True):
            idx.append(len(dim.codes) if code is None else dim.codes.index(code))
        cell: Any = self.published
        for i in idx:
            cell = cell[i]
        return None if cell is None else int(cell)


@dataclass(frozen=True)
class StatsResult:
    tables: tuple[StatTable, ...]
    rules: SuppressionRules
    unit: str
    data_version: str
    notes: tuple[str, ...] = field(default=())
    method: str = "suppression"  # or "dp" (accord.research.noisy)
    dp: dict[str, Any] = field(default_factory=dict)  # rho, noise sd per table, re-used or not

    def table(self, table_id: str) -> StatTable:
        for t in self.tables:
            if t.id == table_id:
                return t
        raise KeyError(table_id)

    def to_dict(self) -> dict[str, Any]:
        return {"data_version": self.data_version, "unit": self.unit, "method": self.method,
                "rules": self.rules.as_dict(), "notes": list(self.notes),
                **({"dp": self.dp} if self.dp else {}),
                "tables": [t.to_dict() for t in self.tables]}


@dataclass(frozen=True)
class _Raw:
    spec: TableSpec
    dims: tuple[Dim, ...]
    counts: np.ndarray
    # Cells (with margins) to hide from the start: for a table of a subpopulation, those whose
    # complement (everyone minus the subpopulation, same breakdown) is 1..threshold-1.
    forced: np.ndarray | None = None


def resolve_unit(store: Store, unit: Literal["auto", "records", "persons"]) -> Unit:
    has_persons = store.table_exists("persons")
    if unit == "persons" and not has_persons:
        raise StatsError("the hub has no linked persons yet",
                         hint="run the linkage step first, or count records (--unit records)")
    if unit == "auto":
        return "persons" if has_persons else "records"
    return unit


def _ident(column: str, allowed: set[str]) -> str:
    # Column names come from the standard; anything else is refused, never pasted into SQL.
    if column not in allowed:
        raise StatsError(f"unknown column '{column}' in a table specification")
    return f'"{column}"'


def _dim_sql(spec: DimSpec, allowed: set[str]) -> str:
    col = _ident(spec.column, allowed)
    if spec.kind == DimKind.MULTI:
        return f"unnest({col})"
    if spec.kind == DimKind.PRIMARY_COUNTRY:
        return f"coalesce({col}[1], '{MISSING}')"
    return f"coalesce(CAST({col} AS VARCHAR), '{MISSING}')"


def _count(store: Store, spec: TableSpec, unit: Unit, allowed: set[str],
           groups: GroupEngine = EMBEDDED) -> dict[tuple[str, ...], int]:
    exprs = ", ".join(f"{_dim_sql(d, allowed)} AS d{i}" for i, d in enumerate(spec.dims))
    # A table of a subpopulation (``where``) counts only its people, after choosing each
    # person's record, so a person counts in it as described everywhere else.
    conds = [f"CAST({_ident(c, allowed)} AS VARCHAR) IN ({', '.join('?' for _ in v)})"
             for c, v in spec.where]
    where = f" WHERE {' AND '.join(conds)}" if conds else ""
    params = [code for _, v in spec.where for code in v]
    select = f"SELECT {exprs} FROM ({_UNITS_SQL[unit]}) u{where}"
    out: dict[tuple[str, ...], int] = {}
    names = [f"d{i}" for i in range(len(spec.dims))]
    for row in groups.count_query(store, select, params, names).to_pylist():
        out[tuple(str(row[f"d{i}"]) for i in range(len(spec.dims)))] = int(row["n"])
    return out


def _group_rare(standard: Standard, spec: DimSpec, totals: dict[str, int], threshold: int,
                mapping: dict[str, str], codes: list[str]) -> list[str]:
    for group in crosswalk_groups(standard, spec.column):
        present = [c for c in group if totals.get(c, 0)]
        if len(present) > 1 and any(totals[c] < threshold for c in present):
            merged = GROUP_SEP.join(present)
            for c in present:
                mapping[c] = merged
            at = codes.index(present[0])
            codes = [c for c in codes if c not in present]
            codes.insert(at, merged)
    return codes


def _categories(standard: Standard, spec: DimSpec, axis: int, counts: dict[tuple[str, ...], int],
                top_n: int, threshold: int) -> tuple[tuple[str, ...], dict[str, str]]:
    """Codes to publish on one axis, and how each observed code maps onto them."""
    totals: dict[str, int] = {}
    for key, n in counts.items():
        totals[key[axis]] = totals.get(key[axis], 0) + n
    observed = set(totals)
    mapping = {c: c for c in observed}
    if spec.kind == DimKind.YEAR:
        years = sorted(int(c) for c in observed if c != MISSING)
        codes = [str(y) for y in range(years[0], years[-1] + 1)] if years else []
    elif spec.kind == DimKind.PRIMARY_COUNTRY:
        ranked = sorted((c for c in observed if c != MISSING), key=lambda c: (-totals[c], c))
        # Which countries get a row depends on the counts (the top N); their order must not,
        # or a hidden total's rank would tell its size: rows follow the countries' names.
        codes = sorted(ranked[:top_n], key=lambda c: (label_of(standard, spec, c), c))
        for c in ranked[top_n:]:
            mapping[c] = OTHER
        if len(ranked) > top_n:
            codes.append(OTHER)
    else:
        known = known_codes(standard, spec)
        for c in observed - set(known) - {MISSING}:
            mapping[c] = OTHER  # not in the standard's code list: never shown by its raw value
        # Bands keep every band (gaps matter in a pyramid); code lists drop unused codes.
        keep = known if spec.kind == DimKind.BAND else [c for c in known if totals.get(c, 0)]
        codes = list(keep)
        if spec.group_rare_by_crosswalk:
            codes = _group_rare(standard, spec, totals, threshold, mapping, codes)
        if any(v == OTHER for v in mapping.values()):
            codes.append(OTHER)
    if MISSING in observed:
        codes.append(MISSING)
    return tuple(codes), mapping


def _raw_table(store: Store, standard: Standard, spec: TableSpec, unit: Unit, allowed: set[str],
               top_n: int, threshold: int, groups: GroupEngine = EMBEDDED) -> _Raw:
    counts = _count(store, spec, unit, allowed, groups)
    axes = [_categories(standard, d, i, counts, top_n, threshold)
            for i, d in enumerate(spec.dims)]
    arr = np.zeros(tuple(len(codes) for codes, _ in axes), dtype=np.int64)
    for key, n in counts.items():
        idx = tuple(codes.index(mapping[k]) for k, (codes, mapping) in zip(key, axes, strict=True))
        arr[idx] += n
    dims = tuple(Dim(d.column, d.title, codes, tuple(label_of(standard, d, c) for c in codes))
                 for d, (codes, _) in zip(spec.dims, axes, strict=True))
    forced = None
    if spec.where:
        # A table of a subpopulation beside the same breakdown over everyone: their difference
        # is the complement, which no table shows. Where a complement cell is 1..threshold-1,
        # the subpopulation's cell is hidden from the start (then protected like any hidden
        # cell), so the small complement cannot be read as a difference of published cells.
        ext = with_margins(arr)
        everyone = np.zeros_like(ext)
        for key, n in _count(store, replace(spec, where=()), unit, allowed,
                                   groups).items():
            # Each axis: the category's position and the total, or only the total for a
            # category the subpopulation's table does not publish.
            choices = []
            for k, (codes, mapping) in zip(key, axes, strict=True):
                code = mapping.get(k)
                at = [codes.index(code)] if code in codes else []
                choices.append([*at, len(codes)])
            for idx in itertools.product(*choices):
                everyone[idx] += n
        complement = everyone - ext
        # A zero is shown as zero everywhere (hiding it would say "1 or more"); where the
        # subpopulation has none, the complement is the everyone cell, published anyway.
        forced = (complement > 0) & (complement < threshold) & (ext > 0)
    return _Raw(spec, dims, arr, forced)


def _margin_keys(raw: _Raw) -> dict[tuple[int, ...], tuple[object, ...]]:
    """Key of every margin cell, equal across tables that publish the same margin."""
    population = f"units[{raw.spec.population}]"
    if raw.spec.multi_column:
        population += f"*{raw.spec.multi_column}"
    shape = tuple(n + 1 for n in raw.counts.shape)
    keys: dict[tuple[int, ...], tuple[object, ...]] = {}
    for idx in np.ndindex(*shape):
        at_total = [i == len(d.codes) for i, d in zip(idx, raw.dims, strict=True)]
        if not any(at_total):
            continue
        kept = tuple(sorted((d.name, d.codes[i]) for i, d, t in
                            zip(idx, raw.dims, at_total, strict=True) if not t))
        keys[tuple(int(i) for i in idx)] = (population, kept)
    return keys


def protect_linked(raws: Sequence[_Raw], rules: SuppressionRules,
                   initial: Sequence[np.ndarray] | None = None) -> list[TableSuppression]:
    """Suppress each table, then hide in every table any margin another table hides; repeat;
    then audit all tables jointly and add complements where the joint system says too much.

    Without this, a sex total suppressed as a complement in one table could be read off another
    table that publishes the same total, and the protection would be undone.
    """
    keys = [_margin_keys(r) for r in raws]
    forced = ([m.copy() for m in initial] if initial is not None else
              [np.zeros(tuple(n + 1 for n in r.counts.shape), dtype=bool) for r in raws])
    results = [suppress_table(r.counts, rules, f) for r, f in zip(raws, forced, strict=True)]
    while True:
        hidden = {k[idx] for k, res in zip(keys, results, strict=True)
                  for idx in k if res.mask[idx]}
        changed: set[int] = set()
        for t, (k, res, f) in enumerate(zip(keys, results, forced, strict=True)):
            for idx, key in k.items():
                if key in hidden and not res.mask[idx] and res.values[idx] > 0:
                    f[idx] = True
                    changed.add(t)
        if not changed:
            for t, cell in joint_weak_cells(results, keys, rules):
                pick = complement_for(results[t], cell)
                if pick is not None and not forced[t][pick]:
                    forced[t][pick] = True
                    changed.add(t)
        if not changed:
            return results
        for t in sorted(changed):
            results[t] = suppress_table(raws[t].counts, rules, forced[t], previous=results[t])


def total_note(raw: _Raw, res: TableSuppression, moved: np.ndarray) -> str:
    """Why a table's grand total is hidden, in words (empty when it is shown): readers need it
    most, so a hidden one is explained."""
    grand = tuple(n - 1 for n in res.values.shape)
    if not res.mask[grand]:
        return ""
    reason = str(res.reasons[grand])
    if reason == PRIMARY:
        why = "it is below the threshold"
    elif moved[grand]:
        why = ("it changed by less than the threshold since an earlier release, and showing "
               "both would let the difference be read")
    elif raw.forced is not None and raw.forced[grand]:
        why = ("the same total over everyone differs from it by less than the threshold, and "
               "showing both would give that difference")
    elif reason == LINKED:
        why = ("another table hides the same total, or the joint check of all tables needs it "
               "hidden to protect a small cell")
    else:
        why = "no pattern of hidden cells that keeps it shown protects the small cells"
    return f"The table's total is hidden: {why}."


def _publish(raw: _Raw, res: TableSuppression, unit: Unit, moved: tuple[int, int],
             why_total: str = "") -> StatTable:
    unit_note = ("Counts are people (linked across partners)." if unit == "persons"
                 else "Counts are records; a person registered by two partners counts twice.")
    hidden, zeros = moved
    history_note = (f"{hidden} cell(s) hidden because they changed by less than the threshold "
                    "since an earlier release." if hidden else "")
    zero_note = (f"{zeros} cell(s) fell to 0 from a small earlier value; a zero cannot be "
                 "hidden, so comparing releases shows those records left." if zeros else "")
    notes = tuple(n for n in (raw.spec.note, unit_note, res.note, why_total, history_note,
                              zero_note) if n)
    return StatTable(raw.spec.id, raw.spec.title, raw.dims, unit, res.published,
                     int(res.mask.sum()), int(res.mask.size), notes)


def compute_tables(store: Store, rules: SuppressionRules | None = None,
                   standard: Standard | None = None,
                   specs: Sequence[TableSpec] | None = None,
                   unit: Literal["auto", "records", "persons"] = "auto",
                   top_citizenships: int = 10, history: bool = True,
                   groups: GroupEngine = EMBEDDED) -> StatsResult:
    """Count, protect and return every table. Raises StatsError on a hub without records.

    With ``history``, cells that moved by less than the threshold since a release of an earlier
    data version are hidden too (see ``accord.research.history``).
    """
    rules = rules or SuppressionRules()
    standard = standard or load_standard()
    if not store.table_exists("records"):
        raise StatsError("the hub holds no records yet",
                         hint="add a contribution with `accord hub add`")
    chosen = resolve_unit(store, unit)
    allowed = set(standard.field_names) | {d.name for d in standard.derived}
    raws = [_raw_table(store, standard, s, chosen, allowed, top_citizenships, rules.threshold,
                       groups) for s in (specs or default_specs(standard))]
    version = store.data_version()
    moved = [moved_cells(store, _history_id(r.spec.id, chosen), r.dims, with_margins(r.counts),
                         version, rules.threshold) if history else
             (np.zeros(tuple(n + 1 for n in r.counts.shape), dtype=bool), 0) for r in raws]
    initial = [m | r.forced if r.forced is not None else m
               for r, (m, _) in zip(raws, moved, strict=True)]
    results = protect_linked(raws, rules, initial)
    tables = [_publish(r, res, chosen, (int(m.sum()), z), total_note(r, res, m))
              for r, res, (m, z) in zip(raws, results, moved, strict=True)]
    if chosen == "persons":
        from accord.research.overlap import overlap_table

        tables.append(overlap_table(store, rules))
    notes = (*rules.describe(),
             "Cells that moved by 1 to threshold-1 since an earlier release of the same table "
             "(other data version) are hidden, so that releases cannot be differenced.")
    return StatsResult(tuple(tables), rules, chosen, version, notes)


def _history_id(table_id: str, unit: str) -> str:
    # records and persons versions of a table are different counts: remembered apart
    return f"{table_id}:{unit}"


def remember_published(store: Store, result: StatsResult, release_id: str) -> None:
    """Keep what a release showed, so that the next release cannot be differenced against it."""
    remember(store, release_id, result.data_version,
             [(_history_id(t.id, result.unit), t.dims, t.published) for t in result.tables])


def _content_digest(result: StatsResult, kind: str, params: dict[str, Any]) -> str:
    """What makes two releases the same publication: kind, data version, rules and unit, and
    every published cell (hidden ones as null)."""
    content = {"kind": kind, "data_version": result.data_version, "parameters": params,
               "tables": [[t.id, [d.to_dict() for d in t.dims], t.published]
                          for t in result.tables]}
    text = json.dumps(content, sort_keys=True, default=int, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def _same_release(store: Store, kind: str, data_version: str, digest: str) -> str | None:
    if not store.table_exists("releases"):
        return None
    rows = store.query("SELECT release_id, results FROM releases WHERE kind = ? AND "
                       "data_version = ? ORDER BY "
                       + store.order_sql("releases", "created_at", "release_id"),
                       [kind, data_version]).to_pylist()
    return next((r["release_id"] for r in rows
                 if json.loads(r["results"]).get("content_sha256") == digest), None)


def record_tables_release(store: Store, result: StatsResult, kind: str, actor: str,
                          parameters: dict[str, Any] | None = None) -> str:
    """Put a release of these tables on record: parameters, hidden-cell counts (no values), and
    the published cells for the differencing check of later releases.

    A release identical to one already on record (same kind, data version, rules, unit and
    published cells) is not recorded again: it shows nothing new, and recording it would only
    grow the differencing memory with every look. Every call is audited (who looked, when),
    with the id of the release it showed.
    """
    params: dict[str, Any] = {"rules": result.rules.as_dict(), "unit": result.unit}
    if result.method != "suppression":
        params.update(method=result.method, rho=result.dp.get("rho"))
    digest = _content_digest(result, kind, params)
    summary = {"unit": result.unit, "content_sha256": digest,
               "tables": {t.id: {"cells": t.cells, "suppressed": t.suppressed}
                          for t in result.tables}}
    with store.transaction():
        release_id = _same_release(store, kind, result.data_version, digest)
        repeat = release_id is not None
        if release_id is None:
            release_id = store.record_release(kind, {**params, **(parameters or {})}, summary,
                                              actor)
            remember_published(store, result, release_id)
        store.audit(actor, AUDIT_ACTION, {"release_id": release_id, "kind": kind,
                                          "data_version": result.data_version, "repeat": repeat,
                                          "parameters": parameters or {}})
    return release_id


def require_dp_tables_affordable(store: Store, rho: float | None = None,
                                 standard: Standard | None = None,
                                 years: tuple[int, int] | None = None,
                                 actor: str | None = None) -> None:
    """Refuse (exit 3), before any record is read, DP tables whose draws (the tables', and the
    estimates' for the partner overlap once people are linked) are not in the hub yet and cost
    more than the budget (or the quota of ``actor``'s organisation) has left together; nothing
    is computed or spent."""
    from accord.research.noisy import (
        DEFAULT_RHO,
        ESTIMATE_RHO,
        check_rho,
        require_draws_affordable,
        stats_draw_key,
    )

    if not store.table_exists("records"):
        return  # compute_dp_tables says so
    draws = [(stats_draw_key(standard or load_standard(), years),
              check_rho(DEFAULT_RHO if rho is None else rho))]
    if store.table_exists("persons"):
        from accord.research.estimate.pipeline import hub_draw_key

        draws.append((hub_draw_key(store), ESTIMATE_RHO))
    require_draws_affordable(store, draws, "this release of DP tables", actor)


def compute_dp_tables(store: Store, threshold: int = 10, rho: float | None = None,
                      standard: Standard | None = None, years: tuple[int, int] | None = None,
                      actor: str = "hub", purpose: str = "",
                      test_seed: int | None = None,
                      groups: GroupEngine = EMBEDDED) -> StatsResult:
    """The tables of a release in a sequence: one DP draw per data version (paid once, then
    served again), values 1..threshold-1 hidden. See ``accord.research.noisy``."""
    from accord.research.noisy import DEFAULT_RHO, check_rho, load_and_draw, noise_sd, publish

    rho = check_rho(DEFAULT_RHO if rho is None else rho)
    if threshold < 2:
        raise StatsError("the threshold must be at least 2", hint="give --threshold 10 (CTDC's rule)")
    standard = standard or load_standard()
    if not store.table_exists("records"):
        raise StatsError("the hub holds no records yet",
                         hint="add a contribution with `accord hub add`")
    require_dp_tables_affordable(store, rho, standard, years, actor)
    version = store.data_version()
    payload, reused, how = load_and_draw(store, standard, rho, years, actor, purpose,
                                           test_seed, groups)
    unit = "persons"
    tables = []
    for spec, dims, values, hidden, cells in publish(payload, standard, threshold, unit):
        sd = noise_sd(payload, spec.id)
        notes = tuple(n for n in (
            spec.note,
            f"Counts are people ({how}), each counted once (their earliest registration).",
            f"Noisy counts (differential privacy, discrete Gaussian, noise sd about {sd:.0f} "
            f"on each cell before fitting); values from 1 to {threshold - 1} are shown as "
            f"<{threshold}. Margins are sums of the published cells.",
            ("A person with several values counts under at most 2 of them; people with none "
             "count as Not recorded." if spec.multi is not None else ""),
        ) if n)
        tables.append(StatTable(spec.id, spec.title, dims, unit, values, hidden, cells, notes))
    if store.table_exists("persons"):
        tables.append(_noisy_overlap(store, threshold, actor))
    notes = (f"Differential privacy: one draw per data version at rho {payload['rho']:.4g} "
             "(zCDP) for all tables together, paid from the hub's budget once and served again "
             "for the same data; a new data version gets new noise.",
             f"No count from 1 to {threshold - 1} is shown; shown counts carry noise.")
    dp_info = {"rho": rho, "rho_spent_by_draw": payload["rho"], "reused": reused,
               "noise_sd": {t.id: round(noise_sd(payload, t.id), 2) for t in tables
                            if t.id in payload["tables"]}}
    return StatsResult(tuple(tables), SuppressionRules(threshold=threshold), unit, version,
                       notes, method="dp", dp=dp_info)


SUPPRESSION_KINDS = ("tables", "report")


def check_one_off(store: Store) -> None:
    """Suppression publishes exact counts: safe for one release looked at alone (the LP audit),
    not for a sequence (the differencing attacks in tests/attacks). So a suppressed release is
    allowed only while the hub has published no tables of another data version."""
    if not store.table_exists("releases"):
        return
    version = store.data_version()
    earlier = store.scalar(
        "SELECT count(*) FROM releases WHERE kind IN ('tables', 'report') AND data_version <> ?",
        [version])
    if earlier:
        from accord.errors import ReleaseRefused

        raise ReleaseRefused(
            "this hub has already published tables of another data version; a suppressed "
            "release now could be differenced against it",
            hint="publish with the default --privacy dp (noise drawn once per data version), "
                 "which is safe to repeat")


def _noisy_overlap(store: Store, threshold: int, actor: str) -> StatTable:
    """People by the set of partners that served them, from the estimates' DP draw of this data
    version (the same numbers ``accord estimate`` shows; paid once for both)."""
    import itertools

    from accord.research.estimate.pipeline import noisy_histories
    from accord.research.estimate.table import histories
    from accord.research.noisy import ESTIMATE_RHO

    partners, counts = noisy_histories(store, ESTIMATE_RHO, actor)
    hist = histories(len(partners))
    combos = [tuple(p for p, v in zip(partners, h, strict=True) if v) for h in hist]
    total = sum(counts)
    values: list[int | None] = [None if 0 < v < threshold else v for v in [*counts, total]]
    extra: list[tuple[str, int | None]] = []
    for p in partners:
        n = sum(v for c, v in zip(combos, counts, strict=True) if p in c)
        extra.append((f"All people served by {p}", None if 0 < n < threshold else n))
    for a, b in itertools.combinations(partners, 2):
        n = sum(v for c, v in zip(combos, counts, strict=True) if a in c and b in c)
        extra.append((f"People served by both {a} and {b}", None if 0 < n < threshold else n))
    dim = Dim("partners", "Partners that served the person", tuple("+".join(c) for c in combos),
              tuple(" and ".join(c) + (" only" if len(c) < len(partners) else "")
                    for c in combos))
    hidden = sum(v is None for v in values)
    notes = ("Each person appears in exactly one row: the set of partners that registered them, "
             "as found by linkage.",
             f"Noisy counts from the estimates' differential-privacy draw of this data version "
             f"(rho {ESTIMATE_RHO}); values from 1 to {threshold - 1} are shown as "
             f"<{threshold}; partner and pair totals are sums of the rows.")
    return StatTable("partner_overlap", "People by the partners that served them", (dim,),
                     "persons", values, hidden, len(values), notes, tuple(extra))


def tables_on_record(store: Store, threshold: int, protection: int | None,
                     unit: Literal["auto", "records", "persons"], actor: str, kind: str,
                     method: Literal["dp", "suppression"] = "dp",
                     rho: float | None = None,
                     groups: GroupEngine = EMBEDDED) -> StatsResult:
    """`accord stats` on an open hub (the CLI and the hub's server both call this): the protected
    tables, put on record. DP counts people; suppression is a hub's one-off release."""
    from accord.research.noisy import DEFAULT_RHO, check_rho

    rules = SuppressionRules(threshold=threshold, protection=protection)
    if method == "dp":
        check_rho(DEFAULT_RHO if rho is None else rho)
        if unit == "records":
            raise AccordError("--privacy dp counts people (one row per person bounds what one "
                              "person can change)", hint="drop --unit, or use --unit persons")
        result = compute_dp_tables(store, rules.threshold, rho, actor=actor, purpose=kind,
                                   groups=groups)
    else:
        check_one_off(store)
        result = compute_tables(store, rules, unit=unit, groups=groups)
    record_tables_release(store, result, kind, actor)
    return result


def result_from_dict(doc: dict[str, Any]) -> StatsResult:
    """A StatsResult from its ``to_dict`` (what the hub's server sends an analyst's CLI)."""
    from accord.research.specs import Dim

    tables = tuple(StatTable(
        id=t["id"], title=t["title"], unit=t["unit"],
        dims=tuple(Dim(d["name"], d["title"], tuple(d["codes"]), tuple(d["labels"]))
                   for d in t["dims"]),
        published=t["values"], suppressed=t["suppressed_cells"], cells=t["cells"],
        notes=tuple(t["notes"]), extra_rows=tuple((e["label"], e["value"]) for e in t["extra_rows"]))
        for t in doc["tables"])
    rules = doc["rules"]
    return StatsResult(tables, SuppressionRules(threshold=rules["threshold"],
                                                protection=rules["protection"],
                                                method=rules.get("method", "cost"),
                                                objective=rules.get("objective", "mass")),
                       doc["unit"], doc["data_version"], tuple(doc["notes"]), doc["method"],
                       doc.get("dp", {}))
