"""Turn a table into categorical codes and back.

Every column is categorical: its levels are the distinct values found (an empty cell is a level
of its own), taken in sorted order. The set of levels is treated as public, as in MST and AIM; a
value that occurs once can therefore appear in the output. Numeric columns named in ``bins`` are
cut into fixed-width intervals between bounds the user gives (not the data's own minimum and
maximum, which would leak): a value below the lower bound goes into the first bin, above the upper
bound into the last, and the synthetic column holds the interval label such as ``[20, 30)``.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from accord.errors import InputFileError
from accord.ingest.raw import check_header
from accord.input_files import refuse_special_file
from accord.release.anonymise.inputs import count_columns
from accord.release.synthesize.model import Encoded, column_label
from accord.safe_csv import write_csv as safe_write_csv


@dataclass(frozen=True)
class Binning:
    low: float
    high: float
    width: float

    def labels(self) -> tuple[str, ...]:
        n = max(1, math.ceil((self.high - self.low) / self.width))
        edges = [self.low + i * self.width for i in range(n + 1)]
        return tuple(f"[{_fmt(a)}, {_fmt(b)})" for a, b in itertools.pairwise(edges))

    def codes(self, values: pa.ChunkedArray | pa.Array) -> np.ndarray:
        nums = pc.cast(values, pa.float64(), safe=False)
        x = np.asarray(nums.to_numpy(zero_copy_only=False), dtype=float)
        n = len(self.labels())
        idx = np.floor((np.nan_to_num(x, nan=self.low) - self.low) / self.width)
        return np.clip(idx, 0, n - 1).astype(np.int64)


def _fmt(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else f"{v:g}"


def parse_bins(specs: list[str]) -> dict[str, Binning]:
    """``COLUMN=LOW:HIGH:WIDTH`` strings to binnings."""
    out: dict[str, Binning] = {}
    for spec in specs:
        try:
            name, rng = spec.split("=", 1)
            low, high, width = (float(x) for x in rng.split(":"))
        except ValueError:
            raise InputFileError(f"cannot read the binning '{spec}'",
                                 hint="write it as COLUMN=LOW:HIGH:WIDTH, e.g. age=0:100:10") from None
        if width <= 0 or high <= low:
            raise InputFileError(f"binning '{spec}' needs LOW < HIGH and WIDTH > 0")
        out[name] = Binning(low, high, width)
    return out


def read_csv(path: Path, sep: str = ",") -> pa.Table:
    """Read every column as text (so codes like '01' keep their form)."""
    if not path.exists():
        raise InputFileError(f"no such file: {path}")
    refuse_special_file(path, "table")
    try:
        header = pacsv.read_csv(path, read_options=pacsv.ReadOptions(block_size=1 << 16),
                                parse_options=pacsv.ParseOptions(delimiter=sep)).schema.names
        # A repeated name: Arrow's "Field exists 2 times" was exit 70 (ingest's one check).
        check_header(header, str(path))
        return pacsv.read_csv(
            path, parse_options=pacsv.ParseOptions(delimiter=sep),
            convert_options=pacsv.ConvertOptions(column_types=dict.fromkeys(header, pa.string()),
                                                 strings_can_be_null=False))
    except pa.ArrowInvalid:
        raise InputFileError(f"{path} cannot be read as a '{sep}'-separated table",
                             hint="check --sep (e.g. --sep ';')") from None


def refuse_aggregate(table: pa.Table) -> None:
    """Refuse a table of counts (one row per cell, a column of counts): not one row per person.

    The synthesiser treats every row as a person, so a count column would be synthesised as a
    category and each cell counted once, whatever its count: meaningless output (issue 13). The
    detector is the one ``anonymise`` and ``risk`` use; a column of only 0 and 1 is a person's
    flag, not a count, and is let through.
    """
    for name in count_columns(table):
        values = {v.strip() for v in pc.cast(table.column(name), pa.string()).to_pylist()
                  if v is not None and v.strip()}
        if values <= {"0", "1"}:
            continue
        label = column_label(name, table.column_names.index(name))
        raise InputFileError(
            f"the table looks like a table of counts ({label} holds counts), not one row per person",
            hint="synthesize needs one row per person: expand each row to as many rows as its "
                 "count first; if the column is an attribute of each person, rename it")


def encode(table: pa.Table, bins: Mapping[str, Binning] | None = None,
           levels: Mapping[str, tuple[str, ...]] | None = None) -> Encoded:
    """Categorical codes for every column (``levels`` fixes a column's domain; else the data's)."""
    bins = dict(bins or {})
    unknown = sorted(set(bins) - set(table.column_names))
    if unknown:
        raise InputFileError(f"binned column(s) not in the table: {', '.join(unknown)}")
    cols, lvls, codes = [], [], []
    for index, name in enumerate(table.column_names):
        col = table.column(name)
        if name in bins:
            lv = bins[name].labels()
            try:
                code = bins[name].codes(col)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                raise InputFileError(f"{column_label(name, index)} cannot be binned: it holds "
                                     "values that are not numbers (not shown)",
                                     hint="bin only numeric columns; leave empty cells empty") from None
        else:
            text = pc.fill_null(pc.cast(col, pa.string()), "")
            lv = tuple(levels[name]) if levels and name in levels else tuple(sorted(pc.unique(text).to_pylist()))
            idx = pc.index_in(text, value_set=pa.array(lv, pa.string()))
            if idx.null_count:
                raise InputFileError(f"{column_label(name, index)} has values outside its declared "
                                     "levels")
            code = np.asarray(idx.to_numpy(zero_copy_only=False), dtype=np.int64)
        cols.append(name)
        lvls.append(lv)
        codes.append(code)
    matrix = np.stack(codes, axis=1) if codes else np.zeros((table.num_rows, 0), np.int64)
    return Encoded(tuple(cols), tuple(lvls), matrix)


def decode(columns: tuple[str, ...], levels: tuple[tuple[str, ...], ...],
           codes: np.ndarray) -> pa.Table:
    return pa.table({name: pa.array(np.asarray(levels[j], dtype=object)[codes[:, j]], pa.string())
                     for j, name in enumerate(columns)})


def write_csv(table: pa.Table, path: Path, sep: str = ",") -> None:
    """Plain CSV (quotes only where needed), formula cells neutralised as in every Accord CSV."""
    columns = [table.column(c).to_pylist() for c in table.column_names]
    safe_write_csv(path, table.column_names, zip(*columns, strict=True), delimiter=sep)
