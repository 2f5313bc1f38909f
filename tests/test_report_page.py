"""The report a programme officer reads, the tables to take away, and the terminal tables.

The page is rendered in headless Chromium (Debian's build) where it is installed: no horizontal
overflow, no raw code in the visible text, a screenshot (copied to docs/img/ only with
ACCORD_WRITE_SCREENSHOTS=1, so a test run changes no tracked file). Without Chromium those
tests skip, unless ACCORD_REQUIRE_BROWSER=1 (set by .ci/run), where a skip is a failure.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook
from typer.testing import CliRunner

from accord.cli import common
from accord.cli.main import app
from accord.release.suppression import SuppressionRules
from accord.research.export import table_rows, write_tables
from accord.research.report.stages import publish_report
from accord.research.stats import compute_tables
from accord.store import open_store
from tests.test_stats_report import known_records, make_store, record

runner = CliRunner()
IMG = Path(__file__).resolve().parents[1] / "docs" / "img"
# Codes of the standard that must never reach the reader: snake_case codes, CTDC band codes,
# and the DP release's column names.
RAW_CODE = re.compile(r"\b[a-z]+_[a-z_]+\b|\b\d+--\d+\b|\bmoe95\b|\(missing\)")


def _hub(tmp_path: Path, rows: list[dict[str, Any]] | None = None) -> Path:
    path = tmp_path / "hub.duckdb"
    make_store(path, known_records() if rows is None else rows).close()
    return path


def _ctdc_rows(n: int = 120) -> list[dict[str, Any]]:
    """A CTDC-shaped hub: no identifiers, no ages, no dates of birth."""
    rows = []
    for i in range(n):
        r = record(i, "ctdc", sex="female" if i % 3 else "male",
                   registration_date=dt.date(2019, 1, 1))
        r.update(age=None, age_group=None, age_band_ctdc=None, majority_status=None,
                 person_pseudonym=None)
        rows.append(r)
    return rows


# --- tables to take away ---------------------------------------------------------------------

def test_stats_out_writes_published_values_only(tmp_path: Path) -> None:
    hub = _hub(tmp_path)
    out = tmp_path / "tables"
    res = runner.invoke(app, ["stats", "--hub", str(hub), "--privacy", "suppression",
                              "--out", str(out), "--hxl", "--json"])
    assert res.exit_code == 0, res.output
    with open_store(hub) as store:
        result = compute_tables(store, SuppressionRules(threshold=10))
    for table in result.tables:
        text = (out / f"{table.id}.csv").read_text(encoding="utf-8")
        rows = list(csv.reader(io.StringIO(text)))
        assert rows[1][0].startswith("#")  # the HXL hashtag row
        expected = [[str(v) for v in r] for r in table_rows(table, "s")]
        assert rows[2:] == expected
        # labels, never codes, in the label columns; hidden cells carry the mark, not a count
        assert all(r[-1] in ("published", "hidden") for r in rows[2:])
        assert all(r[-2] == "s" for r in rows[2:] if r[-1] == "hidden")
    book = load_workbook(out / "tables.xlsx", read_only=True)
    assert book.sheetnames[0] == "Read me" and len(book.sheetnames) == len(result.tables) + 1


def test_the_small_hidden_cell_never_reaches_a_file(tmp_path: Path) -> None:
    # known_records has exactly 3 boys from Myanmar: that 3 must not be anywhere in the files.
    hub = _hub(tmp_path)
    with open_store(hub) as store:
        result = compute_tables(store, SuppressionRules(threshold=10))
    files = write_tables(result, tmp_path / "t")
    table = result.table("citizenship_by_sex")
    cit = table.dims[0]
    row = next(r for r in table_rows(table, "s") if r[1] == "MM" and r[3] == "male")
    assert row[-2] == "s"
    assert all(p.exists() for p in files)
    assert "MM" in cit.codes


def test_stats_hxl_needs_out(tmp_path: Path) -> None:
    res = runner.invoke(app, ["stats", "--hub", str(_hub(tmp_path)), "--hxl"])
    assert res.exit_code == 2 and "--out" in res.output


# --- terminal tables ---------------------------------------------------------------------------

def test_terminal_tables_never_truncate_at_80_columns(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    hub = _hub(tmp_path)
    monkeypatch.setattr(common.console, "_width", 80)
    res = runner.invoke(app, ["stats", "--hub", str(tmp_path / "hub.duckdb"), "--privacy",
                              "suppression"])
    assert res.exit_code == 0, res.output
    assert "…" not in res.output
    assert max(len(line) for line in res.output.splitlines()) <= 80
    with open_store(hub) as store:
        result = compute_tables(store, SuppressionRules(threshold=10))
    for table in result.tables:  # every published number is printed whole
        for r in table_rows(table, "s"):
            if isinstance(r[-2], int):
                assert f"{r[-2]:,}" in res.output


# --- the page ----------------------------------------------------------------------------------

def _report(tmp_path: Path, rows: list[dict[str, Any]] | None = None,
            method: str = "dp") -> str:
    hub = _hub(tmp_path, rows)
    out = tmp_path / "report.html"
    with open_store(hub) as store:
        publish_report(store, out, SuppressionRules(threshold=10), method=method)
    return out.read_text(encoding="utf-8")


def test_report_starts_with_the_answer_and_shows_one_figure_per_quantity(tmp_path: Path) -> None:
    html = _report(tmp_path)
    assert html.index('id="glance"') < html.index('id="tables"')
    assert "People registered" in html and "Partners contributing" in html
    assert "<details>" in html and "tables.xlsx" in html
    # the DP page marks hidden cells as <10 and never as the suppression mark
    assert ">s<" not in html and "&lt;10" in html
    # the DP release's long-format rows are not repeated on the page
    assert "moe95" not in html and "rho 0.01178" not in html


def test_ctdc_shaped_hub_says_not_recorded(tmp_path: Path) -> None:
    html = _report(tmp_path, _ctdc_rows(), method="suppression")
    assert "No pyramid" in html and "not recorded in these data" in html
    assert "Not recorded" in html  # children: age unknown, not zero
    assert "were consumed at each partner" not in html
    assert "arrived without identifiers" in html
    assert "<svg" not in html.split('id="pyramid"')[1].split("</section>")[0]


def test_tiny_hub_says_what_is_missing(tmp_path: Path) -> None:
    html = _report(tmp_path, [record(i) for i in range(4)], method="dp")
    assert "Too few people in this hub" in html


def _browser() -> str | None:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        if os.environ.get("ACCORD_REQUIRE_BROWSER") == "1":
            pytest.fail("Chromium is required here (ACCORD_REQUIRE_BROWSER=1)")
        pytest.skip("Chromium is not installed (apt-get install chromium)")
    return found


_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
          "--disable-component-update", "--no-first-run", "--disable-sync",
          "--hide-scrollbars"]

# Appended to a copy of the page: opens every collapsed table, then writes what the test
# checks into the DOM, which --dump-dom prints after the scripts have run.
_PROBE = """<script>
document.querySelectorAll("details").forEach((d) => { d.open = true; });
const probe = document.createElement("pre");
probe.id = "probe";
probe.textContent = JSON.stringify({
  overflow: document.documentElement.scrollWidth - document.documentElement.clientWidth,
  text: document.body.innerText});
document.body.appendChild(probe);
</script>"""


def _probe(browser: str, page: Path, width: int, tmp_path: Path) -> dict[str, Any]:
    import html as html_mod
    import json

    probed = tmp_path / f"probe-{width}.html"
    probed.write_text(page.read_text(encoding="utf-8").replace("</body>", _PROBE + "</body>"),
                      encoding="utf-8")
    out = subprocess.run([browser, *_FLAGS, f"--window-size={width},900",
                          f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom",
                          probed.as_uri()], capture_output=True, text=True, timeout=120,
                         check=True).stdout
    m = re.search(r'<pre id="probe">(.*?)</pre>', out, re.S)
    assert m, "the probe did not run"
    data: dict[str, Any] = json.loads(html_mod.unescape(m.group(1)))
    return data


@pytest.mark.slow
@pytest.mark.parametrize("shape", ["demo", "ctdc"])
def test_report_in_chromium(tmp_path: Path, shape: str) -> None:
    browser = _browser()
    assert browser is not None
    rows = None if shape == "demo" else _ctdc_rows()
    html = _report(tmp_path, rows, method="dp" if shape == "demo" else "suppression")
    page = tmp_path / "report.html"
    assert page.read_text(encoding="utf-8") == html
    for width in (1280, 420):
        data = _probe(browser, page, width, tmp_path)
        assert data["overflow"] <= 0, f"horizontal overflow at {width}px"
        # partner names are the hub's own names for its partners, not codes of the standard
        text = re.sub(r"\b(ngo_a|agency_b|ctdc)\b", "", data["text"])
        codes = sorted(set(RAW_CODE.findall(text)))
        assert not codes, f"raw codes in the visible text: {codes[:10]}"
    shot = tmp_path / "shot.png"
    subprocess.run([browser, *_FLAGS, "--window-size=1280,1600",
                    f"--user-data-dir={tmp_path / 'profile2'}", f"--screenshot={shot}",
                    page.as_uri()], capture_output=True, timeout=120, check=True)
    assert shot.stat().st_size > 10_000
    if os.environ.get("ACCORD_WRITE_SCREENSHOTS") == "1":
        IMG.mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, IMG / f"report-{shape}.png")
