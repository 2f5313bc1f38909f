"""Where the public benchmark data lives: $ACCORD_SHARED_DATA, ../shared/data, /work/shared/data."""

from __future__ import annotations

import os
from pathlib import Path


def _find() -> Path:
    env = os.environ.get("ACCORD_SHARED_DATA")
    candidates = [Path(env)] if env else []
    candidates += [Path(__file__).resolve().parents[2] / "shared" / "data", Path("/work/shared/data")]
    return next((c for c in candidates if c.is_dir()), candidates[0])


# Tests that need a file under it skip with a reason when the file is absent.
SHARED_DATA = _find()
