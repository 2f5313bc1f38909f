"""Hypercubes of an N-D table with margins: complementary cells and a fast protection proof.

A box through a cell takes, on every axis, the cell's position and one other position (inner or
total). Moving all its corners together, up on "+" corners and down on "-" corners, changes no
published sum: on an axis where both positions are inner the two corners move in opposite
directions; where one of them is the total they move together. So:

* hiding the corners of a box protects the cell (tau-Argus's hypercube method), and the cheapest
  box of non-zero cells is a good first choice of complements;
* if every corner of a box is hidden, the cell can move down by the smallest (value - 1) of the
  "+" corners and up by the smallest (value - 1) of the "-" corners (hidden cells stay >= 1):
  a range the attacker cannot narrow, found without solving an LP. Only when no box proves the
  required width does the caller fall back to linear programming.

Vectorised over all boxes of a cell at once with numpy (a 26 x 6 x 2 table has 312 boxes per
cell, each with 8 corners).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence

import numpy as np


def _subsets(ndim: int) -> Iterator[tuple[int, ...]]:
    for k in range(1, ndim + 1):
        yield from itertools.combinations(range(ndim), k)


class Boxes:
    """Boxes of an extended table (shape = inner shape + 1 on every axis)."""

    def __init__(self, shape: Sequence[int]) -> None:
        self.shape = tuple(shape)
        self.ext = tuple(n + 1 for n in shape)
        self.ndim = len(self.ext)
        self.margin = np.zeros(self.ext, dtype=bool)
        idx = np.indices(self.ext)
        for axis, n in enumerate(self.shape):
            self.margin |= idx[axis] == n

    def _view(self, arr: np.ndarray, cell: tuple[int, ...], axes: tuple[int, ...]) -> np.ndarray:
        """``arr`` at the corners that take the alternative position on ``axes``, broadcast
        over the grid of alternatives."""
        index = tuple(slice(None) if k in axes else cell[k] for k in range(self.ndim))
        return arr[index].reshape([self.ext[k] if k in axes else 1 for k in range(self.ndim)])

    def _sign(self, cell: tuple[int, ...], axes: tuple[int, ...]) -> np.ndarray:
        sign = np.ones([self.ext[k] if k in axes else 1 for k in range(self.ndim)], dtype=np.int8)
        for k in axes:
            pos = np.arange(self.ext[k])
            # together (+1) when one of the two positions is the axis total, else opposite
            s = np.where((pos == self.shape[k]) | (cell[k] == self.shape[k]), 1, -1)
            sign = sign * s.reshape([self.ext[k] if j == k else 1 for j in range(self.ndim)])
        return sign

    def _valid(self, cell: tuple[int, ...]) -> np.ndarray:
        ok = np.ones(self.ext, dtype=bool)
        for k in range(self.ndim):
            index = tuple(cell[k] if j == k else slice(None) for j in range(self.ndim))
            ok[index] = False  # the alternative must differ from the cell on every axis
        return ok

    def corners(self, cell: tuple[int, ...], alt: tuple[int, ...]) -> list[tuple[int, ...]]:
        return [tuple(int(i) for i in c) for c in itertools.product(*zip(cell, alt, strict=True))]

    def cheapest(self, grid: np.ndarray, hidden: np.ndarray, eligible: np.ndarray,
                 cell: tuple[int, ...]) -> list[tuple[int, ...]] | None:
        """Corners to hide for the cheapest box through ``cell`` (totals cost extra), or None."""
        penalty = float(grid.max()) + 1.0
        cost = np.zeros(self.ext)
        usable = self._valid(cell)
        for axes in _subsets(self.ndim):
            h = self._view(hidden, cell, axes)
            e = self._view(eligible, cell, axes)
            v = self._view(grid, cell, axes).astype(float)
            m = self._view(self.margin, cell, axes)
            usable = usable & (h | e)
            cost = cost + np.where(h, 0.0, v + penalty * m)
        if not usable.any():
            return None
        cost[~usable] = np.inf
        alt = tuple(int(i) for i in np.unravel_index(int(np.argmin(cost)), self.ext))
        return [c for c in self.corners(cell, alt) if not hidden[c]]

    def proven_range(self, grid: np.ndarray, hidden: np.ndarray,
                     cell: tuple[int, ...]) -> tuple[float, float]:
        """(down, up): how far ``cell`` can move, proven by its best fully hidden box."""
        down = np.full(self.ext, float(grid[cell]) - 1.0)
        up = np.full(self.ext, np.inf)
        closed = self._valid(cell)
        for axes in _subsets(self.ndim):
            h = self._view(hidden, cell, axes)
            slack = self._view(grid, cell, axes).astype(float) - 1.0
            sign = self._sign(cell, axes)
            closed = closed & h
            down = np.minimum(down, np.where(sign > 0, slack, np.inf))
            up = np.minimum(up, np.where(sign < 0, slack, np.inf))
        if not closed.any():
            return (0.0, 0.0)
        width = np.where(closed, down + up, -np.inf)
        best = np.unravel_index(int(np.argmax(width)), self.ext)
        return (float(down[best]), float(up[best]))

