"""Differencing around a withdrawal (issue 12), written from the analyst's side.

The analyst gets a release, a partner then withdraws one person's record, and the analyst gets
the same release again. The analyst knows the person withdrew and knows their quasi-identifiers
(sex, age, citizenship) and, for the tables, everyone else's records' cells are no secret either:
what the difference of the two releases adds to the first release alone is the leak.

Three releases, each attacked on a copy of the same hub per trial (one victim per trial):

* ``microdata``: k-anonymous files before and after. The attacker takes the rows of the first
  file that are not in the second (multiset difference), keeps those compatible with the victim's
  quasi-identifiers, and guesses the victim's sensitive value as the most common among them.
  Baseline: the same guess from the victim's rows of the first file alone.
* ``dp``: the DP tables (``case_type_by_sex``) before and after; the victim's cell is guessed as
  the cell that dropped the most. Baseline: the largest cell (the prior).
* ``suppressed``: the same attack on suppressed (exact) tables.

When Accord refuses the second release, the attacker has the first only and makes the baseline
guess. Only the published values are taken from Accord; the guesses are the attacker's own code.
"""

from __future__ import annotations

import math
import shutil
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq

from accord.errors import ReleaseRefused
from accord.protect.job import build_contribution
from accord.protect.keys import create_partner_key
from accord.release.anonymise.hierarchy import SUPPRESSED
from accord.release.anonymise.microdata import MicrodataSettings, release_microdata
from accord.release.anonymise.standard_hierarchies import hierarchy_for
from accord.simulate import SimulationConfig, simulate
from accord.standard import load_standard
from accord.store import Store, add_contribution, open_store
from accord.store.withdraw import withdraw

QI = ("sex", "age", "citizenship")
SENSITIVE = "migration_status"
SETTINGS = MicrodataSettings(k=5, l=2, qi=QI, sensitive=(SENSITIVE,), max_loss=None)
TABLE = "case_type_by_sex"
PARTNER = "partner-a"


@dataclass
class Tally:
    trials: int = 0
    hits: int = 0
    baseline_hits: int = 0
    refused: int = 0

    @property
    def rate(self) -> float:
        return self.hits / self.trials if self.trials else float("nan")

    @property
    def baseline(self) -> float:
        return self.baseline_hits / self.trials if self.trials else float("nan")

    @property
    def advantage(self) -> float:
        return self.rate - self.baseline


def build_hub(root: Path, people: int, seed: int) -> Path:
    """One partner's simulated records in a DuckDB hub."""
    sim = simulate(SimulationConfig(people=people, partners=1, overlap=0.0, seed=seed,
                                    out=root / "sim", format_a="csv"))
    files = sim.partners[0]
    key = create_partner_key(root / "partner.key", force=True)
    build_contribution(files.export, files.mapping, PARTNER, root / "contribution", key)
    hub = root / "base.duckdb"
    with open_store(hub) as store:
        add_contribution(store, root / "contribution")
    return hub


def victims(hub: Path, n: int, seed: int) -> list[dict[str, Any]]:
    """People the attacker will watch withdraw: consented (so in the microdata), a sensitive
    value recorded (something to learn), with their
    quasi-identifiers, sensitive value and table cell as the attacker knows them."""
    with open_store(hub, read_only=True) as store:
        rows = store.query(
            f"SELECT record_key, {', '.join(QI)}, {SENSITIVE}, case_type FROM records "
            f"WHERE consent_research = 'yes' AND {SENSITIVE} IS NOT NULL ORDER BY record_key"
        ).to_pylist()
    rng = np.random.default_rng(seed)
    chosen = rng.choice(len(rows), size=min(n, len(rows)), replace=False)
    return [rows[int(i)] for i in chosen]


def copy_hub(base: Path, hub: Path) -> Path:
    """A copy of a DuckDB hub with the files kept beside it (its chain key and head)."""
    for f in base.parent.glob(base.name + "*"):
        shutil.copy2(f, hub.parent / (hub.name + f.name[len(base.name):]))  # keeps the key 0600
    return hub


def _drop_hub(hub: Path) -> None:
    for f in hub.parent.glob(hub.name + "*"):
        f.unlink()


def _trial_hub(base: Path, work: Path, i: int) -> Path:
    return copy_hub(base, work / f"trial{i}.duckdb")


# ---- microdata ---------------------------------------------------------------------------------
def _text(v: Any) -> str:
    return "" if v is None else str(v)


class Generaliser:
    """The victim's quasi-identifiers as a file at given levels shows them (public hierarchies)."""

    def __init__(self, victims_: list[dict[str, Any]], hub: Path) -> None:
        standard = load_standard()
        with open_store(hub, read_only=True) as store:
            seen = store.query(f"SELECT DISTINCT {', '.join(QI)} FROM records").to_pylist()
        self.maps: dict[str, dict[str, tuple[str, ...]]] = {}
        for q in QI:
            values = sorted({_text(r[q]) for r in seen} | {_text(v[q]) for v in victims_})
            h = hierarchy_for(standard.field(q), values, standard)
            self.maps[q] = {r[0]: r for r in h.rows}

    def matches(self, released: dict[str, Any], victim: dict[str, Any], levels: dict[str, int]) -> bool:
        for q in QI:
            shown = _text(released[q])
            if shown == SUPPRESSED:
                continue
            chain = self.maps[q].get(_text(victim[q]))
            if chain is None or chain[levels[q]] != shown:
                return False
        return True


def _guess(rows: list[dict[str, Any]]) -> str | None:
    values = Counter(_text(r[SENSITIVE]) for r in rows if _text(r[SENSITIVE]) not in ("", SUPPRESSED))
    return values.most_common(1)[0][0] if values else None


def _release_rows(store: Store, out: Path) -> tuple[list[dict[str, Any]], dict[str, int]]:
    rel = release_microdata(store, out, load_standard(), SETTINGS, "analyst")
    return pq.read_table(Path(rel.files["parquet"])).to_pylist(), dict(rel.result.levels)


def microdata_attack(base: Path, work: Path, targets: list[dict[str, Any]], protected: bool) -> Tally:
    """The multiset-difference attack on microdata before and after each victim withdraws.
    ``protected=False`` is the negative control: the hub's memory of earlier files is emptied
    before the second release (a hub without the over-time check)."""
    work.mkdir(parents=True, exist_ok=True)
    gen = Generaliser(targets, base)
    first_hub = work / "first.duckdb"
    copy_hub(base, first_hub)
    with open_store(first_hub) as store:
        before, levels_before = _release_rows(store, work / "m1")
    tally = Tally()
    for i, v in enumerate(targets):
        truth = _text(v[SENSITIVE])
        mine = [r for r in before if gen.matches(r, v, levels_before)]
        baseline = _guess(mine)
        hub = _trial_hub(first_hub, work, i)
        with open_store(hub) as store:
            withdraw(store, PARTNER, PARTNER, record_keys=[v["record_key"]])
            if not protected:
                store.execute("DELETE FROM published_microdata")
            try:
                after, levels_after = _release_rows(store, work / f"m2-{i}")
            except ReleaseRefused:
                after = None
        guess = baseline
        if after is not None:
            # bring both files to the coarser level per quasi-identifier, then subtract
            to = {q: max(levels_before[q], levels_after[q]) for q in QI}

            def key(r: dict[str, Any], levels: dict[str, int], to: dict[str, int] = to) -> tuple[str, ...]:
                out = []
                for q in QI:
                    shown = _text(r[q])
                    if shown != SUPPRESSED and levels[q] != to[q]:
                        shown = next((c[to[q]] for c in gen.maps[q].values() if c[levels[q]] == shown),
                                     SUPPRESSED)
                    out.append(shown)
                return (*out, _text(r[SENSITIVE]))

            gone = Counter(key(r, levels_before) for r in before) - Counter(key(r, levels_after) for r in after)
            rows = [dict(zip((*QI, SENSITIVE), k, strict=True)) for k, n in gone.items() for _ in range(n)]
            candidates = [r for r in rows if gen.matches(r, v, to)]
            guess = _guess(candidates) or baseline
        else:
            tally.refused += 1
        tally.trials += 1
        tally.hits += guess == truth
        tally.baseline_hits += baseline == truth
        _drop_hub(hub)
    return tally


# ---- tables ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Grid:
    """One published two-way table: codes of each axis and the values, totals last on each axis
    (None where hidden)."""

    rows: tuple[str, ...]
    cols: tuple[str, ...]
    values: list[list[int | None]]
    noise_sd: float = 0.0  # published with a DP release; exact counts have none


Release = Callable[[Store], Grid]


def _grid(result: Any) -> Grid:
    table = next(t for t in result.tables if t.id == TABLE)
    a, b = table.dims
    sd = float((result.dp or {}).get("noise_sd", {}).get(TABLE, 0.0))
    return Grid(tuple(a.codes), tuple(b.codes), [list(r) for r in table.published], sd)


def dp_tables(rho: float | None = None) -> Release:
    """Accord's DP tables (default rho: what `accord stats` publishes; a huge rho is the
    positive control that this attacker can read a DP release when the noise is too small)."""
    from accord.research.stats import tables_on_record

    def release(store: Store) -> Grid:
        return _grid(tables_on_record(store, 10, None, "auto", "analyst", "tables", method="dp",
                                      rho=rho))

    return release


def _one_table() -> Any:
    from accord.research.stats import default_specs

    return [s for s in default_specs(load_standard()) if s.id == TABLE]


def suppressed_tables(store: Store) -> Grid:
    """Accord's suppressed release of the table, on record (refused, like `accord stats --method
    suppression`, once tables of another data version are out: ``check_one_off``)."""
    from accord.research.stats import check_one_off, compute_tables, record_tables_release

    check_one_off(store)
    result = compute_tables(store, unit="auto", specs=_one_table())
    record_tables_release(store, result, "tables", "analyst")
    return _grid(result)


def suppressed_unguarded(store: Store) -> Grid:
    """The negative control: the same suppressed table with no over-time protection at all."""
    from accord.research.stats import compute_tables

    return _grid(compute_tables(store, unit="auto", history=False, specs=_one_table()))


def _locate(before: Grid, after: Grid) -> tuple[int, int]:
    """The most probable cell of the person: log prior (the first release's cell, a hidden one
    taken as 5) plus the Gaussian log-likelihood of the drops of the cell, its row total and its
    column total (visible ones), one person's worth against none; noise of both draws."""
    def drop(i: int, j: int) -> float | None:
        b, a = before.values[i][j], after.values[i][j]
        return None if a is None or b is None else float(b - a)

    var = 2 * max(before.noise_sd, 0.3) ** 2  # exact counts: a sharp likelihood
    nr, nc = len(before.rows), len(before.cols)

    def score(i: int, j: int) -> float:
        prior = math.log(max(before.values[i][j] or 5, 1))
        seen = [d for d in (drop(i, j), drop(i, nc), drop(nr, j)) if d is not None]
        return prior + sum((2 * d - 1) / (2 * var) for d in seen)

    scores = {(i, j): score(i, j) for i in range(nr) for j in range(nc)}
    return max(scores, key=lambda c: scores[c])


def _largest(grid: Grid) -> tuple[int, int]:
    cells = {(i, j): grid.values[i][j] or 0 for i in range(len(grid.rows)) for j in range(len(grid.cols))}
    rows = [grid.values[i][len(grid.cols)] or 0 for i in range(len(grid.rows))]
    cols = [grid.values[len(grid.rows)][j] or 0 for j in range(len(grid.cols))]
    return max(cells, key=lambda c: (cells[c], rows[c[0]] * cols[c[1]]))


def _truth(grid: Grid, victim: dict[str, Any]) -> tuple[int, int] | None:
    def at(codes: tuple[str, ...], value: str) -> int | None:
        return next((i for i, c in enumerate(codes) if value in c.split("+")), None)

    i, j = at(grid.rows, _text(victim["case_type"])), at(grid.cols, _text(victim["sex"]))
    return None if i is None or j is None else (i, j)


def tables_attack(base: Path, work: Path, targets: list[dict[str, Any]], release: Release) -> Tally:
    """Locate the withdrawn person's cell from the table before and after."""
    work.mkdir(parents=True, exist_ok=True)
    first_hub = work / "first.duckdb"
    copy_hub(base, first_hub)
    with open_store(first_hub) as store:
        before = release(store)
    prior = _largest(before)
    tally = Tally()
    for i, v in enumerate(targets):
        truth = _truth(before, v)
        hub = _trial_hub(first_hub, work, i)
        with open_store(hub) as store:
            withdraw(store, PARTNER, PARTNER, record_keys=[v["record_key"]])
            try:
                after: Grid | None = release(store)
            except ReleaseRefused:
                after = None
        guess = prior
        if after is not None and after.rows == before.rows and after.cols == before.cols:
            guess = _locate(before, after)
        elif after is None:
            tally.refused += 1
        tally.trials += 1
        tally.hits += guess == truth
        tally.baseline_hits += prior == truth
        _drop_hub(hub)
    return tally
