"""Small-cell protection on real-shaped data: Accord's tables vs ACRO, side by side.

Data: the CTDC 2020 k-anonymised release (48,801 victims, ../shared/data/ctdc/), loaded into a
temporary hub as records (partner = CTDC data source; age set to the lower bound of the CTDC age
band, so the 0-4/5-11 age groups are approximate).

For each table both tools publish with threshold 10:
- Accord: primary + hypercube/line complements + LP audit + linked margins.
- ACRO (AI-SDC's output checker, `acro` on PyPI): its crosstab with margins and suppress=True.
Then the same attacker (an LP over the published table and its equations, hidden cells >= 1,
published one-way totals of the same data known) tries to pin each hidden cell. Printed: time,
hidden cells, and how many hidden small cells each release lets the attacker recover exactly.

Setup (ACRO pins pandas, so it lives in its own venv, never in the project's):
    python3 -m venv /work/venvs/report-peers
    /work/venvs/report-peers/bin/pip install acro==1.0.2 -e .
    /work/venvs/report-peers/bin/python benchmarks/suppression.py
Without ACRO installed, only Accord's side runs.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from accord.release.suppression import (
    SuppressionRules,
    feasible_intervals,
    table_equations,
    with_margins,
)
from accord.research.report import render_report
from accord.research.report.render import context_from
from accord.research.specs import DimKind, DimSpec, TableSpec
from accord.research.stats import _raw_table, compute_tables  # raw counts: benchmark only
from accord.standard import load_standard
from accord.standard.arrow import record_schema
from accord.store import Store, open_store

THRESHOLD = 10
TOP = 25
CTDC_SQL = """
SELECT
  'ctdc' AS batch_id,
  lower(replace(Datasource, ' ', '_')) AS partner,
  'r' || CAST(column00 AS VARCHAR) AS record_key,
  'p' || CAST(column00 AS VARCHAR) AS person_pseudonym,
  'trafficking_victim' AS case_type,
  make_date(CAST(yearOfRegistration AS INTEGER), 1, 1) AS registration_date,
  lower(gender) AS sex,
  CASE WHEN ageBroad IS NULL THEN NULL
       WHEN ageBroad = '48+' THEN 48
       ELSE CAST(split_part(ageBroad, '--', 1) AS INTEGER) END AS age,
  CASE WHEN citizenship IS NULL THEN NULL ELSE [citizenship] END AS citizenship,
  CASE ExploitType
    WHEN 'Sexual' THEN ['sexual_exploitation'] WHEN 'Labor' THEN ['forced_labour']
    WHEN 'Slavery/Similar' THEN ['servitude'] WHEN 'Forced Marriage' THEN ['forced_marriage']
    WHEN 'Other' THEN ['other'] WHEN 'Multiple' THEN ['forced_labour', 'sexual_exploitation']
    ELSE [] END AS type_of_exploitation,
  ageBroad AS age_band_ctdc,
  CAST(yearOfRegistration AS INTEGER) AS registration_year
FROM read_csv_auto(?, header = true)
WHERE column00 % ? = 0
"""


def ctdc_path() -> Path | None:
    here = Path(__file__).resolve().parents[1]
    for base in (os.environ.get("ACCORD_SHARED_DATA"), here.parent / "shared" / "data",
                 "/work/shared/data"):
        if base and (Path(base) / "ctdc" / "ctdc_2020_derived.csv").exists():
            return Path(base) / "ctdc" / "ctdc_2020_derived.csv"
    return None


def load_ctdc(store: Store, csv: Path, every: int) -> int:
    import duckdb
    import pyarrow as pa

    standard = load_standard()
    con = duckdb.connect()
    rows = con.sql(CTDC_SQL, params=[str(csv), every]).to_arrow_table().to_pylist()
    for r in rows:
        for name in ("age_group", "majority_status"):
            r[name] = standard.derived_field(name).band_of(r["age"])
    store.write_table("records", pa.Table.from_pylist(rows, schema=record_schema(standard)),
                      mode="replace")
    return len(rows)


def bench_specs() -> list[TableSpec]:
    """Finer tables than the defaults: CTDC's own release has no small cells in those."""
    sex = DimSpec("sex", DimKind.CODE, "Sex")
    band = DimSpec("age_band_ctdc", DimKind.BAND, "Age band")
    cit = DimSpec("citizenship", DimKind.PRIMARY_COUNTRY, "Citizenship")
    year = DimSpec("registration_year", DimKind.YEAR, "Year")
    expl = DimSpec("type_of_exploitation", DimKind.MULTI, "Exploitation")
    return [
        TableSpec("citizenship_by_sex", "Citizenship x sex", (cit, sex)),
        TableSpec("citizenship_by_age_band", "Citizenship x age band", (cit, band)),
        TableSpec("year_by_age_band", "Year x age band", (year, band)),
        TableSpec("exploitation_by_age_band_by_sex", "Exploitation x age band x sex",
                  (expl, band, sex)),
        TableSpec("citizenship_by_exploitation_by_sex", "Citizenship x exploitation x sex",
                  (cit, expl, sex)),
    ]


def recoverable(ext: np.ndarray, mask: np.ndarray, lower: float = 1.0) -> int:
    """Hidden small cells (1..9) an attacker pins to one value from what is published."""
    shape = tuple(n - 1 for n in ext.shape)
    iv = feasible_intervals(ext.ravel(), table_equations(shape), mask.ravel(), lower=lower)
    flat = ext.ravel()
    return sum(1 for c, (lo, hi) in iv.items() if hi - lo < 1 - 1e-6 and 1 <= flat[c] < THRESHOLD)


def acro_side(raw: np.ndarray) -> tuple[float, np.ndarray] | None:
    """ACRO's crosstab of the same 2-D counts: (seconds, attack mask over the extended table).

    ACRO removes the records of failing cells and recomputes the table, so its margins leave the
    hidden cells out. The attacker here knows the true one-way totals that are not small (a
    one-way ACRO table of the same data publishes them), so the hidden set is ACRO's hidden
    inner cells plus the small true margins. ACRO also hides zeros, so hidden cells are >= 0.
    """
    try:
        import logging
        import warnings

        import pandas as pd
        from acro import ACRO
    except ImportError:
        return None
    logging.disable(logging.WARNING)
    warnings.filterwarnings("ignore")  # pandas warnings raised inside ACRO
    rows = [(f"r{i}", f"c{j}") for (i, j), n in np.ndenumerate(raw) for _ in range(int(n))]
    df = pd.DataFrame(rows, columns=["r", "c"])
    acro = ACRO(suppress=True)
    start = time.perf_counter()
    out = acro.crosstab(df.r, df.c, margins=True)
    seconds = time.perf_counter() - start
    ext = with_margins(raw)
    mask = (ext >= 1) & (ext < THRESHOLD)
    mask[: raw.shape[0], : raw.shape[1]] = True  # inner cells: hidden unless ACRO shows them
    for i in range(raw.shape[0]):
        for j in range(raw.shape[1]):
            r, c = f"r{i}", f"c{j}"
            if r in out.index and c in out.columns and not np.isnan(out.loc[r, c]):
                mask[i, j] = False
    return seconds, mask


def run(csv: Path, every: int) -> None:
    rules = SuppressionRules(threshold=THRESHOLD)
    standard = load_standard()
    with tempfile.TemporaryDirectory() as tmp, open_store(Path(tmp) / "hub.duckdb") as store:
        n = load_ctdc(store, csv, every)
        start = time.perf_counter()
        result = compute_tables(store, rules, specs=bench_specs(), top_citizenships=TOP)
        t_tables = time.perf_counter() - start
        start = time.perf_counter()
        html = render_report(context_from(result, store))
        t_report = time.perf_counter() - start
        share = "all" if every == 1 else f"every {every}th record of"
        print(f"\nCTDC 2020, {share} the release: {n:,} records; cores: {os.cpu_count()} "
              "(timings under contention)")
        print(f"accord: all {len(result.tables)} tables counted + protected in {t_tables:.2f} s; "
              f"report rendered in {t_report:.2f} s ({len(html) / 1024:.0f} KiB)")
        print(f"{'table':34} {'cells':>5} {'small':>5} | {'accord hid':>10} {'recov':>5} | "
              f"{'acro hid':>8} {'recov':>5} {'acro s':>7}")
        print("(cells incl. margins; small = 1..9; hid = non-zero cells hidden; recov = small "
              "cells an LP attacker pins exactly)")
        allowed = set(standard.field_names) | {d.name for d in standard.derived}
        specs = {s.id: s for s in bench_specs()}
        for table in result.tables:
            raw = _raw_table(store, standard, specs[table.id], "records", allowed, TOP,
                             THRESHOLD).counts
            ext = with_margins(raw)
            mask = np.array(table.published, dtype=object) == None  # noqa: E711
            small = int(((ext >= 1) & (ext < THRESHOLD)).sum())
            line = (f"{table.id:34} {ext.size:5} {small:5} | {int(mask.sum()):10} "
                    f"{recoverable(ext, mask):5} |")
            peer: Any = acro_side(raw) if raw.ndim == 2 else None
            if peer is None:
                line += "      n/a"
            else:
                seconds, acro_mask = peer
                hid = int((acro_mask & (ext > 0)).sum())  # ACRO also hides zeros: not counted
                line += (f" {hid:8} {recoverable(ext, acro_mask, 0.0):5} "
                         f"{seconds:7.2f}")
            print(line)


def main() -> int:
    csv = ctdc_path()
    if csv is None:
        print("CTDC data not found (set ACCORD_SHARED_DATA); nothing to benchmark")
        return 0
    for every in (1, 20):
        run(csv, every)
    return 0


if __name__ == "__main__":
    sys.exit(main())
