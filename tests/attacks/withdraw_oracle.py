"""The withdrawal oracle: can a partner learn, from how the hub answers a withdrawal, whether
another partner holds a record key?

A partner that obtained a candidate record key (a leaked list, a key shared in a referral) asks the
hub to withdraw it. If the answer for "another partner holds this key" differs from the answer for
"no one does", every withdrawal request is a membership test on the other partners' data. Accord
looks keys up among the requesting partner's own records only, so both cases give the same answer.
The unprotected control is the literal design ("a partner can never withdraw another partner's
records: 403"), which checks the key across all partners and says so.
"""

from __future__ import annotations

import re
import secrets
from collections import Counter
from collections.abc import Callable, Sequence

from accord.errors import AccordError
from accord.store import Store
from accord.store.withdraw import withdraw

Signature = tuple[str, str]


def _normalise(message: str) -> str:
    return re.sub(r"\d[\d,]*", "#", message)


def accord_answer(store: Store, partner: str, key: str) -> Signature:
    """What the attacker sees from Accord: the refusal's kind and its message, counts blanked."""
    try:
        withdraw(store, partner, "attacker", record_keys=[key])
    except AccordError as err:
        return type(err).__name__, _normalise(err.message)
    return "withdrawn", ""


def naive_answer(store: Store, partner: str, key: str) -> Signature:
    """The unprotected design: the key is looked up across partners, another's is 'forbidden'."""
    owner = store.scalar("SELECT partner FROM records WHERE record_key = ?", [key])
    if owner is None:
        return "422", "not a record in the hub"
    if owner != partner:
        return "403", "the record belongs to another partner"
    return "withdrawn", ""


def random_keys(like: Sequence[str], n: int, seed_bytes: int = 32) -> list[str]:
    """Keys of the same shape as the real ones (64 hex characters), held by no one."""
    return [secrets.token_hex(len(like[0]) // 2 if like else seed_bytes) for _ in range(n)]


def membership_accuracy(answer: Callable[[Store, str, str], Signature], store: Store, attacker: str,
                        held_elsewhere: Sequence[str], held_by_no_one: Sequence[str]) -> float:
    """The best accuracy of any rule that guesses 'another partner holds it' from the answer alone
    (each answer guessed as its majority class); 0.5 is chance with equal-sized sets."""
    real = Counter(answer(store, attacker, k) for k in held_elsewhere)
    fake = Counter(answer(store, attacker, k) for k in held_by_no_one)
    right = sum(max(real[s], fake[s]) for s in set(real) | set(fake))
    return right / (len(held_elsewhere) + len(held_by_no_one))
