"""Protect and the hub: keyed pseudonyms, verified contributions, all-or-nothing batches."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from accord.cli.main import app
from accord.errors import AccordError, ContributionError
from accord.protect.job import build_contribution
from accord.protect.keys import PartnerKey, create_partner_key, load_partner_key
from accord.protect.normalise import normalise_name
from accord.protect.pseudonym import hmac_column
from accord.store import add_contribution, open_store
from tests.conftest import EXPECTED_ACCEPTED, write_case_export


def _contribution(tmp_path: Path, case_export: tuple[Path, Path], key: PartnerKey, name: str = "c") -> Path:
    export, mapping = case_export
    out = tmp_path / name
    build_contribution(export, mapping, "ngo-b", out, key)
    return out


def test_hmac_in_duckdb_matches_python(partner_key: PartnerKey) -> None:
    msgs = ["", "case|A1", "person|maría|lópez|1990-04-03|female", None, "x" * 500]
    got = hmac_column(pa.array(msgs, pa.string()), partner_key).to_pylist()
    want = [None if m is None else hmac.new(partner_key.secret, m.encode(), hashlib.sha256).hexdigest()
            for m in msgs]
    assert got == want


@settings(deadline=None)  # tests never assert timings; the shared machine's load made this flaky
@given(st.text(max_size=30))
def test_name_normalisation_is_idempotent(text: str) -> None:
    once = normalise_name(text)
    assert normalise_name(once) == once
    assert once == once.strip() and "  " not in once


def test_normalisation_examples() -> None:
    assert normalise_name("  José-María  O'Brien ") == "jose maria obrien"
    assert normalise_name("ＭＯＨＡＭＭＥＤ") == "mohammed"  # full-width (NFKC)
    assert normalise_name("Nguyễn Thị") == "nguyen thi"


def test_key_file_is_private_and_required(tmp_path: Path) -> None:
    path = tmp_path / "k.key"
    key = create_partner_key(path)
    assert (path.stat().st_mode & 0o777) == 0o600
    assert base64.b64encode(key.secret).decode() not in repr(key) and key.secret.hex() not in repr(key)
    with pytest.raises(AccordError, match="already exists"):
        create_partner_key(path)
    assert load_partner_key(path).secret == key.secret


def test_keys_cli_and_no_secret_in_outputs(runner: CliRunner, tmp_path: Path, case_export: tuple[Path, Path]) -> None:
    key_path = tmp_path / "partner.key"
    result = runner.invoke(app, ["keys", "init", "--key-file", str(key_path)])
    assert result.exit_code == 0, result.output
    key = load_partner_key(key_path)
    export, mapping = case_export
    out = tmp_path / "c"
    hub = tmp_path / "hub.duckdb"
    result = runner.invoke(app, ["ingest", str(export), "--mapping", str(mapping), "--partner", "p",
                                 "--out", str(out), "--key-file", str(key_path)])
    assert result.exit_code == 0, result.output
    assert runner.invoke(app, ["hub", "add", str(out), "--hub", str(hub)]).exit_code == 0
    secret_forms = [key.secret, base64.b64encode(key.secret), key.secret.hex().encode()]
    for path in [*out.iterdir(), hub, tmp_path / "c.quarantine.csv"]:
        blob = path.read_bytes()
        for form in secret_forms:
            assert form not in blob, path
    assert all(form.decode("latin-1") not in result.output for form in secret_forms)


def test_pseudonyms_are_partner_scoped(tmp_path: Path, case_export: tuple[Path, Path]) -> None:
    k1 = create_partner_key(tmp_path / "k1")
    k2 = create_partner_key(tmp_path / "k2")
    a = pq.read_table(_contribution(tmp_path, case_export, k1, "a") / "records.parquet")
    b = pq.read_table(_contribution(tmp_path, case_export, k2, "b") / "records.parquet")
    assert set(a["person_pseudonym"].to_pylist()).isdisjoint(b["person_pseudonym"].to_pylist())
    a2 = pq.read_table(_contribution(tmp_path, case_export, k1, "a2") / "records.parquet")
    assert a["record_key"].to_pylist() == a2["record_key"].to_pylist()


def test_hub_add_is_idempotent_and_updates(tmp_path: Path, case_export: tuple[Path, Path],
                                           partner_key: PartnerKey, runner: CliRunner, hub: str) -> None:
    first = _contribution(tmp_path, case_export, partner_key, "first")
    r = runner.invoke(app, ["hub", "add", str(first), "--hub", str(hub), "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)[0]["added"] == EXPECTED_ACCEPTED
    r = runner.invoke(app, ["hub", "add", str(first), "--hub", str(hub)])
    assert r.exit_code == 0 and "already in the hub" in r.output
    # The same export ingested again is a new batch whose records update the earlier ones.
    again = _contribution(tmp_path, case_export, partner_key, "again")
    with open_store(hub) as store:
        outcome = add_contribution(store, again)
        assert outcome.replaced == EXPECTED_ACCEPTED
        assert store.scalar("SELECT count(*) FROM records") == EXPECTED_ACCEPTED
        assert store.scalar("SELECT count(*) FROM batches") == 2
    status = runner.invoke(app, ["hub", "status", "--hub", str(hub), "--json"])
    assert status.exit_code == 0 and len(json.loads(status.stdout)["batches"]) == 2


@pytest.mark.parametrize("damage", ["flip_byte", "truncate", "extra_file", "drop_manifest", "bad_counts"])
def test_damaged_contributions_are_refused(damage: str, tmp_path: Path, case_export: tuple[Path, Path],
                                           partner_key: PartnerKey, runner: CliRunner, hub: str) -> None:
    c = _contribution(tmp_path, case_export, partner_key)
    data = c / "records.parquet"
    if damage == "flip_byte":
        b = bytearray(data.read_bytes())
        b[len(b) // 2] ^= 0xFF
        data.write_bytes(bytes(b))
    elif damage == "truncate":
        data.write_bytes(data.read_bytes()[:-100])
    elif damage == "extra_file":
        (c / "names.csv").write_text("given_name\nMaria\n")
    elif damage == "drop_manifest":
        (c / "manifest.json").unlink()
    else:
        m = json.loads((c / "manifest.json").read_text())
        m["quarantined"] += 1
        (c / "manifest.json").write_text(json.dumps(m))
    r = runner.invoke(app, ["hub", "add", str(c), "--hub", str(hub)])
    assert r.exit_code == 2, r.output
    assert "what to do" in r.output and "Traceback" not in r.output
    with open_store(hub) as store:
        assert not store.table_exists("records") or store.scalar("SELECT count(*) FROM records") == 0


def test_contribution_with_identifier_columns_is_refused(tmp_path: Path, case_export: tuple[Path, Path],
                                                         partner_key: PartnerKey, hub: str) -> None:
    from accord.protect.contribution import sha256_file

    c = _contribution(tmp_path, case_export, partner_key)
    t = pq.read_table(c / "records.parquet")
    t = t.append_column("given_name", pa.array(["x"] * t.num_rows))
    pq.write_table(t, c / "records.parquet")
    m = json.loads((c / "manifest.json").read_text())
    m["files"]["records.parquet"]["sha256"] = sha256_file(c / "records.parquet")
    m["files"]["records.parquet"]["bytes"] = (c / "records.parquet").stat().st_size
    (c / "manifest.json").write_text(json.dumps(m))
    with open_store(hub) as store, pytest.raises(ContributionError, match="identifier"):
        add_contribution(store, c)


def test_killed_hub_add_leaves_nothing(tmp_path: Path, case_export: tuple[Path, Path],
                                       partner_key: PartnerKey, hub: str) -> None:
    """SIGKILL inside the transaction (rows written, not committed): the store holds no part of the batch."""
    first = _contribution(tmp_path, case_export, partner_key, "first")
    with open_store(hub) as store:
        add_contribution(store, first)
    export = write_case_export(tmp_path / "second.csv",
                               [f"N{i};Ana;Ruiz;01/02/1990;F;MX;01/02/2022;TV;FL;0;0;" for i in range(500)])
    second = tmp_path / "second"
    build_contribution(export, case_export[1], "ngo-c", second, partner_key)
    marker = tmp_path / "in-transaction"
    env = {**os.environ, "ACCORD_TEST_PAUSE_BEFORE_COMMIT": str(marker)}
    proc = subprocess.Popen([sys.executable, "-m", "accord.cli.main", "hub", "add", str(second), "--hub", str(hub)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while not marker.exists():
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            assert time.monotonic() < deadline, "hub add never reached its transaction"
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    with open_store(hub) as store:
        assert store.scalar("SELECT count(*) FROM records") == EXPECTED_ACCEPTED
        assert store.scalar("SELECT count(*) FROM records WHERE partner = 'ngo-c'") == 0
        assert store.scalar("SELECT count(*) FROM batches") == 1
        # and the batch can be added afterwards, whole
        assert add_contribution(store, second).added == 500


def test_killed_ingest_leaves_no_contribution(tmp_path: Path, case_export: tuple[Path, Path], key_file: Path) -> None:
    rows = [f"N{i};Ana{i % 97};Ruiz;01/02/1990;F;MX;01/02/2022;TV;FL;0;0;" for i in range(200_000)]
    export = write_case_export(tmp_path / "big.csv", rows)
    out = tmp_path / "contrib"

    def temporaries() -> list[Path]:
        return [p for p in tmp_path.iterdir() if p.name.startswith(".contrib.")]

    proc = subprocess.Popen([sys.executable, "-m", "accord.cli.main", "ingest", str(export), "--mapping",
                             str(case_export[1]), "--partner", "p", "--out", str(out), "--key-file", str(key_file)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not temporaries() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)  # mid-write: the temporary directory exists
    proc.wait(timeout=30)
    assert temporaries(), "the job was not killed while writing"
    # Nothing half-written is visible under the contribution's name.
    assert not out.exists()
    # The next ingest to the same place removes what the killed job left, and succeeds.
    again = subprocess.run([sys.executable, "-m", "accord.cli.main", "ingest", str(case_export[0]),
                            "--mapping", str(case_export[1]), "--partner", "p", "--out", str(out),
                            "--key-file", str(key_file)], capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stdout + again.stderr
    assert json.loads((out / "manifest.json").read_text())["accepted"] > 0
    assert temporaries() == []


def test_stale_temporaries_of_live_jobs_are_kept(tmp_path: Path) -> None:
    from accord.protect.contribution import remove_stale_temporaries

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    gone = tmp_path / f".contrib.{dead.pid}.abc"
    live = tmp_path / f".contrib.{os.getpid()}.def"
    other = tmp_path / f".other.{dead.pid}.ghi"
    for d in (gone, live, other):
        d.mkdir()
        (d / "records.parquet").write_bytes(b"x")
    assert remove_stale_temporaries(tmp_path / "contrib") == [gone]
    assert not gone.exists() and live.exists() and other.exists()


def test_audit_and_releases_cli(tmp_path: Path, case_export: tuple[Path, Path], partner_key: PartnerKey,
                                runner: CliRunner, hub: str) -> None:
    with open_store(hub) as store:
        add_contribution(store, _contribution(tmp_path, case_export, partner_key), actor="steward-1")
        store.record_release("test", {"k": 11}, {"ok": True}, "analyst-2")
    audit = json.loads(runner.invoke(app, ["hub", "audit", "--hub", str(hub), "--json"]).stdout)
    assert [(a["actor"], a["action"]) for a in audit] == [("steward-1", "hub.add")]
    releases = json.loads(runner.invoke(app, ["hub", "releases", "--hub", str(hub), "--json"]).stdout)
    assert releases[0]["parameters"] == {"k": 11} and releases[0]["actor"] == "analyst-2"
    assert runner.invoke(app, ["hub", "audit", "--hub", str(tmp_path / "none.duckdb")]).exit_code == 2


def test_hub_add_to_a_csv_file_is_refused_not_kept_in_memory(
        tmp_path: Path, case_export: tuple[Path, Path]) -> None:
    """DuckDB opens an existing CSV (or Parquet, JSON) file as an in-memory database with a view
    of it: `accord hub add --hub export.csv` said 'added N records' and kept nothing."""
    from tests.hubs import hub_from_export

    export, mapping = case_export
    hub_from_export(tmp_path, export, mapping)
    before = export.read_bytes()
    res = CliRunner().invoke(app, ["hub", "add", str(tmp_path / "contrib"), "--hub", str(export)])
    assert res.exit_code == 2, res.output
    assert "is not a hub file (not a DuckDB database)" in " ".join(res.output.split())
    assert "added" not in res.output
    assert export.read_bytes() == before
    assert not list(tmp_path.glob(export.name + ".*"))  # no chain key made for it
    # A directory, or an empty file, likewise says what to give instead.
    (tmp_path / "empty.duckdb").write_bytes(b"")
    for where in (tmp_path / "contrib", tmp_path / "empty.duckdb"):
        res = CliRunner().invoke(app, ["hub", "add", str(tmp_path / "contrib"), "--hub", str(where)])
        assert res.exit_code == 2, res.output
        assert "what to do: point --hub" in res.output, res.output
    # Negative control: a new path is a new hub.
    res = CliRunner().invoke(app, ["hub", "add", str(tmp_path / "contrib"), "--hub",
                                   str(tmp_path / "new.duckdb")])
    assert res.exit_code == 0 and "added" in res.output, res.output
