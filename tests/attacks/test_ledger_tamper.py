"""Attack: edit, delete or reorder the hub's ledger, releases or audit trail to free budget or hide
a release (issue 10). Target: 100 % detected by `accord hub verify`, and every release refused
(exit 3, pointing at `accord hub verify`) with nothing recorded. Negative control: with the chain
check disabled and the budget read from the table (the unprotected design), the same edits go
unnoticed and free budget, so these tests can fail.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from typer.testing import CliRunner

from accord.cli.main import app
from accord.errors import LedgerTampered, ReleaseRefused
from accord.release.dp import ledger
from accord.release.dp.release import release_tables
from accord.store import chain as hub_chain
from accord.store import open_store
from tests.attacks.budget_lab import (
    NAMED,
    RELEASE_DELTA,
    TABLE,
    Lab,
    copy_hub,
    prepared_hub,
    tamper_named,
    tamper_random,
)

TRIALS = 60


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Lab:
    return prepared_hub(tmp_path_factory.mktemp("tamper") / "lab")


def _counts(hub: Path) -> tuple[int, int]:
    with open_store(hub, read_only=True) as store:
        return (int(store.scalar("SELECT count(*) FROM releases")),
                int(store.scalar("SELECT count(*) FROM dp_ledger")))


def table_state(store: object) -> dict[str, object]:
    """The unprotected design: the budget summed from the (editable) ledger table."""
    st = ledger._default_state()
    rows = store.query("SELECT event, rho, epsilon, delta FROM dp_ledger "  # type: ignore[attr-defined]
                       "ORDER BY recorded_at, entry_id").to_pylist()
    for r in rows:
        if r["event"] == "set":
            st.update(set_rho=r["rho"], set_epsilon=r["epsilon"], delta=r["delta"], explicit=True)
        elif r["event"] == "grant":
            st["granted_rho"] += r["rho"]
        elif r["event"] == "spend":
            st["spent_rho"] += r["rho"]
            st["spends"] += 1
    return st


@contextmanager
def unprotected(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Chain check disabled, budget from the table: Accord without this protection."""
    with monkeypatch.context() as m:
        m.setattr(hub_chain, "verify", lambda store, expected_head=None: hub_chain.ChainReport())
        m.setattr(ledger, "_state", table_state)
        yield


def test_the_untouched_hub_verifies(lab: Lab, tmp_path: Path) -> None:
    hub = copy_hub(lab, tmp_path / "h")
    r = CliRunner().invoke(app, ["hub", "verify", "--hub", str(hub), "--json"])
    assert r.exit_code == 0, r.output
    got = json.loads(r.output)
    assert got["ok"] and got["entries"] >= 8 and got["problems"] == []
    key = Path(f"{hub}.key")
    assert key.stat().st_mode & 0o777 == 0o600
    # each release's own chain entry is listed, and is a head `hub verify --head` accepts
    rel = json.loads(CliRunner().invoke(app, ["hub", "releases", "--hub", str(hub), "--json"]).output)
    entries = [r["chain_entry"] for r in rel]
    assert len(entries) == 2 and all(entries)
    assert CliRunner().invoke(app, ["hub", "verify", "--hub", str(hub), "--head", entries[0]]).exit_code == 0
    bad = CliRunner().invoke(app, ["hub", "verify", "--hub", str(hub), "--head", entries[0][:-4] + "0000"])
    assert bad.exit_code == ReleaseRefused.exit_code


@pytest.mark.parametrize("attack", NAMED)
def test_named_tampering_is_detected_and_releases_refused(lab: Lab, tmp_path: Path, attack: str) -> None:
    hub = copy_hub(lab, tmp_path / "h")
    tamper_named(hub, attack)
    before = _counts(hub) if attack not in ("drop_chain",) else None
    r = CliRunner().invoke(app, ["hub", "verify", "--hub", str(hub)])
    assert r.exit_code == ReleaseRefused.exit_code, r.output
    assert "broken" in r.output
    rel = CliRunner().invoke(app, ["release", "tables", "--epsilon", "0.5", "--tables", TABLE[0],
                                   "--hub", str(hub), "--out", str(tmp_path / "o")])
    assert rel.exit_code == ReleaseRefused.exit_code, rel.output
    assert "accord hub verify" in rel.output and not (tmp_path / "o").exists()
    if before is not None:
        assert _counts(hub) == before  # nothing spent, written or recorded
    stats = CliRunner().invoke(app, ["stats", "--hub", str(hub)])
    assert stats.exit_code == ReleaseRefused.exit_code, stats.output


def test_budget_freeing_edit_succeeds_only_without_the_chain(lab: Lab, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    # Spend until a release at epsilon 10 no longer fits, then zero the spends in the table.
    outcomes = {}
    for mode in ("protected", "unprotected"):
        hub = copy_hub(lab, tmp_path / mode)
        with open_store(hub) as store:
            release_tables(store, 10.0, delta=RELEASE_DELTA, names=TABLE, test_seed=3)
            with pytest.raises(ReleaseRefused, match="lifetime budget"):
                release_tables(store, 10.0, delta=RELEASE_DELTA, names=TABLE, test_seed=4)
        tamper_named(hub, "zero_spent")
        with open_store(hub) as store:
            if mode == "protected":
                with pytest.raises(LedgerTampered):
                    release_tables(store, 10.0, delta=RELEASE_DELTA, names=TABLE, test_seed=5)
                outcomes[mode] = "refused"
            else:
                with unprotected(monkeypatch):
                    release_tables(store, 10.0, delta=RELEASE_DELTA, names=TABLE, test_seed=5)
                outcomes[mode] = "released"
    assert outcomes == {"protected": "refused", "unprotected": "released"}


@pytest.mark.slow
def test_random_tampering_is_always_detected(lab: Lab, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(10)
    detected = unnoticed_without_chain = 0
    for i in range(TRIALS):
        hub = copy_hub(lab, tmp_path / f"t{i}")
        what = tamper_random(hub, rng)
        with open_store(hub, read_only=True) as store:
            report = ledger.verify(store)
            with unprotected(monkeypatch):
                unnoticed_without_chain += ledger.verify(store).ok
        assert not report.ok, what
        detected += 1
    assert detected == TRIALS
    assert unnoticed_without_chain == TRIALS  # the control: nothing notices without the chain


def test_truncation_is_caught_by_the_committed_head_or_a_release_head(lab: Lab, tmp_path: Path) -> None:
    hub = copy_hub(lab, tmp_path / "h")
    with open_store(hub) as store:
        head = store.chain_head()
    assert head is not None
    tamper_named(hub, "delete_last_spend_and_its_chain_tail")
    with open_store(hub, read_only=True) as store:
        assert any("cut off the end" in p for p in ledger.verify(store).problems)
    # An attacker who also deletes the committed-head file is still caught by a head published
    # with a release (release.json's chain_head), given to `accord hub verify --head`.
    Path(f"{hub}.key.head").unlink()
    with open_store(hub, read_only=True) as store:
        assert ledger.verify(store).ok  # the documented limit: no witness, no head given
    r = CliRunner().invoke(app, ["hub", "verify", "--hub", str(hub), "--head",
                                 f"{head['seq']}:{head['mac']}"])
    assert r.exit_code == ReleaseRefused.exit_code and "cut off the end" in r.output


def test_a_steward_resolves_without_giving_the_budget_back(lab: Lab, tmp_path: Path) -> None:
    hub = copy_hub(lab, tmp_path / "h")
    with open_store(hub) as store:
        spent = ledger.current_budget(store).spent_rho
    tamper_named(hub, "delete_spends")
    r = CliRunner().invoke(app, ["hub", "verify", "--hub", str(hub), "--resolve"])
    assert r.exit_code == 2 and "reason" in r.output  # a resolution says why
    r = CliRunner().invoke(app, ["hub", "verify", "--hub", str(hub), "--resolve", "--reason",
                                 "rows deleted by mistake; restore failed", "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["budget"]["spent_rho"] == pytest.approx(spent)
    assert CliRunner().invoke(app, ["hub", "verify", "--hub", str(hub)]).exit_code == 0
    with open_store(hub) as store:
        assert ledger.current_budget(store).spent_rho == pytest.approx(spent)
        release_tables(store, 0.5, delta=RELEASE_DELTA, names=TABLE, test_seed=9)  # allowed again
        assert ledger.verify(store).ok


def test_a_lost_key_stops_releases_and_resolution_leaves_nothing(lab: Lab, tmp_path: Path) -> None:
    hub = copy_hub(lab, tmp_path / "h")
    Path(f"{hub}.key").unlink()
    rel = CliRunner().invoke(app, ["release", "tables", "--epsilon", "0.5", "--hub", str(hub),
                                   "--out", str(tmp_path / "o")])
    assert rel.exit_code == ReleaseRefused.exit_code and "key" in rel.output
    r = CliRunner().invoke(app, ["hub", "verify", "--hub", str(hub), "--resolve", "--reason",
                                 "key lost", "--json"])
    assert r.exit_code == 0, r.output
    got = json.loads(r.output)
    assert got["key_lost"] and got["budget"]["remaining_rho"] == 0.0
    assert Path(f"{hub}.key").stat().st_mode & 0o777 == 0o600
    assert CliRunner().invoke(app, ["hub", "verify", "--hub", str(hub)]).exit_code == 0
    assert CliRunner().invoke(app, ["budget", "grant", "--epsilon", "1", "--reason", "new key",
                                    "--hub", str(hub)]).exit_code == 0
    again = CliRunner().invoke(app, ["release", "tables", "--epsilon", "0.5", "--hub", str(hub),
                                     "--tables", TABLE[0], "--out", str(tmp_path / "o2")])
    assert again.exit_code == 0, again.output


def test_key_file_location_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    key = tmp_path / "steward" / "hub.key"
    monkeypatch.setenv(hub_chain.KEY_ENV, str(key))
    with open_store(tmp_path / "hub.duckdb") as store:
        store.audit("me", "test", {})
        assert ledger.verify(store).ok
    assert key.exists() and not Path(f"{tmp_path / 'hub.duckdb'}.key").exists()


def test_an_old_entry_edited_after_a_resolution_is_still_caught(lab: Lab, tmp_path: Path) -> None:
    hub = copy_hub(lab, tmp_path / "h")
    tamper_named(hub, "zero_spent")
    assert CliRunner().invoke(app, ["hub", "verify", "--hub", str(hub), "--resolve", "--reason",
                                    "accepted"]).exit_code == 0
    with open_store(hub, read_only=True) as store:
        report = ledger.verify(store)
        assert report.ok and report.notes == []  # the spend rows were resolved, the chain intact
    tamper_named(hub, "reorder_chain")  # entries 2 and 3, before the steward's seal
    with open_store(hub, read_only=True) as store:
        report = ledger.verify(store)
    assert not report.ok and any("chain entry 2" in p for p in report.problems)


def test_every_dp_release_writes_the_chain_head(tmp_path: Path) -> None:
    from tests.test_dp import _hub

    hub = _hub(tmp_path / "hub.duckdb", n=200)
    for cmd, out in ((["release", "tables", "--tables", TABLE[0]], tmp_path / "t"),
                     (["release", "synthetic", "--rows", "50"], tmp_path / "s")):
        r = CliRunner().invoke(app, [*cmd, "--epsilon", "1", "--hub", str(hub), "--out", str(out),
                                     "--json"])
        assert r.exit_code == 0, r.output
        head = json.loads(r.output)["chain_head"]
        with open_store(hub, read_only=True) as store:
            assert head == store.chain_head()
        assert json.loads((out / "release.json").read_text())["chain_head"] == head
        ok = CliRunner().invoke(app, ["hub", "verify", "--hub", str(hub), "--head",
                                      f"{head['seq']}:{head['mac']}"])
        assert ok.exit_code == 0, ok.output
