"""The directories that hold the encodings shipped to Spark (accord.store.spark_ship) never outlive
their run: removed on close and when collected, and, when the driver was killed outright, by the
next shipment; never another live run's. Real processes, killed with SIGKILL; no Spark needed
(tests/test_spark.py ships through a real session)."""

from __future__ import annotations

import gc
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from accord.store.spark_ship import PREFIX, ShipDir, remove_stale

# A driver that makes its directory, puts an "encoding" in it, says where, and waits to be killed.
_OWNER = """
import sys, time
from accord.store.spark_ship import ShipDir
d = ShipDir(sys.argv[1])
(d.path / "accord-part-0.arrow").write_bytes(b"codes")
print(d.path, flush=True)
time.sleep(600)
"""


@pytest.fixture
def owners() -> Iterator[list[subprocess.Popen[str]]]:
    procs: list[subprocess.Popen[str]] = []
    yield procs
    for p in procs:  # only the processes this test started
        if p.poll() is None:
            p.kill()
        p.wait()


def _owner(base: Path, procs: list[subprocess.Popen[str]]) -> tuple[subprocess.Popen[str], Path]:
    p = subprocess.Popen([sys.executable, "-c", _OWNER, str(base)], stdout=subprocess.PIPE,
                         text=True)
    procs.append(p)
    assert p.stdout is not None
    path = Path(p.stdout.readline().strip())
    assert path.is_dir() and path.name.startswith(PREFIX)
    return p, path


def test_a_killed_drivers_directory_goes_a_live_ones_stays(
        tmp_path: Path, owners: list[subprocess.Popen[str]]) -> None:
    dead, dead_dir = _owner(tmp_path, owners)
    _, live_dir = _owner(tmp_path, owners)
    older = tmp_path / f"{PREFIX}older"  # an older Accord's (no lock): no way to tell, left
    older.mkdir()
    os.kill(dead.pid, signal.SIGKILL)
    dead.wait()
    assert (dead_dir / "accord-part-0.arrow").exists()  # a kill leaves it behind...

    ship = ShipDir(tmp_path)  # ...and the next shipment removes it
    assert ship.removed_stale == [dead_dir]
    assert not dead_dir.exists()
    assert (live_dir / "accord-part-0.arrow").exists() and older.exists()
    # Ours is live as well: another process's shipment does not take it.
    assert remove_stale(tmp_path) == [] and ship.path.is_dir()
    ship.close()
    assert not ship.path.exists() and ship.closed


def test_a_directory_is_removed_on_close_on_error_and_when_collected(tmp_path: Path) -> None:
    ship = ShipDir(tmp_path)
    (ship.path / "part").write_bytes(b"codes")
    ship.close()
    ship.close()  # twice is fine
    assert list(tmp_path.iterdir()) == []

    def fails() -> None:
        ShipDir(tmp_path)
        raise RuntimeError("the job failed")

    with pytest.raises(RuntimeError):
        fails()
    gc.collect()
    assert list(tmp_path.iterdir()) == []


def test_a_claim_left_by_a_crash_before_its_lock_goes_once_old(tmp_path: Path) -> None:
    fresh = tmp_path / ".accord-ship-new-fresh"  # maybe being set up now: left
    fresh.mkdir()
    old = tmp_path / ".accord-ship-new-old"
    old.mkdir()
    os.utime(old, (1_000_000_000, 1_000_000_000))
    assert remove_stale(tmp_path) == [old]
    assert fresh.exists()
