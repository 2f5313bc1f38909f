"""Attack: learn whether a person is in the real data from a synthetic release's reports.

The synthetic records and the DP measurements are paid from the budget; any other number in the
release folder must be a function of those alone. The attacker here knows everything: every real
record but one, that last person's record, and even the DP outputs (the noisy measurements and the
synthetic sample). They render the release folder under both hypotheses (the person in, the person
out) and pick the one that matches what was published. Against Accord both renderings are
byte-identical in every trial, so the attacker does no better than a coin. The negative control is
the release as it was before issue 10 (real-data statistics, TVD to the real data and distances to
the closest real record, written beside the synthetic data): the same attacker wins every time.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import cast

import numpy as np
import pyarrow as pa

from accord.release.dp.ledger import Budget
from accord.release.synthesize import api, data
from accord.release.synthesize.pipeline import SyntheticRelease, write_synthetic

TRIALS = 30
LEVELS = {"sex": ("f", "m"), "age": ("0-17", "18-59", "60+"), "case": ("gbv", "tv", "vm"),
          "region": ("e", "n", "s", "w")}
Publish = Callable[[api.Synthesis, Path], None]


def _base(rng: np.random.Generator, n: int = 300) -> list[tuple[str, ...]]:
    return [tuple(str(rng.choice(v)) for v in LEVELS.values()) for _ in range(n)]


def _encode(rows: list[tuple[str, ...]]) -> data.Encoded:
    table = pa.table({c: [r[j] for r in rows] for j, c in enumerate(LEVELS)})
    return data.encode(table, levels=LEVELS)


def publish_accord(result: api.Synthesis, folder: Path) -> None:
    api.write_outputs(result, folder / "synthetic.csv", api.build_reports(result))


@dataclasses.dataclass(frozen=True)
class _Budget:
    figures: dict[str, float]

    def to_dict(self) -> dict[str, float]:
        return self.figures


def publish_pipeline(result: api.Synthesis, folder: Path) -> None:
    # `accord release synthetic` writes the same public reports plus release.json.
    # A stand-in for the ledger's answer (the ledger is tested elsewhere; it reads no records).
    budget = cast(Budget, _Budget({"total_rho": 1.0, "spent_rho": result.measured.rho}))
    release = SyntheticRelease("dp_synthetic-fixed", result, api.build_reports(result), budget)
    write_synthetic(release, folder)


def publish_unprotected(result: api.Synthesis, folder: Path) -> None:
    """The negative control: what the release published before (real-data statistics beside it)."""
    publish_accord(result, folder)
    stats = api.steward_report(result)
    (folder / "synthetic.privacy.json").write_text(json.dumps(
        {**result.parameters(), "distance_to_closest_record": stats["distance_to_closest_record"]},
        indent=2))
    (folder / "synthetic.utility.json").write_text(json.dumps(stats["utility_vs_real_data"]))


def _render(publish: Publish, result: api.Synthesis, folder: Path) -> dict[str, bytes]:
    # Always the same folder (release.json names its files), emptied after reading.
    folder.mkdir(parents=True)
    publish(result, folder)
    files = {p.name: p.read_bytes() for p in sorted(folder.iterdir())}
    shutil.rmtree(folder)
    return files


def _attack(publish: Publish, tmp: Path) -> tuple[int, int]:
    """(correct guesses, trials in which the two hypotheses rendered differently)."""
    rng = np.random.default_rng(2026)
    correct = distinguishable = 0
    for trial in range(TRIALS):
        base = _base(rng)
        target = ("m", "60+", "gbv", str(rng.choice(LEVELS["region"])))
        worlds = {True: _encode([*base, target]), False: _encode(base)}
        secret = bool(rng.integers(0, 2))
        published_result = api.synthesize(worlds[secret], 1.0, test_seed=trial)
        published = _render(publish, published_result, tmp / "release")
        # The attacker renders the folder under both hypotheses, with the same DP outputs.
        renders = {h: _render(publish, dataclasses.replace(published_result, encoded_real=w),
                              tmp / "release") for h, w in worlds.items()}
        matches = [h for h, r in renders.items() if r == published]
        if renders[True] != renders[False]:
            distinguishable += 1
        guess = matches[0] if len(matches) == 1 else bool(rng.integers(0, 2))
        correct += guess == secret
    return correct, distinguishable


def test_synthetic_release_folder_carries_no_unpaid_statistic(tmp_path: Path) -> None:
    for name, publish in (("accord", publish_accord), ("pipeline", publish_pipeline)):
        correct, distinguishable = _attack(publish, tmp_path / name)
        print(f"{name}: membership guessed in {correct}/{TRIALS}, "
              f"distinguishable in {distinguishable}/{TRIALS}")
        assert distinguishable == 0  # the attacker learns nothing: a coin toss
        assert correct <= TRIALS * 0.5 + 3 * (TRIALS * 0.25) ** 0.5


def test_negative_control_real_data_statistics_give_membership_away(tmp_path: Path) -> None:
    correct, distinguishable = _attack(publish_unprotected, tmp_path)
    print(f"unprotected: membership guessed in {correct}/{TRIALS}, "
          f"distinguishable in {distinguishable}/{TRIALS}")
    assert distinguishable == TRIALS and correct == TRIALS
