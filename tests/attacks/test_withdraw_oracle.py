"""Attack: membership of another partner's record keys through withdrawal answers (docs/hub.md,
"does not say whether another partner holds it"). Accord answers alike for a key another partner
holds and a key no one holds (chance accuracy); the negative control, the literal "403 for another
partner's record" design, tells them apart every time. On both engines, and over real HTTP."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from accord.serve.accounts import Role, add_org, add_user, create_token
from accord.store import add_contribution, open_store
from tests.attacks.withdraw_oracle import accord_answer, membership_accuracy, naive_answer, random_keys
from tests.test_hub_backends import contributions  # noqa: F401  (module fixture: 3 partners)
from tests.test_serve import _request, server  # noqa: F401

pytestmark = pytest.mark.slow

N = 30


def test_withdrawal_answers_are_no_membership_oracle(server: str, hub: str,  # noqa: F811
                                                     contributions: list[Path], tmp_path: Path) -> None:  # noqa: F811
    victim = [str(k) for k in pq.read_table(contributions[1] / "records.parquet",
                                            columns=["record_key"]).column(0).to_pylist()[:N]]
    nobody = random_keys(victim, N)
    with open_store(hub) as store:
        for c in contributions:
            add_contribution(store, c)
        before = store.scalar("SELECT count(*) FROM records")
        protected = membership_accuracy(accord_answer, store, "partner-a", victim, nobody)
        control = membership_accuracy(naive_answer, store, "partner-a", victim, nobody)
        assert store.scalar("SELECT count(*) FROM records") == before  # nothing was withdrawn
        add_org(store, "partner-a", "t")
        add_user(store, "mallory", "partner-a", Role.SUBMITTER, "correct horse battery staple", "t")
        token = create_token(store, "mallory", "t")[1]
    assert control == 1.0  # the attack works where there is an oracle
    assert protected == 0.5  # and is at chance on Accord
    # over HTTP: the same status and body for both kinds of key
    answers = set()
    for key in [*victim[:10], *nobody[:10]]:
        status, payload, _ = _request(server + "/api/withdrawals", token, "POST",
                                      json.dumps({"record_keys": [key]}).encode())
        answers.add((status, json.dumps(payload, sort_keys=True)))
    assert len(answers) == 1 and next(iter(answers))[0] == 422
