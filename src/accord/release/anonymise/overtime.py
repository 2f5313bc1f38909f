"""Microdata over time: a k-anonymous file of this data version must not be subtracted from an
earlier one to single out the people withdrawn, added or changed between them.

Two files of one hub differ by the records that changed. An analyst who knows that a person
withdrew (or arrived) and knows their quasi-identifiers takes the rows that are in one file and
not the other, finds the rows that match the person, and reads their sensitive values, which one
file alone only placed among k people with l different values (tests/attacks/
test_withdraw_differencing.py does exactly that). Re-publication of anonymised data needs its
own rule (Xiao and Tao's m-invariance is one; no maintained Python library implements any for
ARX-style full-domain generalisation, so this check is written here).

The rule, conservative and checkable: every microdata release keeps the rows it published
(already public, generalised, counted per distinct row). Before a new release of another data
version, each earlier file and the new one are brought to a common generalisation (for each
quasi-identifier the coarser of the two levels, via the same public hierarchies; ``*`` stays
``*``), and the rows in one and not the other (multiset differences, both ways) are grouped by
their quasi-identifiers. Every such group must itself hold at least k rows with at least l
different values of every sensitive column, as a class of the release does; otherwise the
release is refused (exit 3). A group of changed rows that meets k and l tells no more than a
class of one release. Rows are records here: a person with several records counts several
times, so k is in records for the differences (the releases themselves count people).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import pyarrow as pa

from accord.errors import ReleaseRefused
from accord.release.anonymise.hierarchy import SUPPRESSED, Hierarchy
from accord.store.base import Store

PUBLISHED_ROWS_SQL = """CREATE TABLE IF NOT EXISTS published_microdata (
    release_id VARCHAR NOT NULL, data_version VARCHAR NOT NULL, layout VARCHAR NOT NULL,
    row_values VARCHAR NOT NULL, n BIGINT NOT NULL)"""

Row = tuple[str, ...]


def _layout(columns: Sequence[str], qi: Sequence[str], levels: Mapping[str, int]) -> str:
    return json.dumps({"columns": list(columns), "qi": list(qi),
                       "levels": {q: int(levels[q]) for q in qi}}, sort_keys=True)


def _rows(table: pa.Table) -> Counter[Row]:
    cols = [table.column(c).to_pylist() for c in table.column_names]
    return Counter(tuple("" if v is None else str(v) for v in r) for r in zip(*cols, strict=True))


def remember_rows(store: Store, release_id: str, data_version: str, released: pa.Table,
                  qi: Sequence[str], levels: Mapping[str, int]) -> None:
    """Keep what this microdata release published (call in the release's transaction)."""
    store.execute(PUBLISHED_ROWS_SQL)
    counts = _rows(released)
    if not counts:
        return
    layout = _layout(released.column_names, qi, levels)
    store.write_table("published_microdata", pa.table({
        "release_id": pa.array([release_id] * len(counts), pa.string()),
        "data_version": pa.array([data_version] * len(counts), pa.string()),
        "layout": pa.array([layout] * len(counts), pa.string()),
        "row_values": pa.array([json.dumps(list(r)) for r in counts], pa.string()),
        "n": pa.array(list(counts.values()), pa.int64())}))


def _coarsen(value: str, hierarchy: Hierarchy | None, frm: int, to: int) -> str:
    if value in ("", SUPPRESSED) or frm == to:
        return value
    if hierarchy is None:  # no hierarchy to map with: treat as hidden (the coarsest view)
        return SUPPRESSED
    for r in hierarchy.rows:
        if r[frm] == value:
            return r[to]
    return SUPPRESSED


def _bring(rows: Counter[Row], columns: Sequence[str], qi: Sequence[str], frm: Mapping[str, int],
           to: Mapping[str, int], hierarchies: Mapping[str, Hierarchy]) -> Counter[Row]:
    idx = {c: i for i, c in enumerate(columns)}
    maps: dict[tuple[str, str], str] = {}
    out: Counter[Row] = Counter()
    for row, n in rows.items():
        values = list(row)
        for q in qi:
            key = (q, values[idx[q]])
            if key not in maps:
                maps[key] = _coarsen(values[idx[q]], hierarchies.get(q), frm[q], to[q])
            values[idx[q]] = maps[key]
        out[tuple(values)] += n
    return out


def _weak_groups(diff: Counter[Row], columns: Sequence[str], qi: Sequence[str], k: int,
                 l: int) -> int:  # noqa: E741
    """How many quasi-identifier groups of changed rows hold fewer than k rows or fewer than l
    values of some sensitive column."""
    qi_at = [columns.index(q) for q in qi]
    sens_at = [i for i, c in enumerate(columns) if c not in qi]
    groups: dict[Row, list[tuple[Row, int]]] = {}
    for row, n in diff.items():
        if n > 0:
            groups.setdefault(tuple(row[i] for i in qi_at), []).append((row, n))
    weak = 0
    for members in groups.values():
        size = sum(n for _, n in members)
        # as the release's own l: recorded values only; a column none of them has says nothing
        recorded = [{r[i] for r, _ in members} - {"", SUPPRESSED} for i in sens_at]
        diverse = all(not values or len(values) >= l for values in recorded)
        if size < k or not diverse:
            weak += 1
    return weak


def check_against_earlier(store: Store, data_version: str, released: pa.Table, qi: Sequence[str],
                          levels: Mapping[str, int], hierarchies: Mapping[str, Hierarchy],
                          k: int, l: int) -> None:  # noqa: E741
    """Refuse (exit 3) a release whose differences from an earlier microdata release of another
    data version would single out the records changed between them."""
    if not store.table_exists("published_microdata"):
        return
    earlier = store.query("SELECT release_id, layout, row_values, n FROM published_microdata "
                          "WHERE data_version <> ? ORDER BY release_id",
                          [data_version]).to_pylist()
    if not earlier:
        return
    columns = released.column_names
    new_rows = _rows(released)
    by_release: dict[str, tuple[dict[str, Any], Counter[Row]]] = {}
    for r in earlier:
        entry = by_release.setdefault(r["release_id"], (json.loads(r["layout"]), Counter()))
        entry[1][tuple(json.loads(r["row_values"]))] += int(r["n"])
    for release_id, (layout, old_rows) in by_release.items():
        shared = [c for c in layout["columns"] if c in columns]
        common_qi = [q for q in qi if q in layout["qi"]]
        if not common_qi:
            continue  # no quasi-identifier in common: the rows cannot be matched to a person
        # the other columns are compared where both files have them; the rest are dropped
        old_levels, new_levels = layout["levels"], dict(levels)
        to = {q: max(int(old_levels[q]), int(new_levels[q])) for q in common_qi}
        old = _project(old_rows, layout["columns"], shared)
        new = _project(new_rows, columns, shared)
        old = _bring(old, shared, common_qi, old_levels, to, hierarchies)
        new = _bring(new, shared, common_qi, new_levels, to, hierarchies)
        weak = (_weak_groups(old - new, shared, common_qi, k, l)
                + _weak_groups(new - old, shared, common_qi, k, l))
        if weak:
            raise ReleaseRefused(
                f"this microdata differs from the earlier microdata release {release_id} (another "
                f"data version) in {weak} group(s) of fewer than k={k} records or fewer than "
                f"l={l} values: comparing the two files would single out people withdrawn, added "
                "or changed since; nothing was released",
                hint="ask with a larger k or fewer quasi-identifiers, or wait until more records "
                     "have changed; the data of the earlier release stays published")


def _project(rows: Counter[Row], columns: Sequence[str], keep: Sequence[str]) -> Counter[Row]:
    if list(columns) == list(keep):
        return rows
    at = [list(columns).index(c) for c in keep]
    out: Counter[Row] = Counter()
    for row, n in rows.items():
        out[tuple(row[i] for i in at)] += n
    return out
