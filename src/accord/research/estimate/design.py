"""Log-linear model design for capture histories, and checks that an estimate exists.

A model is the main effects of every list plus a set of two-list interactions ("pairs"). Its
log expected count for history h is ``b0 + sum_i b_i h_i + sum_{(i,j) in model} g_ij h_i h_j``;
the all-zero history has log mean ``b0``, so the dark figure is ``exp(b0)``.

Sparse data break this in two ways (Chan, Silverman & Vincent 2019, after Fienberg & Rinaldo
2012). A pair in the model whose lists share nobody has its interaction at minus infinity: the
histories holding both lists are then fitted as zero and dropped, which leaves the dark figure
estimable. Beyond that, the maximum likelihood estimate may not exist (the observed margins lie
on the boundary of what the model can produce: a linear programme detects it) or may not be
identifiable (the design restricted to the remaining histories loses rank). Both are reported,
never turned into a number.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from enum import StrEnum
from functools import cache

import numpy as np
import numpy.typing as npt
from scipy.optimize import linprog

from accord.research.estimate.table import CaptureTable, CaptureTableError, histories

Model = tuple[int, ...]  # sorted indices into pairs(t)


@cache
def pairs(n_lists: int) -> tuple[tuple[int, int], ...]:
    return tuple(itertools.combinations(range(n_lists), 2))


@cache
def _design(n_lists: int) -> npt.NDArray[np.float64]:
    h = histories(n_lists).astype(np.float64)
    inter = [h[:, i] * h[:, j] for i, j in pairs(n_lists)]
    cols = [np.ones(len(h)), *h.T, *inter]
    x = np.column_stack(cols)
    x.setflags(write=False)
    return x


def design(n_lists: int) -> npt.NDArray[np.float64]:
    """Full design (cells x [intercept, main effects, every pair]); read-only, cached."""
    return _design(n_lists)


def pair_column(n_lists: int, k: int) -> int:
    return 1 + n_lists + k


def model_name(lists: tuple[str, ...], model: Model) -> str:
    if not model:
        return "main effects"
    ps = pairs(len(lists))
    return "main effects + " + " + ".join(f"{lists[ps[k][0]]}:{lists[ps[k][1]]}" for k in model)


def parse_model(lists: tuple[str, ...], spec: str) -> Model:
    """Parse ``"LA:NG,PF:GO"`` into pair indices."""
    ps = pairs(len(lists))
    pos = {n: i for i, n in enumerate(lists)}
    out = []
    for term in (s.strip() for s in spec.split(",") if s.strip()):
        a, _, b = term.partition(":")
        if a not in pos or b not in pos or a == b:
            raise CaptureTableError(
                f"model term '{term}' does not name two different lists",
                hint="write interactions as LIST:LIST, comma-separated, using the column names",
            )
        i, j = sorted((pos[a], pos[b]))
        out.append(ps.index((i, j)))
    return tuple(sorted(set(out)))


class Status(StrEnum):
    OK = "ok"
    NOT_EXIST = "does not exist"
    NOT_IDENTIFIABLE = "not identifiable"
    NEITHER = "does not exist and not identifiable"


@dataclass(frozen=True)
class ModelLayout:
    """Which cells and parameters a model uses on a given table."""

    model: Model
    empty_pairs: Model  # pairs in the model whose lists share nobody (fitted at -inf)
    cell_mask: npt.NDArray[np.bool_]
    param_mask: npt.NDArray[np.bool_]

    @property
    def n_params(self) -> int:
        """Parameters counted for AIC/BIC: fitted ones plus the -inf ones (as SparseMSE)."""
        return int(self.param_mask.sum()) + len(self.empty_pairs)


def layout(table: CaptureTable, model: Model) -> ModelLayout:
    t = table.n_lists
    x = design(t)
    cells = np.ones(len(table.counts), dtype=bool)
    params = np.zeros(x.shape[1], dtype=bool)
    params[: 1 + t] = True
    empty = []
    for k in model:
        col = x[:, pair_column(t, k)]
        if table.counts @ col == 0:
            empty.append(k)
            cells &= col == 0
        else:
            params[pair_column(t, k)] = True
    return ModelLayout(tuple(model), tuple(empty), cells, params)


def rank_deficiency(lay: ModelLayout, n_lists: int) -> int:
    a = design(n_lists)[lay.cell_mask][:, lay.param_mask]
    return int(a.shape[1] - np.linalg.matrix_rank(a))


def mle_exists(
    design_rows: npt.NDArray[np.float64], counts: npt.NDArray[np.int64] | npt.NDArray[np.float64]
) -> bool:
    """Fienberg-Rinaldo linear programme: is there a strictly positive table with these margins?

    maximise s subject to A'x = A'y, x_c >= s, x >= 0. The MLE exists iff the optimum is > 0.
    """
    a = design_rows
    n_cells = a.shape[0]
    if n_cells == 0:
        return False
    c = np.zeros(n_cells + 1)
    c[-1] = -1.0
    a_eq = np.hstack([a.T, np.zeros((a.shape[1], 1))])
    b_eq = a.T @ np.asarray(counts, dtype=float)
    a_ub = np.hstack([-np.eye(n_cells), np.ones((n_cells, 1))])
    res = linprog(
        c, A_ub=a_ub, b_ub=np.zeros(n_cells), A_eq=a_eq, b_eq=b_eq,
        bounds=[(0, None)] * (n_cells + 1), method="highs",
    )
    if res.status != 0:
        return False
    scale = max(1.0, float(np.asarray(counts).sum()))
    return bool(-res.fun > 1e-9 * scale)


def check_model(table: CaptureTable, model: Model) -> tuple[Status, ModelLayout]:
    lay = layout(table, model)
    x = design(table.n_lists)
    rows = x[lay.cell_mask][:, lay.param_mask]
    exists = mle_exists(rows, table.counts[lay.cell_mask])
    ident = rank_deficiency(lay, table.n_lists) == 0
    if exists and ident:
        return Status.OK, lay
    if ident:
        return Status.NOT_EXIST, lay
    return (Status.NOT_IDENTIFIABLE if exists else Status.NEITHER), lay


def all_models(n_lists: int) -> list[Model]:
    k = len(pairs(n_lists))
    return [m for r in range(k + 1) for m in itertools.combinations(range(k), r)]


def check_all_models(table: CaptureTable) -> dict[Model, Status]:
    """Existence/identifiability of every two-way model (only sensible for few lists)."""
    return {m: check_model(table, m)[0] for m in all_models(table.n_lists)}
