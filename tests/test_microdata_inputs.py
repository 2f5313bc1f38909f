"""Issue 13, through the CLI: identifiers in `anonymise`, too few QIs in `risk --data`, tables of
counts, releases that keep almost nothing (with --weights, --max-loss, --force)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pcsv
import pytest
from typer.testing import CliRunner

from accord.cli.main import app
from tests.anonymise_hierarchies import HIERARCHIES
from tests.data_paths import SHARED_DATA
from tests.test_release_microdata import hub  # noqa: F401  (module fixture: a small hub)

PHONES = [f"+52 55 {1000 + i:04d} {2000 + i:04d}" for i in range(300)]
NAMES = [f"{g} {f}" for g, f in zip(["Maria", "José", "Ana", "Lucía", "Pedro", "Xóchitl"] * 50,
                                    ["Lopez", "Pérez", "Ruiz", "Gómez", "Yáñez", "Torres",
                                     "Ramírez"] * 43, strict=False)]
NAMES = [f"{n} {chr(65 + i % 26)}{chr(97 + i // 26 % 26)}nez" for i, n in enumerate(NAMES)]
EMAILS = [f"person{i}@example.org" for i in range(300)]


def _table(n: int = 300, seed: int = 5) -> dict[str, list[str]]:
    rng = np.random.default_rng(seed)
    return {
        "age": [str(a) for a in rng.integers(20, 60, n)],
        "sex": list(rng.choice(["f", "m", "x"], n, p=[0.5, 0.45, 0.05])),
        "region": list(rng.choice(["FR", "DE", "NG", "GH", "TH"], n)),
        "diag": list(rng.choice(["a", "b", "c", "d"], n)),
    }


def _hierarchies(folder: Path) -> Path:
    folder.mkdir(exist_ok=True)
    for name, h in HIERARCHIES.items():
        (folder / f"{name}.csv").write_text("\n".join(";".join(r) for r in h.rows) + "\n",
                                            encoding="utf-8")
    return folder


def _write(path: Path, cols: dict[str, list[str]]) -> Path:
    pcsv.write_csv(pa.table({k: pa.array(v, pa.string()) for k, v in cols.items()}), path)
    return path


def _anonymise(tmp_path: Path, data: Path, *extra: str) -> tuple[int, str, Path]:
    out = tmp_path / "out.csv"
    res = CliRunner().invoke(app, ["anonymise", str(data), "--qi", "age,sex,region",
                                   "--hierarchies", str(_hierarchies(tmp_path / "h")),
                                   "--k", "5", "--max-suppression", "0.05", "--out", str(out),
                                   "--overwrite", *extra])  # each call of a test replaces the last one's
    return res.exit_code, res.output, out


def _no_value(output: str, values: list[str]) -> None:
    for v in values:
        assert v not in output


def test_anonymise_drops_direct_identifiers_with_a_notice(tmp_path: Path) -> None:
    cols = {**_table(), "full_name": NAMES, "phone": PHONES, "contact": EMAILS,
            "x1": NAMES, "x2": PHONES}
    code, output, out = _anonymise(tmp_path, _write(tmp_path / "in.csv", cols),
                                   "--sensitive", "diag")
    assert code == 0, output
    with out.open(encoding="utf-8") as fh:
        header = next(csv.reader(fh))
    assert set(header) == {"age", "sex", "region", "diag"}
    for col in ("full_name", "phone", "contact", "x1", "x2"):
        assert col in output  # named in the notice, by name or by content
    assert "by its content" in output and "by its name" in output
    _no_value(output, NAMES + PHONES + EMAILS)
    text = out.read_text(encoding="utf-8")
    _no_value(text, NAMES[:20] + PHONES[:20] + EMAILS[:20])


def test_anonymise_keeps_a_listed_column_and_refuses_an_identifier_as_sensitive(
        tmp_path: Path) -> None:
    cols = {**_table(), "phone": PHONES}
    data = _write(tmp_path / "in.csv", cols)
    code, output, out = _anonymise(tmp_path, data, "--keep", "phone", "--json")
    assert code == 0, output
    with out.open(encoding="utf-8") as fh:
        assert "phone" in next(csv.reader(fh))
    code, output, _ = _anonymise(tmp_path, data, "--sensitive", "phone")
    assert code == 2
    assert "look like direct identifiers" in output and "--keep phone" in output
    _no_value(output, PHONES)


def glotip_like(path: Path) -> Path:
    return _write(path, {
        "Country": ["Aruba", "Afghanistan", "Albania"] * 20,
        "Sex": ["Female", "Male", "Total"] * 20,
        "Age": ["Adult", "Minor", "Total"] * 20,
        "Year": [str(2010 + i % 10) for i in range(60)],
        "Unit of measurement": ["Counts"] * 60,
        "txtVALUE": [str(i * 7) if i % 4 else "<5" for i in range(60)],
    })


def test_tables_of_counts_are_refused(tmp_path: Path) -> None:
    data = glotip_like(tmp_path / "glotip.csv")
    res = CliRunner().invoke(app, ["risk", "--data", str(data), "--qi", "Country,Sex,Age"])
    assert res.exit_code == 2, res.output
    assert "table of counts" in res.output and "txtVALUE" in res.output
    code, output, _ = _anonymise(tmp_path, data)
    assert code == 2 and "table of counts" in output
    # A plain count column by its name alone, too.
    counts = _write(tmp_path / "n.csv", {**_table(60), "n": [str(i) for i in range(60)]})
    res = CliRunner().invoke(app, ["risk", "--data", str(counts), "--qi", "age,sex,region"])
    assert res.exit_code == 2 and "'n'" not in res.output and "n hold counts" in res.output


@pytest.mark.parametrize("command", [
    ["risk", "--data", "{src}", "--qi", "sex"],
    ["anonymise", "{src}", "--qi", "sex", "--hierarchies", "{hier}", "--k", "2", "--out", "{out}"],
    ["synthesize", "{src}", "--epsilon", "1", "--rows", "5", "--out", "{out}"]])
def test_a_header_naming_a_column_twice_is_refused(tmp_path: Path, command: list[str]) -> None:
    """`sex,sex,age_group` ended in exit 70 (Arrow: 'Field "sex" exists 2 times'). Refused by
    position, as ingest does: a file without its header row has a record there."""
    src = tmp_path / "dup.csv"
    src.write_text("F,F,18-24\nF,M,18-24\nM,F,25-59\nF,M,18-24\n", encoding="utf-8")  # no header row
    (tmp_path / "h").mkdir()
    (tmp_path / "h" / "sex.csv").write_text("F;*\nM;*\n", encoding="utf-8")
    args = [a.format(src=src, hier=tmp_path / "h", out=tmp_path / "o.csv") for a in command]
    res = CliRunner().invoke(app, args)
    said = " ".join(res.output.split())
    assert res.exit_code == 2, said
    assert res.exception is None or isinstance(res.exception, SystemExit), repr(res.exception)
    assert "has duplicate column names (columns 1 and 2 have the same name)" in said
    assert "18-24" not in said  # no value of the row read as a header
    assert not (tmp_path / "o.csv").exists()


@pytest.mark.skipif(not (SHARED_DATA / "glotip" / "data_glotip.csv").is_file(),
                    reason="GLOTIP data not found under the shared data folder")
def test_real_glotip_file_is_refused() -> None:
    res = CliRunner().invoke(app, ["risk", "--data", str(SHARED_DATA / "glotip" /
                                                           "data_glotip.csv"),
                                   "--qi", "Country,Sex,Age"])
    assert res.exit_code == 2 and "table of counts" in res.output


def test_risk_on_a_file_needs_its_quasi_identifiers(tmp_path: Path) -> None:
    cols = _table()
    data = _write(tmp_path / "in.csv", {"citizenship": cols["region"], "Gender": cols["sex"],
                                        "AgeYears": cols["age"]})
    res = CliRunner().invoke(app, ["risk", "--data", str(data)])
    assert res.exit_code == 2, res.output
    assert "1 of the standard's" in res.output and "citizenship" in res.output
    assert "--qi" in res.output
    res = CliRunner().invoke(app, ["risk", "--data", str(data), "--qi",
                                   "citizenship,Gender,AgeYears"])
    assert res.exit_code == 0, res.output
    assert "quasi-identifiers used (3): citizenship, Gender, AgeYears" in res.output


def test_weights_keep_the_fields_that_matter(tmp_path: Path) -> None:
    data = _write(tmp_path / "in.csv", _table(400))
    code, output, _ = _anonymise(tmp_path, data, "--k", "10", "--json")
    plain = json.loads(output)
    assert code == 0 and plain["starred_share"]["sex"] == 1.0  # sex lost without a weight
    code, output, _ = _anonymise(tmp_path, data, "--k", "10", "--weights", "sex=50", "--json")
    weighted = json.loads(output)
    assert code == 0 and weighted["starred_share"]["sex"] < 0.05
    assert weighted["column_loss"]["sex"] < plain["column_loss"]["sex"]
    assert weighted["weights"] == {"age": 1.0, "sex": 50.0, "region": 1.0}
    for bad in ("sex=nan", "sex", "sex=abc", "nosuch=2", "sex=0", "sex=inf"):
        code, output, _ = _anonymise(tmp_path, data, "--weights", bad)
        assert code == 2, (bad, output)
        assert "weigh" in output


def test_a_release_that_keeps_almost_nothing_is_refused_unless_forced(
        hub: Path, tmp_path: Path) -> None:  # noqa: F811
    runner = CliRunner()
    out = tmp_path / "m"
    res = runner.invoke(app, ["release", "microdata", "--hub", str(hub), "--k", "11",
                              "--max-loss", "0.2", "--out", str(out)])
    assert res.exit_code == 3, res.output
    assert "keep almost nothing" in res.output and "starred in" in res.output
    assert "--weights" in res.output and "--force" in res.output
    assert not (out / "microdata.csv").exists() and not (out / "release.json").exists()
    res = runner.invoke(app, ["release", "microdata", "--hub", str(hub), "--k", "11",
                              "--max-loss", "0.2", "--force", "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "rows starred" in res.output and "information lost" in res.output
    record = json.loads((out / "release.json").read_text(encoding="utf-8"))
    results = record["results"]
    assert set(results["starred_share"]) == set(record["parameters"]["quasi_identifiers"])
    assert results["people"] <= results["records"]
    assert record["parameters"]["max_loss"] is None  # forced: recorded as such


def test_anonymise_counts_people_with_person_column(tmp_path: Path) -> None:
    cols = _table(200, seed=9)
    # Every record twice (two partners saw everyone): k=4 records can be 2 people.
    doubled = {c: v + v for c, v in cols.items()}
    doubled["who"] = [f"p{i}" for i in range(200)] * 2
    data = _write(tmp_path / "in.csv", doubled)
    code, output, out = _anonymise(tmp_path, data, "--k", "4", "--person", "who", "--json")
    assert code == 0, output
    summary = json.loads(output)
    assert summary["people"] == 200 and summary["records"] == 400
    assert summary["k"] >= 4 and summary["k_counts"] == "people"
    with out.open(encoding="utf-8") as fh:
        assert "who" not in next(csv.reader(fh))
    code, output, _ = _anonymise(tmp_path, data, "--k", "4", "--json")
    assert code == 0 and json.loads(output)["k_counts"] == "records"
    code, output, _ = _anonymise(tmp_path, data, "--person", "nosuch")
    assert code == 2 and "--person" in output
