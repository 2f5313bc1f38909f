"""A batch's counts reflect what happened to its records since it was loaded (issue 12): loaded,
withdrawn by its partner, superseded by a later batch, and in the hub now; the same numbers from the
store, `accord hub status --json` and GET /api/batches, on a DuckDB file and on PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from accord.cli.main import app
from accord.protect.job import build_contribution
from accord.protect.keys import create_partner_key
from accord.serve.accounts import Role, add_org, add_user, create_token
from accord.simulate import SimulationConfig, simulate
from accord.store import add_contribution, open_store
from accord.store.withdraw import withdraw
from tests.test_serve import _request, server  # noqa: F401  (uvicorn on loopback)

COUNTS = ("loaded", "withdrawn", "superseded", "current")


@pytest.fixture(scope="module")
def batches_of_a(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """partner-a's first contribution (120 records) and a later one that updates its first 30."""
    tmp = tmp_path_factory.mktemp("batch_counts")
    sim = simulate(SimulationConfig(people=120, partners=1, overlap=0.0, seed=5, out=tmp / "sim",
                                    format_a="csv"))
    export, mapping = sim.partners[0].export, sim.partners[0].mapping
    key = create_partner_key(tmp / "partner.key", force=True)
    build_contribution(export, mapping, "partner-a", tmp / "first", key)
    lines = export.read_text(encoding="utf-8").splitlines(keepends=True)
    (tmp / "update.csv").write_text("".join(lines[:31]), encoding="utf-8")  # header + 30 records
    build_contribution(tmp / "update.csv", mapping, "partner-a", tmp / "update", key)
    return tmp / "first", tmp / "update"


def _keys(contribution: Path) -> list[str]:
    return [str(k) for k in pq.read_table(contribution / "records.parquet",
                                          columns=["record_key"]).column(0).to_pylist()]


def _counts(rows: list[dict[str, Any]]) -> dict[str, dict[str, int]]:
    return {r["batch_id"]: {c: int(r[c]) for c in COUNTS} for r in rows}


def test_counts_follow_withdrawals_and_updates(hub: str, batches_of_a: tuple[Path, Path],
                                               server: str) -> None:  # noqa: F811
    first, update = batches_of_a
    with open_store(hub) as store:
        one = add_contribution(store, first)
        loaded = one.added
        assert _counts(store.batches()) == {one.batch_id: {"loaded": loaded, "withdrawn": 0,
                                                           "superseded": 0, "current": loaded}}
        two = add_contribution(store, update)
        assert two.replaced == 30
        # 5 of the first batch's records (not among the updated ones) and 2 of the update's
        old_keys = [k for k in _keys(first) if k not in set(_keys(update))][:5]
        withdraw(store, "partner-a", "partner-a-user", record_keys=[*old_keys, *_keys(update)[:2]])
        expected = {one.batch_id: {"loaded": loaded, "withdrawn": 5, "superseded": 30,
                                   "current": loaded - 35},
                    two.batch_id: {"loaded": 30, "withdrawn": 2, "superseded": 0, "current": 28}}
        assert _counts(store.batches()) == expected
        for b in store.batches():  # the batch row itself is unchanged: what was received
            assert b["accepted"] == b["loaded"]
        # the store's counts are the records in the hub
        assert store.scalar("SELECT count(*) FROM records") == sum(v["current"] for v in expected.values())
        add_org(store, "partner-a", "steve")
        add_user(store, "pa", "partner-a", Role.SUBMITTER, "a long enough password", "steve")
        token = create_token(store, "pa", "steve")[1]
        add_org(store, "agency", "steve")
        add_user(store, "steve", "agency", Role.STEWARD, "a long enough password", "steve")
        steward = create_token(store, "steve", "steve")[1]
    # the CLI and the API show the same counts
    res = CliRunner().invoke(app, ["hub", "status", "--hub", hub, "--json"])
    assert res.exit_code == 0, res.output
    assert _counts(json.loads(res.stdout)["batches"]) == expected
    text = CliRunner().invoke(app, ["hub", "status", "--hub", hub])
    assert text.exit_code == 0 and "withdrawn" in text.output and "in hub" in text.output
    for who in (token, steward):
        status, body, _ = _request(server + "/api/batches", who)
        assert status == 200 and _counts(body) == expected
    # a whole-batch withdrawal takes what is left of the batch, and says so
    with open_store(hub) as store:
        out = withdraw(store, "partner-a", "partner-a-user", batch_id=one.batch_id)
        assert out.withdrawn == loaded - 35
        assert _counts(store.batches())[one.batch_id] == {"loaded": loaded, "withdrawn": loaded - 30,
                                                         "superseded": 30, "current": 0}
    status, body, _ = _request(server + "/api/batches", token)
    assert _counts(body)[one.batch_id]["current"] == 0
    # the web pages (partner's and steward's) show what is in the hub now, not what was loaded
    from tests import test_serve_web as web

    for user, page in (("pa", "/ui/partner"), ("steve", "/ui/steward")):
        cookie = "accord_session=" + web._http_sign_in(server, user, "a long enough password")
        code, _, html = web._http(server, "GET", page, headers={"Cookie": cookie})
        text = html.decode()
        assert code == 200 and "Withdrawn since" in text and "In the hub now" in text
        row = text[text.index(f"<code>{one.batch_id}</code>"):]
        row = row[:row.index("</tr>")]
        cells = [c.split("<")[0] for c in row.split('<td class="n">')[1:]]
        assert cells[-2:] == [f"{loaded - 30:,}", "0"], (user, cells)


def test_counts_of_a_withdrawal_made_before_the_per_batch_accounting(
        tmp_path: Path, batches_of_a: tuple[Path, Path]) -> None:
    """A hub whose withdrawal predates ``withdrawn_by_batch``: a whole-batch withdrawal still
    counts against its batch."""
    first, _ = batches_of_a
    with open_store(tmp_path / "hub.duckdb") as store:
        one = add_contribution(store, first)
        withdraw(store, "partner-a", "x", batch_id=one.batch_id)
        store.execute("DROP TABLE withdrawn_by_batch")
        assert _counts(store.batches())[one.batch_id] == {"loaded": one.added, "withdrawn": one.added,
                                                         "superseded": 0, "current": 0}
