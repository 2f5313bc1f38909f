"""Rates per 100,000 population from the hub's aggregate tables (as UNODC and SDG 16.2.2 express them).

The denominator is the World Bank's total population (SP.POP.TOTL, PDDL), shipped with the
package for 2000-2024 (src/accord/standard/data/population.csv): nothing is downloaded. Total
population only, so a rate is given for the country-year totals (all sexes, ages and forms). A
count behind a `<n` mark gives no rate, only its upper bound (`<` n per 100,000 population).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import pycountry

from accord.errors import AccordError
from accord.store.base import Store

PER = 100_000


@lru_cache(maxsize=1)
def population() -> dict[tuple[str, int], int]:
    """(ISO 3166 alpha-2, year) -> total population."""
    text = resources.files("accord.standard").joinpath("data/population.csv").read_text(encoding="utf-8")
    lines = [line for line in text.splitlines() if not line.startswith("#")]
    out: dict[tuple[str, int], int] = {}
    for row in csv.DictReader(io.StringIO("\n".join(lines))):
        c = pycountry.countries.get(alpha_3=row["country"])
        if c is not None:
            out[(str(c.alpha_2), int(row["year"]))] = int(row["population"])
    return out


@dataclass(frozen=True)
class Rate:
    source: str
    country: str
    year: int
    count: int | None
    mark: str | None
    population: int | None
    rate: float | None  # per 100,000; None when the count is a mark or the population unknown
    upper_bound: float | None  # for a mark "<n": n per 100,000 population


def rates(store: Store, source: str | None = None) -> list[Rate]:
    if not store.table_exists("aggregates"):
        raise AccordError("the hub has no aggregate tables", hint="add one with `accord tables ingest`")
    where = "sex = '_T' AND age = '_T' AND form = '_T'" + (" AND source = ?" if source else "")
    rows = store.query(f"SELECT source, country, year, count, mark FROM aggregates WHERE {where} "
                       "ORDER BY source, country, year", [source] if source else []).to_pylist()
    pop = population()
    out = []
    for r in rows:
        p = pop.get((r["country"], r["year"]))
        rate = r["count"] / p * PER if p and r["count"] is not None else None
        bound = None
        if p and r["mark"]:
            bound = int(r["mark"].lstrip("<")) / p * PER
        out.append(Rate(r["source"], r["country"], r["year"], r["count"], r["mark"], p, rate, bound))
    return out
