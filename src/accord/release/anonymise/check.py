"""Independent k-anonymity / l-diversity check of a released table.

Deliberately shares no code with the search: it reads the released values as strings and groups
them with DuckDB SQL, so a bug in the engine's encoding or group-by cannot hide itself here.

How ``*`` is read: a suppressed cell is a value of its own. A row with ``*`` in some cells is
grouped only with rows that show ``*`` in the same cells and the same other values; it is not
taken to match every value (sdcMicro's reading of a missing key), since one row would then count
towards several classes and the minimum class size would overstate the protection. This is the
conservative reading: every combination of released values must occur k times.

Rows whose quasi-identifiers are all ``*`` (suppressed records) carry no quasi-identifying
information and are exempt from k, as in ARX; their sensitive values must still be l-diverse as a
group of at least k rows, or be suppressed (``*``) themselves.

Multi-valued sensitive columns (sets written 'a|b') are checked per flag: for each code, whether
the record has it (1), has others (0) or nothing recorded (empty).

l counts **recorded** values only: an empty cell ("not recorded") is no value a class can be
diverse in, so a class whose recorded values are all one value is 1-diverse whatever its blanks,
and a class with nothing recorded is 0-diverse. An attribute (column or flag) with fewer than two
recorded values in the whole released table (a flag of a code nobody, or every recorded person,
has) or a column recorded for no one is not checked (no class can reveal more than the table
does).

With ``people`` (the person of each released row, linked across partners; never released), k is
the number of distinct people in a class, not of rows: a person seen by two partners is two
records but one person. The suppressed group is measured in people too.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import duckdb
import pyarrow as pa

SUPPRESSED = "*"


@dataclass(frozen=True)
class CheckResult:
    k: int  # size of the smallest class of non-suppressed rows, in people if known (0: no class)
    l_distinct: int  # least number of distinct sensitive values in a class (all fields)
    l_entropy: float  # least exp(entropy) of a class (all fields)
    classes: int
    suppressed_rows: int
    suppressed_group_ok: bool
    l_checked: bool = True  # False when no attribute varies (nothing a class could reveal)
    k_records: int = 0  # the smallest class in rows (= k when people are not known)
    people: int = 0  # distinct people in the table (= rows when not known)

    def satisfies(self, k: int, l: int = 1, l_kind: str = "distinct") -> bool:  # noqa: E741
        if self.classes and self.k < k:
            return False
        if l > 1 and self.classes and self.l_checked:
            achieved = self.l_distinct if l_kind == "distinct" else self.l_entropy
            if achieved < l - 1e-9:
                return False
        return self.suppressed_group_ok


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _flag_columns(con: duckdb.DuckDBPyConnection, column: str) -> list[tuple[str, str]]:
    """(name, SQL expression) of the varying 0/1/empty flags of a set-valued column."""
    col = _ident(column)
    codes = [str(r[0]) for r in con.execute(
        f"SELECT DISTINCT unnest(string_split({col}, '|')) AS c FROM released_raw_text "
        f"WHERE {col} NOT IN ('', '{SUPPRESSED}') ORDER BY c").fetchall() if r[0] != ""]
    out = []
    for code in codes:
        literal = "'" + code.replace("'", "''") + "'"
        expr = (f"CASE WHEN {col} = '{SUPPRESSED}' THEN '{SUPPRESSED}' WHEN {col} = '' THEN '' "
                f"WHEN list_contains(string_split({col}, '|'), {literal}) THEN '1' ELSE '0' END")
        varying = con.execute(
            f"SELECT count(DISTINCT {expr}) FROM released_raw_text "
            f"WHERE {col} NOT IN ('', '{SUPPRESSED}')").fetchall()[0][0]
        if int(varying) > 1:
            out.append((f"{column}__{code}", expr))
    return out


def check_release(table: pa.Table, qi: Sequence[str], sensitive: Sequence[str] = (),
                  k: int = 1, l: int = 1, l_kind: str = "distinct",  # noqa: E741
                  multi_valued: Sequence[str] = (),
                  people: Sequence[str | None] | pa.Array | None = None) -> CheckResult:
    """Measure the k (in people when ``people`` is given) and l a released table actually has."""
    con = duckdb.connect()
    person = "__accord_check_person__"
    try:
        cast = ", ".join(f"coalesce(CAST({_ident(c)} AS VARCHAR), '') AS {_ident(c)}"
                         for c in [*qi, *sensitive])
        if people is not None:
            # A row without a person id is a person of its own.
            ids = [f"\x00{i}" if p is None or p == "" else str(p) for i, p in
                   enumerate(people.to_pylist() if isinstance(people, pa.Array) else people)]
            table = table.append_column(person, pa.array(ids, type=pa.string()))
        else:
            table = table.append_column(person, pa.array([str(i) for i in
                                                          range(table.num_rows)], pa.string()))
        cast += f", {_ident(person)}"
        con.register("released_raw", table)
        con.execute(f"CREATE TEMP TABLE released_raw_text AS SELECT {cast} FROM released_raw")
        attributes: list[tuple[str, str]] = []
        plain: set[str] = set()
        for s in sensitive:
            attributes += (_flag_columns(con, s) if s in multi_valued else [(s, _ident(s))])
            plain |= set() if s in multi_valued else {s}
        select = ", ".join([_ident(q) for q in qi] +
                           [f"{expr} AS {_ident(name)}" for name, expr in attributes]
                           + [_ident(person)])
        con.execute(f"CREATE TEMP TABLE released AS SELECT {select} FROM released_raw_text")
        # Not checked: a flag with fewer than two recorded values in the whole table (a code
        # nobody, or every recorded person, has), a column recorded for no one.
        sensitive = [name for name, _ in attributes if int(con.execute(
            f"SELECT count(DISTINCT {_ident(name)}) FROM released "
            f"WHERE {_ident(name)} NOT IN ('', '{SUPPRESSED}')").fetchall()[0][0])
            >= (1 if name in plain else 2)]
        pc = _ident(person)
        all_star = " AND ".join(f"{_ident(c)} = '{SUPPRESSED}'" for c in qi) or "FALSE"
        keys = ", ".join(_ident(c) for c in qi)
        con.execute(f"CREATE TEMP VIEW kept AS SELECT * FROM released WHERE NOT ({all_star})")
        row = con.execute(
            f"SELECT count(*), coalesce(min(n), 0), coalesce(min(r), 0) FROM "
            f"(SELECT count(DISTINCT {pc}) AS n, count(*) AS r FROM kept GROUP BY {keys})"
        ).fetchall()[0]
        classes, min_k, min_rows = int(row[0]), int(row[1]), int(row[2])
        everyone = int(con.execute(f"SELECT count(DISTINCT {pc}) FROM released").fetchall()[0][0])
        suppressed, suppressed_people = (int(v) for v in con.execute(
            f"SELECT count(*), count(DISTINCT {pc}) FROM released WHERE {all_star}"
        ).fetchall()[0])
        l_distinct, l_entropy = 10**9, math.inf
        group_ok = suppressed == 0 or suppressed_people >= k
        for s in sensitive:
            sc = _ident(s)
            # Recorded values only; a class with none recorded is absent here, so counted apart.
            with_values, dist, ent = con.execute(
                f"SELECT count(*), min(d), min(e) FROM (SELECT count(*) AS d, "
                f"exp(-sum(p * ln(p))) AS e FROM (SELECT {keys}, {sc}, count(*) * 1.0 / "
                f"sum(count(*)) OVER (PARTITION BY {keys}) AS p FROM kept WHERE {sc} <> '' "
                f"GROUP BY {keys}, {sc}) GROUP BY {keys})").fetchall()[0]
            if int(with_values) < classes:
                l_distinct, l_entropy = 0, 0.0
            elif dist is not None:
                l_distinct, l_entropy = min(l_distinct, int(dist)), min(l_entropy, float(ent))
            if suppressed and l > 1:
                recorded = f"{all_star} AND {sc} NOT IN ('', '{SUPPRESSED}')"
                sd, se, hidden = con.execute(
                    f"SELECT (SELECT count(DISTINCT {sc}) FROM released WHERE {recorded}), "
                    f"(SELECT exp(-sum(p * ln(p))) FROM (SELECT count(*) * 1.0 / "
                    f"sum(count(*)) OVER () AS p FROM released WHERE {recorded} "
                    f"GROUP BY {sc})), (SELECT bool_and({sc} = '{SUPPRESSED}') FROM released "
                    f"WHERE {all_star})").fetchall()[0]
                achieved = sd if l_kind == "distinct" else se
                diverse = achieved is not None and achieved >= l - 1e-9
                group_ok = group_ok and (bool(diverse) or bool(hidden))
        if suppressed and 0 < suppressed_people < k and sensitive:
            # Too few suppressed rows to hide among: acceptable only if nothing sensitive shows.
            hidden_all = all(bool(con.execute(
                f"SELECT bool_and({_ident(s)} = '{SUPPRESSED}') FROM released "
                f"WHERE {all_star}").fetchall()[0][0]) for s in sensitive)
            group_ok = hidden_all
        elif suppressed and 0 < suppressed_people < k:
            group_ok = True
        if not sensitive:
            l_distinct, l_entropy = 1, 1.0
        elif classes == 0:
            l_distinct, l_entropy = 0, 0.0
        return CheckResult(k=min_k, l_distinct=l_distinct, l_entropy=l_entropy, classes=classes,
                           suppressed_rows=suppressed, suppressed_group_ok=group_ok,
                           l_checked=bool(sensitive), k_records=min_rows, people=everyone)
    finally:
        con.close()
