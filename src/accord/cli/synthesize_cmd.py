"""``accord synthesize``: differentially private synthetic data from any CSV table.

Every column is treated as categorical: its levels are the distinct values in the file (an empty
cell is a level too), and that set of levels is assumed public. Numeric columns with many values
should be binned with ``--bin COLUMN=LOW:HIGH:WIDTH`` (bounds chosen by you, not read from the
data); the synthetic column then holds interval labels like ``[20, 30)``. Without ``--bin`` a
numeric column is categorical over its distinct values (fine for ages, poor for incomes).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from accord.cli.common import (
    MAX_SYNTHETIC_ROWS,
    JsonOption,
    OverwriteOption,
    check_file_name,
    check_separator,
    console,
    print_json,
    refuse_existing,
    user_errors,
)
from accord.release.dp.params import check_delta, check_epsilon
from accord.release.synthesize import api, data

# The public reports `write_outputs` puts beside the CSV: replaced only with --overwrite as well.
REPORTS = ("utility.json", "utility.md", "utility.svg", "privacy.json")


def synthesize(
    path: Annotated[Path, typer.Argument(help="Input CSV table (one row per person).")],
    epsilon: Annotated[float, typer.Option("--epsilon", help="Privacy loss epsilon (> 0).")],
    out: Annotated[Path, typer.Option("--out", help="Synthetic CSV to write; reports go beside it.")],
    sep: Annotated[str, typer.Option("--sep", help="Field separator of the input and output.")] = ",",
    delta: Annotated[float, typer.Option("--delta", help="Privacy parameter delta.")] = api.DEFAULT_DELTA,
    rows: Annotated[int | None, typer.Option("--rows", min=1, max=MAX_SYNTHETIC_ROWS,
                                             help="Rows to draw (default: noisy count).")] = None,
    bins: Annotated[list[str] | None, typer.Option(
        "--bin", help="Bin a numeric column: COLUMN=LOW:HIGH:WIDTH (repeatable).")] = None,
    steward: Annotated[Path | None, typer.Option(
        "--steward-report", help="Also write unprotected real-data statistics (TVD to the real "
        "data, distance to closest record) here, for the steward only; refused inside the "
        "output folder.")] = None,
    mode: Annotated[str, typer.Option(
        "--mode", help="adaptive (AIM-like: rounds of workload-driven selection, the default) or "
        "mst (one spanning tree).")] = "adaptive",
    workload: Annotated[list[str] | None, typer.Option(
        "--workload", help="A marginal to target: COL1,COL2[,COL3] (repeatable; default: all 2- "
        "and 3-way marginals). Adaptive mode only.")] = None,
    as_json: JsonOption = False,
    overwrite: OverwriteOption = False,
) -> None:
    """Differentially private synthetic data (AIM-like: adaptive marginals, graphical model)."""
    with user_errors():
        check_file_name(out)
        refuse_existing(out, *(out.with_suffix(f".{r}") for r in REPORTS), overwrite=overwrite)
        refuse_existing(steward, overwrite=overwrite, option="--steward-report")
        check_epsilon(epsilon)  # before the file is read
        check_delta(delta)
        if steward is not None:  # refuse a steward path inside the release folder before any work
            api.check_steward_path(steward, out.parent)
        table = data.read_csv(path, check_separator(sep))
        data.refuse_aggregate(table)
        encoded = data.encode(table, data.parse_bins(bins or []))
        wl = [tuple(c.strip() for c in w.split(",")) for w in workload] if workload else None
        result = api.synthesize(encoded, epsilon, delta, rows, mode=mode, workload=wl)
        reports = api.build_reports(result)
        paths = api.write_outputs(result, out, reports, sep)
        if steward is not None:
            paths["steward_report"] = api.write_steward_report(result, steward, out.parent)
    if as_json:
        print_json({"files": paths, **reports})
        return
    params = result.parameters()
    console.print(f"wrote {paths['synthetic']} ({params['rows']} rows, epsilon {epsilon}, "
                  f"delta {delta:g}; zCDP rho {params['rho_spent']:.5f})")
    tab = Table(title="Utility: total-variation distance to the noisy measured marginals")
    for col in ("marginals", "count", "mean TVD", "worst TVD", "worst marginal"):
        tab.add_column(col)
    for o in reports["utility"]["orders"]:
        tab.add_row(f"{o['order']}-way", str(o["marginals"]), f"{o['mean_tvd']:.4f}",
                    f"{o['max_tvd']:.4f}", " x ".join(o["worst"]))
    console.print(tab)
    if steward is not None:
        console.print(f"steward-only real-data statistics (do not publish): "
                      f"{paths['steward_report']}")
