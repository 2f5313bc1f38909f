"""Hostile use of the other commands' inputs (the general CLI side of issue 13)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.hostile.harness import run_accord


@pytest.mark.parametrize("command", [["stats"], ["risk"], ["link"], ["hub", "releases"]])
def test_a_csv_given_as_hub_is_not_a_hub_file(command: list[str], tmp_path: Path) -> None:
    some = tmp_path / "some.csv"
    some.write_text("name,phone\nMaria Lopez,+5215551234\n", encoding="utf-8")
    code, out, err, _, _ = run_accord([*command, "--hub", str(some)], cwd=tmp_path)
    assert code == 2, err
    assert "not a hub file" in err and "Traceback" not in err
    assert "Maria" not in out + err


def test_serve_refuses_a_file_that_is_not_a_hub_before_listening(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("Maria Lopez\n", encoding="utf-8")
    code, out, err, _, _ = run_accord(["serve", "--hub", "notes.txt", "--bind", "127.0.0.1:9"], cwd=tmp_path,
                                      timeout=60)
    assert code == 2, err
    assert "not a hub file" in err and "Uvicorn running" not in out + err and "Maria" not in out + err


@pytest.mark.parametrize("wait", ["nan", "inf", "-1"])
def test_wait_that_is_not_a_bounded_number_of_seconds(wait: str, tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("x\n", encoding="utf-8")
    code, _, err, _, _ = run_accord(["budget", "--hub", "notes.txt", f"--wait={wait}"], cwd=tmp_path, timeout=60)
    assert code == 2 and "--wait" in err and "Traceback" not in err


def test_a_directory_given_as_hub(tmp_path: Path) -> None:
    (tmp_path / "hubdir").mkdir()
    code, _, err, _, _ = run_accord(["stats", "--hub", "hubdir"], cwd=tmp_path)
    assert code == 2 and "is a directory" in err


def test_simulate_is_byte_identical_between_runs(tmp_path: Path) -> None:
    for out in ("one", "two"):
        code, _, err, _, _ = run_accord(["simulate", "--people", "150", "--partners", "2", "--seed", "4",
                                         "--out", out], cwd=tmp_path)
        assert code == 0, err
    one = sorted(p.relative_to(tmp_path / "one") for p in (tmp_path / "one").rglob("*") if p.is_file())
    assert any(p.suffix == ".xlsx" for p in one)
    for rel in one:
        assert (tmp_path / "one" / rel).read_bytes() == (tmp_path / "two" / rel).read_bytes(), rel


def test_ingest_paths_that_cannot_be_used(tmp_path: Path) -> None:
    """Unusable --quarantine, --key-file or --mapping paths: exit 2 before anything is written."""
    code, _, err, _, _ = run_accord(["simulate", "--people", "60", "--partners", "2", "--seed", "2", "--out", "sim"],
                                    cwd=tmp_path)
    assert code == 0, err
    run_accord(["keys", "init", "--key-file", "partner.key"], cwd=tmp_path)
    base = ["ingest", "sim/partner_b.csv", "--partner", "p"]
    for extra in (["--mapping", "sim/partner_b.mapping.yaml", "--key-file", "partner.key", "--quarantine", "."],
                  ["--mapping", "sim/partner_b.mapping.yaml", "--key-file", "partner.key", "--quarantine",
                   "missing/q.csv"],
                  ["--mapping", "sim/partner_b.mapping.yaml", "--key-file", "sim"],
                  ["--mapping", "sim", "--key-file", "partner.key"]):
        code, _, err, _, _ = run_accord([*base, *extra, "--out", "c"], cwd=tmp_path)
        assert code == 2, (extra, err)
        assert "Traceback" not in err and not (tmp_path / "c").exists()


@pytest.mark.parametrize("command", [
    ["risk", "--data", "{p}", "--qi", "a"],
    ["anonymise", "{p}", "--qi", "a", "--hierarchies", ".", "--k", "2", "--out", "o.csv"],
    ["synthesize", "{p}", "--epsilon", "1", "--rows", "5", "--out", "o.csv"],
    ["estimate", "mse", "{p}"],
    ["tables", "ingest", "{p}", "--source", "s", "--hub", "h.duckdb"],
    ["standard", "validate", "{p}"],
    ["ingest", "in.csv", "--mapping", "{p}", "--partner", "p", "--out", "c", "--key-file", "k.key"],
    ["ingest", "in.csv", "--mapping", "m.yaml", "--partner", "p", "--out", "c", "--key-file", "{p}"],
], ids=lambda c: " ".join(a for a in c if not a.startswith(("{", "-")))[:40])
def test_a_pipe_or_device_as_an_input_file_is_refused(command: list[str], tmp_path: Path) -> None:
    """A named pipe given as a data, counts, aggregate, standard, mapping or key file blocked for
    ever (nothing writes to it); /dev/zero was read until memory ran out (exit 70 after about
    3.5 GB; not run here on purpose). Now refused before it is opened."""
    import os

    from accord.protect.keys import create_partner_key

    os.mkfifo(tmp_path / "pipe")
    (tmp_path / "in.csv").write_text("a\n1\n", encoding="utf-8")
    (tmp_path / "m.yaml").write_text("fields: {}\n", encoding="utf-8")
    create_partner_key(tmp_path / "k.key")
    args = [a.replace("{p}", "pipe") for a in command]
    code, _, err, _, _ = run_accord(args, cwd=tmp_path, timeout=90)
    said = " ".join(err.split())
    assert code == 2, err
    assert "pipe is not a regular file (a device or a pipe)" in said, err
