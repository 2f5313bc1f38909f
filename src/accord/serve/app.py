"""`accord serve`: the hub over HTTP (FastAPI on uvicorn). A JSON API; no route returns records.

Who may do what (the authorisation matrix test checks every cell, and no token / a malformed,
unknown or revoked token gives 401 everywhere but /api/health):

| route                      | submitter      | analyst | steward | auditor |
| -------------------------- | -------------- | ------- | ------- | ------- |
| GET  /api/health           | (no token)     |         |         |         |
| GET  /api/whoami           | yes            | yes     | yes     | yes     |
| POST /api/contributions    | own org only   | 403     | 403     | 403     |
| GET  /api/batches          | own org's      | 403     | all     | all     |
| GET  /api/releases         | 403            | yes     | yes     | yes     |
| GET  /api/audit            | 403            | 403     | yes     | yes     |
| POST /api/withdrawals      | own org only   | 403     | 403     | 403     |
| GET  /api/withdrawals      | own org's      | 403     | all     | all     |
| POST /api/requests         | 403            | yes     | 403     | 403     |
| GET  /api/requests         | 403            | own     | all     | all     |
| GET  /api/requests/{id}    | 403            | own     | yes     | yes     |
| POST /api/requests/{id}/approve | 403       | 403     | yes     | 403     |
| POST /api/requests/{id}/reject  | 403       | 403     | yes     | 403     |
| GET  /api/requests/{id}/output  | 403       | own, approved | 403 | 403   |
| POST /api/stats            | 403            | yes     | yes     | 403     |
| POST /api/report           | 403            | yes     | yes     | 403     |
| POST /api/release/tables   | 403            | yes     | yes     | 403     |
| POST /api/estimate         | 403            | yes     | yes     | 403     |
| GET  /api/budget           | 403            | yes     | yes     | yes     |
| POST /api/budget/set       | 403            | 403     | yes     | 403     |
| POST /api/budget/grant     | 403            | 403     | yes     | 403     |
| POST /api/budget/quota     | 403            | 403     | yes     | 403     |

The analyst's routes (accord.serve.analysis) run the local commands' library calls; their bodies
are the commands' options as JSON, and a malformed body is 400 naming the field, never its value.
| GET  /ui/login, /ui/static/hub.css, /, /ui | (no session) |  |       |         |
| POST /ui/login             | (no session; CSRF cookie + rate limit) | | |         |
| POST /ui/logout            | yes            | yes     | yes     | yes     |
| GET  /ui/steward           | 403            | 403     | yes     | 403     |
| GET  /ui/partner           | own org only   | 403     | 403     | 403     |
| POST /ui/partner/upload    | own org only   | 403     | 403     | 403     |
| GET  /ui/analyst           | 403            | yes     | 403     | 403     |
| POST /ui/analyst/report    | 403            | yes     | 403     | 403     |
| POST /ui/analyst/tables    | 403            | yes     | 403     | 403     |
| GET  /ui/auditor           | 403            | 403     | 403     | yes     |

The web UI (accord.serve.web) signs people in with their password into a server-side session
(cookie HttpOnly, SameSite=Strict); a /ui page without a live session redirects to /ui/login, a
POST without the session's CSRF token is refused (403, audited), a page of another role is a 403
page (audited).

A refused request (403) is audited. A pushed contribution is verified exactly as `accord hub add`
verifies it and loaded as one transaction; a failure is 422 with the same message and nothing
loaded; a retry of the same push is idempotent (200, `duplicate: true`).
"""

from __future__ import annotations

import shutil
import stat
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.responses import Response

from accord.errors import AccordError, ContributionError, StoreError
from accord.protect.contribution import read_manifest
from accord.serve import requests_api, withdraw_api
from accord.serve.accounts import Role, User
from accord.serve.analysis import MAX_CONCURRENT_ANALYSES, analysis_router
from accord.serve.deps import AnalysisLimit, allow, error, hub_store, store_guard
from accord.serve.web import WebSettings, ui_router
from accord.store import add_contribution
from accord.store import chain as hub_chain

DEFAULT_MAX_UPLOAD = 2 * 1024**3
_SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


@dataclass(frozen=True)
class ServerConfig:
    hub: Path | str
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD
    web: WebSettings = field(default_factory=WebSettings)
    max_concurrent_analyses: int = MAX_CONCURRENT_ANALYSES
    # Called in the worker thread as each analysis starts, with its name (for tests and monitoring).
    on_analysis: Callable[[str], None] | None = field(default=None, compare=False)


class _Headers(BaseHTTPMiddleware):
    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        response = await call_next(request)
        for name, value in _SECURITY_HEADERS.items():  # a page may set its own CSP (the web UI's)
            response.headers.setdefault(name, value)
        return response


def safe_extract(archive: Path, dest: Path, max_bytes: int) -> None:
    """Unpack a contribution zip: plain files at the top level only (no paths, no links), and no
    more bytes than ``max_bytes`` in all (zip bombs). Anything else is refused before writing."""
    try:
        zf = zipfile.ZipFile(archive)
    except zipfile.BadZipFile:
        raise ContributionError("the upload is not a zip archive",
                                hint="`accord push` sends the contribution directory as a zip") from None
    with zf:
        members = zf.infolist()
        total = 0
        for m in members:
            name = m.filename
            mode = m.external_attr >> 16
            if (m.is_dir() or "/" in name or "\\" in name or name in ("", ".", "..")
                    or name.startswith(".") or stat.S_ISLNK(mode)):
                raise ContributionError("the upload holds a path, a folder or a link; refused",
                                        hint="upload the files of one contribution directory only")
            total += m.file_size
        if total > max_bytes or len(members) > 16:
            raise ContributionError("the upload unpacks to more than the server accepts; refused")
        written = 0
        for m in members:
            with zf.open(m) as src, (dest / m.filename).open("xb") as out:
                while chunk := src.read(1 << 20):
                    written += len(chunk)
                    if written > max_bytes:
                        raise ContributionError("the upload unpacks to more than it says; refused")
                    out.write(chunk)


def create_app(config: ServerConfig) -> FastAPI:
    app = FastAPI(title="Accord hub", docs_url=None, redoc_url=None, openapi_url=None)
    app.add_middleware(_Headers)
    app.state.config = config  # routers of other modules find the hub here (accord.serve.deps)
    guard = app.state.store_guard = store_guard(config.hub)  # one for every route (deps.store_guard)
    # One limit on analyses for the API's routes, request approvals and the web pages alike.
    limit = app.state.analysis_limit = AnalysisLimit(config.max_concurrent_analyses, config.on_analysis)
    app.include_router(withdraw_api.router)  # partner withdrawal
    app.include_router(requests_api.router)  # record-level outputs by request
    app.include_router(analysis_router(config.hub, guard, limit))  # stats, DP tables, estimate, report, budget
    app.include_router(ui_router(config, guard, limit))

    @app.exception_handler(HTTPException)
    async def _httperror(request: Request, exc: HTTPException) -> JSONResponse:
        detail: Any = exc.detail if isinstance(exc.detail, dict) else {"error": str(exc.detail)}
        return JSONResponse(detail, status_code=exc.status_code)

    @app.get("/api/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/api/whoami")
    def whoami(request: Request) -> dict[str, str]:
        with hub_store(request) as s:
            user = allow(request, s, set(Role))
        return {"user": user.username, "org": user.org, "role": user.role.value}

    @app.get("/api/batches")
    def batches(request: Request) -> list[dict[str, Any]]:
        with hub_store(request) as s:
            user = allow(request, s, {Role.SUBMITTER, Role.STEWARD, Role.AUDITOR})
            rows = s.batches()
        return [r for r in rows if user.role != Role.SUBMITTER or r["partner"] == user.org]

    @app.get("/api/releases")
    def releases(request: Request) -> list[dict[str, Any]]:
        with hub_store(request) as s:
            allow(request, s, {Role.ANALYST, Role.STEWARD, Role.AUDITOR})
            return s.releases()

    @app.get("/api/audit")
    def audit(request: Request) -> list[dict[str, Any]]:
        with hub_store(request) as s:
            allow(request, s, {Role.STEWARD, Role.AUDITOR})
            return hub_chain.rows_in_order(s, "audit", ("occurred_at",))

    def _check_pusher(request: Request) -> User:
        with hub_store(request) as s:
            return allow(request, s, {Role.SUBMITTER})

    @app.post("/api/contributions")
    async def push(request: Request) -> JSONResponse:
        user = await run_in_threadpool(_check_pusher, request)
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > config.max_upload_bytes:
            raise error(413, "the upload is larger than the server accepts")
        work = Path(tempfile.mkdtemp(prefix="accord-push-"))
        try:
            archive = work / "upload.zip"
            size = 0
            with archive.open("wb") as out:
                async for chunk in request.stream():
                    size += len(chunk)
                    if size > config.max_upload_bytes:
                        raise error(413, "the upload is larger than the server accepts")
                    out.write(chunk)
            return await run_in_threadpool(_load, request, archive, work, user)
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def _load(request: Request, archive: Path, work: Path, user: User) -> JSONResponse:
        contribution = work / "contribution"
        contribution.mkdir()
        try:
            safe_extract(archive, contribution, config.max_upload_bytes * 4)
            manifest = read_manifest(contribution)
            if manifest.partner != user.org:
                with hub_store(request) as s:
                    s.audit(user.username, "hub.denied", {"route": "/api/contributions",
                                                          "reason": "partner is another organisation"})
                raise error(403, "the contribution belongs to another organisation")
            with hub_store(request) as s:
                outcome = add_contribution(s, contribution, actor=user.username)
        except StoreError as err:
            raise error(503, "the hub store is not available", err.hint) from None
        except AccordError as err:
            # the same reasons as `hub add`, naming the upload rather than the server's scratch folder
            def here(text: str | None) -> str | None:
                return text.replace(str(contribution), "the upload") if text else text

            raise error(422, here(err.message) or "the upload was refused", here(err.hint)) from None
        body = {"batch_id": outcome.batch_id, "partner": outcome.partner, "added": outcome.added,
                "replaced": outcome.replaced, "duplicate": outcome.duplicate}
        return JSONResponse(body, status_code=200 if outcome.duplicate else 201)

    return app
