"""One call for the whole synthesiser; used by ``accord synthesize`` and the pipeline release."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from accord.errors import ReleaseRefused
from accord.release.dp.mechanism import epsilon_from_rho, rho_from_epsilon_delta
from accord.release.synthesize import data as data_mod
from accord.release.synthesize import model as model_mod
from accord.release.synthesize import report
from accord.release.synthesize.mst import Encoded, Measured, measure

DEFAULT_DELTA = 1e-9


@dataclass(frozen=True)
class Synthesis:
    encoded_real: Encoded
    synthetic_codes: np.ndarray
    measured: Measured
    epsilon: float
    delta: float
    rho: float

    def table(self) -> pa.Table:
        return data_mod.decode(self.encoded_real.columns, self.encoded_real.levels,
                               self.synthetic_codes)

    def parameters(self) -> dict[str, Any]:
        m = self.measured
        return {
            "method": "mst-junction-tree",
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
               test_seed: int | None = None) -> Synthesis:
    """Measure with DP, fit, sample. Only ``measure`` sees ``encoded``'s records."""
    missing = sorted({c for clique in required for c in clique} - set(encoded.columns))
    if missing:
        raise ReleaseRefused(f"required marginal column(s) not in the data: {', '.join(missing)}")
    rho = rho_from_epsilon_delta(epsilon, delta)
    measured = measure(encoded, rho, required, test_seed=test_seed)
    fitted = model_mod.fit(measured)
    n = round(fitted.total) if rows is None else rows
    if n <= 0:
        raise ReleaseRefused("the number of rows to draw must be positive", hint="give --rows N")
    rng = np.random.default_rng(test_seed)  # sampling is post-processing; OS entropy unless a test
    codes = model_mod.sample(fitted, n, rng)
    return Synthesis(encoded, codes, measured, epsilon, delta, rho)


def build_reports(result: Synthesis) -> dict[str, Any]:
    real = result.encoded_real
    util = report.utility(real.codes, result.synthetic_codes, real.sizes, real.columns)
    return {
        "utility": util,
        "privacy": {**result.parameters(),
                    "distance_to_closest_record": report.distance_to_closest_record(
                        real.codes, result.synthetic_codes)},
    }


def write_outputs(result: Synthesis, out_csv: Path, reports: Mapping[str, Any],
                  sep: str = ",") -> dict[str, str]:
    """Write the synthetic CSV and, beside it, the reports (JSON, Markdown table, SVG chart)."""
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
