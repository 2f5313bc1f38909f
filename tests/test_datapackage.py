"""Every release that writes files describes them in a Frictionless data package
(``datapackage.json``): each file a resource with its size and hash, each CSV a tabular resource
whose Table Schema matches the file's header and whose typed fields parse as their type."""

from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from accord.cli.main import app
from tests.test_consent_releases import _hub

jsonschema = pytest.importorskip("jsonschema", reason="jsonschema is a test-only dependency")


def _check_package(out: Path) -> dict[str, object]:
    package = json.loads((out / "datapackage.json").read_text(encoding="utf-8"))
    assert package["profile"] == "data-package" and package["name"].startswith("accord-")
    resources = {r["path"]: r for r in package["resources"]}
    on_disk = {p.relative_to(out).as_posix() for p in out.rglob("*")
               if p.is_file() and p.name != "datapackage.json"}
    assert set(resources) == on_disk, (set(resources) ^ on_disk)  # every file, nothing else
    for path, r in resources.items():
        data = (out / path).read_bytes()
        assert r["bytes"] == len(data)
        assert r["hash"] == "sha256:" + hashlib.sha256(data).hexdigest()
        if not path.endswith(".csv"):
            continue
        assert r["profile"] == "tabular-data-resource"
        with (out / path).open(encoding="utf-8", newline="") as fh:
            rows = list(csv.reader(fh, delimiter=r["dialect"]["delimiter"]))
        fields = r["schema"]["fields"]
        assert [f["name"] for f in fields] == rows[0]
        # the JSON Schema of one row, beside the CSV and in the package, takes every row
        row_schema = json.loads((out / path.replace(".csv", ".schema.json")).read_text())
        assert path.replace(".csv", ".schema.json") in resources
        validator = jsonschema.Draft202012Validator(row_schema)
        hxl = "HXL" in r.get("description", "")
        for row in rows[1 + hxl:]:
            typed = {f["name"]: None if v == "" else int(v) if f["type"] == "integer"
                     else float(v) if f["type"] == "number" else v
                     for f, v in zip(fields, row, strict=True)}
            validator.validate(typed)
        assert not validator.is_valid({**typed, "unexpected": 1})
        for row in rows[1:]:
            for f, v in zip(fields, row, strict=True):
                if v == "":
                    continue
                if f["type"] == "integer":
                    int(v)
                elif f["type"] == "number":
                    float(v)
    return package


def test_every_release_that_writes_files_has_a_data_package(tmp_path: Path,
                                                            runner: CliRunner) -> None:
    hub = _hub(tmp_path, runner)
    outs = {
        "stats": ["stats", "--hub", str(hub), "--privacy", "suppression", "--out"],
        "stats_hxl": ["stats", "--hub", str(hub), "--privacy", "suppression", "--hxl", "--out"],
        "dp": ["release", "tables", "--hub", str(hub), "--epsilon", "1", "--tables",
               "case_type_by_sex", "--out"],
        "synthetic": ["release", "synthetic", "--hub", str(hub), "--epsilon", "1", "--rows", "50",
                      "--out"],
        "microdata": ["release", "microdata", "--hub", str(hub), "--k", "2", "--out"],
    }
    for name, args in outs.items():
        out = tmp_path / name
        res = runner.invoke(app, [*args, str(out)])
        assert res.exit_code == 0, (name, res.output)
        package = _check_package(out)
        paths = [r["path"] for r in package["resources"]]  # type: ignore[index, union-attr]
        assert any(p.endswith(".csv") for p in paths), name
    hxl = json.loads((tmp_path / "stats_hxl" / "datapackage.json").read_text())
    assert any("HXL" in r.get("description", "") for r in hxl["resources"])
    dp = json.loads((tmp_path / "dp" / "datapackage.json").read_text())
    table = next(r for r in dp["resources"] if r["path"] == "case_type_by_sex.csv")
    assert {f["name"]: f["type"] for f in table["schema"]["fields"]}["count"] == "integer"
