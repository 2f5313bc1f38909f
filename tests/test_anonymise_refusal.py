"""The anonymiser refuses when its independent k/l check fails, and writes nothing.

The check (``release/anonymise/check.py``) recounts the released table's classes without the
engine's data structures. Its refusal path is only reachable when the engine is wrong, so the
test makes the engine wrong: the released table is built without the chosen generalisation (as a
bug that forgot to apply it would), and the release must be refused, with exit 3 on the CLI and no
output file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pcsv
import pytest
from typer.testing import CliRunner

from accord.cli.main import app
from accord.errors import ReleaseRefused
from accord.release.anonymise import anonymise
from accord.release.anonymise import api as anon_api
from tests.anonymise_hierarchies import HIERARCHIES, QI
from tests.test_anonymise import _write_hierarchies, random_table


def _forget_generalisation(monkeypatch: pytest.MonkeyPatch) -> None:
    real = anon_api._release_table

    def broken(table: pa.Table, problem: Any, levels: tuple[int, ...], *args: Any) -> Any:
        return real(table, problem, tuple(0 for _ in levels), *args)  # ungeneralised: a bug

    monkeypatch.setattr(anon_api, "_release_table", broken)


def test_engine_is_correct_without_the_fault() -> None:
    result = anonymise(random_table(5, 300), QI, HIERARCHIES, k=5, max_suppression=0.05)
    assert result.check.k >= 5


def test_refused_when_the_independent_check_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    _forget_generalisation(monkeypatch)
    with pytest.raises(ReleaseRefused) as err:
        anonymise(random_table(5, 300), QI, HIERARCHIES, k=5, max_suppression=0.05)
    assert "independent k/l check" in err.value.message


def test_cli_refuses_with_exit_3_and_writes_nothing(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    data = tmp_path / "in.csv"
    pcsv.write_csv(random_table(5, 300), data)
    _write_hierarchies(tmp_path / "h")
    _forget_generalisation(monkeypatch)
    out = tmp_path / "out.csv"
    res = CliRunner().invoke(app, ["anonymise", str(data), "--qi", "age,sex,region",
                                   "--hierarchies", str(tmp_path / "h"), "--k", "5",
                                   "--max-suppression", "0.05", "--out", str(out)])
    assert res.exit_code == 3, res.output
    assert "independent k/l check" in res.output
    assert not out.exists()
