"""End to end through the CLI on simulated partners: the demo, and the leak test.

The leak test collects every simulated name, date of birth and phone number from the raw
exports and looks for each of them in every table of the hub and every file of the
contributions. None may be there.
"""

from __future__ import annotations

import contextlib
import re
from datetime import date, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from accord.cli.main import app
from accord.ingest.mapping import load_mapping
from accord.ingest.readers import detect_format, read_table
from accord.protect.normalise import normalise_phones
from accord.standard import load_standard
from accord.store import open_store


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """simulate -> keys -> ingest (each partner) -> hub add -> stats -> report, all via the CLI."""
    root = tmp_path_factory.mktemp("pipeline")
    runner = CliRunner()

    def ok(*args: str) -> str:
        result = runner.invoke(app, list(args))
        assert result.exit_code == 0, result.output
        return result.stdout

    ok("simulate", "--people", "600", "--partners", "3", "--overlap", "0.2", "--seed", "7",
       "--out", str(root / "sim"), "--format-a", "csv")
    hub = root / "hub.duckdb"
    for mapping in sorted((root / "sim").glob("*.mapping.yaml")):
        partner = mapping.name.split(".")[0]
        export = next(p for p in (root / "sim").glob(f"{partner}.*") if not p.name.endswith(".yaml"))
        key = root / partner / "partner.key"
        ok("keys", "init", "--key-file", str(key))
        ok("ingest", str(export), "--mapping", str(mapping), "--partner", partner.replace("_", "-"),
           "--out", str(root / partner / "contribution"), "--key-file", str(key))
        ok("hub", "add", str(root / partner / "contribution"), "--hub", str(hub))
    ok("stats", "--hub", str(hub), "--json")
    ok("report", "--hub", str(hub), "--out", str(root / "report.html"))
    return root


def _identifiers(root: Path) -> dict[str, set[str]]:
    standard = load_standard()
    found: dict[str, set[str]] = {"names": set(), "dates_of_birth": set(), "phones": set()}
    for mapping_path in (root / "sim").glob("*.mapping.yaml"):
        partner = mapping_path.name.split(".")[0]
        export = next(p for p in (root / "sim").glob(f"{partner}.*") if not p.name.endswith(".yaml"))
        mapping = load_mapping(mapping_path, standard)
        raw = read_table(export, detect_format(export, mapping.source.format), mapping.source.encoding,
                         mapping.source.delimiter, mapping.source.sheet)
        for field, bucket in [("given_name", "names"), ("family_name", "names"),
                              ("date_of_birth", "dates_of_birth"), ("phone", "phones")]:
            fm = mapping.fields.get(field)
            if fm is None or fm.column is None:
                continue
            values = [v.strip() for v in raw.table[fm.column].to_pylist() if v and v.strip() not in
                      mapping.missing_values]
            if field == "date_of_birth":
                for v in values:
                    found[bucket].add(v)
                    with contextlib.suppress(ValueError):
                        found[bucket].add(datetime.strptime(v, fm.date_format or "%Y-%m-%d").date().isoformat())
            elif field == "phone":
                found[bucket].update(values)
                found[bucket].update(p for p in normalise_phones(pa.array(values)).to_pylist() if len(p) >= 7)
            else:
                found[bucket].update(v for v in values if len(v) >= 4)
    return found


def _hub_text(hub: Path) -> tuple[str, set[str]]:
    """Every table of the hub as text, and the registration dates (legitimately stored)."""
    chunks = []
    with open_store(hub, read_only=True) as store:
        tables = store.query("SELECT table_name FROM information_schema.tables").column(0).to_pylist()
        for t in tables:
            chunks.append(str(store.query(f'SELECT * FROM "{t}"').to_pylist()))
        reg = {d.isoformat() for d in store.query("SELECT DISTINCT registration_date FROM records")
               .column(0).to_pylist() if isinstance(d, date)}
    return "\n".join(chunks), reg


def test_no_identifier_leaks_into_hub_or_contributions(pipeline: Path) -> None:
    ids = _identifiers(pipeline)
    assert len(ids["names"]) > 200 and len(ids["dates_of_birth"]) > 100 and len(ids["phones"]) > 100
    hub_text, registration_dates = _hub_text(pipeline / "hub.duckdb")
    texts = {"hub": hub_text}
    for contribution in pipeline.glob("partner_*/contribution"):
        for f in contribution.iterdir():
            texts[str(f)] = (str(pq.read_table(f).to_pylist()) if f.suffix == ".parquet"
                             else f.read_text(encoding="utf-8"))
    def words_of(text: str) -> set[str]:
        return set(re.findall(r"[^\W\d_]+(?:['-][^\W\d_]+)*", text))  # whole words, case-sensitive

    planted = sorted(n for n in ids["names"] if " " not in n)[0]  # the checker must be able to fail
    assert planted in words_of(f"{{'x': '{planted}'}}")
    for where, text in texts.items():
        words = words_of(text)
        leaked_names = sorted(n for n in ids["names"] if n in words or (" " in n and n in text))
        assert not leaked_names, f"names in {where}: {leaked_names[:5]}"
        leaked_dob = sorted(d for d in ids["dates_of_birth"] - registration_dates if d in text)
        assert not leaked_dob, f"dates of birth in {where}: {leaked_dob[:5]}"
        leaked_phone = sorted(p for p in ids["phones"] if p in text)
        assert not leaked_phone, f"phones in {where}: {leaked_phone[:5]}"


def test_counts_add_up_across_the_pipeline(pipeline: Path) -> None:
    with open_store(pipeline / "hub.duckdb", read_only=True) as store:
        batches = store.batches()
        assert len(batches) == 3
        for b in batches:
            assert b["rows_in"] == b["accepted"] + b["quarantined"]
        assert store.scalar("SELECT count(*) FROM records") == sum(b["accepted"] for b in batches)
        assert store.scalar("SELECT count(*) FROM releases WHERE kind = 'report'") == 1


def test_report_is_self_contained(pipeline: Path) -> None:
    html = (pipeline / "report.html").read_text(encoding="utf-8")
    assert "<svg" in html
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)
    assert "<script src" not in html


def test_demo_api_runs(tmp_path: Path) -> None:
    from accord.demo import DemoConfig, run_demo

    summary = run_demo(DemoConfig(out=tmp_path / "demo", people=400))
    assert summary.report.exists() and summary.hub.exists()
    assert any(k == "statistics" for k, _ in summary.lines)
    html = summary.report.read_text(encoding="utf-8")
    for title in ("Disclosure risk of record-level data", "Differentially private release", "Estimated total",
                  "How this was protected"):
        assert f"<h2>{title}" in html, title
    with open_store(summary.hub, read_only=True) as store:
        kinds = set(store.query("SELECT kind FROM releases").column(0).to_pylist())
        assert {"report", "dp_tables"} <= kinds
        assert store.scalar("SELECT count(DISTINCT person_id) FROM persons") < store.scalar(
            "SELECT count(*) FROM records")
