"""Tests of ``accord simulate``: the simulated partner exports, their mappings and the truth."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections import Counter
from datetime import date, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

import accord.simulate as sim
from accord.cli.main import app
from accord.simulate import SimulationConfig, SimulationError, simulate
from accord.simulate.names import load_vocabulary
from accord.simulate.population import make_population
from accord.standard import load_standard
from tests.data_paths import SHARED_DATA

STD = load_standard()


@lru_cache(maxsize=16)
def _read_cached(path: Path) -> tuple[list[str], list[dict[str, Any]]]:
    mapping = yaml.safe_load(path.with_suffix("").with_suffix(".mapping.yaml").read_text("utf-8"))
    return _read(path, mapping)


def read_export(path: Path, mapping: dict[str, Any]) -> tuple[list[str], list[dict[str, Any]]]:
    """Header and rows of an export, read the way its mapping says (blank rows dropped)."""
    return _read_cached(path)


def _read(path: Path, mapping: dict[str, Any]) -> tuple[list[str], list[dict[str, Any]]]:
    src = mapping["source"]
    if path.suffix == ".json":
        rows = json.loads(path.read_text(encoding="utf-8"))
        header = list(dict.fromkeys(k for r in rows for k in r))  # Kobo omits empty answers
        return header, rows
    if path.suffix == ".xlsx":
        from openpyxl import load_workbook

        ws = load_workbook(path, read_only=True)[src["sheet"]]
        it = ws.iter_rows(values_only=True)
        header = [str(h) for h in next(it)]
        out = [dict(zip(header, r, strict=False)) for r in it]
        return header, [r for r in out if any(v not in (None, "") for v in r.values())]
    enc = {"utf-8": "utf-8-sig", "auto": "utf-8-sig"}.get(src["encoding"], src["encoding"])
    text = path.read_bytes().decode(enc)
    reader = csv.DictReader(io.StringIO(text), delimiter=src["delimiter"])
    rows = [r for r in reader if any(v for v in r.values())]
    return list(reader.fieldnames or []), rows


@pytest.fixture(scope="module")
def four(tmp_path_factory: pytest.TempPathFactory) -> sim.SimulationResult:
    out = tmp_path_factory.mktemp("sim4")
    return simulate(SimulationConfig(people=2000, partners=4, overlap=0.15, seed=11, out=out))


def _truth(result: sim.SimulationResult) -> list[dict[str, str]]:
    return _truth_of(result.truth)


@lru_cache(maxsize=8)
def _truth_of(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_files_row_counts_and_truth_cover_every_record(four: sim.SimulationResult) -> None:
    truth = _truth(four)
    assert len(truth) == four.records == sum(p.rows for p in four.partners)
    assert [p.export.suffix for p in four.partners] == [".xlsx", ".csv", ".json", ".csv"]
    for p in four.partners:
        mapping = yaml.safe_load(p.mapping.read_text(encoding="utf-8"))
        _, rows = read_export(p.export, mapping)
        assert len(rows) == p.rows
        id_col = mapping["fields"]["case_id"]["column"]
        exported = {str(r[id_col]) for r in rows}
        in_truth = {t["case_id"] for t in truth if t["partner"] == p.partner}
        assert exported == in_truth and len(exported) == p.rows
    persons = Counter(t["person_id"] for t in truth)
    assert len(persons) == four.people
    assert "never" in (four.out / "README.txt").read_text(encoding="utf-8").lower()


def test_overlap_share_close_to_requested(four: sim.SimulationResult) -> None:
    assert abs(four.overlap_share - 0.15) < 0.03
    truth = _truth(four)
    multi = [t for t in truth if int(t["n_partners"]) > 1]
    partners_of: dict[str, set[str]] = {}
    for t in multi:
        partners_of.setdefault(t["person_id"], set()).add(t["partner"])
    # A person is never registered twice by the same partner, and some are seen by three.
    assert all(len(v) == int(n) for v, n in
               ((partners_of[t["person_id"]], t["n_partners"]) for t in multi))
    assert any(len(v) == 3 for v in partners_of.values())


def test_reregistration_errors_recorded(four: sim.SimulationResult) -> None:
    truth = _truth(four)
    kinds = Counter(k for t in truth for k in t["errors"].split(";") if k)
    for kind in sim.ERROR_KINDS:
        assert kinds[kind] > 0, kind
    # Errors only on people seen by several partners.
    assert all(t["errors"] == "" for t in truth if t["n_partners"] == "1")


def test_mappings_fit_exports_and_standard(four: sim.SimulationResult) -> None:
    for p in four.partners:
        mapping = yaml.safe_load(p.mapping.read_text(encoding="utf-8"))
        header, rows = read_export(p.export, mapping)
        missing = set(mapping.get("missing_values", []))
        good = [r for r, t in zip(rows, _partner_truth(four, p.partner), strict=True)
                if not t["defect"]]
        for name, spec in mapping["fields"].items():
            field = STD.field(name)
            if "flags" in spec:
                assert set(spec["flags"]) <= set(header)
                assert set(spec["flags"].values()) <= set(field.code_values)
                continue
            if "value" in spec:
                continue
            assert spec["column"] in header, (p.partner, spec["column"])
            codes = spec.get("codes")
            if codes:
                assert {c for c in codes.values() if c is not None} <= set(field.code_values)
            for r in good:
                cell = r.get(spec["column"])
                if cell is None or str(cell) in missing:
                    continue
                values = str(cell).split(spec["split"]) if "split" in spec else [cell]
                for v in values:
                    if codes:
                        assert v in codes, (p.partner, name, v)
                    if "date_format" in spec and not isinstance(v, datetime | date):
                        datetime.strptime(v, spec["date_format"])
                    if field.type.value in ("country", "countries"):
                        assert len(v) in (2, 3) and v.isupper()


def _partner_truth(result: sim.SimulationResult, partner: str) -> list[dict[str, str]]:
    return [t for t in _truth(result) if t["partner"] == partner]


def test_bad_rows_injected_and_visible(four: sim.SimulationResult) -> None:
    for p in four.partners:
        assert set(p.bad_rows) == set(sim.DEFECTS)
        assert all(v >= 1 for v in p.bad_rows.values())
        assert sum(p.bad_rows.values()) <= max(4, 0.01 * p.rows)
    b = four.partners[1]
    mapping = yaml.safe_load(b.mapping.read_text(encoding="utf-8"))
    _, rows = read_export(b.export, mapping)
    truth = _partner_truth(four, b.partner)
    unknown = [r for r, t in zip(rows, truth, strict=True) if t["defect"] == "unknown_code"]
    assert unknown and all(r["Gender"] not in mapping["fields"]["sex"]["codes"] for r in unknown)
    old = [r for r, t in zip(rows, truth, strict=True) if t["defect"] == "age_out_of_range"]
    assert all(int(r["AgeAtReg"]) > STD.field("age").max for r in old)  # type: ignore[operator]
    assert four.bad_rows == sum(sum(p.bad_rows.values()) for p in four.partners)
    for p in four.partners:  # a bad date stays unparseable in every format, XLSX included
        mapping = yaml.safe_load(p.mapping.read_text(encoding="utf-8"))
        spec = mapping["fields"]["registration_date"]
        _, rows = read_export(p.export, mapping)
        bad = [r[spec["column"]] for r, t in zip(rows, _partner_truth(four, p.partner),
                                                   strict=True) if t["defect"] == "bad_date"]
        assert bad
        for value in bad:
            assert isinstance(value, str)
            with pytest.raises(ValueError):
                datetime.strptime(value, spec["date_format"])


def test_partner_b_is_cp1252_semicolon_with_export_mess(four: sim.SimulationResult) -> None:
    raw = four.partners[1].export.read_bytes()
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")  # accented names written in Windows-1252
    text = raw.decode("cp1252")
    header = text.splitlines()[0]
    assert header.count(";") > 20 and "," not in header
    assert text.rstrip("\n").endswith(";" * header.count(";"))  # blank trailing rows
    assert "+" in text and ";\"=> " in text  # phones and notes that start like formulas
    mapping = yaml.safe_load(four.partners[1].mapping.read_text(encoding="utf-8"))
    assert mapping["source"] == {"format": "csv", "delimiter": ";", "encoding": "cp1252"}
    assert "-99" in mapping["missing_values"]


def test_deterministic_by_seed(tmp_path: Path) -> None:
    def digest(out: Path, seed: int) -> dict[str, str]:
        simulate(SimulationConfig(people=400, partners=3, seed=seed, out=out, format_a="csv"))
        return {f.name: hashlib.sha256(f.read_bytes()).hexdigest() for f in sorted(out.iterdir())}

    a = digest(tmp_path / "a", 5)
    assert a == digest(tmp_path / "b", 5)
    c = digest(tmp_path / "c", 6)
    assert a["truth.csv"] != c["truth.csv"] and a["partner_b.csv"] != c["partner_b.csv"]


def test_population_correlations() -> None:
    pop = make_population(20_000, 3, STD)
    sexual = 1 << STD.field("type_of_exploitation").code_values.index("sexual_exploitation")
    labour = 1 << STD.field("type_of_exploitation").code_values.index("forced_labour")
    is_sexual = (pop.exploitation & sexual) > 0
    assert pop.female[is_sexual].mean() > 0.85
    assert pop.female[(pop.exploitation & labour) > 0].mean() < 0.6
    assert pop.female[pop.case_type == 1].mean() > 0.85  # GBV survivors
    age = ((pop.first_registration - pop.dob).astype(np.int64) / 365.25).astype(int)
    uasc = STD.field("unaccompanied_separated").code_values
    alone = np.isin(pop.uasc, [uasc.index("unaccompanied"), uasc.index("separated")])
    assert alone.any() and (age[alone] < 18).all()
    anc = 1 << STD.field("rh_needs").code_values.index("antenatal_care")
    assert pop.female[(pop.rh_needs & anc) > 0].all()
    assert ((pop.rh_services & ~pop.rh_needs) == 0).all()  # no service without a need
    assert (pop.gbv[pop.case_type != 1] == 0).all() and (pop.gbv[pop.case_type == 1] > 0).all()
    assert (pop.exploitation[pop.case_type != 0] == 0).all()
    control_shares = (pop.control[is_sexual] > 0).mean()
    assert 0.7 < control_shares < 0.95


def test_names_fit_citizenship() -> None:
    voc = load_vocabulary()
    pop = make_population(6000, 4, STD)
    words = voc.spellings
    by_country: dict[str, Counter[str]] = {}
    for i in range(pop.size):
        c = pop.countries[pop.citizenship[i]]
        f1 = pop.names.f1[i]
        if f1 >= 0:
            by_country.setdefault(c, Counter())[words[f1]] += 1
    vn, ua = set(by_country["VN"]), set(by_country["UA"])
    assert vn and ua and not vn & ua
    assert by_country["VN"].most_common(1)[0][0].startswith("Ng")  # Nguyen and its variants
    viet = [i for i in range(pop.size) if pop.countries[pop.citizenship[i]] == "VN"]
    female_viet = [i for i in viet if pop.female[i]]
    assert all(words[pop.names.g1[i]] == "Thi" for i in female_viet)
    hispanic = [i for i in range(pop.size) if pop.countries[pop.citizenship[i]] in ("CO", "VE")]
    assert np.mean([pop.names.f2[i] >= 0 for i in hispanic]) > 0.8  # two family names
    mohammed = {s for s in words if s.startswith(("Moh", "Muh"))}
    assert {"Mohammed", "Muhammad", "Mohamad"} <= mohammed
    for s in words:
        s.encode("cp1252", errors="strict") if s.isascii() else None


def test_cli_writes_files_and_json(tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "cli"
    res = runner.invoke(app, ["simulate", "--people", "300", "--partners", "2", "--overlap",
                              "0.2", "--seed", "9", "--out", str(out), "--json"])
    assert res.exit_code == 0, res.output
    payload = json.loads(res.output)
    assert payload["people"] == 300 and len(payload["partners"]) == 2
    for name in ("partner_a.xlsx", "partner_a.mapping.yaml", "partner_b.csv",
                 "partner_b.mapping.yaml", "truth.csv"):
        assert (out / name).is_file(), name
    res = runner.invoke(app, ["simulate", "--people", "300", "--partners", "1", "--overlap",
                              "0.2", "--out", str(tmp_path / "x")])
    assert res.exit_code == 2 and "two partners" in res.output


def test_large_partner_a_falls_back_to_csv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sim, "XLSX_MAX_ROWS", 100)
    result = simulate(SimulationConfig(people=300, partners=2, seed=1, out=tmp_path))
    assert result.partners[0].export.suffix == ".csv"
    assert result.notes and "CSV" in result.notes[0]
    mapping = yaml.safe_load(result.partners[0].mapping.read_text(encoding="utf-8"))
    assert mapping["source"]["format"] == "csv"


def test_config_is_checked() -> None:
    with pytest.raises(SimulationError):
        SimulationConfig(people=0).check()
    with pytest.raises(SimulationError):
        SimulationConfig(people=10, format_a="ods").check()



@pytest.mark.parametrize(("option", "value", "said"), [
    ("--partners", "30", "--partners must be between 1 and 26"),
    ("--partners", "0", "--partners must be between 1 and 26"),
    ("--format-a", "ods", "--format-a must be xlsx or csv"),
    ("--bad-share", "0.9", "--bad-share is a share of rows from 0 to below 0.5"),
    ("--bad-share", "-1", "--bad-share is a share of rows from 0 to below 0.5"),
    ("--overlap", "2", "--overlap is a share between 0 and 1"),
    ("--seed", "-1", "--seed must be a whole number"),
    ("--capture", "2", "--capture is a probability"),
])
def test_cli_refusals_say_what_to_do(tmp_path: Path, option: str, value: str, said: str) -> None:
    """--partners, --format-a and --bad-share were refused with no hint (the bad-share message
    did not even name its option): every refusal now says what to do, with exit 2 and nothing written."""
    out = tmp_path / "sim"
    res = CliRunner().invoke(app, ["simulate", "--people", "50", "--out", str(out), option, value])
    text = " ".join(res.output.split())
    assert res.exit_code == 2, text
    assert said in text and "what to do:" in text, text
    assert not out.exists()


def _has_command(name: str) -> bool:
    commands = {c.name for c in app.registered_commands}
    groups = {g.name for g in app.registered_groups}
    return name in commands | groups


@pytest.mark.skipif(not (_has_command("ingest") and _has_command("keys")),
                    reason="accord ingest / keys are not registered in this build")
def test_every_export_ingests_and_only_bad_rows_are_quarantined(tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "sim"
    result = simulate(SimulationConfig(people=800, partners=4, seed=21, out=out))
    key = tmp_path / "partner.key"
    res = runner.invoke(app, ["keys", "init", "--key-file", str(key)])
    assert res.exit_code == 0, res.output
    for p in result.partners:
        res = runner.invoke(app, ["ingest", str(p.export), "--mapping", str(p.mapping),
                                  "--partner", p.partner, "--out", str(tmp_path / p.partner),
                                  "--key-file", str(key), "--json"])
        assert res.exit_code == 0, res.output
        summary = json.loads(res.output)
        assert summary["rows_in"] == p.rows
        assert summary["quarantined"] == sum(p.bad_rows.values()), (p.partner, summary)


def test_xlsx_writer_round_trips_across_batches(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    import pyarrow as pa
    from openpyxl import load_workbook

    from accord.simulate import xlsx

    monkeypatch.setattr(xlsx, "BATCH", 7)
    n = 20
    text = [None if i % 5 == 0 else f"<a & b> {i % 3}" for i in range(n)]
    dates = ["2020-02-29" if i % 2 else "2019-02-30" for i in range(n)]
    ints = [str(i) if i % 4 else "n/a" for i in range(n)]
    path = tmp_path / "t.xlsx"
    xlsx.write_xlsx({"text": pa.array(text, pa.string()), "date": pa.array(dates),
                     "int": pa.array(ints)}, path, "S h&eet",
                    date_columns=("date",), int_columns=("int",))
    wb = load_workbook(path, read_only=True)
    rows = list(wb["S h&eet"].iter_rows(values_only=True))
    wb.close()
    assert rows[0] == ("text", "date", "int")
    body = [r for r in rows[1:] if any(v is not None for v in r)]
    assert len(body) == n
    for i, (t, d, v) in enumerate(body):
        assert t == text[i]
        assert d == (datetime(2020, 2, 29) if i % 2 else "2019-02-30")
        assert v == (i if i % 4 else "n/a")


@settings(max_examples=12, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(people=st.integers(1, 60), partners=st.integers(1, 5),
       overlap=st.floats(0.0, 1.0), seed=st.integers(0, 2**31))
def test_any_small_config_gives_consistent_truth(tmp_path: Path, people: int, partners: int,
                                                 overlap: float, seed: int) -> None:
    overlap = overlap if partners > 1 else 0.0
    out = tmp_path / f"h{people}_{partners}_{seed}"
    result = simulate(SimulationConfig(people=people, partners=partners, overlap=overlap,
                                       seed=seed, out=out, format_a="csv"))
    truth = _truth_of(result.truth)
    assert len(truth) == result.records == sum(p.rows for p in result.partners)
    assert {t["person_id"] for t in truth} == {f"P{i:08d}" for i in range(people)}
    seen = Counter((t["person_id"], t["partner"]) for t in truth)
    assert max(seen.values()) == 1  # never twice at the same partner
    by_person = Counter(t["person_id"] for t in truth)
    assert all(int(t["n_partners"]) == by_person[t["person_id"]] for t in truth)
    assert result.overlap_people == sum(1 for v in by_person.values() if v > 1)
    if overlap == 0.0:
        assert result.overlap_people == 0


def test_exports_written_in_pieces_are_whole(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sim, "CHUNK", 37)
    result = simulate(SimulationConfig(people=400, partners=4, seed=3, out=tmp_path,
                                       format_a="csv"))
    truth = _truth_of(result.truth)
    for p in result.partners:
        mapping = yaml.safe_load(p.mapping.read_text(encoding="utf-8"))
        header, rows = _read(p.export, mapping)
        assert len(rows) == p.rows > 37
        id_col = mapping["fields"]["case_id"]["column"]
        assert [str(r[id_col]) for r in rows] == [t["case_id"] for t in truth
                                                   if t["partner"] == p.partner]
        if p.export.suffix == ".csv":
            encoding = {"utf-8": "utf-8-sig", "auto": "utf-8-sig"}.get(
                mapping["source"]["encoding"], mapping["source"]["encoding"])
            text = p.export.read_bytes().decode(encoding)
            assert text.count(header[0]) == 1  # one header line, not one per piece


def test_reopened_cases_keep_identifiers(tmp_path: Path) -> None:
    result = simulate(SimulationConfig(people=500, partners=2, overlap=0.1, seed=8, out=tmp_path,
                                       format_a="csv", reopened=0.1, bad_share=0.0))
    truth = _truth_of(result.truth)
    assert len(truth) == result.records
    again = Counter((t["person_id"], t["partner"]) for t in truth)
    twice = {k for k, v in again.items() if v == 2}
    assert 25 < len(twice) < 80 and max(again.values()) == 2
    b = result.partners[1]
    mapping = yaml.safe_load(b.mapping.read_text(encoding="utf-8"))
    _, rows = _read(b.export, mapping)
    by_person: dict[str, list[tuple[str, str, str]]] = {}
    for r, t in zip(rows, [t for t in truth if t["partner"] == b.partner], strict=True):
        if (t["person_id"], t["partner"]) in twice:
            by_person.setdefault(t["person_id"], []).append(
                (r["Surname"].strip().upper(), r["FirstName"].strip(), r["DOB"]))
            assert t["errors"] == "" and int(t["n_records"]) > int(t["n_partners"])
    assert by_person and all(len(set(v)) == 1 for v in by_person.values())
    people_at_two = sum(1 for p in {t["person_id"] for t in truth}
                        if len({t2["partner"] for t2 in truth if t2["person_id"] == p}) > 1)
    assert result.overlap_people == people_at_two


def _shared_data() -> Path | None:
    return SHARED_DATA if (SHARED_DATA / "ctdc" / "ctdc_2020_derived.csv").is_file() else None


@pytest.mark.skipif(_shared_data() is None,
                    reason="CTDC 2020 data not available (set ACCORD_SHARED_DATA)")
def test_packaged_marginals_reproduce_from_ctdc() -> None:
    from accord.simulate.derive_marginals import derive
    from accord.simulate.population import load_marginals

    data = _shared_data()
    assert data is not None
    assert derive(data / "ctdc" / "ctdc_2020_derived.csv") == load_marginals()
