"""Disclosure risk of microdata: equivalence classes, k and l, individual and global risk.

Individual risk follows sdcMicro (``measure_risk`` / ``indivRisk``): without sampling weights
the risk of a record is 1 / f_k (f_k the size of its class); with weights the data are a sample
and the Benedetti-Franconi approximation is used, with p_k = f_k / F_k (F_k the summed weights):

    f_k = 1:  p/(1-p) * log(1/p)
    f_k = 2:  p/(1-p) - (p/(1-p))^2 * log(1/p)
    f_k > 2:  p / (f_k - (1-p))

The expected number of re-identifications is the sum of individual risks, the global risk that
sum over the number of records. sdcMicro's C++ ``measure_risk`` subtracts 1e-4 from p_k
(``sdcmicro_offset``); its R ``indivRisk(method="approx")`` does not (the default here).

Missing values in a quasi-identifier form their own category here (sdcMicro lets them match any
value, which lowers risk): the more cautious choice. Lists (multi-select fields) used as
quasi-identifiers are compared as sets: the sorted values joined into one key.

A sensitive list (forms of exploitation, needs) is assessed per flag: each code is its own
sensitive attribute (1 = the record has it, 0 = it has others, empty = nothing recorded), since
a class where everyone shares one flag discloses that flag even when the sets differ. Flags with
fewer than two recorded values in the whole table are left out (no class can reveal more than
the table does), as in the anonymisation engine.

l counts recorded values only: "not recorded" (empty) is no value a class can be diverse in.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from accord.errors import AccordError
from accord.store.groups import EMBEDDED, GroupEngine

K_LEVELS = (2, 3, 5, 10)
FloatArray = npt.NDArray[np.float64]


class RiskInputError(AccordError):
    """The table or the named fields cannot be assessed."""


@dataclass(frozen=True)
class LDiversity:
    field: str
    distinct_min: int
    entropy_min: float  # exp(entropy) of the least diverse class
    records_below_2: int  # records in classes with fewer than 2 distinct values
    flag: str | None = None  # the code, when ``field`` is one flag of a list (``<list>__<code>``)


@dataclass(frozen=True)
class RiskyCombination:
    values: dict[str, str]  # the class's quasi-identifier values: shown only on request (--show-values)
    size: int
    risk: float
    # The class's quasi-identifiers, rarest value first, each with the records of the whole table
    # that hold its value: what makes the class small, said without the values.
    rarest: tuple[tuple[str, int], ...] = ()


@dataclass(frozen=True)
class QIDriver:
    """What one quasi-identifier adds to the risk: the measures again without it."""
    qi: str
    expected_reidentifications_without: float
    records_above_01_without: int  # records with individual risk > 0.1 without it


@dataclass(frozen=True)
class RiskReport:
    records: int
    qi: tuple[str, ...]
    weighted: bool
    classes: int
    smallest_class: int
    k_violations: dict[int, int]  # k -> records in classes smaller than k
    l_diversity: tuple[LDiversity, ...]
    individual_risk: FloatArray
    expected_reidentifications: float
    global_risk: float
    riskiest: tuple[RiskyCombination, ...]
    people: int = 0  # distinct people (= records when not known)
    smallest_class_people: int = 0  # the smallest class in people (= smallest_class if unknown)
    counted: str = "records"  # what classes count: "people" (linked persons) or "records"
    drivers: tuple[QIDriver, ...] = ()  # per quasi-identifier, when asked for

    def summary(self, show_values: bool = False) -> dict[str, Any]:
        """The report as JSON. The riskiest classes' values point at the people most at risk, so
        they are left out unless ``show_values``; sizes, risks and the rarest fields stay."""
        r = self.individual_risk
        riskiest = [{"size": c.size, "risk": c.risk,
                     "rarest": [{"qi": q, "records_with_value": n} for q, n in c.rarest],
                     **({"values": c.values} if show_values else {})} for c in self.riskiest]
        return {
            "records": self.records, "people": self.people, "counted": self.counted,
            "smallest_class_people": self.smallest_class_people,
            "quasi_identifiers": list(self.qi),
            "weighted": self.weighted, "classes": self.classes,
            "smallest_class": self.smallest_class,
            "k_violations": {str(k): v for k, v in self.k_violations.items()},
            "l_diversity": [ld.__dict__ for ld in self.l_diversity],
            "individual_risk": {
                "max": float(r.max(initial=0.0)), "mean": float(r.mean()) if len(r) else 0.0,
                "records_above_0.05": int((r > 0.05).sum()),
                "records_above_0.1": int((r > 0.1).sum()),
                "records_above_0.2": int((r > 0.2).sum())},
            "expected_reidentifications": self.expected_reidentifications,
            "global_risk": self.global_risk,
            "riskiest": riskiest,
            "drivers": [{"qi": d.qi, "expected_reidentifications_without": d.expected_reidentifications_without,
                         "records_above_0.1_without": d.records_above_01_without} for d in self.drivers],
        }


def as_key_column(column: pa.ChunkedArray | pa.Array) -> pa.Array:
    """One comparable string per record; lists become their sorted values joined by '|'."""
    arr = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if pa.types.is_list(arr.type) or pa.types.is_large_list(arr.type):
        values = ["" if v is None else "|".join(sorted(str(x) for x in v)) for v in
                  arr.to_pylist()]
        return pa.array(values, type=pa.string())
    return pc.fill_null(pc.cast(arr, pa.string()), "")


def _codes(column: pa.ChunkedArray | pa.Array) -> tuple[npt.NDArray[np.int64], pa.Array]:
    enc = pc.dictionary_encode(as_key_column(column))
    return enc.indices.to_numpy(zero_copy_only=False).astype(np.int64), enc.dictionary


def equivalence_classes(table: pa.Table, qi: Sequence[str], groups: GroupEngine = EMBEDDED
                        ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], list[pa.Array],
                                   list[npt.NDArray[np.int64]]]:
    """Class id per record, first record of each class, and the per-column codes."""
    key = np.zeros(table.num_rows, dtype=np.int64)
    dicts, codes_all = [], []
    for name in qi:
        codes, dictionary = _codes(table.column(name))
        card = max(len(dictionary), 1)
        if int(key.max(initial=0)) >= (1 << 62) // card:
            key = np.unique(key, return_inverse=True)[1].astype(np.int64).reshape(-1)
        key = key * card + codes
        dicts.append(dictionary)
        codes_all.append(codes)
    g = groups.unique(key, first=True, inverse=True)
    inverse, first = cast(npt.NDArray[np.int64], g.inverse), cast(npt.NDArray[np.int64], g.first)
    return inverse, first, dicts, codes_all


def individual_risk(fk: FloatArray, Fk: FloatArray | None = None,
                    sdcmicro_offset: float = 0.0) -> FloatArray:
    """Per-record re-identification risk from sample (f_k) and population (F_k) frequencies."""
    fk = np.asarray(fk, dtype=float)
    if Fk is None:
        return 1.0 / fk
    p = np.asarray(fk / np.asarray(Fk, dtype=float)) - sdcmicro_offset
    risk = np.empty_like(fk)
    census = p >= 1.0  # weights sum to the sample size: no sampling, so 1/f_k
    with np.errstate(divide="ignore", invalid="ignore"):
        odds = p / (1.0 - p)
        log_inv = np.log(1.0 / p)
        r1 = odds * log_inv
        r2 = odds - odds**2 * log_inv
        r3 = p / (fk - (1.0 - p))
    risk = np.where(fk == 1, r1, np.where(fk == 2, r2, r3))
    return np.asarray(np.where(census, 1.0 / fk, risk), dtype=float)


def _l_diversity_codes(name: str, codes: npt.NDArray[np.int64], card: int,
                       cls: npt.NDArray[np.int64], n_classes: int,
                       sizes: npt.NDArray[np.int64], flag: str | None = None,
                       missing: int = -1, groups: GroupEngine = EMBEDDED) -> LDiversity:
    """l of one attribute over its recorded values: ``missing`` (not recorded) is no value, so a
    class of one recorded value and blanks is 1-diverse, one with nothing recorded 0-diverse."""
    g = groups.unique(cls * card + codes)
    pair, pair_counts = g.values, g.counts
    recorded = pair % card != missing
    pair, pair_counts = pair[recorded], pair_counts[recorded]
    pair_cls = pair // card
    distinct = np.bincount(pair_cls, minlength=n_classes)
    totals = np.bincount(pair_cls, weights=pair_counts, minlength=n_classes)
    p = pair_counts / totals[pair_cls]
    ent = np.exp(np.bincount(pair_cls, weights=-p * np.log(p), minlength=n_classes))
    ent[totals == 0] = 0.0
    return LDiversity(field=name, distinct_min=int(distinct.min()) if n_classes else 0,
                      entropy_min=float(ent.min()) if n_classes else 0.0,
                      records_below_2=int(sizes[distinct < 2].sum()), flag=flag)


def is_list(column: pa.ChunkedArray | pa.Array) -> bool:
    return bool(pa.types.is_list(column.type) or pa.types.is_large_list(column.type))


def flags(column: pa.ChunkedArray | pa.Array, sep: str = "|"
          ) -> list[tuple[str, npt.NDArray[np.int64]]]:
    """Per code of a list column (or of 'a|b' strings), its flag: 1, 0, or 2 (nothing recorded).

    Flags with fewer than two recorded values (1 / 0) over the whole table are left out.
    """
    arr = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if not is_list(arr):
        arr = pc.split_pattern(pc.fill_null(pc.cast(arr, pa.string()), ""), sep)
    values = pc.cast(pc.list_flatten(arr), pa.string())
    parents = pc.list_parent_indices(arr).to_numpy(zero_copy_only=False)
    present = pc.not_equal(values, "").to_numpy(zero_copy_only=False)
    values, parents = values.filter(pa.array(present)), parents[present]
    n = len(arr)
    empty = np.ones(n, dtype=bool)
    empty[parents] = False
    enc = pc.dictionary_encode(values)
    codes = enc.indices.to_numpy(zero_copy_only=False)
    out = []
    for i, code in enumerate(enc.dictionary.to_pylist()):
        flag = np.where(empty, 2, 0).astype(np.int64)
        flag[parents[codes == i]] = 1
        if len(np.unique(flag[flag != 2])) > 1:
            out.append((str(code), flag))
    return sorted(out)


def _l_diversity(name: str, column: pa.ChunkedArray, cls: npt.NDArray[np.int64],
                 n_classes: int, sizes: npt.NDArray[np.int64], multi: bool,
                 groups: GroupEngine = EMBEDDED) -> list[LDiversity]:
    if multi or is_list(column):
        # Named like the released flag columns, so a consumer keyed by field keeps them apart.
        return [_l_diversity_codes(f"{name}__{code}", flag, 3, cls, n_classes, sizes, code, 2,
                                   groups) for code, flag in flags(column)]
    codes, dictionary = _codes(column)
    blank = [i for i, v in enumerate(dictionary.to_pylist()) if v == ""]
    return [_l_diversity_codes(name, codes, max(len(dictionary), 1), cls, n_classes, sizes,
                               missing=blank[0] if blank else -1, groups=groups)]


def assess_risk(table: pa.Table, qi: Sequence[str], sensitive: Sequence[str] = (),
                weight: str | None = None, top: int = 10, sdcmicro_offset: float = 0.0,
                multi_valued: Sequence[str] = (), people: Sequence[str] | None = None,
                groups: GroupEngine = EMBEDDED, drivers: bool = False) -> RiskReport:
    """Measure the disclosure risk of a table for the given quasi-identifiers.

    Sensitive list columns, and string columns named in ``multi_valued`` ('a|b'), are assessed
    per flag. ``people`` (the person of each record, linked across partners): without weights,
    classes are counted in distinct people (a person seen by two partners is one person), the
    risk of a record is 1 / people in its class and the global risk is over people.
    ``drivers``: measure the risk again without each quasi-identifier in turn (one more pass each).
    """
    missing = [c for c in [*qi, *sensitive, *([weight] if weight else [])]
               if c not in table.column_names]
    if missing:
        # The columns present, not the standard's dictionary: a plain file (--data) has its own.
        present = ", ".join(table.column_names[:20]) + (", ..." if table.num_columns > 20 else "")
        raise RiskInputError(f"{len(missing)} field(s) not in the data: {', '.join(missing)}",
                             hint=f"columns present: {present}")
    if not qi:
        raise RiskInputError("no quasi-identifiers given", hint="Pass --qi FIELD,FIELD,...")
    n = table.num_rows
    if n == 0:
        raise RiskInputError("the table has no records",
                             hint="give a file with data rows under its header (--data), or add "
                                  "contributions to the hub first (accord hub add)")
    w: FloatArray | None = None
    if weight:
        w = pc.cast(table.column(weight), pa.float64()).to_numpy(zero_copy_only=False)
        if np.isnan(w).any() or (w <= 0).any():
            raise RiskInputError(f"weight column '{weight}' has missing or non-positive values",
                                 hint="Sampling weights must be positive numbers.")
    pid = None
    if people is not None and not weight:
        pid = pc.dictionary_encode(pa.array(list(people), pa.string())).indices.to_numpy(
            zero_copy_only=False).astype(np.int64)
    full = _classes(table, qi, w, pid, sdcmicro_offset, groups)
    cls, first, dicts, codes, sizes, psizes = (full.cls, full.first, full.dicts, full.codes, full.sizes,
                                               full.psizes)
    risk, n_classes, n_people, er = full.risk, len(first), full.people, full.expected
    violations = {k: int(sizes[psizes < k].sum()) for k in K_LEVELS}
    ldiv = tuple(ld for s in sensitive for ld in _l_diversity(
        s, table.column(s), cls, n_classes, sizes, s in multi_valued, groups))
    class_risk = np.zeros(n_classes)
    class_risk[cls] = risk
    order = np.lexsort((np.arange(n_classes), sizes, -class_risk))[:top]
    # records holding each value of each field: only for the classes listed (top=0 lists none)
    held = [np.bincount(codes[j], minlength=len(dicts[j])) for j in range(len(qi))] if len(order) else []

    def rarest(c: int) -> tuple[tuple[str, int], ...]:
        counts = [(q, int(held[j][codes[j][first[c]]])) for j, q in enumerate(qi)]
        return tuple(sorted(counts, key=lambda qn: qn[1]))  # stable: ties keep the --qi order

    riskiest = tuple(
        RiskyCombination(values={q: str(dicts[j][int(codes[j][first[c]])].as_py())
                                 for j, q in enumerate(qi)},
                         size=int(sizes[c]), risk=float(class_risk[c]), rarest=rarest(c))
        for c in order)
    qi_drivers = tuple(QIDriver(q, o.expected, int((o.risk > 0.1).sum())) for q, o in (
        (q, _classes(table, [x for x in qi if x != q], w, pid, sdcmicro_offset, groups))
        for q in (qi if drivers else ())))
    return RiskReport(records=n, qi=tuple(qi), weighted=weight is not None, classes=n_classes,
                      smallest_class=int(sizes.min()), k_violations=violations,
                      l_diversity=ldiv, individual_risk=risk, expected_reidentifications=er,
                      global_risk=er / n_people, riskiest=riskiest, people=n_people,
                      smallest_class_people=int(psizes.min()),
                      counted="people" if psizes is not sizes else "records", drivers=qi_drivers)


@dataclass(frozen=True)
class _Classes:
    cls: npt.NDArray[np.int64]
    first: npt.NDArray[np.int64]
    dicts: list[pa.Array]
    codes: list[npt.NDArray[np.int64]]
    sizes: npt.NDArray[np.int64]  # records per class
    psizes: npt.NDArray[np.int64]  # people per class (``sizes`` itself when people are not known)
    risk: FloatArray  # per record
    people: int
    expected: float  # expected re-identifications


def _classes(table: pa.Table, qi: Sequence[str], w: FloatArray | None, pid: npt.NDArray[np.int64] | None,
             sdcmicro_offset: float, groups: GroupEngine) -> _Classes:
    """Classes and risks for one set of quasi-identifiers (the report's, or it less one field)."""
    n = table.num_rows
    cls, first, dicts, codes = equivalence_classes(table, qi, groups)
    n_classes = len(first)
    # Records per class: counted by the engine (the same numbers as bincount of the classes).
    sizes = groups.bincount(cls, n_classes)
    fk = sizes[cls].astype(float)
    Fk: FloatArray | None = None
    if w is not None:
        Fk = np.asarray(np.bincount(cls, weights=w, minlength=n_classes)[cls], dtype=float)
    n_people, psizes = n, sizes
    if pid is not None:
        pairs = groups.unique(cls * (int(pid.max(initial=0)) + 1) + pid).values
        psizes = np.bincount(pairs // (int(pid.max(initial=0)) + 1),
                             minlength=n_classes).astype(np.int64)
        n_people = len(groups.unique(pid).values)
        fk = psizes[cls].astype(float)
    risk = individual_risk(fk, Fk, sdcmicro_offset)
    # Expected re-identifications are of people: each (class, person) once.
    er = float(risk.sum()) if psizes is sizes else float(n_classes)
    return _Classes(cls, first, dicts, codes, sizes, psizes, risk, n_people, er)
