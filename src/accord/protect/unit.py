"""The linkage-unit layout: the name encodings go to a party apart from the hub.

A hub that holds name encodings *and* each record's citizenship and sex in clear can group
similar name filters within a citizenship and sex and label them by public name frequencies;
the attack harness measures that this grows with the records linked (5.3 % of full names at
345k records, benchmarks/results/harden.md). In this layout the partner writes its encodings to
a **unit file** that goes to a linkage unit (which never sees the contribution), and the
contribution that goes to the hub carries no encodings. The unit's encodings carry no
citizenship (default `unit_schema()`), so neither party holds name encodings next to citizenship
groups; the unit returns person ids only (`accord.link.unit`).

A unit file is Parquet: ``batch_id, partner, record_key, person_pseudonym`` (NULL where the birth
date is unknown: the pseudonym then says only "same name and sex", which the hub link does not
trust either), the ``bf_`` encoded columns, ``schema_fingerprint`` and ``check_value``. The record
key is the hub's key of the record (a keyed hash; the persons the unit returns are joined on it).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from accord.errors import AccordError

UNIT_LAYOUT = "linkage-unit"
UNIT_KEYS = ("batch_id", "partner", "record_key", "person_pseudonym")
# Birth year estimated from the age at registration: the hub layout compares it where the
# encoded birth date says nothing (accord.link.hub); the unit gets the estimate, rounded to a
# tenth of a year, instead of the age and registration date.
BIRTH_YEAR = "birth_year_estimate"


def birth_year_estimates(registration_date: pa.Array | pa.ChunkedArray,
                         age: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """Registration date in years, less the age, less half a year (NaN where either is null)."""
    reg = pc.cast(registration_date, pa.date32())
    years = (pc.year(reg).to_numpy(zero_copy_only=False).astype(np.float64)
             + (pc.day_of_year(reg).to_numpy(zero_copy_only=False).astype(np.float64) - 1)
             / 365.25)
    return np.asarray(years - pc.cast(age, pa.float64()).to_numpy(zero_copy_only=False) - 0.5,
                      dtype=np.float64)


class UnitFileError(AccordError):
    """A linkage-unit file cannot be written or read."""


def unit_rows(records: pa.Table, linkage: pa.Table) -> pa.Table:
    """The unit's rows of one protected chunk: keys, the trusted pseudonym and the encodings."""
    unknown = pc.fill_null(pc.equal(pc.fill_null(records["dob_quality"], "unknown"), "unknown"),
                           True)
    pseudonym = pc.if_else(unknown, pa.scalar(None, pa.string()), records["person_pseudonym"])
    if linkage.num_rows != records.num_rows or not pc.all(
            pc.equal(linkage["record_key"], records["record_key"])).as_py():
        raise UnitFileError("linkage encodings out of step with their records")
    est = np.round(birth_year_estimates(records["registration_date"], records["age"]), 1)
    cols: dict[str, pa.Array | pa.ChunkedArray] = {
        "batch_id": linkage["batch_id"], "partner": linkage["partner"],
        "record_key": linkage["record_key"], "person_pseudonym": pseudonym,
        BIRTH_YEAR: pa.array(est, pa.float64(), mask=np.isnan(est))}
    for c in linkage.column_names:
        if c not in cols:
            cols[c] = linkage[c]
    return pa.table(cols)


class UnitFileWriter:
    """Writes a unit file chunk by chunk; it appears, by rename, only when complete."""

    def __init__(self, out: Path) -> None:
        if out.exists():
            raise UnitFileError(f"{out} already exists",
                                hint="choose a new --linkage-unit-out file; it is never overwritten")
        out.parent.mkdir(parents=True, exist_ok=True)
        self.out = out
        fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", dir=out.parent)
        os.close(fd)
        self.tmp = Path(tmp)
        self._writer: pq.ParquetWriter | None = None
        self.rows = 0

    def write(self, rows: pa.Table) -> None:
        if self._writer is None:
            self._writer = pq.ParquetWriter(self.tmp, rows.schema, compression="zstd")
        self._writer.write_table(rows)
        self.rows += rows.num_rows

    def finish(self) -> None:
        if self._writer is None:  # no linkable row: an empty file says so
            pq.write_table(pa.table({k: pa.array([], pa.string()) for k in UNIT_KEYS}), self.tmp)
        else:
            self._writer.close()
        os.replace(self.tmp, self.out)

    def abort(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self.tmp.unlink(missing_ok=True)
