"""A hub holding linkage encodings of an older encoding format (format 3: no day/month-swap
filter of the birth date) and contributions of the current one, through the CLI on both engines:
each side is refused with what to do (withdraw the old batches, protect again), never a
traceback or a column error; withdrawing the old batches lets the current ones in."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from accord.protect.encoding import new_linkage_secret
from accord.simulate import SimulationConfig, simulate
from tests.hubs import run_cli

UNORDERED = "bf_date_of_birth__unordered"


@pytest.fixture(scope="module")
def exports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("format3")
    sim = simulate(SimulationConfig(people=60, partners=2, overlap=0.3, seed=4,
                                    out=tmp / "exports", format_a="csv"))
    secret = tmp / "linkage.key"
    new_linkage_secret(secret)
    key = tmp / "partner.key"
    run_cli("keys", "init", "--key-file", str(key))
    return {"partners": sim.partners, "secret": secret, "key": key}


def _ingest(exports: dict[str, Any], i: int, out: Path) -> Path:
    files = exports["partners"][i]
    run_cli("ingest", str(files.export), "--mapping", str(files.mapping), "--partner",
            files.partner.replace("_", "-"), "--key-file", str(exports["key"]), "--out", str(out),
            "--linkage-secret", str(exports["secret"]))
    return out


def _as_format_3(contribution: Path) -> None:
    """The contribution as Accord before format 4 wrote it: no unordered birth-date filter, the
    older schema's fingerprint (its manifest's digests updated, as the partner's ingest made them)."""
    path = contribution / "linkage.parquet"
    t = pq.read_table(path).drop_columns([UNORDERED])
    t = t.set_column(t.schema.get_field_index("schema_fingerprint"), "schema_fingerprint",
                     pc.cast(pa.array(["format3"] * t.num_rows), pa.string()))
    pq.write_table(t, path)
    manifest = json.loads((contribution / "manifest.json").read_text())
    entry = manifest["files"]["linkage.parquet"]
    entry["bytes"] = path.stat().st_size
    entry["sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
    manifest["linkage"]["schema_fingerprint"] = "format3"
    (contribution / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True))


def _batches(hub: str) -> list[dict[str, Any]]:
    return list(json.loads(run_cli("hub", "status", "--hub", hub, "--json"))["batches"])


def test_a_format_3_hub_refuses_format_4_until_the_old_batches_are_withdrawn(
        hub: str, exports: dict[str, Any], tmp_path: Path) -> None:
    old = _ingest(exports, 0, tmp_path / "a")
    _as_format_3(old)
    run_cli("hub", "add", str(old), "--hub", hub)  # what an older Accord held
    new = _ingest(exports, 1, tmp_path / "b")

    out = run_cli("hub", "add", str(new), "--hub", hub, code=2)
    assert "older format" in out and "withdraw" in out and "nothing was added" in out
    assert len(_batches(hub)) == 1
    out = run_cli("link", "--hub", hub, code=2)
    assert "older encoding format" in out and "withdraw" in out

    [batch] = _batches(hub)
    run_cli("hub", "withdraw", "--partner", batch["partner"], "--batch", batch["batch_id"],
            "--hub", hub)
    run_cli("hub", "add", str(new), "--hub", hub)
    run_cli("hub", "add", str(_ingest(exports, 0, tmp_path / "a2")), "--hub", hub)  # protected again
    linked = json.loads(run_cli("link", "--hub", hub, "--json"))
    assert linked["encoded_records"] == linked["records"] > 0


def test_a_format_4_hub_refuses_a_format_3_contribution(
        hub: str, exports: dict[str, Any], tmp_path: Path) -> None:
    run_cli("hub", "add", str(_ingest(exports, 0, tmp_path / "a")), "--hub", hub)
    old = _ingest(exports, 1, tmp_path / "b")
    _as_format_3(old)
    out = run_cli("hub", "add", str(old), "--hub", hub, code=2)
    assert "older encoding format" in out and "protect the records again" in out
    assert len(_batches(hub)) == 1
    run_cli("link", "--hub", hub)
