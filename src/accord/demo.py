"""The whole pipeline on generated data: what `accord demo` and `make demo` run.

It plays every role in turn: two (or more) partners simulate their exports, make their keys,
ingest and protect; the hub adds the contributions, computes protected statistics and writes the
report. Each partner's secrets and quarantine reports stay in that partner's own folder.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from accord.ingest import ingest_export
from accord.protect.keys import create_partner_key
from accord.release.suppression import SuppressionRules
from accord.research.report import render_report
from accord.research.report.render import context_from
from accord.research.stats import compute_tables
from accord.simulate import SimulationConfig, simulate
from accord.store import add_contribution, open_store

DemoProgress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class DemoConfig:
    out: Path = Path("accord-demo")
    people: int = 3000
    partners: int = 2
    overlap: float = 0.15
    seed: int = 2026
    threshold: int = 10


@dataclass
class DemoSummary:
    report: Path
    hub: Path
    lines: list[tuple[str, str]] = field(default_factory=list)


def run_demo(config: DemoConfig, progress: DemoProgress | None = None) -> DemoSummary:
    tell = progress or (lambda _msg, _done, _total: None)
    out = config.out
    steps = 3 + 2 * config.partners
    done = 0

    def step(msg: str) -> None:
        nonlocal done
        tell(msg, done, steps)
        done += 1

    step("simulating partner exports")
    sim = simulate(SimulationConfig(people=config.people, partners=config.partners, overlap=config.overlap,
                                    seed=config.seed, out=out / "exports"))
    summary = DemoSummary(report=out / "report.html", hub=out / "hub" / "accord-hub.duckdb")
    summary.lines.append(("simulated", f"{sim.people:,} people, {sim.records:,} records at {config.partners} "
                                       f"partners, {sim.overlap_people:,} seen by more than one"))
    contributions = []
    for files in sim.partners:
        step(f"{files.partner}: ingest and protect")
        home = out / "partners" / files.partner
        key = create_partner_key(home / "partner.key", force=True)
        result = ingest_export(files.export, files.mapping, files.partner.replace("_", "-"),
                               home / "contribution", key, quarantine=home / "quarantine.csv")
        m = result.manifest
        summary.lines.append((f"{files.partner} ingest", f"{m.rows_in:,} rows = {m.accepted:,} accepted + "
                                                         f"{m.quarantined:,} quarantined"))
        contributions.append(home / "contribution")

    summary.hub.parent.mkdir(parents=True, exist_ok=True)
    with open_store(summary.hub) as store:
        for c in contributions:
            step(f"hub: add {c.parent.name}")
            outcome = add_contribution(store, c, actor="demo")
            summary.lines.append((f"hub add {outcome.partner}", f"{outcome.added:,} records"))
        step("hub: protected statistics and report")
        rules = SuppressionRules(threshold=config.threshold)
        stats = compute_tables(store, rules)
        release_id = store.record_release("report", {"rules": rules.as_dict(), "unit": stats.unit,
                                                     "out": summary.report.name}, {"tables": len(stats.tables)},
                                          "demo")
        html = render_report(context_from(stats, store, release_id=release_id))
        summary.report.write_text(html, encoding="utf-8")
        summary.lines.append(("statistics", f"{len(stats.tables)} tables, cells below {config.threshold} "
                                            f"suppressed (data version {stats.data_version})"))
    step("done")
    summary.lines.append(("report", str(summary.report)))
    return summary
