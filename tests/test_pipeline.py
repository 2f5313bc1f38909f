"""End to end through the CLI on simulated partners: the demo, and the leak test.

The leak test collects every simulated name, date of birth and phone number from the raw
exports and looks for each of them in every column of every table of the hub and every file the
pipeline wrote (contributions, report): names raw and case- and accent-folded, dates of birth as
dates (date-typed columns) and in every common text form, phones raw and normalised. None may be
there. A negative control plants each form alone and checks that the checker finds it.
"""

from __future__ import annotations

import base64
import contextlib
import io
import re
import unicodedata
import zipfile
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
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


def _parse_date(value: str, fmt: str | None) -> date | None:
    with contextlib.suppress(ValueError):
        return datetime.strptime(value, fmt or "%Y-%m-%d").date()
    return None


def _identifiers(root: Path) -> dict[str, set[Any]]:
    """Names (raw), dates of birth (as dates), phones (raw and normalised) from the raw exports;
    also the registration dates, which the hub legitimately stores."""
    standard = load_standard()
    found: dict[str, set[Any]] = {"names": set(), "dates_of_birth": set(), "dob_raw": set(),
                                  "phones": set(), "registration_dates": set()}
    for mapping_path in (root / "sim").glob("*.mapping.yaml"):
        partner = mapping_path.name.split(".")[0]
        export = next(p for p in (root / "sim").glob(f"{partner}.*") if not p.name.endswith(".yaml"))
        mapping = load_mapping(mapping_path, standard)
        raw = read_table(export, detect_format(export, mapping.source.format), mapping.source.encoding,
                         mapping.source.delimiter, mapping.source.sheet)
        for field in ("given_name", "family_name", "date_of_birth", "phone", "registration_date"):
            fm = mapping.fields.get(field)
            if fm is None or fm.column is None:
                continue
            values = [str(v).strip() for v in raw.table[fm.column].to_pylist()
                      if v is not None and str(v).strip() and str(v).strip() not in mapping.missing_values]
            if field in ("date_of_birth", "registration_date"):
                dates = {d for d in (_parse_date(v, fm.date_format) for v in values) if d}
                found["dates_of_birth" if field == "date_of_birth" else "registration_dates"] |= dates
                if field == "date_of_birth":
                    found["dob_raw"].update(values)
            elif field == "phone":
                found["phones"].update(values)
                found["phones"].update(p for p in normalise_phones(pa.array(values)).to_pylist()
                                       if len(p) >= 7)
            else:
                found["names"].update(v for v in values if len(v) >= 4)
    return found


# --- the checker: every column of every table and file, values typed, normalised and raw ---------

DATE_FORMS = ("%Y-%m-%d", "%d/%m/%Y", "%m/%d/%Y", "%d.%m.%Y", "%d-%m-%Y", "%Y/%m/%d", "%Y%m%d",
              "%d %B %Y", "%d %b %Y", "%B %d, %Y")
DATE_TOKEN = re.compile(r"\d{1,4}[-/.]\d{1,2}[-/.]\d{1,4}|\b\d{8}\b|\d{1,2} [A-Za-z]+ \d{4}|"
                        r"[A-Za-z]+ \d{1,2}, \d{4}")


def _fold(text: str) -> str:
    """Case- and accent-insensitive form, written here rather than taken from the code under test."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def _words(text: str) -> set[str]:
    return set(re.findall(r"[^\W\d_]+", _fold(text)))


@dataclass
class Column:
    """One column of one table or file: its dates (typed, or read from text) and its text."""

    where: str
    dates: set[date]
    text: str


def _dates_in_text(text: str) -> set[date]:
    out = set()
    for token in DATE_TOKEN.findall(text):
        for fmt in DATE_FORMS:
            with contextlib.suppress(ValueError):
                out.add(datetime.strptime(token, fmt).date())
    return out


def _column(where: str, values: pa.ChunkedArray | pa.Array) -> Column:
    typ = values.type
    while pa.types.is_list(typ) or pa.types.is_large_list(typ):
        values = pc.list_flatten(values)
        typ = values.type
    dates: set[date] = set()
    if pa.types.is_date(typ) or pa.types.is_timestamp(typ):
        for v in values.to_pylist():
            if isinstance(v, datetime):
                dates.add(v.date())
            elif isinstance(v, date):
                dates.add(v)
        return Column(where, dates, "")
    text = "\n".join(str(v) for v in values.to_pylist() if v is not None)
    return Column(where, _dates_in_text(text), text)


def _table_columns(where: str, table: pa.Table) -> list[Column]:
    return [_column(f"{where}.{name}", table.column(name)) for name in table.column_names]


def _file_columns(path: Path) -> list[Column]:
    if path.suffix == ".parquet":
        return _table_columns(str(path), pq.read_table(path))
    if path.suffix in (".duckdb", ".key") or path.name.endswith(".wal"):
        return []
    text = path.read_text(encoding="utf-8", errors="replace")
    embedded = []
    if path.suffix == ".html":
        # The report embeds its downloads as base64 data: URIs. Scanned raw, base64 spells short
        # names by chance ("luis", "diop"); scanned decoded, a name inside a download is still found.
        for i, payload in enumerate(_DATA_URI.findall(text)):
            embedded.extend(_decoded_columns(f"{path}#download{i}", base64.b64decode(payload)))
        text = _DATA_URI.sub("data:", text)
    return [Column(str(path), _dates_in_text(text), text), *embedded]


_DATA_URI = re.compile(r"data:[^;,\"']*;base64,([A-Za-z0-9+/=]+)")


def _decoded_columns(where: str, raw: bytes) -> list[Column]:
    """An embedded download as text: each member of a zip (an XLSX workbook), or the file itself."""
    if raw[:2] == b"PK":
        with zipfile.ZipFile(io.BytesIO(raw)) as zf:
            texts = [(f"{where}/{n}", zf.read(n).decode("utf-8", errors="replace")) for n in zf.namelist()]
    else:
        texts = [(where, raw.decode("utf-8", errors="replace"))]
    return [Column(w, _dates_in_text(t), t) for w, t in texts]


def _hub_columns(hub: Path) -> list[Column]:
    out = []
    with open_store(hub, read_only=True) as store:
        tables = store.query("SELECT table_name FROM information_schema.tables").column(0).to_pylist()
        for t in tables:
            out.extend(_table_columns(f"hub.{t}", store.query(f'SELECT * FROM "{t}"')))
    return out


def _country_words() -> set[str]:
    """The words of every country's names as the research stage labels them (pycountry)."""
    import pycountry

    words: set[str] = set()
    for country in pycountry.countries:
        for attr in ("name", "common_name", "official_name"):
            words |= _words(str(getattr(country, attr, "") or ""))
    return words


def _leaks(columns: list[Column], ids: dict[str, set[Any]]) -> dict[str, list[str]]:
    """Where each kind of identifier appears: names raw or folded (case, accents), dates of birth
    as dates in any date-typed column or any common text form, phones raw or normalised."""
    folded_names = {_fold(n): n for n in ids["names"]}
    # A one-word name that is also a word of a country's name (the Thai given name Mali, the
    # country Mali) cannot be told from the country label a release shows: whether that label
    # appears depends on the DP noise, so counting it made the test fail at random.
    single = {f for f in folded_names if " " not in f and "-" not in f} - _country_words()
    multi = set(folded_names) - single
    dobs = ids["dates_of_birth"] - ids["registration_dates"]
    found: dict[str, list[str]] = {"names": [], "dates_of_birth": [], "phones": []}
    for col in columns:
        if col.text:
            folded = _fold(col.text)
            hit = (_words(col.text) & single) | {m for m in multi if m in folded}
            # (folding covers the raw spelling too: a raw name is a folded name as a whole word)
            found["names"] += [f"{col.where}: {sorted(hit)[:3]}"] if hit else []
            phones = {p for p in ids["phones"] if p in col.text}
            found["phones"] += [f"{col.where}: {len(phones)}"] if phones else []
            raw_dob = {d for d in ids["dob_raw"] - {x.isoformat() for x in ids["registration_dates"]}
                       if d in col.text and _parse_date(d, None) not in ids["registration_dates"]}
        else:
            raw_dob = set()
        dob = (col.dates & dobs) | raw_dob
        found["dates_of_birth"] += [f"{col.where}: {len(dob)}"] if dob else []
    return found


def test_leak_checker_sees_every_form(pipeline: Path) -> None:
    """The negative control: each form of each identifier, planted alone, is found."""
    ids = _identifiers(pipeline)
    name = sorted(n for n in ids["names"] if " " not in n and _fold(n) != n.lower())[:1] or \
        sorted(n for n in ids["names"] if " " not in n)[:1]
    plain = sorted(n for n in ids["names"] if " " not in n)[0]
    dob = sorted(ids["dates_of_birth"] - ids["registration_dates"])[0]
    phone = sorted(p for p in ids["phones"] if p.isdigit())[0]
    raw_phone = sorted(p for p in ids["phones"] if not p.isdigit())[0]
    forms: dict[str, tuple[str, pa.Array]] = {
        "raw name": ("names", pa.array([f"x {plain} y"])),
        "lower-case name": ("names", pa.array([plain.lower()])),
        "upper-case name": ("names", pa.array([plain.upper()])),
        "accent-stripped name": ("names", pa.array([_fold(name[0])])),
        "name in a list column": ("names", pa.array([[plain.lower()]], pa.list_(pa.string()))),
        "date of birth, date-typed": ("dates_of_birth", pa.array([dob], pa.date32())),
        "date of birth, timestamp": ("dates_of_birth",
                                     pa.array([datetime(dob.year, dob.month, dob.day)],
                                              pa.timestamp("us"))),
        "date of birth, day/month/year": ("dates_of_birth", pa.array([dob.strftime("%d/%m/%Y")])),
        "date of birth, compact": ("dates_of_birth", pa.array([dob.strftime("%Y%m%d")])),
        "date of birth, dotted": ("dates_of_birth", pa.array([dob.strftime("%d.%m.%Y")])),
        "date of birth, words": ("dates_of_birth", pa.array([dob.strftime("%d %B %Y")])),
        "phone, normalised": ("phones", pa.array([phone])),
        "phone, raw": ("phones", pa.array([raw_phone])),
    }
    for form, (kind, values) in forms.items():
        leaks = _leaks([_column("planted.x", values)], ids)
        assert leaks[kind], f"the checker misses a {form}"


def test_no_identifier_leaks_into_hub_or_contributions(pipeline: Path) -> None:
    ids = _identifiers(pipeline)
    assert len(ids["names"]) > 200 and len(ids["dates_of_birth"]) > 100 and len(ids["phones"]) > 100
    columns = _hub_columns(pipeline / "hub.duckdb")
    files = [f for f in pipeline.rglob("*") if f.is_file() and "sim" not in f.relative_to(pipeline).parts]
    assert any(f.suffix == ".parquet" for f in files) and any(f.suffix == ".html" for f in files)
    for f in files:
        columns.extend(_file_columns(f))
    assert sum(1 for c in columns if c.where.startswith("hub.")) > 20
    leaks = _leaks(columns, ids)
    assert not any(leaks.values()), leaks


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
    for title in ("At a glance", "Disclosure risk of record-level data", "Privacy budget", "Estimated total",
                  "How this was protected"):
        assert f"<h2>{title}" in html, title
    with open_store(summary.hub, read_only=True) as store:
        kinds = set(store.query("SELECT kind FROM releases").column(0).to_pylist())
        assert {"report", "dp_tables"} <= kinds
        assert store.scalar("SELECT count(DISTINCT person_id) FROM persons") < store.scalar(
            "SELECT count(*) FROM records")
