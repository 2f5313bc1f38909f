"""Routes of a partner's withdrawal (logic in :mod:`accord.store.withdraw`).

POST /api/withdrawals  {"batch_id": ID} or {"record_keys": [KEY, ...]}: a submitter withdraws its
own organisation's records (201); another partner's batch is 403 and audited, an unknown batch 404,
a key the partner does not hold 422 (nothing withdrawn); malformed bodies 400.
GET /api/withdrawals: a submitter sees its own organisation's withdrawals; steward and auditor all.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from accord.errors import AccordError, StoreError
from accord.serve.accounts import Role, User
from accord.serve.deps import allow, deny, error, hub_store, json_object
from accord.store.withdraw import MAX_KEYS, NoSuchBatch, NotYours, withdraw, withdrawals

router = APIRouter()


def _target(body: dict[str, Any]) -> tuple[str | None, list[str] | None]:
    unknown = sorted(set(body) - {"batch_id", "record_keys"})
    if unknown:
        raise error(400, f"unknown field(s): {', '.join(unknown[:5])}",
                    "send batch_id or record_keys")
    batch, keys = body.get("batch_id"), body.get("record_keys")
    if (batch is None) == (keys is None):
        raise error(400, "give exactly one of the fields batch_id and record_keys")
    if batch is not None and (not isinstance(batch, str) or not batch.strip() or len(batch) > 200):
        raise error(400, "the field batch_id must be a batch id (a non-empty string)")
    if keys is not None and (not isinstance(keys, list) or not keys or len(keys) > MAX_KEYS
                             or not all(isinstance(k, str) and 0 < len(k) <= 200 for k in keys)):
        raise error(400, f"the field record_keys must be a list of 1 to {MAX_KEYS:,} record keys "
                         "(strings)")
    return (batch.strip() if batch else None), keys


@router.post("/api/withdrawals")
async def post_withdrawal(request: Request) -> JSONResponse:
    user = await run_in_threadpool(_submitter, request)  # who first: no body is read for a refusal
    body = await json_object(request, limit=64 * 1024 * 1024)
    return await run_in_threadpool(_withdraw, request, user, body)


def _submitter(request: Request) -> User:
    with hub_store(request) as s:
        return allow(request, s, {Role.SUBMITTER})


def _withdraw(request: Request, user: User, body: dict[str, Any]) -> JSONResponse:
    batch, keys = _target(body)
    with hub_store(request) as s:
        try:
            outcome = withdraw(s, user.org, user.username, batch_id=batch, record_keys=keys)
        except NotYours as err:
            deny(request, s, user, "batch of another organisation")
            raise error(403, err.message) from None
        except NoSuchBatch as err:
            raise error(404, err.message, err.hint) from None
        except StoreError as err:
            raise error(503, "the hub store is not available", err.hint) from None
        except AccordError as err:
            raise error(422, err.message, err.hint) from None
    return JSONResponse(outcome.to_dict(), status_code=201)


@router.get("/api/withdrawals")
def get_withdrawals(request: Request) -> list[dict[str, Any]]:
    with hub_store(request) as s:
        user = allow(request, s, {Role.SUBMITTER, Role.STEWARD, Role.AUDITOR})
        return withdrawals(s, user.org if user.role == Role.SUBMITTER else None)
