"""Rows written in one second list in the order they were written (issue: `now_iso()` has second
precision and ids are random, so requests, tokens and audit pages listed such rows in random
order), on both engines; an older hub's rows (no `row_order`) come first; an edit of the order
outside Accord is caught by `accord hub verify`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from accord.cli.main import app
from accord.serve import requests as rq
from accord.serve.accounts import Role, User
from accord.store import open_store
from accord.store.base import META_TABLES_SQL
from tests.hubs import run_cli

SECOND = "2026-03-01T12:00:00+00:00"
ANA = User("ana", "agency", Role.ANALYST)
N = 8


@pytest.fixture
def one_second(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every time Accord writes is the same second (what a fast hub does many times a second)."""
    for module in ("accord.store.base", "accord.serve.requests", "accord.serve.accounts",
                   "accord.release.dp.ledger"):
        monkeypatch.setattr(f"{module}.now_iso", lambda: SECOND)


def _request(hub: str, rows: int) -> str:
    with open_store(hub) as store:
        made = rq.create_request(store, ANA, "synthetic", {"epsilon": 1.0, "rows": rows})
    return str(made["request_id"])


def test_rows_of_one_second_list_in_written_order(hub: str, one_second: None,
                                                  tmp_path: Path) -> None:
    made = [_request(hub, 100 + i) for i in range(N)]
    listed = run_cli("hub", "requests", "list", "--hub", hub, "--json", read="json")
    assert [r["request_id"] for r in listed] == made
    assert {r["requested_at"] for r in listed} == {SECOND}

    run_cli("hub", "org", "add", "agency", "--hub", hub)
    (tmp_path / "pw").write_text("a long enough password\n")
    run_cli("hub", "user", "add", "ana", "--org", "agency", "--role", "analyst", "--hub", hub,
            "--password-file", str(tmp_path / "pw"))
    for i in range(N):
        run_cli("hub", "token", "create", "ana", "--out", str(tmp_path / f"t{i}"), "--hub", hub)
    tokens = [t.read_text().split("_")[1] for t in sorted(tmp_path.glob("t?"))]
    assert [r["token_id"] for r in run_cli("hub", "token", "list", "--hub", hub, "--json", read="json")] == tokens

    # The audit trail (CLI and the web pages' reader) in the order it was written.
    audit = run_cli("hub", "audit", "--hub", hub, "--json", read="json")
    asked = [json.loads(r["detail"])["request_id"] for r in audit if r["action"] == "hub.request"]
    assert asked == made
    created = [json.loads(r["detail"])["token_id"] for r in audit
               if r["action"] == "hub.token_create"]
    assert created == tokens
    from accord.store import chain as hub_chain

    with open_store(hub) as store:
        newest = hub_chain.rows_in_order(store, "audit", ("occurred_at",), newest_first=True,
                                         limit=3)
    assert [json.loads(r["detail"])["token_id"] for r in newest] == tokens[::-1][:3]

    # Budget events of one second, too.
    run_cli("budget", "set", "--epsilon", "5", "--hub", hub)
    run_cli("budget", "grant", "--epsilon", "1", "--reason", "more", "--hub", hub)
    run_cli("budget", "grant", "--epsilon", "2", "--reason", "more again", "--hub", hub)
    events = run_cli("budget", "--hub", hub, "--json", read="json")["events"]
    assert [(e["event"], e["epsilon"]) for e in events] == [("set", 5.0), ("grant", 1.0),
                                                            ("grant", 2.0)]
    assert run_cli("hub", "verify", "--hub", hub, "--json", read="json")["ok"] is True


def test_an_edit_of_the_order_is_seen(hub: str, one_second: None) -> None:
    made = [_request(hub, 100 + i) for i in range(3)]
    assert run_cli("hub", "verify", "--hub", hub, "--json", read="json")["ok"] is True  # negative control
    with open_store(hub) as store:  # outside Accord: the first request's audit row moved last
        store.execute("UPDATE audit SET row_order = row_order + 1000 WHERE detail LIKE ?",
                      [f"%{made[0]}%"])
    res = CliRunner().invoke(app, ["hub", "verify", "--hub", hub, "--json"])
    assert res.exit_code != 0
    assert any("out of the order they were written" in p for p in json.loads(res.stdout)["problems"])


def test_an_older_hub_lists_its_rows_first(hub: str, one_second: None) -> None:
    """A hub made before `row_order`: read as it is (no migration by a reader), then migrated by
    the next write; its rows come first, by time."""
    with open_store(hub) as store:
        for sql in (*META_TABLES_SQL, *rq.REQUESTS_SQL):
            store.execute(sql)
        for i, at in enumerate(("2026-01-02T00:00:00+00:00", "2026-01-01T00:00:00+00:00")):
            store.execute("INSERT INTO audit VALUES (?, 'old', 'hub.old', ?)", [at, f'{{"i": {i}}}'])
            store.execute("INSERT INTO hub_requests (request_id, kind, requester, org, parameters, "
                          "purpose, status, requested_at) VALUES (?, 'synthetic', 'ana', 'agency', "
                          "'{}', '', 'pending', ?)", [f"rq-old{i}", at])
    old = run_cli("hub", "audit", "--hub", hub, "--json", read="json")
    assert [r["occurred_at"][:10] for r in old] == ["2026-01-01", "2026-01-02"]
    made = [_request(hub, 100 + i) for i in range(4)]
    listed = [r["request_id"] for r in run_cli("hub", "requests", "list", "--hub", hub, "--json", read="json")]
    assert listed == ["rq-old1", "rq-old0", *made]
    audit = run_cli("hub", "audit", "--hub", hub, "--json", read="json")
    assert [r["action"] for r in audit[:2]] == ["hub.old", "hub.old"]
    asked = [json.loads(r["detail"])["request_id"] for r in audit if r["action"] == "hub.request"]
    assert asked == made
    assert run_cli("hub", "verify", "--hub", hub, "--json", read="json")["ok"] is True


def test_rows_the_sql_listed_in_order_are_kept_and_others_sorted(hub: str) -> None:
    """``in_chain_order`` leaves rows the SQL already ordered by ``row_order`` as they are (after
    checking that they are) and still sorts rows given in any other order."""
    from accord.store import chain as hub_chain

    for i in range(4):
        _request(hub, 100 + i)
    with open_store(hub) as store:
        rows = hub_chain.rows_in_order(store, "audit", ("occurred_at",))
        assert len(rows) == 4
        assert hub_chain.in_chain_order(store, "audit", rows, ("occurred_at",)) is rows
        assert hub_chain.in_chain_order(store, "audit", rows[::-1], ("occurred_at",)) == rows
        assert hub_chain.in_chain_order(store, "audit", rows, ("occurred_at",),
                                        newest_first=True) == rows[::-1]
