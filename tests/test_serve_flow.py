"""Partner withdrawal and record-level outputs by request, on each hub engine (DuckDB file, real
PostgreSQL): the store functions, the API over real HTTP, and the CLI (`accord withdraw`,
`accord hub withdraw`, `accord request`, `accord download`, `accord hub requests`)."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from accord.cli.main import app
from accord.serve.accounts import Role, User
from accord.store import add_contribution, open_store
from tests.hubs import run_cli
from tests.serving import accounts_with_tokens
from tests.test_hub_backends import contributions  # noqa: F401  (module fixture: 3 partners)
from tests.test_serve import _request, _zip, server  # noqa: F401  (uvicorn on loopback)

pytestmark = pytest.mark.slow  # simulated partners, linkage and two releases per engine

ANALYST = User("ana", "agency", Role.ANALYST)


def _counts(store: Any) -> dict[str, int]:
    return {t: int(store.scalar(f"SELECT count(*) FROM {t}")) for t in
            ("records", "linkage_encodings", "persons") if store.table_exists(t)}


def _keys(contribution: Path) -> list[str]:
    return [str(k) for k in pq.read_table(contribution / "records.parquet",
                                          columns=["record_key"]).column(0).to_pylist()]


def test_withdrawal_in_the_store(hub: str, contributions: list[Path], tmp_path: Path) -> None:  # noqa: F811
    from accord.link.hub import link_hub
    from accord.release.dp import ledger
    from accord.store.withdraw import NoSuchBatch, NotYours, WithdrawalError, withdraw

    a, b, _c = contributions
    with open_store(hub) as store:
        batches = [add_contribution(store, c, actor="steward") for c in contributions]
        link_hub(store)
        before = _counts(store)
        version0 = store.data_version()
    # a DP release spends from the budget; a withdrawal must not give it back
    run_cli("release", "tables", "--hub", hub, "--epsilon", "0.5", "--tables", "case_type_by_sex",
            "--out", str(tmp_path / "dp"), "--json", read="json")
    keys_a = _keys(a)[:5]
    with open_store(hub) as store:
        spent = ledger.current_budget(store).spent_rho
        # another partner's batch: refused, nothing changes
        with pytest.raises(NotYours):
            withdraw(store, "partner-a", "x", batch_id=batches[1].batch_id)
        with pytest.raises(NoSuchBatch):
            withdraw(store, "partner-a", "x", batch_id="no-such-batch")
        # keys of another partner (or unknown): the whole request refused, the message has no key
        with pytest.raises(WithdrawalError) as refused:
            withdraw(store, "partner-b", "x", record_keys=keys_a)
        assert not any(k in str(refused.value) for k in keys_a)
        with pytest.raises(WithdrawalError):
            withdraw(store, "partner-a", "x", record_keys=[*keys_a, "not-a-key"])
        assert _counts(store) == before and store.data_version() == version0
        one = withdraw(store, "partner-a", "partner-a-user", record_keys=keys_a)
        assert one.withdrawn == 5 and one.data_version != version0
        two = withdraw(store, "partner-b", "partner-b-user", batch_id=batches[1].batch_id)
        assert two.withdrawn == batches[1].added and two.data_version != one.data_version
        after = _counts(store)
        assert after["records"] == before["records"] - 5 - batches[1].added
        assert after["persons"] == after["records"]
        assert store.scalar("SELECT count(*) FROM records WHERE partner = 'partner-b'") == 0
        for table in ("records", "linkage_encodings", "persons"):
            assert store.scalar(f"SELECT count(*) FROM {table} WHERE partner = 'partner-a' AND "
                                f"record_key IN ({', '.join('?' * 5)})", keys_a) == 0
        assert ledger.current_budget(store).spent_rho == spent  # the budget is not restored
        audit = [json.loads(r["detail"]) for r in store.query(
            "SELECT detail FROM audit WHERE action = 'hub.withdraw' ORDER BY occurred_at").to_pylist()]
        assert [d["withdrawn"] for d in audit] == [5, batches[1].added]
        # the same contribution pushed again adds nothing back
        assert add_contribution(store, b).duplicate
        # withdrawing again what is gone: refused, nothing changes
        with pytest.raises(WithdrawalError):
            withdraw(store, "partner-a", "x", record_keys=keys_a)
    assert run_cli("hub", "verify", "--hub", hub, "--json", read="json")["ok"]
    empty = tmp_path / "empty.txt"
    empty.write_text("record_key\n\n")
    for args, says in ((["--batch", "x", "--records", str(empty)], "either"), ([], "either"),
                       (["--records", str(empty)], "no record keys"),
                       (["--records", str(tmp_path / "missing.txt")], "cannot use")):
        bad = CliRunner().invoke(app, ["hub", "withdraw", "--partner", "partner-a", "--hub", hub, *args])
        assert bad.exit_code == 2 and says in bad.output and "Traceback" not in bad.output, bad.output
    # later releases are computed without them: microdata holds the consented records left
    with open_store(hub) as store:
        request = _request_and_approve(store, {"k": 2, "l": 1, "max_loss": None, "sensitive": []})
        left = store.scalar("SELECT count(*) FROM records WHERE consent_research = 'yes'")
    assert request["status"] == "approved"
    assert _microdata_rows(hub, request["request_id"]) == left


def _request_and_approve(store: Any, params: dict[str, Any]) -> dict[str, Any]:
    from accord.serve.requests import approve_request, create_request

    row = create_request(store, ANALYST, "microdata", params, "a test")
    return approve_request(store, row["request_id"], "steve")


def _microdata_rows(hub: str, request_id: str) -> int:
    from accord.serve.requests import request_output

    with open_store(hub) as store:
        out = request_output(store, request_id, ANALYST)
    with zipfile.ZipFile(io.BytesIO(out.content)) as zf:
        assert {"microdata.csv", "microdata.parquet", "data_dictionary.csv", "release.json"} <= set(zf.namelist())
        text = zf.read("microdata.csv").decode("utf-8")
    return len(list(csv.reader(io.StringIO(text)))) - 1


def test_request_workflow_in_the_store(hub: str, contributions: list[Path]) -> None:  # noqa: F811
    from accord.errors import ParameterError
    from accord.release.dp import ledger
    from accord.serve import requests as rq

    with open_store(hub) as store:
        for c in contributions:
            add_contribution(store, c)
        for bad, field in (({"k": 0}, "k"), ({"l_kind": "x"}, "l_kind"), ({"qi": ["nope"]}, "qi"),
                           ({"max_suppression": 2}, "max_suppression"), ({"colour": 1}, "colour"),
                           ({"weights": {"sex": -1}}, "weights")):
            with pytest.raises(ParameterError) as err:
                rq.create_request(store, ANALYST, "microdata", bad)
            assert field in err.value.message
        for bad, field in (({"epsilon": float("nan"), "rows": 10}, "epsilon"),
                           ({"epsilon": 1, "rows": 0}, "rows"),
                           ({"epsilon": 1, "rows": 10, "delta": 0.5}, "delta")):
            with pytest.raises(ParameterError) as err:
                rq.create_request(store, ANALYST, "synthetic", bad)
            assert field in err.value.message
        assert rq.list_requests(store) == []
        syn = rq.create_request(store, ANALYST, "synthetic", {"epsilon": 1.0, "rows": 50}, "why")
        assert syn["status"] == "pending" and syn["parameters"]["delta"] == 1e-9
        spent = ledger.current_budget(store).spent_rho
        with pytest.raises(rq.NotApproved):
            rq.request_output(store, syn["request_id"], ANALYST)
        done = rq.approve_request(store, syn["request_id"], "steve")
        assert done["status"] == "approved" and done["decided_by"] == "steve"
        assert ledger.current_budget(store).spent_rho > spent  # paid when approved, not when asked
        spend = store.query("SELECT release_id, actor FROM dp_ledger WHERE event = 'spend'").to_pylist()
        assert spend == [{"release_id": done["release_id"], "actor": "ana"}]
        with pytest.raises(rq.AlreadyDecided):
            rq.approve_request(store, syn["request_id"], "steve")
        with pytest.raises(rq.AlreadyDecided):
            rq.reject_request(store, syn["request_id"], "steve", "late")
        other = User("bob", "agency", Role.ANALYST)
        with pytest.raises(rq.NotYourRequest):
            rq.request_output(store, syn["request_id"], other)
        out = rq.request_output(store, syn["request_id"], ANALYST)
        with zipfile.ZipFile(io.BytesIO(out.content)) as zf:
            assert "synthetic.csv" in zf.namelist()
            assert len(zf.read("synthetic.csv").decode().strip().splitlines()) == 51
        # a release that fails (impossible l) leaves the request pending and records nothing
        releases = len(store.releases())
        hard = rq.create_request(store, ANALYST, "microdata", {"k": 10_000, "max_loss": 0.0})
        with pytest.raises(Exception) as failed:
            rq.approve_request(store, hard["request_id"], "steve")
        assert isinstance(failed.value, rq.AccordError)
        assert rq.get_request(store, hard["request_id"])["status"] == "pending"
        assert len(store.releases()) == releases
        rejected = rq.reject_request(store, hard["request_id"], "steve", "too coarse to help")
        assert rejected["status"] == "rejected" and rejected["reason"] == "too coarse to help"
        with pytest.raises(rq.NotApproved):
            rq.request_output(store, hard["request_id"], ANALYST)
        actions = [r["action"] for r in store.query("SELECT action FROM audit ORDER BY occurred_at").to_pylist()]
        for action in ("hub.request", "hub.request_approve", "hub.request_reject", "hub.request_download"):
            assert action in actions
        assert rq.list_requests(store, requester="bob") == []
        assert [r["status"] for r in rq.list_requests(store, status="pending")] == []


PRINCIPALS = ("part_a", "part_b", "analyst", "analyst2", "steward", "auditor")


@pytest.fixture
def flow_accounts(hub: str, tmp_path: Path) -> dict[str, Path]:
    return accounts_with_tokens(hub, tmp_path / "tokens", ("partner-a", "partner-b", "partner-c", "agency"), {
        "part_a": ("partner-a", Role.SUBMITTER), "part_b": ("partner-b", Role.SUBMITTER),
        "analyst": ("agency", Role.ANALYST), "analyst2": ("agency", Role.ANALYST),
        "steward": ("agency", Role.STEWARD), "auditor": ("agency", Role.AUDITOR)})


def _json(body: dict[str, Any]) -> bytes:
    return json.dumps(body).encode()


def test_api_and_cli(server: str, flow_accounts: dict[str, Path], hub: str, tmp_path: Path,  # noqa: F811
                     contributions: list[Path]) -> None:  # noqa: F811
    tokens: dict[str, str | None] = {k: v.read_text().strip() for k, v in flow_accounts.items()}
    tokens["none"] = None
    tokens["malformed"] = "accord_nothing"
    a, b, _c = contributions
    pushed = {}
    for who, c in (("part_a", a), ("part_b", b)):
        status, payload, _ = _request(server + "/api/contributions", tokens[who], "POST", _zip(c))
        assert status == 201, payload
        pushed[who] = payload
    with open_store(hub) as store:
        denied0 = int(store.scalar("SELECT count(*) FROM audit WHERE action = 'hub.denied'"))
        before = _counts(store)["records"]

    # -- the matrix of the new routes: every principal, bodies that would succeed for the owner
    post_rq = _json({"kind": "microdata", "parameters": {"k": 2, "l": 1, "max_loss": None}})
    expected_post = {
        "/api/withdrawals": ({"part_a": 403, "part_b": 201}, _json({"batch_id": pushed["part_b"]["batch_id"]})),
        "/api/requests": ({"analyst": 201, "analyst2": 201}, post_rq),
    }
    denied = 0
    for route, (ok, body) in expected_post.items():
        for who in ("none", "malformed", "revoked", "part_a", "part_b", "analyst", "analyst2",
                    "steward", "auditor"):
            status, payload, headers = _request(server + route, tokens[who], "POST", body)
            want = ok.get(who, 403) if who in PRINCIPALS else 401
            assert status == want, (route, who, payload)
            assert headers.get("cache-control") == "no-store"
            denied += status == 403
    # part_a tried to withdraw part_b's batch: 403 and audited; part_b's own went through
    with open_store(hub) as store:
        assert _counts(store)["records"] == before - pushed["part_b"]["added"]
        assert int(store.scalar("SELECT count(*) FROM audit WHERE action = 'hub.denied'")) == denied0 + denied
    reads = {"/api/withdrawals": {"part_a": 200, "part_b": 200, "steward": 200, "auditor": 200},
             "/api/requests": {"analyst": 200, "analyst2": 200, "steward": 200, "auditor": 200}}
    for route, ok in reads.items():
        for who in ("none", "malformed", "revoked", *PRINCIPALS):
            status, payload, _ = _request(server + route, tokens[who])
            assert status == (ok.get(who, 403) if who in PRINCIPALS else 401), (route, who, payload)
    assert _request(server + "/api/withdrawals", tokens["part_a"])[1] == []  # own org's only
    assert len(_request(server + "/api/withdrawals", tokens["part_b"])[1]) == 1
    mine = _request(server + "/api/requests", tokens["analyst"])[1]
    assert len(mine) == 1 and mine[0]["requester"] == "analyst"
    assert len(_request(server + "/api/requests?status=pending", tokens["steward"])[1]) == 2
    rid, rid2 = mine[0]["request_id"], _request(server + "/api/requests", tokens["analyst2"])[1][0]["request_id"]
    for action, ok in (("approve", "steward"), ("reject", "steward")):
        for who in ("none", "revoked", *PRINCIPALS):
            if who == ok:
                continue
            status, _, _ = _request(server + f"/api/requests/{rid2}/{action}", tokens[who], "POST",
                                    _json({"reason": "x"}))
            assert status == (403 if who in PRINCIPALS else 401), (action, who)
    assert _request(server + f"/api/requests/{rid}", tokens["analyst2"])[0] == 403
    assert _request(server + f"/api/requests/{rid}", tokens["auditor"])[0] == 200
    assert _request(server + "/api/requests/rq-nope", tokens["steward"])[0] == 404

    # -- malformed bodies: 400 naming the field, never echoing a value
    for body, field in ((b"not json", "JSON"), (_json({"kind": "microdata", "parameters": {"k": "x1y2"}}), "k"),
                        (_json({"kind": "pictures"}), "kind"), (_json({"colour": 1}), "colour")):
        status, payload, _ = _request(server + "/api/requests", tokens["analyst"], "POST", body)
        assert status == 400 and field in payload["error"] and "x1y2" not in json.dumps(payload)
    status, payload, _ = _request(server + "/api/withdrawals", tokens["part_a"], "POST",
                                  _json({"record_keys": "abc"}))
    assert status == 400 and "record_keys" in payload["error"]
    status, payload, _ = _request(server + "/api/withdrawals", tokens["part_a"], "POST",
                                  _json({"record_keys": ["zzz-secret-key"]}))
    assert status == 422 and "zzz-secret-key" not in json.dumps(payload)

    # -- the partner's CLI: withdraw listed records (a CSV with a record_key column)
    keys = _keys(a)[:3]
    listing = tmp_path / "withdraw.csv"
    listing.write_text("record_key\n" + "\n".join(keys) + "\n")
    out = run_cli("withdraw", "--server", server, "--token-file", str(flow_accounts["part_a"]),
                  "--records", str(listing), "--json", read="json")
    assert out["withdrawn"] == 3 and out["partner"] == "partner-a"
    refused = CliRunner().invoke(app, ["withdraw", "--server", server, "--token-file",
                                       str(flow_accounts["part_a"]), "--records", str(listing)])
    assert refused.exit_code == 2 and "(422)" in refused.output and keys[0] not in refused.output
    other = CliRunner().invoke(app, ["withdraw", "--server", server, "--token-file",
                                     str(flow_accounts["part_a"]), "--batch", pushed["part_b"]["batch_id"]])
    assert other.exit_code == 2 and "(403)" in other.output

    # -- the analyst's CLI requests, the steward decides over the API and on the store
    syn = run_cli("request", "synthetic", "--server", server, "--token-file", str(flow_accounts["analyst"]),
                  "--epsilon", "1", "--rows", "40", "--purpose", "training", "--json", read="json")
    assert syn["status"] == "pending"
    status, payload, _ = _request(server + f"/api/requests/{rid}/approve", tokens["steward"], "POST")
    assert status == 200 and payload["status"] == "approved", payload
    status, _, _ = _request(server + f"/api/requests/{rid}/approve", tokens["steward"], "POST")
    assert status == 409
    status, payload, _ = _request(server + f"/api/requests/{rid2}/reject", tokens["steward"], "POST",
                                  _json({}))
    assert status == 400 and "reason" in payload["error"]
    status, payload, _ = _request(server + f"/api/requests/{rid2}/reject", tokens["steward"], "POST",
                                  _json({"reason": "k too small for this hub"}))
    assert status == 200 and payload["status"] == "rejected"
    pending = run_cli("hub", "requests", "list", "--hub", hub, "--status", "pending", "--json", read="json")
    assert [r["request_id"] for r in pending] == [syn["request_id"]]
    run_cli("hub", "requests", "approve", syn["request_id"], "--hub", hub, "--actor", "steward")
    # downloads: the requester only, approved only
    got = run_cli("download", rid, "--server", server, "--token-file", str(flow_accounts["analyst"]),
                  "--out", str(tmp_path / "md"), "--json", read="json")
    assert "microdata.csv" in got["files"] and (tmp_path / "md" / "release.json").exists()
    run_cli("download", syn["request_id"], "--server", server, "--token-file", str(flow_accounts["analyst"]),
            "--out", str(tmp_path / "syn"))
    assert (tmp_path / "syn" / "synthetic.csv").exists()
    assert _request(server + f"/api/requests/{rid}/output", tokens["analyst2"])[0] == 403
    assert _request(server + f"/api/requests/{rid2}/output", tokens["analyst2"])[0] == 409
    assert _request(server + f"/api/requests/{rid}/output", tokens["steward"])[0] == 403
    nope = CliRunner().invoke(app, ["download", rid2, "--server", server, "--token-file",
                                    str(flow_accounts["analyst2"]), "--out", str(tmp_path / "no")])
    assert nope.exit_code == 2 and "(409)" in nope.output
    listed = run_cli("request", "list", "--server", server, "--token-file", str(flow_accounts["analyst"]), "--json",
                     read="json")
    assert {r["status"] for r in listed} == {"approved"}
    # the local steward commands: withdraw and a rejected CLI path
    run_cli("hub", "withdraw", "--hub", hub, "--partner", "partner-a", "--batch", pushed["part_a"]["batch_id"])
    with open_store(hub) as store:
        assert _counts(store)["records"] == 0
        actions = {r["action"] for r in store.query("SELECT action FROM audit").to_pylist()}
    assert {"hub.withdraw", "hub.request", "hub.request_approve", "hub.request_reject",
            "hub.request_download"} <= actions
    assert run_cli("hub", "verify", "--hub", hub, "--json", read="json")["ok"]
    bad = CliRunner().invoke(app, ["hub", "requests", "reject", rid, "--reason", "x", "--hub", hub])
    assert bad.exit_code == 2 and "already" in bad.output


def test_two_stewards_approve_at_once(hub: str, contributions: list[Path]) -> None:  # noqa: F811
    """Two approvals of one request at the same moment: one release, one spend, one output; the
    other steward is told it is decided (PostgreSQL locks the row; DuckDB refuses the conflict)."""
    import threading

    from accord.serve import requests as rq

    with open_store(hub) as store:
        for c in contributions:
            add_contribution(store, c)
        rid = rq.create_request(store, ANALYST, "synthetic", {"epsilon": 1.0, "rows": 20})["request_id"]
    outcomes: list[str] = []
    start = threading.Barrier(2)

    def approve(who: str) -> None:
        with open_store(hub) as store:
            start.wait()
            try:
                rq.approve_request(store, rid, who)
                outcomes.append("approved")
            except rq.AlreadyDecided:
                outcomes.append("decided")

    threads = [threading.Thread(target=approve, args=(w,)) for w in ("steve", "sara")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert sorted(outcomes) == ["approved", "decided"]
    with open_store(hub) as store:
        assert store.scalar("SELECT count(*) FROM dp_ledger WHERE event = 'spend'") == 1
        assert store.scalar("SELECT count(*) FROM hub_request_outputs") == 1
        assert len(store.releases()) == 1
