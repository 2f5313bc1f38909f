"""The whole pipeline on generated data: what `accord demo` and `make demo` run.

It plays every role in turn: two (or more) partners simulate their exports, make their keys,
ingest and protect; the hub adds the contributions, computes protected statistics and writes the
report. Each partner's secrets and quarantine reports stay in that partner's own folder.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from accord.link.hub import link_hub
from accord.protect.encoding.pipeline import pipeline_encoder
from accord.protect.encoding.secrets import new_linkage_secret
from accord.protect.job import build_contribution
from accord.protect.keys import create_partner_key
from accord.release.dp.release import DEFAULT_DELTA, release_tables, write_tables
from accord.release.suppression import SuppressionRules
from accord.research.report.stages import publish_report
from accord.simulate import SimulationConfig, simulate
from accord.store import add_contribution, open_store

DemoProgress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class DemoConfig:
    out: Path = Path("accord-demo")
    people: int = 3000  # the simulated population; with capture > 0 only part of it is seen
    partners: int = 3
    overlap: float = 0.15  # used only when capture == 0 (everyone seen)
    capture: float = 0.4  # each partner catches each person with about this probability
    heterogeneity: float = 0.5
    dependence: float = 2.0  # partner b sees people partner a referred more often
    seed: int = 2026
    threshold: int = 10
    epsilon: float = 1.0


@dataclass
class DemoSummary:
    report: Path
    hub: Path
    lines: list[tuple[str, str]] = field(default_factory=list)


def run_demo(config: DemoConfig, progress: DemoProgress | None = None) -> DemoSummary:
    tell = progress or (lambda _msg, _done, _total: None)
    out = config.out
    steps = 6 + 2 * config.partners
    done = 0

    def step(msg: str) -> None:
        nonlocal done
        tell(msg, done, steps)
        done += 1

    step("simulating partner exports")
    sim = simulate(SimulationConfig(people=config.people, partners=config.partners, overlap=config.overlap,
                                    seed=config.seed, out=out / "exports", capture=config.capture,
                                    heterogeneity=config.heterogeneity, dependence=config.dependence))
    summary = DemoSummary(report=out / "report.html", hub=out / "hub" / "accord-hub.duckdb")
    if sim.seen_people is not None:
        summary.lines.append(("simulated", f"a population of {sim.people:,}, of whom {sim.seen_people:,} were "
                                           f"caught by at least one of {config.partners} partners "
                                           f"({sim.people - sim.seen_people:,} in no export; the report's "
                                           f"estimated total should be near {sim.people:,})"))
    summary.lines.append(("exports", f"{sim.records:,} records, {sim.overlap_people:,} people seen by more "
                                     "than one partner"))
    # One partner makes the shared linkage secret and hands it to the others out of band.
    linkage = pipeline_encoder(new_linkage_secret(out / "partners" / "shared" / "linkage.secret", force=True))
    contributions = []
    for files in sim.partners:
        step(f"{files.partner}: ingest and protect")
        home = out / "partners" / files.partner
        key = create_partner_key(home / "partner.key", force=True)
        result = build_contribution(files.export, files.mapping, files.partner.replace("_", "-"),
                               home / "contribution", key, quarantine=home / "quarantine.csv",
                               linkage_encoder=linkage.encode, linkage_meta=linkage.manifest)
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
        step("hub: privacy-preserving linkage")
        linked = link_hub(store, actor="demo")
        summary.lines.append(("linkage", f"{linked.records:,} records -> {linked.persons:,} people "
                                         "(no name left any partner)"))
        step("hub: differentially private tables")
        dp = release_tables(store, config.epsilon, actor="demo", purpose="demo")
        write_tables(dp, out / "releases" / "dp-tables")
        summary.lines.append(("differential privacy", f"{len(dp.tables)} tables at epsilon {config.epsilon:g} "
                                                      f"(delta {DEFAULT_DELTA:g}), release {dp.release_id}"))
        step("hub: protected statistics, risk, estimate and report")
        rules = SuppressionRules(threshold=config.threshold)
        release_id, stats = publish_report(store, summary.report, rules, actor="demo", method="dp")
        summary.lines.append(("statistics", f"{len(stats.tables)} tables counting {stats.unit}, cells below "
                                            f"{config.threshold} hidden, noisy counts (release {release_id})"))
    step("done")
    summary.lines.append(("report", str(summary.report)))
    return summary
