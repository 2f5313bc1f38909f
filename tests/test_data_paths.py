"""CI cannot pass by skipping: shared-data skips fail when ACCORD_REQUIRE_SHARED_DATA=1."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from tests.data_paths import REQUIRE_ENV, is_shared_data_skip

ROOT = Path(__file__).resolve().parents[1]


def test_every_shared_data_skip_reason_is_recognised() -> None:
    for reason in ("../shared/data is absent (public benchmark data); these tests need it",
                   "shared MSE data (../shared/data/mse) not present",
                   "ARX adult data not found (set ACCORD_SHARED_DATA)",
                   "sdcMicro example data not found (set ACCORD_SHARED_DATA)",
                   "CTDC 2020 data not available (set ACCORD_SHARED_DATA)"):
        assert is_shared_data_skip(reason), reason
    assert not is_shared_data_skip("needs the ingest command")


def test_ci_sets_the_variable() -> None:
    assert f"export {REQUIRE_ENV}=1" in (ROOT / ".ci" / "run").read_text()


def _run(tmp_path: Path, require: bool) -> subprocess.CompletedProcess[str]:
    # A throwaway test module that skips like the shared-data tests do, run with this conftest.
    test = tmp_path / "tests" / "test_skipper.py"
    test.parent.mkdir(parents=True, exist_ok=True)
    test.write_text(textwrap.dedent("""
        import pytest

        def test_needs_data():
            pytest.skip("ARX adult data not found (set ACCORD_SHARED_DATA)")

        def test_other_skip():
            pytest.skip("not on this platform")
    """))
    (tmp_path / "tests" / "conftest.py").write_text(
        (ROOT / "tests" / "conftest.py").read_text())
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "HOME": str(tmp_path)}
    if require:
        env[REQUIRE_ENV] = "1"
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           "-p", "no:randomly", str(test)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)


def test_skip_becomes_failure_only_when_required(tmp_path: Path) -> None:
    required = _run(tmp_path, True)
    assert required.returncode == 1, required.stdout
    assert "1 failed, 1 skipped" in required.stdout
    relaxed = _run(tmp_path, False)
    assert relaxed.returncode == 0 and "2 skipped" in relaxed.stdout, relaxed.stdout
