"""The standard's disaggregated tables as DP table specs, and the people they count.

The tables are those of ``accord.standard.tables`` (the same list ``accord stats`` publishes with
suppression), with one difference that DP forces: every category list is fixed before
looking at the data. Code lists and age bands come from the standard; citizenship uses every
ISO 3166-1 country (not "the most frequent ones", which the data would choose); years use a
public range given by the caller.

Counting unit: one row per person. Where linkage has written ``persons``, a person is the linked
person id, so someone served by two partners counts once; otherwise a person is the partner's
keyed pseudonym (names + birth date + sex), else the record. Each person is described by their
earliest registration. That bounding is what makes one person move at most one cell per table.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import pyarrow as pa
import pyarrow.compute as pc
import pycountry

from accord.errors import ReleaseRefused
from accord.release.dp.tables import MISSING, TableSpec
from accord.standard import Standard, load_standard
from accord.standard import tables as shared
from accord.store import Store

FIRST_YEAR = 2000
MAX_VALUES = 2  # values of a list field one person may count under


@dataclass(frozen=True)
class DPTable:
    spec: TableSpec
    title: str
    note: str = ""
    where: tuple[tuple[str, tuple[str, ...]], ...] = ()  # the subpopulation counted (see tables.yaml)


def people_of(people: pa.Table, where: tuple[tuple[str, tuple[str, ...]], ...]) -> pa.Table:
    """The people a table of a subpopulation counts (all of them without ``where``). Filtering
    keeps one row per person, so each person still moves at most one cell (or MAX_VALUES for a
    list): the sensitivity is that of the whole table."""
    for column, codes in where:
        people = people.filter(pc.fill_null(pc.is_in(people.column(column), pa.array(codes)),
                                            False))
    return people


def needed_columns(tables: Sequence[DPTable]) -> list[str]:
    """Columns to load for ``tables``: their dimensions and the columns they filter on."""
    return list(dict.fromkeys(c for t in tables
                              for c in (*t.spec.dims, *(w for w, _ in t.where))))


def _note(table: shared.TableSpec) -> str:
    notes = [table.note]
    if (m := table.multi) is not None:
        notes.append(f"A person with several {m.item}s counts under at most {MAX_VALUES} of them "
                     f"(the first in code-list order), so the totals over {m.item}s exceed the "
                     f"number of people; people with no {m.item} recorded count as missing.")
    return " ".join(n for n in notes if n)


def standard_tables(standard: Standard | None = None) -> tuple[DPTable, ...]:
    """The standard's tables (``accord.standard.tables``) that are released with DP."""
    return tuple(DPTable(TableSpec(t.id, t.columns), t.title, _note(t), t.where)
                 for t in shared.standard_tables(standard or load_standard(), "dp"))


def select_tables(names: Sequence[str] | None,
                  standard: Standard | None = None) -> tuple[DPTable, ...]:
    tables = standard_tables(standard)
    if not names:
        return tables
    known = {t.spec.name: t for t in tables}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ReleaseRefused(f"unknown table(s): {', '.join(unknown)}",
                             hint=f"choose from: {', '.join(known)}")
    return tuple(known[n] for n in names)


def levels_for(standard: Standard, column: str,
               years: tuple[int, int] | None = None) -> tuple[str, ...]:
    """The public category list of a column, with the missing level last."""
    if column == "citizenship":
        codes: tuple[str, ...] = tuple(sorted(c.alpha_2 for c in pycountry.countries))
    elif column == "registration_year":
        first, last = years or (FIRST_YEAR, datetime.now(UTC).year)
        codes = tuple(str(y) for y in range(first, last + 1))
    elif column in standard.field_names:
        codes = standard.field(column).code_values
    else:
        codes = standard.derived_field(column).band_labels
    return (*codes, MISSING)


PERSONS_SQL = """
SELECT {cols} FROM (
  SELECT r.*, {person} AS _person FROM records r {join} {where}
) QUALIFY row_number() OVER (
  PARTITION BY _person ORDER BY registration_date NULLS LAST, partner, record_key) = 1
"""


Purpose = Literal["statistics", "research"]
RESEARCH_CONSENT = "consent_research"


def _has_consent_column(store: Store) -> bool:
    # A hub built before standard 0.2 has no per-record consent column.
    return RESEARCH_CONSENT in store.query("SELECT * FROM records LIMIT 0").column_names


def consent_account(store: Store, purpose: Purpose) -> dict[str, Any]:
    """How many of the hub's records a release of ``purpose`` may use, in aggregate only.

    Statistics consent was applied at the partner (a record without it never left); research
    releases (DP tables for research, synthetic data, microdata) take only records whose
    ``consent_research`` is "yes": the others are counted here, never read.
    """
    total = int(store.query("SELECT count(*) AS n FROM records").column("n")[0].as_py())
    if purpose == "statistics" or not _has_consent_column(store):
        return {"purpose": purpose, "records": total, "records_used": total,
                "records_withheld": 0}
    used = int(store.query(f"SELECT count(*) AS n FROM records WHERE {RESEARCH_CONSENT} = 'yes'")
               .column("n")[0].as_py())
    return {"purpose": purpose, "records": total, "records_used": used,
            "records_withheld": total - used,
            "rule": "only records whose consent_research is yes; a person counts from their "
                    "earliest record among those"}


def load_people(store: Store, columns: Sequence[str],
                purpose: Purpose = "statistics") -> tuple[pa.Table, str]:
    """One row per person with ``columns`` (primary citizenship as a plain code).

    For ``purpose="research"``, records without research consent are left out before people are
    formed, so such a record never enters the release (not even as a person's representative).
    """
    if not store.table_exists("records"):
        raise ReleaseRefused("the hub has no records yet", hint="add contributions with `accord hub add`")
    linked = store.table_exists("persons")
    person = ("coalesce(CAST(p.person_id AS VARCHAR), r.partner || ':' || r.person_pseudonym, "
              "r.partner || ':' || r.record_key)" if linked else
              "coalesce(r.partner || ':' || r.person_pseudonym, r.partner || ':' || r.record_key)")
    join = ("LEFT JOIN persons p ON p.partner = r.partner AND p.record_key = r.record_key"
            if linked else "")
    allowed = set(store.query("SELECT * FROM records LIMIT 0").column_names)
    parts = []
    for c in columns:
        if c not in allowed:
            raise ReleaseRefused(f"the hub's records have no column {c}")
        if c == "citizenship":
            parts.append('"citizenship"[1] AS "citizenship"')
        elif c == "registration_year":
            parts.append('CAST("registration_year" AS VARCHAR) AS "registration_year"')
        else:
            parts.append(f'"{c}"')
    where = (f"WHERE r.{RESEARCH_CONSENT} = 'yes'"
             if purpose == "research" and _has_consent_column(store) else "")
    sql = PERSONS_SQL.format(cols=", ".join(parts), person=person, join=join, where=where)
    return store.query(sql), ("linked persons" if linked else "partner-scoped pseudonyms")
