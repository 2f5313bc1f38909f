"""Tables over time (issue 10): one DP draw per data version, served again; small-cell rule,
margins, budget and CLI. The attacks themselves are in tests/attacks/."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from typer.testing import CliRunner

from accord.cli.main import app
from accord.release.dp import ledger
from accord.research.noisy import DEFAULT_RHO, draw_tables, publish
from accord.research.stats import compute_dp_tables
from accord.standard import load_standard
from accord.standard.arrow import record_schema
from accord.store import open_store
from accord.store.base import INSERT_BATCH_SQL
from tests.attacks.differencing import person
from tests.attacks.noisy_release import people_table
from tests.test_stats_report import known_records, make_store, record

STANDARD = load_standard()
runner = CliRunner()


@pytest.fixture
def hub(tmp_path: Path) -> Path:
    path = tmp_path / "hub.duckdb"
    make_store(path, known_records()).close()
    return path


def _add_batch(hub: Path, n: int, batch: str = "b9") -> None:
    with open_store(hub) as store:
        new = [record(900 + i, "ngo_a", sex="female") for i in range(n)]
        store.write_table("records", pa.Table.from_pylist(new, schema=record_schema(STANDARD)))
        store.execute(INSERT_BATCH_SQL,
                      [batch, "ngo_a", STANDARD.version, n, n, 0, 0, 0, f"sha-{batch}", "k",
                       "2026-02-01T00:00:00", "2026-02-02T00:00:00"])


def _all_values(values: object) -> list[int | None]:
    return [None if v is None else int(v) for v in np.array(values, dtype=object).ravel()]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_no_count_below_the_threshold_and_margins_add_up(seed: int) -> None:
    rng = np.random.default_rng(seed)
    people = people_table([person(rng) for _ in range(2000)])
    payload = draw_tables(people, STANDARD, 0.5, (2016, 2024), test_seed=seed)
    for spec, _dims, values, hidden, cells in publish(payload, STANDARD, 10, "persons"):
        shown = [v for v in _all_values(values) if v is not None]
        assert all(v == 0 or v >= 10 for v in shown), spec.id
        assert hidden == sum(v is None for v in _all_values(values)) and cells > 0
        # the draw behind it: non-negative integers, every margin the sum of its cells
        arr = np.asarray(payload["tables"][spec.id]["values"])
        assert (arr >= 0).all()
        inner = arr[tuple(slice(0, -1) for _ in range(arr.ndim))]
        for axis in range(arr.ndim):
            summed = arr.take(range(arr.shape[axis] - 1), axis=axis).sum(axis=axis)
            assert (summed == arr.take(-1, axis=axis)).all(), (spec.id, axis)
        assert inner.sum() == arr[(-1,) * arr.ndim]
        # fully published rows of the reader's table add up too
        pub = np.array(values, dtype=object)
        if pub.ndim == 2:
            for row in pub:
                if all(v is not None for v in row):
                    assert sum(row[:-1]) == row[-1]


def test_same_data_same_numbers_and_one_spend(hub: Path) -> None:
    with open_store(hub) as store:
        first = compute_dp_tables(store)
        again = compute_dp_tables(store)
        assert [t.published for t in again.tables] == [t.published for t in first.tables]
        assert again.dp["reused"] and not first.dp["reused"]
        spends = [s for s in ledger.spends(store) if s["kind"] == "dp_stats"]
        assert len(spends) == 1 and spends[0]["rho"] == pytest.approx(DEFAULT_RHO, rel=1e-6)
        # another threshold is post-processing of the same draw: no new spend
        compute_dp_tables(store, threshold=20)
        assert len([s for s in ledger.spends(store) if s["kind"] == "dp_stats"]) == 1


def test_new_data_new_noise_not_reused_for_unchanged_cells(hub: Path) -> None:
    with open_store(hub) as store:
        before = compute_dp_tables(store)
    _add_batch(hub, 1)
    with open_store(hub) as store:
        after = compute_dp_tables(store)
        assert len([s for s in ledger.spends(store) if s["kind"] == "dp_stats"]) == 2
    # nothing changed in the registrations of 2023, yet its published value was drawn afresh:
    # over all tables, unchanged cells do not all keep their values
    same = [a == b for t0, t1 in zip(before.tables, after.tables, strict=True)
            for a, b in zip(_all_values(t0.published), _all_values(t1.published), strict=False)]
    assert not all(same)


def test_cli_stats_defaults_to_dp_and_repeats_exactly(hub: Path) -> None:
    one = runner.invoke(app, ["stats", "--hub", str(hub), "--json"])
    two = runner.invoke(app, ["stats", "--hub", str(hub), "--json"])
    assert one.exit_code == 0 and two.exit_code == 0, one.output
    a, b = json.loads(one.stdout), json.loads(two.stdout)
    assert a["method"] == "dp" and a["tables"] == b["tables"]
    for t in a["tables"]:
        assert all(v is None or v == 0 or v >= 10 for v in _all_values(t["values"]))
    text = runner.invoke(app, ["stats", "--hub", str(hub)])
    assert "<10" in text.output and "differential privacy" in text.output


@pytest.mark.parametrize("rho", ["nan", "inf", "0", "-1", "2"])
def test_cli_bad_rho_is_refused_before_anything(hub: Path, rho: str) -> None:
    res = runner.invoke(app, ["stats", "--hub", str(hub), "--rho", rho])
    assert res.exit_code == 2 and "--rho must be" in res.output
    with open_store(hub) as store:
        assert not store.table_exists("dp_draws") or not store.scalar(
            "SELECT count(*) FROM dp_draws")
        assert not store.table_exists("dp_spends") or not ledger.spends(store)


def test_cli_suppression_is_one_off(hub: Path, tmp_path: Path) -> None:
    assert runner.invoke(app, ["stats", "--hub", str(hub), "--privacy", "suppression"]
                         ).exit_code == 0
    _add_batch(hub, 3)
    res = runner.invoke(app, ["stats", "--hub", str(hub), "--privacy", "suppression"])
    assert res.exit_code == 3 and "differenced" in res.output
    res = runner.invoke(app, ["report", "--hub", str(hub), "--privacy", "suppression",
                              "--out", str(tmp_path / "r.html")])
    assert res.exit_code == 3
    res = runner.invoke(app, ["report", "--hub", str(hub), "--out", str(tmp_path / "r.html")])
    assert res.exit_code == 0, res.output
    html = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert "differential privacy" in html.lower()


def test_dp_counts_people_not_records(hub: Path, tmp_path: Path) -> None:
    """Both commands say so with the option they have (--privacy; no --method), as an input
    error (the report's was exit 3, a refused release)."""
    res = runner.invoke(app, ["stats", "--hub", str(hub), "--unit", "records"])
    assert res.exit_code == 2 and "--privacy dp counts people" in res.output
    res = runner.invoke(app, ["report", "--hub", str(hub), "--unit", "records",
                              "--out", str(tmp_path / "r.html")])
    assert res.exit_code == 2 and "--privacy dp counts people" in res.output, res.output
    assert not (tmp_path / "r.html").exists()


def test_estimates_come_from_one_draw_over_fixed_strata(tmp_path: Path) -> None:
    from tests.test_estimate import _hub

    hub = _hub(tmp_path)
    outs = []
    for by in ("sex", "sex,case_type", "sex", ""):
        res = runner.invoke(app, ["estimate", "--hub", str(hub), "--by", by, "--json"])
        assert res.exit_code == 0, res.output
        outs.append(json.loads(res.stdout))
    # every stratum of the fixed public categories is listed, empty or not
    sexes = [s["stratum"]["sex"] for s in outs[0]["strata"]]
    assert sexes == [*STANDARD.field("sex").code_values, "missing"]
    assert len(outs[1]["strata"]) == 7 * 4
    for out in outs:
        seen = [s["seen"] for s in out["strata"]] + [out["overall"]["seen"]]
        seen += [r["people"] for r in out["capture_histories"]["rows"]]
        assert all(v is None or v == 0 or v >= 10 for v in seen)
    # same data: same numbers, whatever the --by, and the draw is paid for once
    assert outs[0]["strata"] == outs[2]["strata"] and outs[0]["overall"] == outs[3]["overall"]
    by_sex = {s["stratum"]["sex"]: s["seen"] for s in outs[0]["strata"]}
    female = [s["seen"] for s in outs[1]["strata"] if s["stratum"]["sex"] == "female"]
    if None not in female and by_sex["female"] is not None:  # sums of one table
        assert by_sex["female"] == sum(female)
    with open_store(hub) as store:
        assert len([s for s in ledger.spends(store) if s["kind"] == "dp_estimate"]) == 1
    res = runner.invoke(app, ["estimate", "--hub", str(hub), "--by", "citizenship"])
    assert res.exit_code == 2 and "fixed public categories" in res.output
    res = runner.invoke(app, ["estimate", "--hub", str(hub), "--rho", "nan"])
    assert res.exit_code == 2 and "--rho must be" in res.output
