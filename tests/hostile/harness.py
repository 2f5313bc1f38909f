"""Run `accord ingest` on a generated hostile export and check what must hold for any input.

Every case is generated from two small simulated partners (nothing large is committed). Whatever
the file, the command must exit 0 (ingested, every row accounted for) or 2 (refused with a
message and a hint, nothing written), never 70 (a traceback); no simulated identifier may appear in
what it prints, in a finding's reason or detail, or in the contribution; the quarantine report
must not hold a live formula; memory and time stay within generous bounds.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import yaml

from accord.safe_csv import neutralise
from accord.standard import load_standard

ACCORD = str(Path(sys.executable).with_name("accord"))
MAX_RSS_MB = 1536  # the ingest memory target: 1.5 GB whatever the file
MAX_SECONDS = 600


@dataclass
class Run:
    exit_code: int
    stdout: str
    stderr: str
    rss_mb: float
    seconds: float
    out: Path
    quarantine: Path

    @property
    def summary(self) -> dict[str, Any]:
        return dict(json.loads(self.stdout))

    @property
    def text(self) -> str:
        return self.stdout + "\n" + self.stderr


def run_accord(args: list[str], cwd: Path, timeout: float = MAX_SECONDS,
               env: dict[str, str] | None = None) -> tuple[int, str, str, float, float]:
    """Run the installed `accord` (through its real entry point, so exit 70 is what a user would see),
    with ``env`` added to the environment; returns exit code, stdout, stderr, peak RSS of the child in
    MB and wall seconds."""
    env = {**os.environ, "COLUMNS": "200", "ACCORD_PROGRESS": "0", **(env or {})}
    env.pop("ACCORD_DEBUG", None)
    start = time.monotonic()
    proc = subprocess.Popen([ACCORD, *args], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                            text=True, encoding="utf-8", errors="replace")
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise AssertionError(f"accord {' '.join(args[:1])} ran longer than {timeout} s") from None
    # wait4 has already been done by communicate(); the child's peak RSS is in RUSAGE_CHILDREN, which
    # is the maximum over all children so far: an upper bound on this child's, good enough for a limit.
    import resource

    rss_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return proc.returncode, out, err, rss_mb, time.monotonic() - start


def ingest(export: Path, mapping: Path, key: Path, work: Path, timeout: float = MAX_SECONDS) -> Run:
    name = uuid.uuid4().hex[:8]
    out = work / f"{name}.contribution"
    quarantine = work / f"{name}.quarantine.csv"
    code, stdout, stderr, rss, seconds = run_accord(
        ["ingest", str(export), "--mapping", str(mapping), "--partner", "hostile", "--key-file", str(key),
         "--out", str(out), "--quarantine", str(quarantine), "--json"], cwd=work, timeout=timeout)
    return Run(code, stdout, stderr, rss, seconds, out, quarantine)


@dataclass
class Sensitive:
    """Every identifier value the case's export holds (and anything else a case adds, e.g. sheet names)."""

    values: set[str] = field(default_factory=set)

    def add(self, *values: str) -> None:
        for v in values:
            v = v.strip()
            # Short values ("F", "12") occur in any text; identifiers are longer.
            if len(v) >= 5 and v not in ("-99", "None"):
                self.values.add(v)

    def found_in(self, text: str) -> list[str]:
        return sorted(v for v in self.values if v in text)


def identifier_columns(mapping: Path) -> list[str]:
    doc = yaml.safe_load(mapping.read_text(encoding="utf-8"))
    names = {f.name for f in load_standard().identifiers}
    return [fm["column"] for f, fm in doc["fields"].items() if f in names and "column" in fm]


def check_run(run: Run, secrets: Sensitive, expected_rows: int | None = None,
              allowed: tuple[int, ...] = (0, 2)) -> None:
    """The invariants of every case."""
    assert run.exit_code in allowed, f"exit {run.exit_code} (allowed {allowed}):\n{run.text[-3000:]}"
    assert run.exit_code != 70 and "Traceback" not in run.text, run.text[-3000:]
    leaked = secrets.found_in(run.text)
    assert not leaked, f"{len(leaked)} record value(s) printed"
    assert run.rss_mb < MAX_RSS_MB, f"peak memory {run.rss_mb:,.0f} MB"
    if run.exit_code != 0:
        assert "error:" in run.stderr and "what to do:" in run.stderr, run.stderr
        assert not run.out.exists(), "a refused file left a contribution behind"
        assert not run.quarantine.exists(), "a refused file left a quarantine report behind"
        return
    s = run.summary
    assert s["rows_in"] == s["accepted"] + s["quarantined"], s
    if expected_rows is not None:
        assert s["rows_in"] + s["blank_rows"] == expected_rows, s
    for notice in s.get("notices", {}):
        assert not secrets.found_in(notice)
    _check_contribution(run.out, secrets)
    _check_quarantine(run.quarantine, secrets)


def _check_contribution(out: Path, secrets: Sensitive) -> None:
    identifiers = {f.name for f in load_standard().identifiers}
    for part in sorted(out.rglob("*.parquet")):
        table = pq.read_table(part)
        assert not identifiers & set(table.column_names), part
        for name in table.column_names:
            values = {str(v) for v in table[name].to_pylist() if v is not None}
            assert not values & secrets.values, f"identifier values in {part.name}:{name}"
    for meta in out.rglob("*.json"):
        assert not secrets.found_in(meta.read_text(encoding="utf-8")), meta.name


def _check_quarantine(path: Path, secrets: Sensitive) -> None:
    with path.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    for row in rows:
        for key in ("field", "reason", "detail"):
            assert not secrets.found_in(row[key] or ""), f"a record value in the quarantine report's {key}"
        for cell in row.values():
            assert neutralise(cell) == cell or cell.startswith("'"), "a live formula in the quarantine report"
