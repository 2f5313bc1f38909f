"""Combined indicators: detected victims by country and year from the hub's own records and the
aggregate tables agencies contributed (`accord tables ingest`), with nobody counted twice.

The rule (docs/interop.md, "Combined indicators"): every country-year comes from exactly ONE
source, either the hub's records (their country and year of registration) or one aggregate
table. Records and aggregate counts cannot be linked (a table of counts has no people in it),
so where two sources cover the same country-year there is no way to tell whether they count the
same victims: the combination is refused, naming the sources, and the steward chooses which
sources to combine (``--source``) or leaves the hub's records out (``--no-hub``).

Protection is that of the other published tables: a count from 1 to threshold-1 is shown as
``<threshold`` (an aggregate's own ``<n`` mark is kept as it is), a hub cell that moved by less
than the threshold since an earlier release of another data version is hidden too, and the
release is put on record with its parameters. No totals are published, so a hidden cell cannot
be recovered from a margin.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from accord.errors import AccordError, ReleaseRefused
from accord.release.suppression import with_margins
from accord.research.history import moved_cells, remember
from accord.research.rates import PER, population
from accord.research.specs import Dim, country_label
from accord.research.stats import resolve_unit
from accord.store import Store

HUB = "hub"
TABLE_ID = "combined:hub_country_year"
KIND = "combined_indicators"

_UNIT_SQL = {
    "records": "SELECT country_of_registration AS country, registration_year AS year FROM records",
    "persons": (
        "SELECT r.country_of_registration AS country, r.registration_year AS year FROM records r "
        "LEFT JOIN persons p ON p.partner = r.partner AND p.record_key = r.record_key "
        "QUALIFY row_number() OVER ("
        "PARTITION BY coalesce(CAST(p.person_id AS VARCHAR), r.partner || ':' || r.record_key) "
        "ORDER BY r.registration_date NULLS LAST, r.partner, r.record_key) = 1"),
}


@dataclass(frozen=True)
class CombinedCell:
    country: str
    year: int
    source: str  # "hub" or the aggregate table's source name
    count: int | None  # None: hidden (shown as ``mark``)
    mark: str | None
    population: int | None
    rate: float | None  # per 100,000 population, when the count is shown


@dataclass(frozen=True)
class Combined:
    cells: tuple[CombinedCell, ...]
    release_id: str
    unit: str  # how the hub's records are counted (records, or linked persons)
    sources: tuple[str, ...]
    unplaced: int  # hub units without a country or year of registration: in no cell
    parameters: dict[str, Any]


def _aggregate_totals(store: Store, sources: Sequence[str] | None) -> list[dict[str, Any]]:
    if not store.table_exists("aggregates"):
        if sources:
            raise AccordError("the hub has no aggregate tables",
                              hint="add one with `accord tables ingest`")
        return []
    known = {r["source"] for r in store.query("SELECT DISTINCT source FROM aggregates").to_pylist()}
    unknown = sorted(set(sources or ()) - known)
    if unknown:
        raise AccordError(f"no aggregate table from source(s) {', '.join(unknown)}",
                          hint=f"sources in the hub: {', '.join(sorted(known)) or 'none'}")
    chosen = sorted(sources) if sources else sorted(known)
    if not chosen:
        return []
    marks = ", ".join("?" for _ in chosen)
    return store.query(
        "SELECT source, country, year, count, mark FROM aggregates WHERE sex = '_T' AND age = '_T' "
        f"AND form = '_T' AND source IN ({marks}) ORDER BY country, year, source",
        list(chosen)).to_pylist()


def _refuse_overlap(owners: dict[tuple[str, int], list[str]]) -> None:
    overlap = {k: v for k, v in owners.items() if len(v) > 1}
    if not overlap:
        return
    country, year = min(overlap)
    pairs = sorted({" and ".join(sorted(set(v))) for v in overlap.values()})
    raise ReleaseRefused(
        f"{len(overlap)} country-year(s) are covered by more than one source ({'; '.join(pairs)}), "
        f"first {country} {year}: their counts cannot be told apart, so adding them could count "
        "the same victims twice",
        hint="combine sources that cover different countries or years: choose them with "
             "--source, or leave the hub's records out with --no-hub")


def combine(store: Store, threshold: int = 10, sources: Sequence[str] | None = None,
            include_hub: bool = True, actor: str = "hub") -> Combined:
    if threshold < 2:
        raise AccordError("the threshold must be at least 2", hint="give --threshold 10")
    aggregates = _aggregate_totals(store, sources)
    hub_counts: dict[tuple[str, int], int] = {}
    unplaced = 0
    unit = "none"
    if include_hub and store.table_exists("records"):
        unit = resolve_unit(store, "auto")
        rows = store.query(f"SELECT country, year, count(*) AS n FROM ({_UNIT_SQL[unit]}) u "
                           "GROUP BY country, year").to_pylist()
        for r in rows:
            if r["country"] is None or r["year"] is None:
                unplaced += int(r["n"])
            else:
                hub_counts[(str(r["country"]), int(r["year"]))] = int(r["n"])
    owners: dict[tuple[str, int], list[str]] = {}
    for key in hub_counts:
        owners.setdefault(key, []).append(HUB)
    for r in aggregates:
        owners.setdefault((str(r["country"]), int(r["year"])), []).append(str(r["source"]))
    _refuse_overlap(owners)
    if not owners:
        raise AccordError("nothing to combine: no hub records with a country and year of "
                          "registration and no aggregate country-year totals",
                          hint="add contributions or aggregate tables first")

    # The hub's cells: small counts and cells that moved by a small amount since an earlier
    # release (another data version) are hidden, as in every published table.
    countries = sorted({c for c, _ in hub_counts})
    years = sorted({y for _, y in hub_counts})
    dims = (Dim("country", "Country", tuple(countries), tuple(country_label(c) for c in countries)),
            Dim("year", "Year", tuple(str(y) for y in years), tuple(str(y) for y in years)))
    arr = np.zeros((len(countries), len(years)), dtype=np.int64)
    for (c, y), n in hub_counts.items():
        arr[countries.index(c), years.index(y)] = n
    ext = with_margins(arr)
    version = store.data_version()
    moved, _ = (moved_cells(store, TABLE_ID, dims, ext, version, threshold) if hub_counts
                else (np.zeros(ext.shape, dtype=bool), 0))
    pop = population()
    cells: list[CombinedCell] = []
    shown_ext: np.ndarray = np.full(ext.shape, None, dtype=object)  # margins never shown
    hidden = 0
    for (c, y), n in sorted(hub_counts.items()):
        i, j = countries.index(c), years.index(y)
        hide = (0 < n < threshold) or bool(moved[i, j])
        hidden += hide
        shown_ext[i, j] = None if hide else n
        cells.append(_cell(c, y, HUB, None if hide else n, f"<{threshold}" if hide else None, pop))
    for r in aggregates:
        count: int | None = r["count"]
        mark: str | None = r["mark"]
        if count is not None and 0 < count < threshold:
            count, mark = None, f"<{threshold}"
        cells.append(_cell(str(r["country"]), int(r["year"]), str(r["source"]), count, mark, pop))
    cells.sort(key=lambda x: (x.country, x.year))
    used = sorted({x.source for x in cells})
    params: dict[str, Any] = {
        "method": "small-cell suppression", "threshold": threshold, "unit": unit,
        "sources": used, "rule": "each country-year from exactly one source; overlap refused",
        "population": "World Bank SP.POP.TOTL (shipped)"}
    summary = {"cells": len(cells), "hub_cells": len(hub_counts), "hub_hidden": hidden,
               "hub_unplaced": unplaced}
    with store.transaction():
        release_id = store.record_release(KIND, params, summary, actor)
        if hub_counts:
            remember(store, release_id, version, [(TABLE_ID, dims, shown_ext.tolist())])
        store.audit(actor, "tables.combine", {"release_id": release_id, "sources": used})
    return Combined(tuple(cells), release_id, unit, tuple(used), unplaced, params)


def _cell(country: str, year: int, source: str, count: int | None, mark: str | None,
          pop: dict[tuple[str, int], int]) -> CombinedCell:
    p = pop.get((country, year))
    rate = count / p * PER if p and count is not None else None
    return CombinedCell(country, year, source, count, mark, p, rate)
