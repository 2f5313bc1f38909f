"""Anonymise a table: search, generalise, suppress outliers, measure, check independently."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from accord.errors import AccordError, ReleaseRefused
from accord.release.anonymise.check import CheckResult, check_release
from accord.release.anonymise.engine import (
    LKind,
    Metric,
    NodeResult,
    PrivacyModel,
    Problem,
    build_problem,
    class_of_tuples,
    evaluate,
)
from accord.release.anonymise.hierarchy import SUPPRESSED, Hierarchy
from accord.release.anonymise.search import ProgressFn, SearchStats, optimal_search


@dataclass(frozen=True)
class Utility:
    """Information-loss figures of a release (ARX's definitions; lower is better)."""

    non_uniform_entropy: float  # bits lost, suppressed cells counted as fully generalised
    non_uniform_entropy_normalised: float  # share of the loss of suppressing everything
    generalisation_intensity: float  # mean cell loss (leaves under a value - 1)/(domain - 1)
    discernibility: float  # sum of squared class sizes + suppressed rows * n
    average_class_size: float  # kept rows / classes
    average_class_size_normalised: float  # the same divided by k (1 is the ideal)

    def as_dict(self) -> dict[str, float]:
        return {k: float(v) for k, v in self.__dict__.items()}


@dataclass(frozen=True)
class AnonymisationResult:
    table: pa.Table
    levels: dict[str, int]
    level_labels: dict[str, int]  # levels per column (height), for the dictionary
    k: int
    l_distinct: int
    l_entropy: float
    suppressed_records: int
    suppressed_share: float
    sensitive_hidden_in_suppressed: bool
    utility: Utility
    check: CheckResult
    search: SearchStats = field(default_factory=SearchStats)

    def summary(self) -> dict[str, Any]:
        return {
            "records": self.table.num_rows,
            "k": self.k,
            "l_distinct": self.l_distinct,
            "l_entropy": round(self.l_entropy, 4),
            "levels": self.levels,
            "suppressed_records": self.suppressed_records,
            "suppressed_share": round(self.suppressed_share, 6),
            "sensitive_hidden_in_suppressed": self.sensitive_hidden_in_suppressed,
            "utility": self.utility.as_dict(),
            "independent_check": "passed",
            "search": {"lattice_nodes": self.search.nodes, "evaluated": self.search.evaluated,
                       "pruned_by_bound": self.search.pruned_by_bound},
        }


def _l_ceiling(table: pa.Table, sensitive: Sequence[str], kind: LKind) -> int:
    """The largest l the whole table could offer (one class holding every record)."""
    best = 10**9
    for s in sensitive:
        counts = np.asarray(pc.value_counts(pc.fill_null(pc.cast(table.column(s), pa.string()),
                                                         "")).field("counts"), dtype=float)
        if kind == "distinct":
            best = min(best, len(counts))
        else:
            p = counts / counts.sum()
            best = min(best, math.floor(math.exp(float(-(p * np.log(p)).sum())) + 1e-9))
    return best if sensitive else 1


def _refuse(table: pa.Table, sensitive: Sequence[str], model: PrivacyModel) -> ReleaseRefused:
    n = table.num_rows
    l_max = _l_ceiling(table, sensitive, model.l_kind)
    parts = []
    if model.k > n:
        parts.append(f"k <= {n} (there are only {n} records)")
    if model.l > l_max:
        parts.append(f"{model.l_kind} l <= {l_max} (the most the sensitive fields allow)")
    if not parts:
        parts.append("a larger --max-suppression or a lower k")
    return ReleaseRefused(
        f"k={model.k}, l={model.l} cannot be met within a suppression limit of "
        f"{model.max_suppression:.2%}",
        hint="Minimal feasible settings: " + "; ".join(parts) + ".")


def _release_table(table: pa.Table, problem: Problem, best: NodeResult, model: PrivacyModel
                   ) -> tuple[pa.Table, bool]:
    """Write generalised labels; suppressed records get ``*`` in every quasi-identifier."""
    row_supp = best.tuple_suppressed[problem.row_tuple]
    out = table
    for c, (name, enc) in enumerate(zip(problem.qi, problem.hierarchies, strict=True)):
        h = best.levels[c]
        labels = np.asarray(enc.names[h], dtype=object)
        codes = enc.maps[h][problem.base_columns[c][problem.row_tuple]]
        values = labels[codes]
        values[row_supp] = SUPPRESSED
        out = out.set_column(out.schema.get_field_index(name), name,
                             pa.array(values, type=pa.string()))
    n_supp = int(row_supp.sum())
    hide = False
    if n_supp and problem.sensitive:
        # The suppressed rows form a group of their own; if it is too small or not diverse,
        # its sensitive values would single people out, so they are suppressed too.
        sub = out.filter(pa.array(row_supp))
        too_small = n_supp < model.k
        not_diverse = model.l > 1 and _l_ceiling(sub, problem.sensitive, model.l_kind) < model.l
        hide = too_small or not_diverse
        if hide:
            for s in problem.sensitive:
                col = pc.cast(out.column(s), pa.string())
                new = pc.if_else(pa.array(row_supp), pa.scalar(SUPPRESSED), col)
                out = out.set_column(out.schema.get_field_index(s), s, new)
    return out, hide


def _utility(problem: Problem, best: NodeResult, model: PrivacyModel) -> Utility:
    totals_e = problem.level_totals("entropy")
    entropy = evaluate(problem, best.levels, model, "entropy", totals_e).loss
    max_entropy = float(sum(t[-1] for t in totals_e))
    intensity = evaluate(problem, best.levels, model, "loss",
                         problem.level_totals("loss")).loss
    cls, n_classes = class_of_tuples(problem, best.levels)
    keep = ~best.tuple_suppressed
    sizes = np.bincount(cls[keep], weights=problem.weight[keep], minlength=n_classes)
    sizes = sizes[sizes > 0]
    n = problem.n
    kept = n - best.suppressed
    cells = max(n * len(problem.qi), 1)
    avg = kept / len(sizes) if len(sizes) else 0.0
    return Utility(
        non_uniform_entropy=entropy,
        non_uniform_entropy_normalised=entropy / max_entropy if max_entropy else 0.0,
        generalisation_intensity=intensity / cells,
        discernibility=float((sizes**2).sum()) + float(best.suppressed) * n,
        average_class_size=avg,
        average_class_size_normalised=avg / model.k if model.k else avg)


def anonymise(table: pa.Table, qi: Sequence[str], hierarchies: Mapping[str, Hierarchy], *,
              k: int, sensitive: Sequence[str] = (), l: int = 1,  # noqa: E741
              l_kind: LKind = "distinct", max_suppression: float = 0.0,
              metric: Metric = "entropy", progress: ProgressFn | None = None
              ) -> AnonymisationResult:
    """Release ``table`` k-anonymous (and l-diverse) at the least information loss.

    Raises ReleaseRefused when no generalisation meets k/l within the suppression limit, with
    the minimal feasible settings in the hint.
    """
    if k < 1 or l < 1 or not 0.0 <= max_suppression <= 1.0:
        raise AccordError("k and l must be at least 1 and --max-suppression between 0 and 1",
                          hint="For example: --k 5 --l 2 --max-suppression 0.05")
    if l > 1 and not sensitive:
        raise AccordError("l-diversity needs at least one sensitive column",
                          hint="Pass --sensitive COL, or drop --l.")
    missing = [c for c in [*qi, *sensitive] if c not in table.column_names]
    if missing:
        raise AccordError(f"{len(missing)} column(s) not in the data: {', '.join(missing)}",
                          hint="Check the column names (they are case-sensitive).")
    if set(qi) & set(sensitive):
        raise AccordError("a column cannot be both quasi-identifier and sensitive",
                          hint="Name each column in only one of --qi and --sensitive.")
    model = PrivacyModel(k=k, l=l, l_kind=l_kind, max_suppression=max_suppression)
    if table.num_rows == 0:
        raise AccordError("the table has no records", hint="Check the input file.")
    problem = build_problem(table, qi, sensitive, dict(hierarchies))
    result = optimal_search(problem, model, metric, progress)
    if result.best is None:
        raise _refuse(table, sensitive, model)
    best = result.best
    released, hidden = _release_table(table, problem, best, model)
    check = check_release(released, qi, sensitive, k=k, l=l, l_kind=l_kind)
    if not check.satisfies(k, l, l_kind):
        # Never expected; if it happens the engine is wrong and nothing may be written.
        raise ReleaseRefused("the independent k/l check rejected the anonymised table",
                             hint="Report this as a bug; no file was written.")
    n = table.num_rows
    return AnonymisationResult(
        table=released, levels=dict(zip(qi, best.levels, strict=True)),
        level_labels={c: h.height for c, h in zip(qi, problem.hierarchies, strict=True)},
        k=check.k if check.classes else 0, l_distinct=check.l_distinct,
        l_entropy=check.l_entropy, suppressed_records=best.suppressed,
        suppressed_share=best.suppressed / n if n else 0.0,
        sensitive_hidden_in_suppressed=hidden, utility=_utility(problem, best, model),
        check=check, search=result.stats)
