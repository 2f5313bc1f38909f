"""Published tables out as SDMX-CSV (read back with sdmx1), HXL, JSON Schema and a data package."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from accord.cli.main import app
from tests.hubs import hub_from_export

sdmx = pytest.importorskip("sdmx", reason="sdmx1 is a test-only dependency (pip install sdmx1)")


def _published(tmp_path: Path, runner: CliRunner) -> Path:
    lines = ["case,given,family,dob,sex,ctype,reg,expl,share"]
    for i in range(160):
        sex = "F" if i % 3 else "M"
        expl = ["forced_labour", "sexual_exploitation", "forced_labour sexual_exploitation"][i % 3]
        lines.append(f"C{i},G{i},F{i},{1960 + i % 50}-0{1 + i % 9}-1{i % 9},{sex},trafficking_victim,"
                     f"2024-0{1 + i % 9}-15,{expl},yes")
    export = tmp_path / "export.csv"
    export.write_text("\n".join(lines) + "\n", encoding="utf-8")
    mapping = tmp_path / "map.yaml"
    mapping.write_text(
        "fields:\n  case_id: {column: case}\n  given_name: {column: given}\n  family_name: {column: family}\n"
        "  date_of_birth: {column: dob}\n  sex: {column: sex, codes: {F: female, M: male}}\n"
        "  case_type: {column: ctype}\n  registration_date: {column: reg}\n  country_of_registration: {value: TH}\n"
        "  type_of_exploitation: {column: expl, split: ' '}\n  consent_statistics: {column: share}\n"
        "  consent_linkage: {column: share}\n  consent_research: {column: share}\n", encoding="utf-8")
    hub = hub_from_export(tmp_path, export, mapping)
    result = runner.invoke(app, ["stats", "--hub", str(hub), "--json"])
    assert result.exit_code == 0, result.output
    path = tmp_path / "published.json"
    path.write_text(result.output, encoding="utf-8")
    return path


def _cells(values: object, depth: int) -> list[object]:
    if depth == 0:
        return [values]
    assert isinstance(values, list)
    return [v for sub in values for v in _cells(sub, depth - 1)]


def test_sdmx_round_trip_gives_the_published_numbers(tmp_path: Path, runner: CliRunner) -> None:
    published = _published(tmp_path, runner)
    out = tmp_path / "out"
    result = runner.invoke(app, ["tables", "export", str(published), "--out", str(out), "--period", "2024"])
    assert result.exit_code == 0, result.output
    structure = sdmx.read_sdmx(out / "structure.sdmx.xml")
    dsd = structure.structure["DSD_TIP"]
    assert [d.id for d in dsd.dimensions.components][:4] == ["REF_AREA", "INDICATOR", "SEX", "AGE"]
    data = sdmx.read_sdmx(out / "tables.sdmx.csv", structure=dsd)
    # Two published tables can hold a cell with the same key (exploitation by sex, and by sex and
    # youth band with the band's total): each is its own data set, so keep every value per key.
    by_key: dict[tuple[str, ...], list[float | None]] = {}
    values: list[float | None] = []
    for ds in data.data:  # one data set per dataflow (published table)
        for obs in ds.obs:
            status = obs.attached_attribute["CONF_STATUS"].value
            value = None if status == "C" else float(obs.value)
            values.append(value)
            key_values = tuple(str(kv.value) for kv in obs.key.values.values())
            if "FORCED_LABOUR" in key_values or "SEXUAL_EXPLOITATION" in key_values:
                by_key.setdefault(key_values, []).append(value)
    got = sorted(values, key=lambda v: (v is None, v or 0))
    tables = json.loads(published.read_text())["tables"]
    # One cell looked up by its key: women of all ages, from the sex-by-exploitation table.
    expl = next(t for t in tables if t["id"] == "exploitation_by_sex_by_majority")
    female = expl["dims"][1]["codes"].index("female")
    forced = expl["dims"][0]["codes"].index("forced_labour")
    want = expl["values"][forced][female][-1]
    dims = [d.id for d in dsd.dimensions.components]
    key = {d: "_T" for d in dims} | {"REF_AREA": "_T", "INDICATOR": "DETECTED_VICTIMS", "SEX": "F",
                                     "FORM_OF_EXPLOITATION": "FORCED_LABOUR", "TIME_PERIOD": "2024"}
    assert (None if want is None else float(want)) in by_key[tuple(key[d] for d in dims)]
    expected: list[object] = []
    for t in tables:
        if t["id"] == "partner_overlap":
            continue
        expected += [None if v is None else float(v) for v in _cells(t["values"], len(t["dims"]))]
    assert got == sorted(expected, key=lambda v: (v is None, v or 0))
    assert any(v is not None and v > 0 for v in got) and None in got  # both published and hidden cells
    # Every code in the data is in the structure's code lists (sdmx1 resolved the keys against them).
    sex_codes = {c.id for c in structure.codelist["CL_SEX"]}
    assert {"F", "M", "_T"} <= sex_codes


def test_sdmx_ml_data_message_is_valid_against_its_structure(tmp_path: Path,
                                                             runner: CliRunner) -> None:
    """The SDMX-ML 2.1 generic data message beside the SDMX-CSV: read with sdmx1 against the
    structure message, every key names the structure's dimensions in order, every code is in its
    dimension's code list, and the values are the published ones (hidden cells NaN, status C)."""
    import math

    published = _published(tmp_path, runner)
    out = tmp_path / "out"
    result = runner.invoke(app, ["tables", "export", str(published), "--out", str(out), "--period", "2024"])
    assert result.exit_code == 0, result.output
    structure = sdmx.read_sdmx(out / "structure.sdmx.xml")
    dsd = structure.structure["DSD_TIP"]
    dim_ids = [d.id for d in dsd.dimensions.components]
    codelists = {d.id: {c.id for c in d.local_representation.enumerated}
                 for d in dsd.dimensions.components if d.id != "TIME_PERIOD"}
    conf = {c.id for c in structure.codelist["CL_CONF_STATUS"]}
    msg = sdmx.read_sdmx(out / "tables.sdmx.xml", structure=dsd)
    tables = [t for t in json.loads(published.read_text())["tables"] if t["id"] != "partner_overlap"]
    assert len(msg.data) == len(tables)  # one data set per published table
    got: list[float | None] = []
    for ds in msg.data:
        assert ds.structured_by is dsd or ds.structured_by.id == "DSD_TIP"
        for obs in ds.obs:
            key = obs.key.values
            assert list(key) == dim_ids  # the structure's dimensions, in its order
            for d, kv in key.items():
                if d != "TIME_PERIOD":
                    assert str(kv.value) in codelists[d], (d, kv.value)
            status = str(obs.attached_attribute["CONF_STATUS"].value)
            assert status in conf
            value = float(obs.value)
            assert (status == "C") == math.isnan(value)  # hidden: no number, marked confidential
            got.append(None if status == "C" else value)
    expected: list[float | None] = []
    for t in tables:
        expected += [None if v is None else float(v) for v in _cells(t["values"], len(t["dims"]))]
    key = lambda v: (v is None, v or 0)  # noqa: E731
    assert sorted(got, key=key) == sorted(expected, key=key)
    assert None in got and any(v for v in got)
    # The same content as the SDMX-CSV, row for row.
    with (out / "tables.sdmx.csv").open(encoding="utf-8") as fh:
        assert sum(1 for _ in csv.DictReader(fh)) == len(got)


def test_hxl_schema_and_data_package(tmp_path: Path, runner: CliRunner) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    published = _published(tmp_path, runner)
    out = tmp_path / "out"
    result = runner.invoke(app, ["tables", "export", str(published), "--out", str(out), "--period", "2024"])
    assert result.exit_code == 0, result.output
    rows = list(csv.reader((out / "tables.hxl.csv").open(encoding="utf-8")))
    assert rows[1][0].startswith("#") and "#group+sex" in rows[1] and "#affected+num" in rows[1]
    package = json.loads((out / "datapackage.json").read_text())
    paths = {r["path"] for r in package["resources"]}
    assert paths == {"tables.sdmx.csv", "tables.sdmx.xml", "structure.sdmx.xml", "tables.hxl.csv",
                     "observation.schema.json"}
    assert all((out / p).exists() for p in paths)
    schema = json.loads((out / "observation.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    with (out / "tables.sdmx.csv").open(encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            obs = {k: v for k, v in row.items() if k not in ("STRUCTURE", "STRUCTURE_ID", "ACTION")}
            obs["OBS_VALUE"] = None if obs["OBS_VALUE"] == "" else float(obs["OBS_VALUE"])
            validator.validate(obs)
    bad = {**obs, "CONF_STATUS": "C", "OBS_VALUE": 3.0}  # a hidden cell must carry no value
    assert not validator.is_valid(bad)


def test_export_refuses_what_is_not_a_published_table_file(tmp_path: Path, runner: CliRunner) -> None:
    p = tmp_path / "x.json"
    p.write_text("{\"tables\": []}")
    result = runner.invoke(app, ["tables", "export", str(p), "--out", str(tmp_path / "o"), "--period", "2024"])
    assert result.exit_code == 2 and "no published tables" in result.output
    result = runner.invoke(app, ["tables", "export", str(p), "--out", str(tmp_path / "o"), "--period", "last year"])
    assert result.exit_code == 2
