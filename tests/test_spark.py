"""The Spark engine gives the embedded engine's linkage exactly (local mode, small data), and
refuses what it must: no Java or pyspark (a clear message), a linkage secret in its settings."""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from accord.cli.main import app
from accord.errors import AccordError
from accord.link.blocking import BlockingConfig, candidate_codes
from accord.link.match import MatchConfig, match_sets
from accord.link.spark import (
    SecretOnClusterError,
    SparkEngine,
    SparkSettings,
    SparkUnavailableError,
    check_java,
    java_version,
    parse_conf,
    refuse_secrets,
    start_session,
)
from accord.protect.encoding import LinkageSecret, new_linkage_secret
from tests.linkage_data import encode_rows, generate

SECRET = LinkageSecret(b"s" * 32)
REQUIRED = os.environ.get("ACCORD_REQUIRE_SPARK") == "1"  # set by .ci/run: skipping is failing


def _spark_missing() -> str | None:
    try:
        import pyspark  # noqa: F401
    except ImportError:
        return "pyspark is not installed (pip install 'accord[spark]')"
    version = java_version()
    if version is None or version < 17:
        return "Java 17 is not installed (apt-get install openjdk-17-jre-headless)"
    return None


@pytest.fixture(scope="session")
def spark() -> Iterator[object]:
    """One local[2] session for every Spark test (starting one costs seconds)."""
    missing = _spark_missing()
    if missing:
        if REQUIRED:
            pytest.fail(f"ACCORD_REQUIRE_SPARK=1 but {missing}")
        pytest.skip(missing)
    session = start_session(SparkSettings("local[2]", (("spark.sql.shuffle.partitions", "4"),)))
    yield session
    session.stop()


@pytest.fixture(scope="module")
def sets() -> tuple:
    a_rows, b_rows, _ = generate(1500, seed=11)
    return encode_rows(a_rows, SECRET, 1), encode_rows(b_rows, SECRET, 2)


@pytest.mark.slow
def test_spark_gives_the_same_candidates_and_links(spark: object, sets: tuple) -> None:
    a, b = sets
    engine = SparkEngine(spark, partitions=4)
    cfg = BlockingConfig()
    embedded = candidate_codes(a, b, cfg)
    assert len(embedded) > len(a)  # blocking ran (not all pairs) and found candidates
    assert np.array_equal(candidate_codes(a, b, cfg, engine=engine), embedded)
    # Fewer partitions than buckets or more: the same pairs (a partition holds whole buckets).
    assert np.array_equal(candidate_codes(a, b, cfg, engine=SparkEngine(spark, 1)), embedded)
    one = match_sets(a, b, MatchConfig())
    two = match_sets(a, b, MatchConfig(engine=engine))
    assert len(one.ia) > 0.3 * len(a)
    assert np.array_equal(one.ia, two.ia) and np.array_equal(one.ib, two.ib)
    assert np.array_equal(one.score, two.score) and one.candidates == two.candidates


def _hub(tmp: Path) -> Path:
    from accord.protect.encoding.pipeline import pipeline_encoder
    from accord.protect.job import build_contribution
    from accord.protect.keys import create_partner_key
    from accord.simulate import SimulationConfig, simulate
    from accord.store import open_store
    from accord.store.hub import add_contribution

    secret = new_linkage_secret(tmp / "linkage.key")
    sim = simulate(SimulationConfig(people=300, partners=2, overlap=0.4, seed=5,
                                    out=tmp / "exports", format_a="csv"))
    hub = tmp / "hub.duckdb"
    with open_store(hub) as store:
        for files in sim.partners:
            home = tmp / "partners" / files.partner
            key = create_partner_key(home / "partner.key", force=True)
            enc = pipeline_encoder(secret)
            build_contribution(files.export, files.mapping, files.partner.replace("_", "-"),
                               home / "contribution", key, linkage_encoder=enc.encode,
                               linkage_meta=enc.manifest)
            add_contribution(store, home / "contribution")
    return hub


def _persons(hub: Path) -> list[tuple]:
    from accord.store import open_store

    with open_store(hub) as store:
        rows = store.query("SELECT person_id, partner, record_key FROM persons "
                           "ORDER BY partner, record_key").to_pylist()
    return [(r["person_id"], r["partner"], r["record_key"]) for r in rows]


@pytest.mark.slow
def test_cli_link_on_spark_gives_the_same_persons(spark: object, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    hub = _hub(tmp_path)
    # Blocking even on this small hub, so the engine is the one doing the band work.
    monkeypatch.setattr("accord.cli.link_cmd.MatchConfig",
                        functools.partial(MatchConfig, exhaustive_below=0))
    runner = CliRunner()
    res = runner.invoke(app, ["link", "--hub", str(hub), "--json"])
    assert res.exit_code == 0, res.output
    embedded = _persons(hub)
    res = runner.invoke(app, ["link", "--hub", str(hub), "--json", "--engine", "spark",
                              "--spark-master", "local[2]",
                              "--spark-conf", "spark.sql.shuffle.partitions=3"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["persons"] < len(embedded)  # some records were linked
    assert _persons(hub) == embedded


def test_spark_settings_carrying_the_linkage_secret_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "linkage.key"
    new_linkage_secret(path)
    for conf in ((("spark.files", f"/data/a.parquet,{path}"),),
                 (("spark.executorEnv.ACCORD_LINKAGE_SECRET_FILE", "/x"),),
                 (("spark.executorEnv.ACCORD_KEY_FILE", "/partner.key"),)):
        with pytest.raises(SecretOnClusterError) as err:
            start_session(SparkSettings("local[1]", conf))
        assert "partners" in (err.value.hint or "")
    refuse_secrets(SparkSettings("local[1]", (("spark.files", str(tmp_path / "a.parquet")),)))
    res = CliRunner().invoke(app, ["link", "--hub", str(tmp_path / "h.duckdb"), "--engine",
                                   "spark", "--spark-conf", f"spark.files={path}"])
    assert res.exit_code == 2 and "secret" in res.output and "Traceback" not in res.output


def test_missing_or_old_java_says_what_to_install(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    old = tmp_path / "java"
    old.write_text('#!/bin/sh\necho \'openjdk version "11.0.2" 2019-01-15\' >&2\n')
    old.chmod(0o755)
    assert java_version(str(old)) == 11
    with pytest.raises(SparkUnavailableError) as err:
        check_java(str(old))
    assert "17" in str(err.value) and "openjdk-17-jre-headless" in (err.value.hint or "")
    monkeypatch.setenv("JAVA_HOME", str(tmp_path / "nowhere"))
    with pytest.raises(SparkUnavailableError) as err:
        check_java()
    assert "openjdk-17-jre-headless" in (err.value.hint or "")
    monkeypatch.setenv("JAVA_HOME", str(tmp_path))  # bin/java absent under it
    with pytest.raises(SparkUnavailableError):
        start_session(SparkSettings("local[1]"))


def test_bad_spark_conf_is_a_clear_error() -> None:
    assert parse_conf(["a.b=1", "c = x=y"]) == (("a.b", "1"), ("c", "x=y"))
    with pytest.raises(AccordError):
        parse_conf(["spark.executor.memory"])


def test_core_works_without_pyspark(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('pyspark', 'py4j'):\n"
        "            raise ImportError('blocked')\n"
        "sys.meta_path.insert(0, Block())\n"
        "import accord.cli.main, accord.link\n"
        "from accord.link.spark import SparkSettings, start_session\n"
        "from accord.errors import AccordError\n"
        "try:\n"
        "    start_session(SparkSettings('local[1]'))\n"
        "except AccordError as e:\n"
        "    print('refused:', e, '|', e.hint)\n"
        "assert 'pyspark' not in sys.modules\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=300, check=True).stdout
    assert "refused:" in out and "accord[spark]" in out
