"""The directories that hold the encodings shipped to Spark (accord.store.spark_ship) never outlive
their run: removed on close and when collected, and, when the driver was killed outright, by the
next shipment; never another live run's. Real processes, killed with SIGKILL; no Spark needed
(tests/test_spark.py ships through a real session)."""

from __future__ import annotations

import gc
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from accord.errors import AccordError
from accord.store.spark_ship import (
    PREFIX,
    LocalDirs,
    ShipDir,
    ShipDirError,
    configured_local_dirs,
    remove_stale,
    ship_dir_in,
)
from tests.hostile.harness import run_accord
from tests.test_spark import REQUIRED, _spark_missing

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


def test_a_local_dir_that_cannot_hold_the_files_is_a_clear_error(tmp_path: Path) -> None:
    """A path under a regular file cannot be made, even by root: an AccordError that names the
    setting and says what to do, not an OSError on a directory the user never gave."""
    (tmp_path / "a-file").write_bytes(b"")
    bad, worse, good = tmp_path / "a-file" / "spark", tmp_path / "a-file" / "more", tmp_path / "ok"
    good.mkdir()
    with pytest.raises(ShipDirError) as err:
        ShipDir(bad)
    assert isinstance(err.value, AccordError)
    assert err.value.message == (f"cannot make a directory for the files shipped to Spark under "
                                 f"spark.local.dir {bad}: Not a directory")
    assert err.value.hint and "--spark-conf spark.local.dir=DIR" in err.value.hint
    # Of several directories, as Spark does, the first that works.
    ship = ship_dir_in(f"{bad},{good}")
    assert ship.path.parent == good
    ship.close()
    with pytest.raises(ShipDirError) as err:
        ship_dir_in(f"{bad},{worse}")
    assert f"spark.local.dir {bad}: Not a directory; nor under the other 1 " in err.value.message
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file", "ok"]


@pytest.mark.slow
def test_the_cli_ships_to_a_local_dir_spark_can_use_or_says_which_setting_to_fix(
        tmp_path: Path) -> None:
    """Through the installed CLI (a new Spark context each run, so spark.local.dir applies)."""
    missing = _spark_missing()
    if missing:
        if REQUIRED:
            pytest.fail(f"ACCORD_REQUIRE_SPARK=1 but {missing}")
        pytest.skip(missing)
    (tmp_path / "in.csv").write_text("a,b\n" + "1,x\n2,y\n1,y\n" * 5, encoding="utf-8")
    (tmp_path / "a-file").write_bytes(b"")
    bad, good = tmp_path / "a-file" / "spark", tmp_path / "ok"
    good.mkdir()
    risk = ["risk", "--data", "in.csv", "--qi", "a", "--json", "--engine", "spark",
            "--spark-master", "local[1]"]
    # Spark skips a listed directory it cannot create: so does the shipment (it took the first
    # one, and the command failed on a path the user never gave).
    code, out, err, _, _ = run_accord([*risk, "--spark-conf", f"spark.local.dir={bad},{good}"],
                                      cwd=tmp_path)
    assert code == 0, err
    assert json.loads(out)["records"] == 15
    # SPARK_LOCAL_DIRS comes before spark.local.dir, in Spark and in the shipment: Spark runs in
    # it and so do the shipped files (they were put under spark.local.dir, which Spark did not
    # use: here one that cannot be made, and the run failed). Removed at the end as ever.
    code, out, err, _, _ = run_accord([*risk, "--spark-conf", f"spark.local.dir={bad}"],
                                      cwd=tmp_path, env={"SPARK_LOCAL_DIRS": str(good)})
    assert code == 0, err
    assert json.loads(out)["records"] == 15
    assert not [p for p in good.iterdir() if p.name.startswith(PREFIX)]
    # No usable directory at all: Spark itself stops; the hint points at the settings, not only
    # at installing Java and pyspark (both are here).
    for setting, env in (([f"spark.local.dir={bad}"], None), ([f"spark.local.dir={good}"],
                                                              {"SPARK_LOCAL_DIRS": str(bad)})):
        code, _, err, _, _ = run_accord([*risk, "--spark-conf", *setting], cwd=tmp_path, env=env)
        assert code == 2, err
        said = " ".join(err.split())
        assert "Spark could not start" in said, err
        assert ("a local directory that cannot be created, in SPARK_LOCAL_DIRS or else in "
                "spark.local.dir, stops Spark") in said, err
        assert "Traceback" not in err and "unexpected" not in err


def test_local_dirs_follow_sparks_order(tmp_path: Path) -> None:
    """Spark's Utils.getConfiguredLocalDirs: a YARN container's LOCAL_DIRS, SPARK_EXECUTOR_DIRS
    (path-separated), SPARK_LOCAL_DIRS, and only then spark.local.dir; the shipment follows it
    and names the setting in force when none of its directories can hold the files."""
    def env(**values: str) -> Any:
        return values.get

    assert configured_local_dirs(env(), "/a, /b") == LocalDirs(("/a", "/b"), "spark.local.dir")
    assert configured_local_dirs(env(), None) == LocalDirs((), "spark.local.dir")
    local = configured_local_dirs(env(SPARK_LOCAL_DIRS="/s1,/s2"), "/a")
    assert local == LocalDirs(("/s1", "/s2"), "SPARK_LOCAL_DIRS")
    assert configured_local_dirs(env(SPARK_LOCAL_DIRS="/s", SPARK_EXECUTOR_DIRS=f"/e1{os.pathsep}/e2"),
                                 "/a").dirs == ("/e1", "/e2")
    yarn = env(CONTAINER_ID="c1", LOCAL_DIRS="/y", SPARK_LOCAL_DIRS="/s")
    assert configured_local_dirs(yarn, "/a").dirs == ("/y",)
    assert configured_local_dirs(env(LOCAL_DIRS="/y"), "/a").dirs == ("/a",)  # not in YARN
    (tmp_path / "a-file").write_bytes(b"")
    bad, good = tmp_path / "a-file" / "spark", tmp_path / "ok"
    good.mkdir()
    ship = ship_dir_in(configured_local_dirs(env(SPARK_LOCAL_DIRS=str(good)), str(bad)))
    assert ship.path.parent == good
    ship.close()
    with pytest.raises(ShipDirError) as err:
        ship_dir_in(configured_local_dirs(env(SPARK_LOCAL_DIRS=str(bad)), str(good)))
    assert f"under SPARK_LOCAL_DIRS {bad}: Not a directory" in err.value.message
    assert err.value.hint and err.value.hint.startswith("set SPARK_LOCAL_DIRS to existing directories")
