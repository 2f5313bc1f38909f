"""Where the public benchmark data lives: $ACCORD_SHARED_DATA, ../shared/data, /work/shared/data."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any


def _find() -> Path:
    env = os.environ.get("ACCORD_SHARED_DATA")
    candidates = [Path(env)] if env else []
    candidates += [Path(__file__).resolve().parents[2] / "shared" / "data", Path("/work/shared/data")]
    return next((c for c in candidates if c.is_dir()), candidates[0])


# Tests that need a file under it skip with a reason when the file is absent.
SHARED_DATA = _find()

# CI gives the tests the shared data and sets this, so a test that would skip for want of it fails
# instead: missing data must not pass as green (issue 17).
REQUIRE_ENV = "ACCORD_REQUIRE_SHARED_DATA"
_SHARED_REASON = re.compile(r"shared[ _/]?data|ACCORD_SHARED_DATA", re.IGNORECASE)


def is_shared_data_skip(reason: str) -> bool:
    """Whether a skip reason says the public benchmark data are missing."""
    return bool(_SHARED_REASON.search(reason))


def fail_missing_shared_data(report: Any, environ: dict[str, str] | None = None) -> None:
    """Turn a shared-data skip into a failure when ``ACCORD_REQUIRE_SHARED_DATA=1``."""
    env = os.environ if environ is None else environ
    if env.get(REQUIRE_ENV) != "1" or not report.skipped:
        return
    longrepr = report.longrepr
    reason = longrepr[2] if isinstance(longrepr, tuple) and len(longrepr) == 3 else str(longrepr)
    if is_shared_data_skip(reason):
        report.outcome = "failed"
        report.longrepr = f"{REQUIRE_ENV}=1 but the shared data are missing: {reason}"
