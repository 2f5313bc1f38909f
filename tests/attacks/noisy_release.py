"""Accord's side of the attack tests: the release under attack, as a reader receives it.

Only the published output crosses into the attacker (codes, values, the published noise scale).
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from accord.research.noisy import draw_tables, noise_sd, publish
from accord.standard import load_standard
from tests.attacks.differencing import Published, Release, from_nested

STANDARD = load_standard()
YEARS = (2016, 2024)


def people_table(people: list[dict[str, Any]]) -> pa.Table:
    cols = ["sex", "age_band_ctdc", "age_group", "majority_status", "case_type",
            "migration_status", "citizenship", "type_of_exploitation", "rh_needs",
            "registration_year", "age_adolescent", "age_youth", "age_young_people",
            "gbv_incident_type", "rh_services_received", "referred_to", "services_received",
            "sexual_violence_survivor"]
    lists = {"type_of_exploitation", "rh_needs", "gbv_incident_type", "rh_services_received",
             "referred_to", "services_received"}
    return pa.table({c: pa.array([p[c] for p in people],
                                 pa.list_(pa.string()) if c in lists else pa.string())
                     for c in cols})


def dp_release(rho: float, threshold: int = 10) -> Release:
    """Accord's default protection: one noisy draw of every table, 1..threshold-1 hidden."""
    def release(people: list[dict[str, Any]], trial: int) -> dict[str, Published]:
        payload = draw_tables(people_table(people), STANDARD, rho, YEARS, test_seed=1000 + trial)
        return {spec.id: from_nested([d.codes for d in dims], values, noise_sd(payload, spec.id))
                for spec, dims, values, _, _ in publish(payload, STANDARD, threshold, "persons")}
    return release


def dp_strata_release(rho: float, threshold: int = 10) -> Any:
    """Accord's estimates: one noisy draw of (sex, age group, case type) x capture history; the
    seen count of every stratum of every --by is a sum of it, 1..threshold-1 hidden."""
    from accord.research.estimate.noisy import by_strata, draw, exact_counts, strata_levels
    from tests.attacks.differencing import BY_SETS, PARTNERS, STRATA

    levels = strata_levels(STANDARD)

    def release(people: list[dict[str, Any]], trial: int) -> dict[tuple[str, ...], Published]:
        strata: dict[tuple[str, ...], list[set[str]]] = {}
        for p in people:
            key = tuple("missing" if p[c] is None else str(p[c]) for c in STRATA)
            strata.setdefault(key, []).append(set(p["lists"]))
        payload = draw(exact_counts(list(PARTNERS), strata, levels, "missing"), levels,
                       len(PARTNERS), rho, test_seed=2000 + trial)
        n_hist = 2 ** len(PARTNERS) - 1
        out = {}
        for by in BY_SETS:
            seen = {k: int(v.sum()) for k, v in by_strata(payload, by).items()}
            entries = {tuple("_missing" if x == "(missing)" else x for x in k):
                       (None if 0 < v < threshold else v) for k, v in seen.items()}
            codes = tuple(tuple(dict.fromkeys(k[i] for k in entries)) for i in range(len(by)))
            out[by] = Published(codes, entries, float(payload["noise_sd"]) * n_hist ** 0.5)
        return out
    return release
