"""Routes of record-level outputs by request (logic in :mod:`accord.serve.requests`).

POST /api/requests {"kind": "microdata"|"synthetic", "parameters": {...}, "purpose": "..."}: an
analyst asks (201; 400 naming the field at fault). GET /api/requests: an analyst sees their own,
steward and auditor all (``?status=pending``). POST /api/requests/{id}/approve (steward): the
release runs now (200; 409 if decided already; 422/409 if the release is refused, nothing spent).
POST /api/requests/{id}/reject {"reason": "..."} (steward). GET /api/requests/{id}/output: the
requesting analyst downloads the approved output (a zip); another analyst's request is 403 and
audited, one not approved 409.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from accord.errors import AccordError, ParameterError, ReleaseRefused, StoreError
from accord.serve import requests as rq
from accord.serve.accounts import Role, User
from accord.serve.deps import allow, analysis_limit, deny, error, hub_store, json_object

router = APIRouter()


def _fail(err: AccordError) -> Exception:
    """The HTTP status of a workflow error."""
    if isinstance(err, StoreError):
        return error(503, "the hub store is not available", err.hint)
    if isinstance(err, ParameterError):
        return error(400, err.message, err.hint)
    if isinstance(err, rq.NoSuchRequest):
        return error(404, err.message, err.hint)
    if isinstance(err, rq.OwnRequest):
        return error(403, err.message, err.hint)
    if isinstance(err, rq.AlreadyDecided | rq.NotApproved):
        return error(409, err.message, err.hint)
    if isinstance(err, ReleaseRefused):
        return error(409, f"the release was refused: {err.message}; the request stays pending",
                     err.hint, exit_code=err.exit_code)
    return error(422, err.message, err.hint)


@router.post("/api/requests")
async def post_request(request: Request) -> JSONResponse:
    user = await run_in_threadpool(_who, request, {Role.ANALYST})
    body = await json_object(request)
    return await run_in_threadpool(_create, request, user, body)


def _who(request: Request, roles: set[Role]) -> User:
    with hub_store(request) as s:
        return allow(request, s, roles)


def _create(request: Request, user: User, body: dict[str, Any]) -> JSONResponse:
    extra = sorted(set(body) - {"kind", "parameters", "purpose"})
    if extra:
        raise error(400, f"unknown field(s): {', '.join(extra[:5])}", "send kind, parameters, purpose")
    with hub_store(request) as s:
        try:
            row = rq.create_request(s, user, body.get("kind", ""), body.get("parameters") or {},
                                    body.get("purpose", ""))
        except AccordError as err:
            raise _fail(err) from None
    return JSONResponse(row, status_code=201)


@router.get("/api/requests")
def get_requests(request: Request, status: str | None = None) -> list[dict[str, Any]]:
    with hub_store(request) as s:
        user = allow(request, s, {Role.ANALYST, Role.STEWARD, Role.AUDITOR})
        if status is not None and status not in (rq.PENDING, rq.APPROVED, rq.REJECTED):
            raise error(400, "status must be pending, approved or rejected")
        return rq.list_requests(s, user.username if user.role == Role.ANALYST else None, status)


@router.get("/api/requests/{request_id}")
def get_one(request: Request, request_id: str) -> dict[str, Any]:
    with hub_store(request) as s:
        user = allow(request, s, {Role.ANALYST, Role.STEWARD, Role.AUDITOR})
        try:
            row = rq.get_request(s, request_id)
        except AccordError as err:
            raise _fail(err) from None
        if user.role == Role.ANALYST and row["requester"] != user.username:
            deny(request, s, user, "another analyst's request")
            raise error(403, "the request is another analyst's")
        return row


@router.post("/api/requests/{request_id}/approve")
async def approve(request: Request, request_id: str) -> dict[str, Any]:
    # The release runs in the app's limit on analyses at once (accord.serve.deps.AnalysisLimit);
    # one the budget cannot pay is refused before it waits for its turn.
    user = await run_in_threadpool(_affordable, request, request_id)
    result: dict[str, Any] = await analysis_limit(request).run(
        "/api/requests/approve", _approve, request, user, request_id)
    return result


def _affordable(request: Request, request_id: str) -> User:
    with hub_store(request) as s:
        user = allow(request, s, {Role.STEWARD})
        try:
            rq.require_request_affordable(s, request_id)
        except AccordError as err:
            raise _fail(err) from None
        return user


def _approve(request: Request, user: User, request_id: str) -> dict[str, Any]:
    with hub_store(request) as s:
        try:
            return rq.approve_request(s, request_id, user.username)
        except AccordError as err:
            raise _fail(err) from None


@router.post("/api/requests/{request_id}/reject")
async def reject(request: Request, request_id: str) -> dict[str, Any]:
    user = await run_in_threadpool(_who, request, {Role.STEWARD})
    body = await json_object(request)
    return await run_in_threadpool(_reject, request, user, request_id, body)


def _reject(request: Request, user: User, request_id: str, body: dict[str, Any]) -> dict[str, Any]:
    with hub_store(request) as s:
        try:
            return rq.reject_request(s, request_id, user.username, body.get("reason"))
        except AccordError as err:
            raise _fail(err) from None


@router.get("/api/requests/{request_id}/output")
def output(request: Request, request_id: str) -> Response:
    with hub_store(request) as s:
        user = allow(request, s, {Role.ANALYST})
        try:
            got = rq.request_output(s, request_id, user)
        except rq.NotYourRequest as err:
            deny(request, s, user, "another analyst's request")
            raise error(403, err.message) from None
        except AccordError as err:
            raise _fail(err) from None
    return Response(got.content, media_type="application/zip", headers={
        "Content-Disposition": f'attachment; filename="{got.filename}"', "X-Accord-SHA256": got.sha256})
