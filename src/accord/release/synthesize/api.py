"""One call for the whole synthesiser; used by ``accord synthesize`` and the pipeline release."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from accord.errors import InputFileError, ReleaseRefused
from accord.release.dp.mechanism import epsilon_from_rho, rho_from_epsilon_delta
from accord.release.synthesize import data as data_mod
from accord.release.synthesize import joint, report
from accord.release.synthesize import model as model_mod
from accord.release.synthesize.aim import check_workload, measure_adaptive
from accord.release.synthesize.model import Encoded, Measured
from accord.release.synthesize.mst import measure

DEFAULT_DELTA = 1e-9
MODES = ("adaptive", "mst")


@dataclass(frozen=True)
class Synthesis:
    encoded_real: Encoded
    synthetic_codes: np.ndarray
    measured: Measured
    epsilon: float
    delta: float
    rho: float
    mode: str = "adaptive"

    def table(self) -> pa.Table:
        return data_mod.decode(self.encoded_real.columns, self.encoded_real.levels,
                               self.synthetic_codes)

    def parameters(self) -> dict[str, Any]:
        m = self.measured
        return {
            "method": ("aim-junction-tree" if self.mode == "adaptive" else "mst-junction-tree"),
            "mechanism": "discrete_gaussian (OpenDP), noisy max (OpenDP, Gumbel)",
            "composition": "zCDP; rho adds up; (epsilon, delta) via Bun & Steinke Prop. 1.3",
            "epsilon": self.epsilon, "delta": self.delta, "rho": self.rho,
            "rho_spent": m.rho,
            "epsilon_spent": epsilon_from_rho(m.rho, self.delta),
            "rows": int(self.synthetic_codes.shape[0]),
            "columns": list(m.columns),
            "measured_marginals": [[m.columns[a] for a in c.attrs] for c in m.cliques],
            "one_way_marginals": len(m.one_way),
            "selected_pairs": [list(p) for p in m.selected_pairs],
        }


def synthesize(encoded: Encoded, epsilon: float, delta: float = DEFAULT_DELTA,
               rows: int | None = None, required: Sequence[Sequence[str]] = (),
               test_seed: int | None = None, mode: str = "adaptive",
               workload: Sequence[Sequence[str]] | None = None) -> Synthesis:
    """Measure with DP, fit, sample. Only the measuring step sees ``encoded``'s records.

    ``mode`` "adaptive" (AIM-like, the default) selects marginals from ``workload`` (all 2- and
    3-way marginals when None) round by round; "mst" is the earlier spanning-tree selection.
    """
    missing = sorted({c for clique in required for c in clique} - set(encoded.columns))
    if missing:
        raise ReleaseRefused(f"required marginal column(s) not in the data: {', '.join(missing)}")
    if mode not in MODES:
        raise ReleaseRefused(f"unknown synthesis mode {mode!r}", hint="use adaptive or mst")
    if workload is not None:
        if mode != "adaptive":
            raise ReleaseRefused("a workload needs the adaptive mode", hint="drop --mode mst")
        check_workload(workload, encoded.columns)
    rho = rho_from_epsilon_delta(epsilon, delta)
    if mode == "adaptive":
        measured = measure_adaptive(encoded, rho, required, workload, test_seed=test_seed)
    else:
        measured = measure(encoded, rho, required, test_seed=test_seed)
    fitted = joint.estimate(measured)  # post-processing: reads the noisy measurements only
    n = round(fitted.total) if rows is None else rows
    if n <= 0:
        raise ReleaseRefused("the number of rows to draw must be positive", hint="give --rows N")
    rng = np.random.default_rng(test_seed)  # sampling is post-processing; OS entropy unless a test
    codes = model_mod.sample(fitted, n, rng)
    return Synthesis(encoded, codes, measured, epsilon, delta, rho, mode)


def build_reports(result: Synthesis) -> dict[str, Any]:
    """What may be published: computed from the synthetic data and the DP measurements only."""
    return {"utility": report.fidelity(result.measured, result.synthetic_codes),
            "privacy": result.parameters()}


STEWARD_NOTE = ("STEWARD ONLY - DO NOT PUBLISH. Statistics of the real data, computed without "
                "noise and not paid from any privacy budget: keep them with the steward, never in a "
                "release folder.")


def steward_report(result: Synthesis) -> dict[str, Any]:
    """Unprotected statistics of the real data, for the steward's own quality checks."""
    real = result.encoded_real
    return {
        "note": STEWARD_NOTE,
        "utility_vs_real_data": report.utility(real.codes, result.synthetic_codes, real.sizes,
                                               real.columns),
        "distance_to_closest_record": report.distance_to_closest_record(
            real.codes, result.synthetic_codes),
    }


def check_steward_path(path: Path, release_dir: Path) -> Path:
    """Refuse a steward-only report path inside the release folder (or any folder below it)."""
    target, folder = path.resolve(), release_dir.resolve()
    if folder == target.parent or folder in target.parents:
        raise InputFileError("the steward-only report may not be written into the release folder",
                             hint="give a --steward-report path outside the output folder")
    return target


def write_steward_report(result: Synthesis, path: Path, release_dir: Path) -> str:
    """Write the steward-only report to ``path``, which must lie outside ``release_dir``."""
    target = check_steward_path(path, release_dir)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(steward_report(result), indent=2) + "\n")
    return str(target)


def write_outputs(result: Synthesis, out_csv: Path, reports: Mapping[str, Any],
                  sep: str = ",") -> dict[str, str]:
    """Write the synthetic CSV and, beside it, the public reports (JSON, Markdown, SVG chart)."""
    out_csv.parent.mkdir(parents=True, exist_ok=True)
    data_mod.write_csv(result.table(), out_csv, sep)
    stem = out_csv.with_suffix("")
    paths = {
        "synthetic": str(out_csv),
        "utility_json": f"{stem}.utility.json",
        "utility_md": f"{stem}.utility.md",
        "utility_svg": f"{stem}.utility.svg",
        "privacy_json": f"{stem}.privacy.json",
    }
    Path(paths["utility_json"]).write_text(json.dumps(reports["utility"], indent=2) + "\n")
    Path(paths["utility_md"]).write_text(report.utility_markdown(reports["utility"]))
    Path(paths["utility_svg"]).write_text(report.utility_svg(reports["utility"]))
    Path(paths["privacy_json"]).write_text(json.dumps(reports["privacy"], indent=2) + "\n")
    return paths
