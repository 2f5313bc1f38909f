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
from accord.simulate.capture import CaptureDesign, draw_captures
from accord.simulate.casemgmt import CaseStyle, case_columns, case_mapping
from accord.simulate.columns import RecordView
from accord.simulate.kobo import kobo_columns, kobo_mapping
from accord.simulate.population import CASE_TYPES, Population, make_population
from accord.simulate.records import DEFECTS, ERROR_KINDS, Records, make_records
from accord.simulate.writers import CsvSink, KoboJsonSink
from accord.simulate.xlsx import write_xlsx
from accord.standard import Standard, load_standard

Progress = Callable[[str, int, int], None]
"""progress(stage, done, total): called as work advances; the CLI draws it as a bar."""

XLSX_MAX_ROWS = 100_000
CHUNK = 100_000  # records per piece when writing an export (XLSX_MAX_ROWS fit in one)
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
    reopened: float = 0.0  # share of people with a second case at the same partner
    # Hidden population (capture.py): 0 = legacy mode (everyone is seen, ``overlap`` decides
    # who is seen twice); otherwise each partner catches each person with about this probability.
    capture: float = 0.0
    heterogeneity: float = 1.0
    dependence: float = 1.0

    @property
    def capture_design(self) -> CaptureDesign | None:
        if self.capture == 0.0:
            return None
        return CaptureDesign(self.capture, self.heterogeneity, self.dependence)

    def check(self) -> None:
        if self.people < 1:
            raise SimulationError("--people must be at least 1", hint="e.g. --people 10000")
        if not 0 <= self.seed < 2**63:  # numpy's generators take a non-negative seed
            raise SimulationError("--seed must be a whole number from 0 to 2^63-1", hint="e.g. --seed 7")
        if not 1 <= self.partners <= 26:
            raise SimulationError("--partners must be between 1 and 26",
                                  hint="e.g. --partners 2 (one export each, named partner_a to partner_z)")
        if not 0.0 <= self.overlap <= 1.0:
            raise SimulationError("--overlap is a share between 0 and 1", hint="e.g. 0.15")
        design = CaptureDesign(self.capture, self.heterogeneity, self.dependence)
        problem = design.check() if self.capture != 0.0 else None
        if problem:
            raise SimulationError(problem, hint="e.g. --capture 0.3 --dependence 2")
        if self.capture == 0.0 and self.overlap > 0 and self.partners < 2:
            raise SimulationError("an overlap needs at least two partners",
                                  hint="use --partners 2 or more, or --overlap 0")
        if self.format_a not in ("xlsx", "csv"):
            raise SimulationError("--format-a must be xlsx or csv",
                                  hint=f"use --format-a xlsx or --format-a csv (above {XLSX_MAX_ROWS:,} rows, "
                                  "xlsx is written as CSV)")
        if not 0.0 <= self.reopened <= 1.0:
            raise SimulationError("the share of reopened cases is between 0 and 1",
                                  hint="e.g. 0.01")
        if not 0.0 <= self.bad_share < 0.5:
            raise SimulationError("--bad-share is a share of rows from 0 to below 0.5",
                                  hint="e.g. --bad-share 0.005 (the default), or 0 for exports without bad rows")


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
    seen_people: int | None = None  # with a hidden population: people caught by some partner
    population: Path | None = None  # with a hidden population: the full population's truth

    @property
    def overlap_share(self) -> float:
        seen = self.people if self.seen_people is None else self.seen_people
        return self.overlap_people / seen if seen else 0.0

    @property
    def bad_rows(self) -> int:
        return sum(sum(p.bad_rows.values()) for p in self.partners)

    def as_dict(self) -> dict[str, Any]:
        return {
            "out": str(self.out), "people": self.people, "records": self.records,
            "overlap_people": self.overlap_people, "overlap_share": round(self.overlap_share, 4),
            "bad_rows": self.bad_rows, "truth": str(self.truth), "notes": list(self.notes),
            "seen_people": self.seen_people if self.seen_people is not None else self.people,
            "hidden_people": 0 if self.seen_people is None else self.people - self.seen_people,
            "population_truth": None if self.population is None else str(self.population),
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
    design = config.capture_design
    caught = None
    if design is not None:
        caught = _captures(design, pop, std, config)
    recs = make_records(pop, config.partners, config.overlap, config.seed, config.bad_share,
                        config.reopened, caught=caught)
    tell("people", 3, 3)
    config.out.mkdir(parents=True, exist_ok=True)
    notes: list[str] = []
    written: list[PartnerFiles] = []
    case_ids: list[pa.Array] = []
    for p in range(config.partners):
        rows = np.flatnonzero(recs.partner == p)
        files, ids, note = _write_partner(p, std, pop, recs, rows, config, tell)
        written.append(files)
        case_ids.append(ids)
        if note:
            notes.append(note)
    truth = config.out / "truth.csv"
    _write_truth(truth, recs, case_ids, config.partners)
    population = None
    if caught is not None:
        population = config.out / "population.csv"
        _write_population(population, pop, std, caught)
    (config.out / "README.txt").write_text(_readme(written, population), encoding="utf-8")
    partners_per_person = _partners_per_person(recs, config.people)
    return SimulationResult(
        out=config.out, people=config.people, records=recs.size,
        overlap_people=int((partners_per_person > 1).sum()), partners=tuple(written), truth=truth,
        notes=tuple(notes),
        seen_people=None if caught is None else int(caught.any(axis=1).sum()),
        population=population)


def _covariates(pop: Population, std: Standard) -> tuple[np.ndarray, np.ndarray]:
    """(minor, male) per person, at their first registration."""
    age_days = (pop.first_registration - pop.dob).astype("timedelta64[D]").astype(np.int64)
    minor = age_days < 18 * 365.25
    male = pop.sex == std.field("sex").code_values.index("male")
    return minor, male


def _captures(design: CaptureDesign, pop: Population, std: Standard,
              config: SimulationConfig) -> np.ndarray:
    minor, male = _covariates(pop, std)
    return draw_captures(np.random.default_rng([config.seed, 4]), design, config.partners,
                         pop.case_type, minor, male)


def _write_population(path: Path, pop: Population, std: Standard, caught: np.ndarray) -> None:
    """The full population, seen or not: who was caught by whom (for evaluating estimates)."""
    minor, _ = _covariates(pop, std)
    partners = caught.shape[1]
    code = caught.astype(np.int64) @ (1 << np.arange(partners, dtype=np.int64))
    uniq, inverse = np.unique(code, return_inverse=True)
    labels = [";".join(partner_name(j) for j in range(partners) if int(u) >> j & 1)
              for u in uniq]
    caught_by = pa.array(labels, pa.string()).take(pa.array(inverse.ravel()))
    person = pc.binary_join_element_wise(
        pa.scalar("P"), pc.utf8_lpad(pc.cast(pa.array(pop.person_id), pa.string()), 8, "0"), "")
    table = pa.table({
        "person_id": person,
        "case_type": pa.array(CASE_TYPES).take(pa.array(pop.case_type)),
        "sex": pa.array(std.field("sex").code_values).take(pa.array(pop.sex)),
        "minor": pa.array(minor),
        "caught_by": caught_by,
        "n_partners": pa.array(caught.sum(axis=1).astype(np.int64)),
    })
    pacsv.write_csv(table, path, pacsv.WriteOptions(quoting_style="needed"))


def _subset(recs: Records, rows: np.ndarray) -> Records:
    idx = pa.array(rows, type=pa.int64())
    values = {k: (v.take(idx) if isinstance(v, pa.Array) else v[rows])
              for k, v in recs.__dict__.items()}
    return Records(**values)


def _write_partner(p: int, std: Standard, pop: Population, recs: Records, rows: np.ndarray,
                   config: SimulationConfig, tell: Progress
                   ) -> tuple[PartnerFiles, pa.Array, str | None]:
    """Write one partner's export piece by piece (CHUNK records at a time, to bound memory)
    and its mapping; return the files, the case ids in export order and a note, if any."""
    name = partner_name(p)
    style = STYLES[p % len(STYLES)]
    rng = np.random.default_rng([config.seed, 10 + p])
    n = len(rows)
    done = [0]

    def tick(k: int) -> None:
        done[0] += k
        tell(f"writing {name}", done[0], n)

    tell(f"writing {name}", 0, n)
    note = None
    kobo = style in ("kobo", "kobo_json")
    case_style = CASE_B if style == "case_b" else CASE_D
    fmt = ("json" if style == "kobo_json" else config.format_a if p == 0 else "csv") if kobo \
        else "csv"
    if fmt == "xlsx" and n > XLSX_MAX_ROWS:
        fmt = "csv"
        note = (f"{name}: {n:,} rows is more than {XLSX_MAX_ROWS:,}; written as CSV "
                "instead of XLSX")
    export = config.out / f"{name}.{fmt}"
    sink: CsvSink | KoboJsonSink | None = None
    if fmt == "json":
        sink = KoboJsonSink(export)
    elif fmt == "csv":
        sink = CsvSink(export, case_style.delimiter, case_style.encoding) if not kobo \
            else CsvSink(export)
    ids: list[pa.Array] = []
    answered: set[str] = set()
    header: list[str] = []
    # XLSX is at most XLSX_MAX_ROWS < CHUNK rows, so it is always written in one piece.
    for start in range(0, max(n, 1), CHUNK):
        view = RecordView(std, pop, _subset(recs, rows[start:start + CHUNK]))
        cols = kobo_columns(view, rng) if kobo else case_columns(view, rng, case_style)
        ids.append(cols["_uuid" if kobo else "CaseNo"])
        answered |= {k for k, v in cols.items() if v.null_count < len(v)}
        header = list(cols)
        if sink is not None:
            sink.write(cols, tick=tick)
        else:
            write_xlsx(cols, export, SHEET,
                       date_columns=("grp_intake/registration_date", "grp_person/dob"),
                       int_columns=("grp_person/age", "_id", "_index"), tick=tick)
        del cols, view
    if sink is not None:
        sink.close()
    mapping = (kobo_mapping(std, "kobo_json" if fmt == "json" else fmt,
                            SHEET if fmt == "xlsx" else None) if kobo
               else case_mapping(std, case_style))
    if fmt == "json":
        # Kobo leaves unanswered questions out of the JSON; a question nobody answered in a
        # small export has no key at all, and a mapping may only name columns that exist.
        mapping["fields"] = {f: spec for f, spec in mapping["fields"].items()
                             if spec.get("column", "_uuid") in answered}
    missing_columns = _columns_in(mapping) - set(header)
    if missing_columns:  # a programming error, not a user's: the mapping must fit the export
        raise AssertionError(f"mapping of {name} names absent columns {sorted(missing_columns)}")
    mapping_path = config.out / f"{name}.mapping.yaml"
    comment = (f"# Mapping for {export.name} (simulated partner, style {style}).\n"
               "# Format: docs/mapping.md. Generated by `accord simulate`.\n")
    mapping_path.write_text(comment + yaml.safe_dump(mapping, sort_keys=False, allow_unicode=True),
                            encoding="utf-8")
    defect = recs.defect[rows]
    bad = {k: int((defect == i).sum()) for i, k in enumerate(DEFECTS)}
    files = PartnerFiles(partner=name, style=style, export=export, mapping=mapping_path, rows=n,
                         bad_rows=bad)
    return files, pa.concat_arrays(ids) if ids else pa.array([], pa.string()), note


def _columns_in(mapping: dict[str, Any]) -> set[str]:
    out: set[str] = set()
    for spec in mapping["fields"].values():
        if "column" in spec:
            out.add(spec["column"])
        out.update(spec.get("flags", {}))
    return out


def _partners_per_person(recs: Records, people: int) -> np.ndarray:
    first = ~recs.reopened  # a reopened case adds a record, not a partner
    return np.bincount(recs.person[first], minlength=people)


def _write_truth(path: Path, recs: Records, case_ids: list[pa.Array], partners: int) -> None:
    n_partners = _partners_per_person(recs, int(recs.person.max()) + 1 if recs.size else 0)[
        recs.person]
    n_records = np.bincount(recs.person)[recs.person]
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
                      "n_partners": pa.array(n_partners), "n_records": pa.array(n_records),
                      "errors": errors,
                      "defect": defects})
    pacsv.write_csv(table, path, pacsv.WriteOptions(quoting_style="needed"))


def _readme(files: list[PartnerFiles], population: Path | None = None) -> str:
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
        "n_partners, n_records, errors introduced at re-registration, deliberately bad row",
        "kind).",
        "The truth NEVER goes to the hub or into a contribution: it exists only to measure",
        "linkage (accord link --evaluate truth.csv).",
    ]
    if population is not None:
        lines += [
            "",
            f"{population.name}: the whole simulated population, including the people no",
            "partner caught (caught_by empty): the true total for checking estimates. Like",
            "truth.csv, it never goes to the hub.",
        ]
    return "\n".join(lines) + "\n"


__all__ = ["DEFECTS", "ERROR_KINDS", "PartnerFiles", "SimulationConfig", "SimulationError",
           "SimulationResult", "simulate"]
