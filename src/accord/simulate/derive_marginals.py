"""Dev-time helper: derive the illustrative ``marginals.yaml`` from the CTDC 2020 release.

Run once by a developer (never at run time; the simulator reads only the packaged YAML)::

    python -m accord.simulate.derive_marginals /work/shared/data/ctdc/ctdc_2020_derived.csv \
        src/accord/simulate/marginals.yaml

The CTDC release is k-anonymised and heavily skewed by which organisations contributed to it, so
these shares are *illustrative*: they give the simulated population a plausible shape, they are not
statistics about trafficking.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import yaml

AGE_BANDS = ["0--8", "9--17", "18--20", "21--23", "24--26", "27--29", "30--38", "39--47", "48+"]
SEXES = ["Female", "Male"]
EXPLOIT = ["Sexual", "Labor", "Other", "Slavery/Similar", "Forced Marriage", "Multiple"]


def _shares(values: list[Any], keys: list[str]) -> dict[str, float]:
    counts = {k: 0 for k in keys}
    for v in values:
        if v in counts:
            counts[v] += 1
    total = sum(counts.values())
    # Every key keeps a small floor so that no combination is impossible in the simulation.
    return {k: round(max(c / total if total else 0.0, 0.002), 4) for k, c in counts.items()}


def _column(table: pa.Table, name: str) -> list[Any]:
    return table.column(name).to_pylist()


def derive(csv_path: Path) -> dict[str, Any]:
    t = pacsv.read_csv(csv_path)
    sex, age = _column(t, "gender"), _column(t, "ageBroad")
    exp, ctrl = _column(t, "ExploitType"), _column(t, "control_category")
    rec, lab = _column(t, "RecruiterCategory"), _column(t, "Labor_Type")
    cit = _column(t, "citizenship")
    rows = list(zip(sex, age, exp, ctrl, rec, lab, strict=True))
    out: dict[str, Any] = {
        "sex": _shares(sex, SEXES),
        "exploit_given_sex": {
            s: _shares([r[2] for r in rows if r[0] == s], EXPLOIT) for s in SEXES
        },
        "age_band_given_sex_exploit": {
            s: {e: _shares([r[1] for r in rows if r[0] == s and r[2] == e], AGE_BANDS)
                for e in EXPLOIT}
            for s in SEXES
        },
        "control_given_exploit": {
            e: _shares([r[3] for r in rows if r[2] == e],
                       ["Threats", "Financial", "Physical", "Survival", "Other"])
            for e in EXPLOIT
        },
        "recruiter_given_exploit": {
            e: _shares([r[4] for r in rows if r[2] == e],
                       ["Intimate Partner", "Family/Relative", "Friend/Acquaintance", "Other"])
            for e in EXPLOIT
        },
        "labour_type_given_sex": {
            s: _shares([r[5] for r in rows if r[0] == s and r[2] == "Labor"],
                       ["Domestic Work", "Construction", "Manufacturing", "Agriculture", "Begging",
                        "Aquafarming", "Hospitality", "Peddling", "Other"])
            for s in SEXES
        },
    }
    counts: dict[str, int] = {}
    for c in cit:
        if isinstance(c, str) and len(c) == 2:
            counts[c] = counts.get(c, 0) + 1
    out["citizenship_top"] = dict(sorted(counts.items(), key=lambda kv: -kv[1])[:30])
    return out


def main(argv: list[str]) -> None:
    src, dst = Path(argv[0]), Path(argv[1])
    header = (
        "# ILLUSTRATIVE marginals for the Accord simulator - NOT statistics.\n"
        "# Derived at development time by accord.simulate.derive_marginals from the CTDC\n"
        '# "Global Dataset 14 Apr 2020" (k-anonymised, 48,801 rows; consolidated columns from\n'
        "# github.com/gh-mrmoore/Human-Trafficking-Analysis Exports/final.csv,\n"
        "# CTDC Terms of Use).\n"
        "# Shares are computed over non-missing values, with a 0.002 floor; the simulator\n"
        "# renormalises. Never read the CTDC file at run time.\n"
    )
    dst.write_text(header + yaml.safe_dump(derive(src), sort_keys=False), encoding="utf-8")


if __name__ == "__main__":
    main(sys.argv[1:])
