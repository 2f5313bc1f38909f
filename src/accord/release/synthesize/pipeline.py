"""``accord release synthetic``: DP synthetic microdata over the standard's categorical fields.

Same code path as ``accord synthesize`` (encode, :func:`api.synthesize`, reports), with what the
hub knows on top: public category lists from the standard (so the data choose no levels), one row
per person (see :mod:`accord.release.dp.standard_tables`), the sex x age x case type and
sex x age x exploitation marginals always measured, and the cost paid from the ledger.

A list field (type of exploitation) enters as its primary value, the first of the person's codes
in code-list order; the synthetic records therefore carry one type each.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from accord.release.datapackage import write_datapackage
from accord.release.dp import ledger
from accord.release.dp.mechanism import rho_from_epsilon_delta
from accord.release.dp.standard_tables import consent_account, levels_for, load_people
from accord.release.dp.tables import MISSING
from accord.release.synthesize import api, data
from accord.standard import Standard, load_standard
from accord.store import Store

COLUMNS = ("case_type", "sex", "age_group", "type_of_exploitation", "migration_status",
           "unaccompanied_separated", "disability", "recruiter_relationship",
           "country_of_registration", "citizenship", "registration_year")
REQUIRED = (("sex", "age_group", "case_type"), ("sex", "age_group", "type_of_exploitation"))


@dataclass(frozen=True)
class SyntheticRelease:
    release_id: str
    result: api.Synthesis
    reports: dict[str, Any]
    budget: ledger.Budget
    consent: dict[str, Any] = field(default_factory=dict)  # records used / withheld, aggregate


def _levels(standard: Standard, column: str, years: tuple[int, int] | None) -> tuple[str, ...]:
    if column == "country_of_registration":
        return levels_for(standard, "citizenship")
    return levels_for(standard, column, years)


def _primary(values: pa.ChunkedArray | pa.Array, levels: tuple[str, ...]) -> pa.Array:
    """The first code of each list in code-list order (MISSING when the list is empty)."""
    col = values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values
    n = len(col)
    idx = pc.index_in(pc.list_flatten(col), value_set=pa.array(levels, pa.string()))
    codes = np.asarray(pc.fill_null(idx, len(levels) - 1).to_numpy(zero_copy_only=False), np.int64)
    parents = np.asarray(pc.list_parent_indices(col).to_numpy(), dtype=np.int64)
    first = np.full(n, len(levels) - 1, dtype=np.int64)
    np.minimum.at(first, parents, codes)
    return pa.array(np.asarray(levels, dtype=object)[first].tolist(), pa.string())


def _prepare(people: pa.Table, standard: Standard,
             years: tuple[int, int] | None) -> tuple[pa.Table, dict[str, tuple[str, ...]]]:
    levels = {c: _levels(standard, c, years) for c in COLUMNS}
    cols = {}
    for c in COLUMNS:
        col = people.column(c)
        if pa.types.is_list(col.type):
            cols[c] = _primary(col, levels[c])
            continue
        text = pc.cast(col, pa.string())
        inside = pc.is_in(text, value_set=pa.array(levels[c], pa.string()))
        cols[c] = pc.if_else(pc.fill_null(inside, False), text, MISSING)
    return pa.table(cols), levels


def release_synthetic(store: Store, epsilon: float, rows: int, *, delta: float = api.DEFAULT_DELTA,
                      actor: str = "hub", purpose: str = "", standard: Standard | None = None,
                      years: tuple[int, int] | None = None,
                      test_seed: int | None = None) -> SyntheticRelease:
    standard = standard or load_standard()
    rho_from_epsilon_delta(epsilon, delta)  # refuse bad parameters before reading anything
    with store.transaction():
        # Research use: records without research consent never enter (counted, not read).
        consent = consent_account(store, "research")
        people, unit = load_people(store, COLUMNS, purpose="research")
        table, levels = _prepare(people, standard, years)
        encoded = data.encode(table, levels=levels)
        result = api.synthesize(encoded, epsilon, delta, rows, REQUIRED, test_seed=test_seed)
        reports = api.build_reports(result)
        params = {**result.parameters(), "unit": unit, "composition": ledger.COMPOSITION,
                  "consent": consent,
                  "list_fields": "type_of_exploitation as its primary (first in code-list order) code"}
        # The hub's release record is the steward's: the unprotected real-data statistics stay
        # there, clearly marked, and never reach the release folder.
        summary = {"utility": reports["utility"],
                   "steward_only": api.steward_report(result)}
        release_id = store.record_release("dp_synthetic", params, summary, actor)
        after = ledger.spend(store, result.measured.rho, kind="dp_synthetic", actor=actor,
                             purpose=purpose, mechanism="discrete_gaussian+noisy_max",
                             epsilon=epsilon, delta=delta, detail={"rows": rows},
                             release_id=release_id)
    return SyntheticRelease(release_id, result, reports, after, consent)


def write_synthetic(release: SyntheticRelease, out_dir: Path,
                    chain_head: dict[str, Any] | None = None) -> dict[str, str]:
    paths = api.write_outputs(release.result, out_dir / "synthetic.csv", release.reports)
    record = {"release_id": release.release_id,
              "parameters": {**release.result.parameters(), "consent": release.consent},
              "budget_after": release.budget.to_dict(), "files": paths,
              "chain_head": chain_head}
    (out_dir / "release.json").write_text(json.dumps(record, indent=2, default=str) + "\n")
    package = write_datapackage(
        out_dir, "accord-dp-synthetic", "Accord differentially private synthetic data",
        [*paths.values(), out_dir / "release.json"],
        description="Synthetic records drawn from a DP model; utility and privacy reports; "
                    "parameters in release.json.",
        properties={"accord:release_id": release.release_id})
    return {**paths, "release": str(out_dir / "release.json"), "datapackage": str(package)}
