"""Simulated partner exports: a plausible population written as several partners would export it.

No real personal data, ever: names are invented combinations from ``names.yaml``, and every
distribution is ILLUSTRATIVE, NOT A STATISTIC (see ``population.py`` and ``marginals.yaml``).

``simulate(config)`` writes into ``config.out``:

- one raw export per partner (``partner_a.xlsx`` Kobo-style, ``partner_b.csv`` case management in
  Windows-1252 with ``;``, ``partner_c.json`` Kobo JSON, then the styles again);
- one mapping file per partner (``partner_a.mapping.yaml``...) in the format of docs/mapping.md;
- ``truth.csv``: which records are the same person, and which errors re-registration introduced.
  The truth is for evaluating linkage only. It never goes to the hub or into a contribution.
"""

from __future__ import annotations

import string
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import yaml

from accord.errors import AccordError
from accord.simulate.casemgmt import CaseStyle, case_columns, case_mapping
from accord.simulate.columns import RecordView
from accord.simulate.kobo import kobo_columns, kobo_mapping
from accord.simulate.population import make_population
from accord.simulate.records import DEFECTS, ERROR_KINDS, make_records
from accord.simulate.writers import write_csv, write_kobo_json, write_xlsx
from accord.standard import Standard, load_standard

Progress = Callable[[str, int, int], None]
"""progress(stage, done, total): called as work advances; the CLI draws it as a bar."""

XLSX_MAX_ROWS = 100_000
SHEET = "Protection intake v3"
STYLES = ("kobo", "case_b", "kobo_json", "case_d")
CASE_B = CaseStyle()
CASE_D = CaseStyle(delimiter=",", encoding="utf-8-sig", date_format="%m/%d/%Y", missing="N/A",
                   prefix="REF", system="referral database export (simulated, month-first dates)")


class SimulationError(AccordError):
    """The simulation was asked for something it cannot do."""


@dataclass(frozen=True)
class SimulationConfig:
    people: int
    partners: int = 2
    overlap: float = 0.15
    seed: int = 1
    out: Path = Path("accord-sim")
    format_a: str = "xlsx"
    bad_share: float = 0.005

    def check(self) -> None:
        if self.people < 1:
            raise SimulationError("--people must be at least 1", hint="e.g. --people 10000")
        if not 1 <= self.partners <= 26:
            raise SimulationError("--partners must be between 1 and 26")
        if not 0.0 <= self.overlap <= 1.0:
            raise SimulationError("--overlap is a share between 0 and 1", hint="e.g. 0.15")
        if self.overlap > 0 and self.partners < 2:
            raise SimulationError("an overlap needs at least two partners",
                                  hint="use --partners 2 or more, or --overlap 0")
        if self.format_a not in ("xlsx", "csv"):
            raise SimulationError("--format-a must be xlsx or csv")
        if not 0.0 <= self.bad_share < 0.5:
            raise SimulationError("the share of bad rows must be between 0 and 0.5")


@dataclass(frozen=True)
class PartnerFiles:
    partner: str
    style: str
    export: Path
    mapping: Path
    rows: int
    bad_rows: dict[str, int]


@dataclass(frozen=True)
class SimulationResult:
    out: Path
    people: int
    records: int
    overlap_people: int
    partners: tuple[PartnerFiles, ...]
    truth: Path
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def overlap_share(self) -> float:
        return self.overlap_people / self.people if self.people else 0.0

    @property
    def bad_rows(self) -> int:
        return sum(sum(p.bad_rows.values()) for p in self.partners)

    def as_dict(self) -> dict[str, Any]:
        return {
            "out": str(self.out), "people": self.people, "records": self.records,
            "overlap_people": self.overlap_people, "overlap_share": round(self.overlap_share, 4),
            "bad_rows": self.bad_rows, "truth": str(self.truth), "notes": list(self.notes),
            "partners": [{"partner": p.partner, "style": p.style, "export": str(p.export),
                          "mapping": str(p.mapping), "rows": p.rows, "bad_rows": p.bad_rows}
                         for p in self.partners],
        }


def partner_name(i: int) -> str:
    return f"partner_{string.ascii_lowercase[i]}"


def simulate(config: SimulationConfig, progress: Progress | None = None,
             standard: Standard | None = None) -> SimulationResult:
    config.check()
    std = standard or load_standard()
    tell = progress or (lambda stage, done, total: None)
    tell("people", 0, 3)
    pop = make_population(config.people, config.seed, std)
    tell("people", 1, 3)
    recs = make_records(pop, config.partners, config.overlap, config.seed, config.bad_share)
    tell("people", 3, 3)
    config.out.mkdir(parents=True, exist_ok=True)
    notes: list[str] = []
    written: list[PartnerFiles] = []
    case_ids: list[pa.Array] = []
    for p in range(config.partners):
        rows = np.flatnonzero(recs.partner == p)
        view = RecordView(std, pop, _subset(recs, rows))
        rng = np.random.default_rng([config.seed, 10 + p])
        files, ids, note = _write_partner(p, view, rng, config, tell)
        written.append(files)
        case_ids.append(ids)
        if note:
            notes.append(note)
    truth = config.out / "truth.csv"
    _write_truth(truth, recs, case_ids, config.partners)
    (config.out / "README.txt").write_text(_readme(written), encoding="utf-8")
    counts = np.bincount(recs.person, minlength=config.people)
    return SimulationResult(
        out=config.out, people=config.people, records=recs.size,
        overlap_people=int((counts > 1).sum()), partners=tuple(written), truth=truth,
        notes=tuple(notes))


def _subset(recs: Any, rows: np.ndarray) -> Any:
    idx = pa.array(rows)
    values = {k: (v.take(idx) if isinstance(v, pa.Array) else v[rows])
              for k, v in recs.__dict__.items()}
    return type(recs)(**values)


def _write_partner(p: int, view: RecordView, rng: np.random.Generator, config: SimulationConfig,
                   tell: Progress) -> tuple[PartnerFiles, pa.Array, str | None]:
    name = partner_name(p)
    style = STYLES[p % len(STYLES)]
    n = view.recs.size
    done = [0]

    def tick(k: int) -> None:
        done[0] += k
        tell(f"writing {name}", done[0], n)

    tell(f"writing {name}", 0, n)
    note = None
    mapping: dict[str, Any]
    if style in ("kobo", "kobo_json"):
        cols = kobo_columns(view, rng)
        ids = cols["_uuid"]
        fmt = "json" if style == "kobo_json" else config.format_a if p == 0 else "csv"
        if fmt == "xlsx" and n > XLSX_MAX_ROWS:
            fmt = "csv"
            note = (f"{name}: {n:,} rows is more than {XLSX_MAX_ROWS:,}; written as CSV "
                    "instead of XLSX (openpyxl would take minutes)")
        export = config.out / f"{name}.{fmt}"
        if fmt == "xlsx":
            write_xlsx(cols, export, SHEET,
                       date_columns=("grp_intake/registration_date", "grp_person/dob"),
                       int_columns=("grp_person/age", "_id", "_index"), tick=tick)
        elif fmt == "json":
            write_kobo_json(cols, export, tick=tick)
        else:
            write_csv(cols, export, tick=tick)
        mapping = kobo_mapping(view, "kobo_json" if fmt == "json" else fmt,
                               SHEET if fmt == "xlsx" else None)
    else:
        case_style = CASE_B if style == "case_b" else CASE_D
        cols = case_columns(view, rng, case_style)
        ids = cols["CaseNo"]
        export = config.out / f"{name}.csv"
        write_csv(cols, export, delimiter=case_style.delimiter, encoding=case_style.encoding,
                  tick=tick)
        mapping = case_mapping(view, case_style)
    missing_columns = _columns_in(mapping) - set(cols)
    if missing_columns:  # a programming error, not a user's: the mapping must fit the export
        raise AssertionError(f"mapping of {name} names absent columns {sorted(missing_columns)}")
    mapping_path = config.out / f"{name}.mapping.yaml"
    header = (f"# Mapping for {export.name} (simulated partner, style {style}).\n"
              "# Format: docs/mapping.md. Generated by `accord simulate`.\n")
    mapping_path.write_text(header + yaml.safe_dump(mapping, sort_keys=False, allow_unicode=True),
                            encoding="utf-8")
    defect = view.recs.defect
    bad = {k: int((defect == i).sum()) for i, k in enumerate(DEFECTS)}
    files = PartnerFiles(partner=name, style=style, export=export, mapping=mapping_path, rows=n,
                         bad_rows=bad)
    return files, ids, note


def _columns_in(mapping: dict[str, Any]) -> set[str]:
    out: set[str] = set()
    for spec in mapping["fields"].values():
        if "column" in spec:
            out.add(spec["column"])
        out.update(spec.get("flags", {}))
    return out


def _write_truth(path: Path, recs: Any, case_ids: list[pa.Array], partners: int) -> None:
    n_partners = np.bincount(recs.person)[recs.person]
    uniq, inverse = np.unique(recs.errors, return_inverse=True)
    labels = [";".join(k for i, k in enumerate(ERROR_KINDS) if int(u) >> i & 1) for u in uniq]
    errors = pa.array(labels, pa.string()).take(pa.array(inverse.ravel()))
    defects = pa.array([*DEFECTS, ""], pa.string()).take(
        pa.array(np.where(recs.defect < 0, len(DEFECTS), recs.defect)))
    partner_names = pa.array([partner_name(i) for i in range(partners)]).take(
        pa.array(recs.partner))
    # Records are grouped by partner in seq order; case ids come per partner in the same order.
    order = np.lexsort((recs.seq, recs.partner))
    all_ids = pa.concat_arrays(case_ids) if case_ids else pa.array([], pa.string())
    case_id = all_ids.take(pa.array(np.argsort(order, kind="stable")))
    person = pc.binary_join_element_wise(
        pa.scalar("P"), pc.utf8_lpad(pc.cast(pa.array(recs.person), pa.string()), 8, "0"), "")
    table = pa.table({"partner": partner_names, "case_id": case_id, "person_id": person,
                      "n_partners": pa.array(n_partners), "errors": errors,
                      "defect": defects})
    pacsv.write_csv(table, path, pacsv.WriteOptions(quoting_style="needed"))


def _readme(files: list[PartnerFiles]) -> str:
    lines = [
        "Simulated partner exports written by `accord simulate`. No real person is in them:",
        "names are invented, and every distribution is illustrative, not a statistic.",
        "",
    ]
    for f in files:
        lines.append(f"{f.export.name}: export of {f.partner} ({f.style}, {f.rows} rows); "
                     f"mapping: {f.mapping.name}")
    lines += [
        "",
        "truth.csv: the ground truth for linkage evaluation (partner, case_id, person_id,",
        "n_partners, errors introduced at re-registration, deliberately bad row kind).",
        "The truth NEVER goes to the hub or into a contribution: it exists only to measure",
        "linkage (accord link --evaluate truth.csv).",
    ]
    return "\n".join(lines) + "\n"


__all__ = ["PartnerFiles", "SimulationConfig", "SimulationError", "SimulationResult", "simulate"]
