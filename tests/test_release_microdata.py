"""`accord release microdata` and `accord risk` on a hub store."""

from __future__ import annotations

import csv
import datetime as dt
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from accord.cli.main import app
from accord.release.anonymise import check_release
from accord.release.anonymise.standard_hierarchies import hierarchy_for, m49
from accord.standard import load_standard
from accord.standard.arrow import record_schema
from accord.standard.model import FieldType
from accord.store import open_store

COUNTRIES = ["MX", "GT", "NG", "TH", "UA", "PH"]


def fake_records(n: int, seed: int = 0) -> pa.Table:
    """Records in the hub layout with plausible coded values (no identifiers exist there)."""
    std = load_standard()
    rng = np.random.default_rng(seed)
    schema = record_schema(std)
    cols: dict[str, list[object]] = {}
    for f in schema:
        name = f.name
        if name in ("batch_id", "partner"):
            cols[name] = [f"p{int(i)}" for i in rng.integers(0, 2, n)]
        elif name in ("record_key", "person_pseudonym"):
            cols[name] = [f"{int(i):064x}" for i in rng.integers(0, 2**62, n)]
        elif name in std.field_names:
            fld = std.field(name)
            if fld.type == FieldType.INTEGER:
                cols[name] = [int(a) if a < 70 else None for a in rng.integers(5, 72, n)]
            elif fld.type == FieldType.DATE:
                cols[name] = [dt.date(2018, 1, 1) + dt.timedelta(days=int(d))
                              for d in rng.integers(0, 1500, n)]
            elif fld.type == FieldType.COUNTRY:
                cols[name] = list(rng.choice(COUNTRIES, n))
            elif fld.type == FieldType.COUNTRIES:
                cols[name] = [list(rng.choice(COUNTRIES, int(rng.integers(0, 3)), replace=False))
                              for _ in range(n)]
            elif fld.type == FieldType.CODE:
                codes = list(fld.code_values)
                cols[name] = [None if rng.random() < 0.2 else str(rng.choice(codes))
                              for _ in range(n)]
            elif fld.type == FieldType.CODES:
                codes = list(fld.code_values)[:4]
                cols[name] = [list(rng.choice(codes, int(rng.integers(0, 3)), replace=False))
                              for _ in range(n)]
            elif name == "area_of_registration":
                cols[name] = [f"{c}-{int(rng.integers(1, 4))}" for c in rng.choice(COUNTRIES, n)]
            else:
                cols[name] = [None] * n
        else:
            cols[name] = [None] * n
    return pa.table({f.name: pa.array(cols[f.name], type=f.type) for f in schema})


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("hub") / "hub.duckdb"
    with open_store(path) as store:
        store.ensure_meta()
        store.write_table("records", fake_records(1500), mode="replace")
    return path


def test_m49_covers_every_iso_country() -> None:
    import pycountry

    table = m49()
    assert {c.alpha_2 for c in pycountry.countries} <= set(table)
    assert table["NG"] == ("Sub-Saharan Africa", "Africa")
    assert table["MX"] == ("Latin America and the Caribbean", "Americas")


def test_standard_hierarchies_follow_the_issue() -> None:
    std = load_standard()
    age = hierarchy_for(std.field("age"), ["7", "17", "18", ""], std)
    assert {r[0]: r[1:] for r in age.rows}["17"] == ("9-17", "minor", "*")
    assert {r[0]: r[1:] for r in age.rows}["18"] == ("18-20", "adult", "*")
    date = hierarchy_for(std.field("registration_date"), ["2021-03-04"], std)
    assert {r[0]: r[1:] for r in date.rows}["2021-03-04"] == ("2021-03", "2021", "2020-2024", "*")
    country = hierarchy_for(std.field("citizenship"), ["TH", "multiple"], std)
    assert {r[0]: r[1:] for r in country.rows}["TH"] == ("South-eastern Asia", "Asia", "*")


def test_release_microdata_writes_checks_and_records(hub: Path, tmp_path: Path) -> None:
    out = tmp_path / "rel"
    res = CliRunner().invoke(app, ["release", "microdata", "--hub", str(hub), "--out", str(out),
                                   "--k", "11", "--l", "2", "--max-suppression", "0.05",
                                   "--sensitive", "type_of_exploitation,forced_labour_industry",
                                   "--hxl", "--actor", "tester", "--json"])
    assert res.exit_code == 0, res.output
    summary = json.loads(res.output)
    assert summary["k"] >= 11 and summary["l_distinct"] >= 2
    released = pq.read_table(out / "microdata.parquet")
    forbidden = {"record_key", "person_pseudonym", "batch_id", "partner", "age_band_ctdc",
                 "registration_year", "age_group", "majority_status"}
    assert not forbidden & set(released.column_names)
    assert "type_of_exploitation__forced_labour" in released.column_names
    qi = list(summary["levels"])
    check = check_release(released, qi, ["forced_labour_industry"], k=11, l=2)
    assert check.satisfies(11, 2)
    with (out / "microdata.csv").open(encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    assert rows[1][0].startswith("#") and len(rows) == released.num_rows + 2
    assert (out / "data_dictionary.csv").read_text(encoding="utf-8").count("\n") == \
        released.num_columns + 1
    with open_store(hub, read_only=True) as store:
        rel = [r for r in store.releases() if r["release_id"] == summary["release_id"]]
        assert rel and rel[0]["actor"] == "tester" and rel[0]["kind"] == "microdata"
        params = json.loads(rel[0]["parameters"])
        results = json.loads(rel[0]["results"])
        assert params["k"] == 11 and params["max_suppression"] == 0.05
        assert results["k"] == summary["k"] and "utility" in results
        # Without weights the expected re-identifications are the number of distinct QI rows.
        distinct = len({tuple(r[q] for q in qi) for r in released.select(qi).to_pylist()})
        assert results["risk_after"]["expected_reidentifications"] == pytest.approx(distinct)
        assert rel[0]["data_version"] == store.data_version()


def test_release_microdata_refuses_impossible_l(hub: Path, tmp_path: Path) -> None:
    res = CliRunner().invoke(app, ["release", "microdata", "--hub", str(hub), "--out",
                                   str(tmp_path / "r"), "--k", "5", "--l", "40",
                                   "--sensitive", "forced_labour_industry"])
    assert res.exit_code == 3
    assert "l <=" in res.output
    assert not (tmp_path / "r" / "microdata.csv").exists()


def test_risk_on_the_hub(hub: Path) -> None:
    res = CliRunner().invoke(app, ["risk", "--hub", str(hub), "--qi", "sex,age,citizenship",
                                   "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out["records"] == 1500
    assert out["quasi_identifiers"] == ["sex", "age", "citizenship"]
    assert out["global_risk"] == pytest.approx(out["expected_reidentifications"] / 1500)
    # Lists are assessed per flag: one entry per code, named like the released flag columns.
    fields = {ld["field"].split("__")[0] for ld in out["l_diversity"]}
    assert fields >= {"type_of_exploitation", "rh_needs"}
    assert any(ld["flag"] and ld["field"] == f"rh_needs__{ld['flag']}" for ld in out["l_diversity"])
