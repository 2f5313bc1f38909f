"""`accord release microdata`: cell suppression on record, and l-diversity per flag of lists."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from accord.cli.main import app
from accord.store import open_store
from tests.test_release_microdata import fake_records


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("hub") / "hub.duckdb"
    with open_store(path) as store:
        store.ensure_meta()
        store.write_table("records", fake_records(1200, seed=3), mode="replace")
    return path


def test_every_released_flag_is_l_diverse_and_cells_are_on_record(hub: Path,
                                                                   tmp_path: Path) -> None:
    out = tmp_path / "rel"
    res = CliRunner().invoke(app, ["release", "microdata", "--hub", str(hub), "--out", str(out),
                                   "--k", "5", "--l", "2", "--max-suppression", "0.05",
                                   "--qi", "sex,age,citizenship,registration_date",
                                   "--sensitive", "type_of_exploitation", "--json"])
    assert res.exit_code == 0, res.output
    summary = json.loads(res.output)
    assert summary["suppression"] == "cells"
    flags = [a for a in summary["sensitive_attributes"] if a.startswith("type_of_exploitation__")]
    assert flags  # checked per flag, not as one set
    released = pq.read_table(out / "microdata.parquet").to_pylist()
    qi = list(summary["levels"])
    classes: dict[tuple[object, ...], list[dict[str, object]]] = defaultdict(list)
    for row in released:
        key = tuple(row[q] for q in qi)
        if any(v != "*" for v in key):
            classes[key].append(row)
    for flag in flags:
        for rows in classes.values():
            assert len({r[flag] for r in rows}) >= 2, flag
    assert min(len(rows) for rows in classes.values()) >= 5
    record = json.loads((out / "release.json").read_text(encoding="utf-8"))
    assert record["parameters"]["suppression"] == "cells"
    assert "per flag" in record["parameters"]["multi_valued_sensitive"]
    tops = {"sex": 2, "age": 3, "citizenship": 3, "registration_date": 4}
    # Below the top level no label is '*': every '*' there is a suppressed cell.
    stars = sum(row[q] == "*" for row in released for q in qi if summary["levels"][q] < tops[q])
    assert record["results"]["suppressed_cells"] == summary["suppressed_cells"] == stars
    with open_store(hub, read_only=True) as store:
        rel = next(r for r in store.releases() if r["release_id"] == summary["release_id"])
        assert json.loads(rel["results"])["records_with_suppressed_cells"] == \
            summary["records_with_suppressed_cells"]


def test_records_mode_is_recorded(hub: Path, tmp_path: Path) -> None:
    res = CliRunner().invoke(app, ["release", "microdata", "--hub", str(hub), "--out",
                                   str(tmp_path / "r"), "--k", "5", "--l", "1",
                                   "--qi", "sex,age,citizenship", "--sensitive", "",
                                   "--max-suppression", "0.05", "--suppression", "records",
                                   "--json"])
    assert res.exit_code == 0, res.output
    summary = json.loads(res.output)
    assert summary["suppression"] == "records"
    released = pq.read_table(tmp_path / "r" / "microdata.parquet").to_pylist()
    blank = sum(all(r[q] == "*" for q in ("sex", "age", "citizenship")) for r in released)
    assert blank == summary["suppressed_records"]
