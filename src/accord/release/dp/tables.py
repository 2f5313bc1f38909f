"""Differentially private count tables: count, measure with OpenDP noise, post-process.

The three steps are separate on purpose. ``count_tables`` is the only step that reads records;
``measure`` turns exact counts into a :class:`NoisyRelease` that holds noisy numbers and noise
scales only; ``postprocess`` takes nothing but that object, so the published figures are a function
of the noisy measurements alone (post-processing keeps the guarantee, and a test checks that the
real data are never read again).

Each table is measured as a small hierarchy: its grand total, each one-way margin, and the full
cross-classification. The post-processing finds the non-negative cell values that best fit all of
them (weighted least squares, weights 1/variance), then rounds to integers keeping the rounded grand
total, and publishes every margin as the sum of the published cells, so sub-totals always add up.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from itertools import chain

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from accord.errors import ReleaseRefused
from accord.release.dp.mechanism import Mechanism, NoiseSpec, add_noise, calibrate
from accord.store.groups import EMBEDDED, GroupEngine

MISSING = "(missing)"
TOTAL = "Total"
DENSE_CELLS = 800
RAKE_ITERATIONS = 30


@dataclass(frozen=True)
class TableSpec:
    """A table to publish: its name and the columns it cross-classifies."""

    name: str
    dims: tuple[str, ...]

    def groups(self) -> tuple[tuple[int, ...], ...]:
        """Axes of each measured query group: grand total, one-way margins, full table."""
        k = len(self.dims)
        margins = tuple((i,) for i in range(k)) if k > 1 else ()
        return ((), *margins, tuple(range(k)))


@dataclass(frozen=True)
class ExactTable:
    """Exact counts. Never leaves this module except into :func:`measure`."""

    spec: TableSpec
    levels: tuple[tuple[str, ...], ...]
    counts: np.ndarray
    multi_dim: int | None
    max_values: int


@dataclass(frozen=True)
class NoisyGroup:
    axes: tuple[int, ...]
    noisy: np.ndarray
    noise: NoiseSpec


@dataclass(frozen=True)
class NoisyTable:
    spec: TableSpec
    levels: tuple[tuple[str, ...], ...]
    groups: tuple[NoisyGroup, ...]


@dataclass(frozen=True)
class NoisyRelease:
    """Everything post-processing may see: noisy numbers and the noise they carry."""

    mechanism: Mechanism
    tables: tuple[NoisyTable, ...]
    rho: float
    epsilon_pure: float | None


@dataclass(frozen=True)
class PublishedTable:
    spec: TableSpec
    columns: tuple[str, ...]
    rows: tuple[tuple[object, ...], ...] = field(repr=False)

    def to_arrow(self) -> pa.Table:
        cols = list(zip(*self.rows, strict=True)) if self.rows else [()] * len(self.columns)
        return pa.table({name: list(col) for name, col in zip(self.columns, cols, strict=True)})


def _encode(values: pa.ChunkedArray | pa.Array, levels: Sequence[str]) -> np.ndarray:
    """Level index of each value; nulls and values outside the domain become the missing level."""
    index = pc.index_in(pc.cast(values, pa.string()), value_set=pa.array(levels, pa.string()))
    missing = levels.index(MISSING) if MISSING in levels else -1
    if missing < 0 and index.null_count:
        raise ReleaseRefused("a value outside the table's declared levels has no missing level")
    return np.asarray(pc.fill_null(index, missing).to_numpy(zero_copy_only=False), dtype=np.int64)


Cache = dict[tuple[str, tuple[str, ...], int], tuple[np.ndarray, np.ndarray | None]]


def _column_codes(data: pa.Table, column: str, levels: tuple[str, ...], max_values: int,
                  cache: Cache) -> tuple[np.ndarray, np.ndarray | None]:
    """Level codes of a column; for a list column also the row each code belongs to."""
    key = (column, levels, max_values)
    if key in cache:
        return cache[key]
    ftype = data.schema.field(column).type
    if not (pa.types.is_list(ftype) or pa.types.is_large_list(ftype)):
        cache[key] = (_encode(data.column(column), levels), None)
        return cache[key]
    col = data.column(column).combine_chunks()
    parents = np.asarray(pc.list_parent_indices(col).to_numpy(), dtype=np.int64)
    enc = _encode(pc.list_flatten(col), levels)
    miss = levels.index(MISSING) if MISSING in levels else -1
    keep = enc != miss
    # A person x level presence matrix de-duplicates and orders by code-list position; keep
    # the first max_values levels of each person.
    present = np.zeros((data.num_rows, len(levels)), dtype=bool)
    present[parents[keep], enc[keep]] = True
    present &= np.cumsum(present, axis=1, dtype=np.int16) <= max_values
    rows, enc = np.nonzero(present)
    empty = np.flatnonzero(~present.any(axis=1))
    cache[key] = (np.concatenate([enc, np.full(len(empty), miss, dtype=np.int64)]),
                  np.concatenate([rows, empty]))
    return cache[key]


def count_table(data: pa.Table, spec: TableSpec, levels: Mapping[str, Sequence[str]],
                max_values: int = 2, cache: Cache | None = None,
                groups: GroupEngine = EMBEDDED) -> ExactTable:
    """Count one row per person (the caller bounds persons) into ``spec``'s cells.

    A list-valued column (several exploitation types) may appear in one dimension; each person
    then counts in at most ``max_values`` of its levels, first in code-list order, so one person
    moves at most ``max_values`` cells. An empty or missing list counts as the missing level.
    Pass the same ``cache`` when counting several tables of the same data.
    """
    cache = {} if cache is None else cache
    lv = tuple(tuple(levels[d]) for d in spec.dims)
    coded = [_column_codes(data, d, lv[i], max_values, cache) for i, d in enumerate(spec.dims)]
    multi = [i for i, (_, rows) in enumerate(coded) if rows is not None]
    if len(multi) > 1:
        raise ReleaseRefused(f"table {spec.name} crosses two multi-valued columns",
                             hint="keep at most one list-valued column per table")
    row_index = coded[multi[0]][1] if multi else None
    codes = [c if (rows is not None or row_index is None) else c[row_index]
             for c, rows in coded]
    shape = tuple(len(x) for x in lv)
    flat_index = np.ravel_multi_index(tuple(codes), shape) if codes else np.zeros(0, np.int64)
    counts = groups.bincount(flat_index, int(np.prod(shape))).reshape(shape)
    return ExactTable(spec, lv, counts.astype(np.int64), multi[0] if multi else None, max_values)


def _sensitivity(table: ExactTable, axes: tuple[int, ...]) -> tuple[int, int]:
    """(L1, squared L2) change of a group's counts when one person is added or removed."""
    if table.multi_dim is None:
        return 1, 1
    m = table.max_values
    # Over the multi-valued axis a person moves m different cells by 1; summed over it, one cell by m.
    return (m, m) if table.multi_dim in axes else (m, m * m)


def measure(tables: Sequence[ExactTable], mechanism: Mechanism, budget: float,
            test_seed: int | None = None) -> NoisyRelease:
    """Add OpenDP noise to every query group, splitting ``budget`` evenly between the groups.

    ``budget`` is zCDP rho (Gaussian) or pure epsilon (Laplace); costs compose by addition.
    """
    n_groups = sum(len(t.spec.groups()) for t in tables)
    if not n_groups:
        raise ReleaseRefused("no tables to release", hint="name at least one table")
    share = budget / n_groups
    out: list[NoisyTable] = []
    rho = 0.0
    eps = 0.0
    for t_i, table in enumerate(tables):
        groups: list[NoisyGroup] = []
        for g_i, axes in enumerate(table.spec.groups()):
            l1, l2_sq = _sensitivity(table, axes)
            spec = calibrate(mechanism, l1, l2_sq, share)
            others = tuple(a for a in range(table.counts.ndim) if a not in axes)
            exact = table.counts.sum(axis=others) if others else table.counts
            seed = None if test_seed is None else test_seed * 1_000_003 + t_i * 101 + g_i
            groups.append(NoisyGroup(axes, add_noise(np.atleast_1d(exact), spec, seed), spec))
            rho += spec.cost_rho()
            if mechanism == "laplace":
                eps += spec.cost_epsilon_pure()
        out.append(NoisyTable(table.spec, table.levels, tuple(groups)))
    return NoisyRelease(mechanism, tuple(out), rho, eps if mechanism == "laplace" else None)


def project_to_simplex(v: np.ndarray, total: float) -> np.ndarray:
    """Euclidean projection of ``v`` onto {x >= 0, sum(x) = total}.

    Hand-written (Held, Wolfe & Crowder 1974; Duchi et al. 2008): a sort and a cumulative sum;
    numpy and scipy have no routine for it.
    """
    flat = np.asarray(v, dtype=float).ravel()
    if total <= 0 or flat.size == 0:
        return np.zeros_like(flat).reshape(np.shape(v))
    u = np.sort(flat)[::-1]
    css = np.cumsum(u) - total
    ind = np.arange(1, flat.size + 1)
    k = int(np.nonzero(u - css / ind > 0)[0][-1]) + 1
    theta = css[k - 1] / k
    return np.clip(flat - theta, 0.0, None).reshape(np.shape(v))


def _group_matrix(shape: tuple[int, ...], axes: tuple[int, ...]) -> np.ndarray:
    """For each finest cell, the index of the group cell it adds into."""
    n = int(np.prod(shape))
    if not axes:
        return np.zeros(n, dtype=np.int64)
    idx = np.unravel_index(np.arange(n), shape)
    return np.ravel_multi_index(tuple(idx[a] for a in axes), tuple(shape[a] for a in axes))


def _fit(table: NoisyTable, covariance: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
    """Non-negative weighted least squares for the finest cells, and the unconstrained covariance."""
    from scipy import sparse
    from scipy.optimize import nnls
    from scipy.sparse.linalg import lsqr

    shape = tuple(len(x) for x in table.levels)
    n = int(np.prod(shape))
    blocks, targets = [], []
    for g in table.groups:
        member = _group_matrix(shape, g.axes)
        rows = int(member.max()) + 1 if n else 0
        a = sparse.csr_matrix((np.ones(n), (member, np.arange(n))), shape=(rows, n))
        w = 1.0 / np.sqrt(g.noise.variance())
        blocks.append(a * w)
        targets.append(g.noisy.ravel().astype(float) * w)
    a_all = sparse.vstack(blocks).tocsr()
    y = np.concatenate(targets)
    cov = None
    if n <= DENSE_CELLS:  # dense algebra is cheap for small tables: exact NNLS and covariance
        dense = a_all.toarray()
        x, _ = nnls(dense, y, maxiter=50 * n)
        cov = np.linalg.inv(dense.T @ dense) if covariance else None
    else:
        # Large tables (all countries x sex): unconstrained weighted least squares, then the
        # Euclidean projection onto the non-negative tables with the fitted total. Margins of
        # error then fall back to the raw noise (conservative for the least-squares estimate).
        x_ls = lsqr(a_all, y, atol=1e-10, btol=1e-10)[0]
        total = max(float(x_ls.sum()), 0.0)
        x = project_to_simplex(x_ls, total).reshape(shape)
        # One global projection leaves noise mass in sparse rows (a rare sex across 250
        # countries); raking to the least-squares one-way margins, themselves made non-negative,
        # puts each row back to its measured size.
        margins = {axis: project_to_simplex(
            x_ls.reshape(shape).sum(axis=tuple(a for a in range(len(shape)) if a != axis)), total)
            for axis in range(len(shape))}
        for _ in range(RAKE_ITERATIONS):
            for axis, target in margins.items():
                others = tuple(a for a in range(len(shape)) if a != axis)
                current = x.sum(axis=others, keepdims=True)
                ratio = np.divide(target.reshape(current.shape), current,
                                  out=np.zeros_like(current), where=current > 0)
                x = x * ratio
        x = x.ravel()
    x = np.clip(x, 0.0, None)
    return x.reshape(shape), cov


def round_preserving_total(x: np.ndarray) -> np.ndarray:
    """Integers >= 0 that sum to round(sum(x)), each within 1 of x (largest-remainder rounding)."""
    flat = np.clip(np.asarray(x, dtype=float).ravel(), 0.0, None)
    total = int(np.floor(flat.sum() + 0.5))
    base = np.floor(flat).astype(np.int64)
    short = total - int(base.sum())
    if short > 0:
        order = np.argsort(-(flat - base), kind="stable")
        base[order[:short]] += 1
    return base.reshape(np.shape(x))


def postprocess(release: NoisyRelease, covariance: bool = True) -> tuple[PublishedTable, ...]:
    """Publishable tables from the noisy measurements alone (no access to the records).

    ``covariance=False`` skips the least-squares covariance (margins of error then fall back to
    the raw noise scale): for callers that do not show margins of error.
    """
    return tuple(_publish(t, release.mechanism, covariance) for t in release.tables)


def _publish(table: NoisyTable, mechanism: Mechanism, covariance: bool = True) -> PublishedTable:
    shape = tuple(len(x) for x in table.levels)
    x, cov = _fit(table, covariance)
    cells = round_preserving_total(x)
    finest = table.groups[-1]
    raw_moe = finest.noise.moe95()
    direct = {g.axes: g.noise.moe95() for g in table.groups}
    rows: list[tuple[object, ...]] = []
    k = len(shape)
    # Publish every combination of "a level or Total" per dimension: all margins and sub-totals,
    # each the sum of the published cells so that they add up.
    for mask in range(2**k):
        keep = tuple(i for i in range(k) if mask >> i & 1)
        drop = tuple(i for i in range(k) if i not in keep)
        summed = cells.sum(axis=drop) if drop else cells
        member = _group_matrix(shape, keep)
        values = np.atleast_1d(summed).ravel()
        if cov is not None:
            indicator = np.zeros((len(values), member.size))
            indicator[member, np.arange(member.size)] = 1.0
            var = ((indicator @ cov) * indicator).sum(axis=1)
            moes = np.ceil(1.959963984540054 * np.sqrt(np.clip(var, 0.0, None)))
        elif keep in direct:  # measured directly: least squares does at least as well
            moes = np.full(len(values), np.ceil(direct[keep]))
        else:
            cells_in = np.prod([shape[i] for i in drop]) if drop else 1
            moes = np.full(len(values), np.ceil(raw_moe * float(np.sqrt(cells_in))))
        for flat_i, value in enumerate(values):
            sub = np.unravel_index(flat_i, tuple(shape[i] for i in keep)) if keep else ()
            labels = [TOTAL] * k
            for pos, axis in enumerate(keep):
                labels[axis] = table.levels[axis][int(sub[pos])]
            rows.append((*labels, int(value), int(moes[flat_i])))
    order = sorted(range(len(rows)), key=lambda i: tuple(str(v) == TOTAL for v in rows[i][:k]))
    columns = (*table.spec.dims, "count", "moe95")
    return PublishedTable(table.spec, columns, tuple(rows[i] for i in order))


def all_levels(*groups: Sequence[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(chain(*groups)))
