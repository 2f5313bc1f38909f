"""DP releases from the hub: standard tables and synthetic microdata, each paid from the ledger.

Order inside one store transaction: read the people, measure (noise drawn by OpenDP), spend the
measured cost from the ledger, put the release on record. If the budget refuses, the transaction
rolls back and no figure leaves; files are written only after the commit.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

from accord.errors import ReleaseRefused
from accord.release.datapackage import write_datapackage
from accord.release.dp import ledger
from accord.release.dp.mechanism import Mechanism, rho_from_epsilon_delta
from accord.release.dp.params import check_delta, check_epsilon
from accord.release.dp.standard_tables import (
    MAX_VALUES,
    DPTable,
    consent_account,
    levels_for,
    load_people,
    needed_columns,
    people_of,
    select_tables,
)
from accord.release.dp.tables import Cache, PublishedTable, count_table, measure, postprocess
from accord.release.synthesize.data import write_csv
from accord.standard import Standard, load_standard
from accord.store import Store
from accord.store.groups import EMBEDDED, GroupEngine

DEFAULT_DELTA = 1e-9

HXL_TAGS = {
    "sex": "#gender", "age_band_ctdc": "#age+group", "age_group": "#age+group",
    "majority_status": "#age+majority", "case_type": "#x_case_type",
    "type_of_exploitation": "#x_exploitation", "migration_status": "#x_migration_status",
    "citizenship": "#country+code+citizenship", "rh_needs": "#x_rh_needs",
    "registration_year": "#date+year", "count": "#affected+num", "moe95": "#affected+num+moe95",
}


@dataclass(frozen=True)
class TablesRelease:
    release_id: str
    tables: tuple[PublishedTable, ...]
    parameters: dict[str, Any]
    budget: ledger.Budget
    chain_head: dict[str, Any] | None = None  # the hub chain's head after this release


def release_tables(store: Store, epsilon: float, *, delta: float = DEFAULT_DELTA,
                   mechanism: Mechanism = "gaussian", names: Sequence[str] | None = None,
                   actor: str = "hub", purpose: str = "", standard: Standard | None = None,
                   years: tuple[int, int] | None = None,
                   test_seed: int | None = None,
                   groups: GroupEngine = EMBEDDED) -> TablesRelease:
    # Refuse bad parameters (exit 2) and a broken chain (exit 3) before reading anything.
    epsilon = check_epsilon(epsilon)
    delta = check_delta(delta)
    store.require_intact()
    standard = standard or load_standard()
    chosen = select_tables(names, standard)
    # A release the budget cannot pay is refused before the people are read (exit 3).
    ledger.require_affordable(store, _planned_rho(chosen, epsilon, delta, mechanism), actor=actor)
    columns = needed_columns(chosen)
    budget = epsilon if mechanism == "laplace" else rho_from_epsilon_delta(epsilon, delta)
    spend_delta = None if mechanism == "laplace" else delta
    with store.transaction():
        # Research use: records without research consent never enter (counted, not read).
        consent = consent_account(store, "research")
        people, unit = load_people(store, columns, purpose="research")
        caches: dict[object, Cache] = {}  # one per population: codes are cached per column
        exact = [count_table(people_of(people, t.where), t.spec,
                             {c: levels_for(standard, c, years) for c in t.spec.dims},
                             MAX_VALUES, caches.setdefault(t.where, {}), groups)
                 for t in chosen]
        noisy = measure(exact, mechanism, budget, test_seed=test_seed)
        del exact, people  # from here on only the noisy measurements exist
        published = postprocess(noisy)
        params = {
            "method": "dp_tables", "mechanism": mechanism, "epsilon": epsilon,
            "delta": spend_delta, "rho": noisy.rho,
            "composition": ledger.COMPOSITION, "unit": unit,
            "bounding": f"one record per person; at most {MAX_VALUES} values of a list field",
            "post_processing": "weighted non-negative least squares over total, margins and cells; "
                               "integer rounding keeping the total; margins = sums of cells",
            "moe": "95% margin of error from the mechanism's scale (least-squares variance; "
                   "excludes the +-1 of rounding and the non-negativity projection)",
            "tables": [t.spec.name for t in chosen],
            "consent": consent,
        }
        # The published cells are public: keeping them in the record lets the report show the
        # tables with their margins of error without recomputing (and re-spending) anything.
        results = {p.spec.name: {"total": _grand_total(p), "columns": list(p.columns),
                                 "rows": [list(r) for r in p.rows]} for p in published}
        release_id = store.record_release("dp_tables", params, results, actor)
        after = ledger.spend(store, noisy.rho, kind="dp_tables", actor=actor, purpose=purpose,
                             mechanism=mechanism, epsilon=epsilon,
                             delta=spend_delta, detail={"tables": params["tables"]},
                             release_id=release_id)
    return TablesRelease(release_id, published, params, after, store.chain_head())


def _planned_rho(chosen: Sequence[DPTable], epsilon: float, delta: float, mechanism: Mechanism) -> float:
    """What :func:`measure` will spend, in rho: the Gaussian's whole rho; for Laplace, the budget
    split evenly over the query groups, each group's pure epsilon costing epsilon**2 / 2."""
    if mechanism == "laplace":
        groups = sum(len(t.spec.groups()) for t in chosen)
        return epsilon * epsilon / (2 * groups) if groups else 0.0
    return rho_from_epsilon_delta(epsilon, delta)


def tables_cost(epsilon: float, delta: float = DEFAULT_DELTA, mechanism: Mechanism = "gaussian",
                names: Sequence[str] | None = None, standard: Standard | None = None) -> float:
    """The rho :func:`release_tables` will spend with these parameters, known before any record
    is read (the server refuses a release the budget cannot pay before it waits for its turn)."""
    return _planned_rho(select_tables(names, standard), check_epsilon(epsilon), check_delta(delta),
                        mechanism)


def _grand_total(p: PublishedTable) -> int:
    k = len(p.spec.dims)
    for row in p.rows:
        if all(v == "Total" for v in row[:k]):
            return int(row[k])  # type: ignore[call-overload]
    raise ReleaseRefused("a published table has no grand total")


def write_tables(release: TablesRelease, out_dir: Path, hxl: bool = False) -> list[str]:
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for table in release.tables:
        arrow = table.to_arrow()
        path = out_dir / f"{table.spec.name}.csv"
        write_csv(arrow, path)
        written.append(str(path))
        if hxl:
            tags = [HXL_TAGS.get(c, f"#x_{c}") for c in arrow.column_names]
            as_text = pa.table({c: pa.array([tags[i]] + [str(v) for v in arrow.column(c).to_pylist()])
                                for i, c in enumerate(arrow.column_names)})
            hxl_path = out_dir / f"{table.spec.name}.hxl.csv"
            write_csv(as_text, hxl_path)
            written.append(str(hxl_path))
    record = {"release_id": release.release_id, "parameters": release.parameters,
              "budget_after": release.budget.to_dict(), "chain_head": release.chain_head,
              "files": written}
    (out_dir / "release.json").write_text(json.dumps(record, indent=2, default=str) + "\n")
    written.append(str(out_dir / "release.json"))
    written.append(str(write_datapackage(
        out_dir, "accord-dp-tables", "Accord differentially private tables", written,
        description="Noisy counts with 95% margins of error; parameters in release.json.",
        properties={"accord:release_id": release.release_id})))
    return written
