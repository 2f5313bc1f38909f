"""Issue 13: `release microdata --k 11` on a hub loaded from CTDC 2020 was refused as a bug.

The search judged records whose every varying quasi-identifier was starred as suppressed records,
but the released file still showed the value of columns that take one value (one case type, one
country of registration), so the independent check read them as an ordinary class that failed k
or l. A suppressed record now shows ``*`` in every quasi-identifier.
"""

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
from accord.release.anonymise import check_release
from tests.anonymise_hierarchies import HIERARCHIES
from tests.data_paths import SHARED_DATA
from tests.hubs import hub_from_export

CTDC = SHARED_DATA / "ctdc" / "ctdc_2020_derived.csv"

# A user's mapping of the reduced-column CTDC 2020 export (no country of registration, age only
# as bands, so not mapped).
CTDC_MAPPING = """\
description: CTDC 2020 global k-anonymised dataset (reduced-column export)
source: {format: csv, delimiter: ","}
missing_values: [""]
fields:
  case_id: {column: _unnamed_1}
  case_type: {value: trafficking_victim}
  registration_date: {column: yearOfRegistration, date_format: "%Y.0"}
  country_of_registration: {value: US}
  sex: {column: gender, codes: {Female: female, Male: male}}
  citizenship: {column: citizenship}
  type_of_exploitation:
    column: ExploitType
    codes: {Sexual: sexual_exploitation, Labor: forced_labour, Other: other,
            "Slavery/Similar": servitude, "Forced Marriage": forced_marriage, Multiple: null}
  forced_labour_industry:
    column: Labor_Type
    codes: {"Domestic Work": domestic_work, Construction: construction, Other: other,
            Manufacturing: manufacturing, Agriculture: agriculture, Begging: other,
            Aquafarming: fishing_aquaculture, Hospitality: hospitality, Peddling: trade}
  means_of_control:
    column: control_category
    codes: {Threats: physical_threats, Financial: debt_bondage, Physical: physical_abuse,
            Survival: withholds_necessities, Other: other}
  recruiter_relationship:
    column: RecruiterCategory
    codes: {Other: other_known, "Friend/Acquaintance": friend_acquaintance,
            "Family/Relative": family, "Intimate Partner": intimate_partner}
  # CTDC publishes these records as open data: every purpose is covered (standard 0.2).
  consent_statistics: {value: "yes"}
  consent_linkage: {value: "yes"}
  consent_research: {value: "yes"}
"""


def _read(path: Path) -> pa.Table:
    with path.open(encoding="utf-8", newline="") as fh:
        header = next(csv.reader(fh))
    return pcsv.read_csv(path, convert_options=pcsv.ConvertOptions(
        column_types={c: pa.string() for c in header}, strings_can_be_null=False))


@pytest.mark.slow
@pytest.mark.skipif(not CTDC.is_file(),
                    reason="CTDC 2020 export not found under the shared data folder "
                    "(set ACCORD_SHARED_DATA to the folder holding ctdc/ctdc_2020_derived.csv)")
def test_ctdc_2020_hub_releases_at_k11_l2(tmp_path: Path) -> None:
    runner = CliRunner()
    mapping = tmp_path / "ctdc.mapping.yaml"
    mapping.write_text(CTDC_MAPPING, encoding="utf-8")
    hub = hub_from_export(tmp_path, CTDC, mapping, partner="ctdc")
    out = tmp_path / "micro"
    # l = 2 over every flag of every sensitive field, counting recorded values only, leaves
    # nothing of CTDC's few columns: said plainly and refused (not reported as a bug) ...
    res = runner.invoke(app, ["release", "microdata", "--hub", str(hub), "--k", "11",
                              "--out", str(out), "--json"])
    assert res.exit_code == 3, res.output
    assert "keep almost nothing" in res.output and "bug" not in res.output
    assert not out.exists() or not any(out.iterdir())
    # ... and released, still k-anonymous and l-diverse, when the steward insists.
    res = runner.invoke(app, ["release", "microdata", "--hub", str(hub), "--k", "11",
                              "--out", str(out), "--json", "--force"])
    assert res.exit_code == 0, res.output
    summary = json.loads(res.output)
    assert summary["k"] >= 11 and summary["l_distinct"] >= 2
    record = json.loads((out / "release.json").read_text(encoding="utf-8"))
    qi = record["parameters"]["quasi_identifiers"]
    released = _read(out / "microdata.csv")
    assert released.num_rows == 48_801
    # Every suppressed record is '*' in every quasi-identifier, the constant ones included.
    rows = released.select(qi).to_pylist()
    partly = [r for r in rows if "*" in r.values() and set(r.values()) - {"*"}
              and all(v == "*" for q, v in r.items() if q not in ("case_type",
                                                                   "country_of_registration"))]
    assert not partly
    single = [s for s in record["parameters"]["sensitive"] if s in released.column_names]
    # Flags of codes that fewer than two recorded values tell apart (a code nobody, or everybody
    # recorded, has) are exempt from l, as in the engine.
    flags = [c for c in released.column_names if "__" in c
             and {"0", "1"} <= set(released.column(c).to_pylist())]
    # Read back from the file as a third party would: the flag columns' empty cells mean "not
    # recorded or suppressed", so the suppressed group is judged apart (it is at least k rows).
    suppressed = pa.array([all(v == "*" for v in r.values()) for r in rows])
    assert pa.compute.sum(suppressed).as_py() in (0, None) or (
        pa.compute.sum(suppressed).as_py() >= 11)
    kept = released.filter(pa.compute.invert(suppressed))
    check = check_release(kept, qi, [*single, *flags], k=11, l=2)
    assert check.satisfies(11, 2)


def test_suppressed_records_are_starred_in_constant_columns(tmp_path: Path) -> None:
    """The same disagreement without the CTDC file: a constant quasi-identifier (one case type)
    and record suppression left the suppressed records showing the constant."""
    rng = np.random.default_rng(3)
    n = 200
    table = pa.table({
        "case_type": ["t"] * n,
        "age": [str(a) for a in rng.integers(20, 60, n)],
        "sex": list(rng.choice(["f", "m", "x"], n, p=[0.5, 0.45, 0.05])),
        "diag": list(rng.choice(["a", "b", "c"], n)),
    })
    data = tmp_path / "in.csv"
    pcsv.write_csv(table, data)
    folder = tmp_path / "h"
    folder.mkdir()
    rows = {"case_type": [["t", "*"]], "age": HIERARCHIES["age"].rows,
            "sex": HIERARCHIES["sex"].rows}
    for name, hrows in rows.items():
        (folder / f"{name}.csv").write_text("\n".join(";".join(r) for r in hrows) + "\n",
                                            encoding="utf-8")
    out = tmp_path / "out.csv"
    res = CliRunner().invoke(app, [
        "anonymise", str(data), "--qi", "case_type,age,sex", "--sensitive", "diag",
        "--hierarchies", str(folder), "--k", "5", "--l", "2", "--max-suppression", "0.1",
        "--suppression", "records", "--out", str(out), "--json"])
    assert res.exit_code == 0, res.output
    summary = json.loads(res.output)
    assert summary["suppressed_records"] > 0  # the case the test is about
    released = _read(out)
    stars = [r for r in released.to_pylist() if r["age"] == "*"]
    assert stars and all(r["case_type"] == "*" and r["sex"] == "*" for r in stars)
    assert check_release(released, ["case_type", "age", "sex"], ["diag"], k=5, l=2).satisfies(5, 2)
