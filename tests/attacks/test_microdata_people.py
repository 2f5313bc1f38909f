"""Attack: k-anonymous microdata counted in records, not people (issue 10).

A person seen by two partners is two records but one person. An attacker who knows a person's
quasi-identifiers finds their class; if the class's k records hold fewer than k distinct people,
the promise "hidden among k people" is broken. And a class whose sensitive field is one recorded
value plus blanks tells that value about everyone recorded in it: "not recorded" is no diversity.

The attack, on a hub of three simulated partners linked by `accord link` (all through the CLI):
count the distinct linked persons of every released class, and the distinct recorded values of
every sensitive attribute in it. Negative controls: the same data released counting records (and
blanks as a value) fail the same checks, so the checks can fail.
"""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import pyarrow as pa
import pytest
from typer.testing import CliRunner

from accord.cli.main import app
from accord.release.anonymise import anonymise
from accord.release.anonymise.standard_hierarchies import as_strings, hierarchy_for
from accord.standard import load_standard
from accord.store import open_store
from tests.hubs import simulated_contributions

pytestmark = pytest.mark.slow

# (quasi-identifiers, k): fine enough that classes sit near k, where duplicates matter.
SETTINGS = [(["sex", "age", "citizenship"], 5), (["sex", "age", "citizenship"], 11),
            (["sex", "age", "case_type", "migration_status"], 5),
            (["sex", "age", "case_type", "migration_status"], 11)]
SENSITIVE = "forced_labour_industry"  # recorded only for forced-labour cases: many blanks


def _ok(res: object) -> None:
    assert getattr(res, "exit_code", 1) == 0, getattr(res, "output", "")


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three partners, 30 % of people seen by more than one, linked at the hub."""
    d = tmp_path_factory.mktemp("people")
    run = CliRunner().invoke
    contributions = [str(c) for c in simulated_contributions(d, people=3000, partners=3,
                                                             overlap=0.3, seed=7)]
    _ok(run(app, ["hub", "add", *contributions, "--hub", str(d / "hub.duckdb")]))
    _ok(run(app, ["link", "--hub", str(d / "hub.duckdb")]))
    return d / "hub.duckdb"


def _records(hub: Path, released: bool = False) -> tuple[pa.Table, list[str]]:
    """The hub's records in release order, with the linked person of each (the attacker's
    ground truth: who is who across partners). ``released``: only the records a microdata
    release may hold (research consent, standard 0.2)."""
    where = " WHERE r.consent_research = 'yes'" if released else ""
    with open_store(hub, read_only=True) as store:
        t = store.query(
            "SELECT r.*, coalesce(CAST(p.person_id AS VARCHAR), r.partner || ':' || "
            "r.person_pseudonym) AS person FROM records r LEFT JOIN persons p "
            "ON p.partner = r.partner AND p.record_key = r.record_key" + where +
            " ORDER BY r.partner, r.record_key")
    return t, [str(v) for v in t.column("person").to_pylist()]


def _people_per_class(rows: Sequence[dict[str, str]], qi: Sequence[str],
                      people: Sequence[str]) -> list[int]:
    classes: dict[tuple[str, ...], set[str]] = defaultdict(set)
    for row, person in zip(rows, people, strict=True):
        key = tuple(row[q] for q in qi)
        if all(v == "*" for v in key):
            continue  # suppressed records carry no quasi-identifier
        classes[key].add(person)
    return [len(s) for s in classes.values()]


def _recorded_l(rows: Sequence[dict[str, str]], qi: Sequence[str], column: str,
                blank: Sequence[str] = ("", "*")) -> list[int]:
    """Distinct recorded values of ``column`` per class (blank and '*' are no value)."""
    classes: dict[tuple[str, ...], set[str]] = defaultdict(set)
    for row in rows:
        key = tuple(row[q] for q in qi)
        if all(v == "*" for v in key):
            continue
        values = classes[key]
        if row[column] not in blank:
            values.add(row[column])
    return [len(s) for s in classes.values()]


def _release(hub: Path, out: Path, qi: Sequence[str], k: int, sensitive: str = "",
             l: int = 1) -> tuple[list[dict[str, str]], dict[str, object]]:  # noqa: E741
    res = CliRunner().invoke(app, [
        "release", "microdata", "--hub", str(hub), "--qi", ",".join(qi), "--sensitive",
        sensitive, "--k", str(k), "--l", str(l), "--max-suppression", "0.05", "--force",
        "--out", str(out), "--json"])
    _ok(res)
    with (out / "microdata.csv").open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    return rows, json.loads(res.output)


def _table(records: pa.Table, qi: Sequence[str], sensitive: Sequence[str],
           blank_as: str | None = None) -> tuple[pa.Table, dict[str, object]]:
    std = load_standard()
    cols: dict[str, list[str]] = {}
    hier = {}
    for name in qi:
        cols[name] = as_strings(records.column(name), std.field(name))
        hier[name] = hierarchy_for(std.field(name), cols[name], std)
    for name in sensitive:
        values = as_strings(records.column(name), std.field(name))
        cols[name] = [blank_as if blank_as is not None and v == "" else v for v in values]
    return pa.table({n: pa.array(v, pa.string()) for n, v in cols.items()}), hier


def test_every_class_holds_k_people(hub: Path, tmp_path: Path) -> None:
    records, people = _records(hub, released=True)
    assert len(set(people)) < records.num_rows  # people seen twice exist: the attack applies
    control_violations = 0
    for i, (qi, k) in enumerate(SETTINGS):
        rows, summary = _release(hub, tmp_path / f"r{i}", qi, k)
        sizes = _people_per_class(rows, qi, people)
        assert min(sizes) >= k, (qi, k, min(sizes))
        assert summary["k"] == min(sizes) and summary["k_counts"] == "people"
        assert summary["records"] == records.num_rows
        assert summary["people"] == len(set(people))
        record = json.loads((tmp_path / f"r{i}" / "release.json").read_text(encoding="utf-8"))
        assert record["results"]["people"] == len(set(people))
        assert record["parameters"]["k_counts"] == "linked persons"
        # Negative control: the same data and settings, k counted in records (the old engine).
        table, hier = _table(records, qi, [])
        control = anonymise(table, qi, hier, k=k, max_suppression=0.05)  # type: ignore[arg-type]
        control_sizes = _people_per_class(control.table.to_pylist(), qi, people)
        control_violations += sum(1 for s in control_sizes if s < k)
    assert control_violations > 0  # counting records does leave classes below k people


def test_l_counts_recorded_values_only(hub: Path, tmp_path: Path) -> None:
    records, people = _records(hub, released=True)
    control_violations = 0
    for i, (qi, k) in enumerate(SETTINGS[:3]):
        rows, summary = _release(hub, tmp_path / f"l{i}", qi, k, SENSITIVE, 2)
        assert min(_recorded_l(rows, qi, SENSITIVE)) >= 2
        assert min(_people_per_class(rows, qi, people)) >= k
        assert summary["l_distinct"] >= 2
        # Negative control: "not recorded" written as a value of its own, as the old engine
        # counted it; the release is 2-diverse in that sense and fails in recorded values.
        table, hier = _table(records, qi, [SENSITIVE], blank_as="not recorded")
        control = anonymise(table, qi, hier, k=k, sensitive=[SENSITIVE], l=2,  # type: ignore[arg-type]
                            max_suppression=0.05, people=people)
        control_l = _recorded_l(control.table.to_pylist(), qi, SENSITIVE,
                                blank=("", "*", "not recorded"))
        control_violations += sum(1 for v in control_l if v < 2)
    assert control_violations > 0


def test_risk_counts_people_on_a_linked_hub(hub: Path) -> None:
    """`accord risk` on the hub: classes in people, the global risk over people."""
    records, people = _records(hub)
    res = CliRunner().invoke(app, ["risk", "--hub", str(hub), "--qi", "sex,age_group,"
                                   "case_type", "--sensitive", "", "--json"])
    _ok(res)
    summary = json.loads(res.output)
    assert summary["counted"] == "people" and summary["people"] == len(set(people))
    assert summary["records"] == records.num_rows
    # Ground truth from the linked persons: the smallest class in people.
    classes: dict[tuple[str, ...], set[str]] = defaultdict(set)
    for row, person in zip(records.select(["sex", "age_group", "case_type"]).to_pylist(),
                           people, strict=True):
        classes[tuple("" if v is None else str(v) for v in row.values())].add(person)
    assert summary["smallest_class_people"] == min(len(s) for s in classes.values())
    assert summary["expected_reidentifications"] == pytest.approx(len(classes))
    assert summary["global_risk"] == pytest.approx(len(classes) / len(set(people)))
