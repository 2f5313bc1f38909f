"""The analyst's requests for record-level outputs (k-anonymous microdata, DP synthetic data):
ask for one, follow its status, download it once a steward has approved it. The same functions as
`accord request` and /api/requests (accord.serve.requests), so the same checks and audit entries.

| route                              | analyst        | the other roles |
| ---------------------------------- | -------------- | --------------- |
| GET  /ui/analyst/requests          | own requests   | 403 (audited)   |
| POST /ui/analyst/requests          | yes            | 403             |
| POST /ui/analyst/requests/download | own, approved  | 403             |

A download is a POST with the session's CSRF token (it is audited, so it is not a plain link), and
only the analyst who asked gets the output; the page shows parameters and status, never a record.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse
from starlette.datastructures import FormData
from starlette.responses import Response

from accord.errors import AccordError, ParameterError
from accord.serve.accounts import Role
from accord.serve.web.kit import Kit, attempt, text_field
from accord.serve.web.sessions import Session
from accord.serve.web.steward_pages import _ID, request_words, summary_words
from accord.store import Store

ANALYST = {Role.ANALYST}


def _whole(form: FormData, name: str, label: str) -> int | None:
    raw = text_field(form, name, 20)
    if not raw:
        return None
    if not raw.isdigit():
        raise ParameterError(f"{label}: enter a whole number")
    return int(raw)


def parameters_of(form: FormData, kind: str) -> dict[str, Any]:
    """The request's parameters from the form: only those filled in (the others: the CLI's defaults)."""
    from accord.serve.web.steward_pages import number

    params: dict[str, Any] = {}
    if kind == "synthetic":
        params["epsilon"] = number(form, "epsilon", "epsilon")
        params["rows"] = _whole(form, "rows", "rows")
        if params["rows"] is None:
            raise ParameterError("rows: enter how many synthetic records to make")
        return params
    for name, label in (("k", "k"), ("l", "l")):
        value = _whole(form, name, label)
        if value is not None:
            params[name] = value
    qi = [q.strip() for q in text_field(form, "qi", 2000).split(",") if q.strip()]
    if qi:
        params["qi"] = qi
    return params


def add_routes(router: APIRouter, kit: Kit) -> None:
    def requests_page(s: Store, session: Session, status: int = 200, error: str | None = None,
                      hint: str | None = None, notice: str | None = None) -> Response:
        from accord.release.dp import ledger
        from accord.serve import requests as rq

        rows = list(reversed(rq.list_requests(s, requester=session.user.username)))
        for r in rows:
            r["words"] = request_words(r["kind"], r["parameters"])
            r["summary_text"] = summary_words(r["summary"])
        return kit.page("analyst_requests.html.j2", status, session, title="Requests for record-level data",
                        rows=rows, budget=ledger.current_budget(s), error=error, hint=hint, notice=notice,
                        max_rows=rq.MAX_SYNTHETIC_ROWS)

    @router.get("/ui/analyst/requests")
    def analyst_requests(request: Request) -> Response:
        made = request.query_params.get("made", "")
        notice = (f"Request {made} was sent. A data steward will approve or reject it; its status shows "
                  "below." if made and _ID.match(made) else None)
        return kit.get(request, ANALYST, lambda s, session: requests_page(s, session, notice=notice))

    @router.post("/ui/analyst/requests")
    async def make_request(request: Request) -> Response:
        def act(s: Store, session: Session, form: FormData) -> Response:
            from accord.serve import requests as rq

            kind = text_field(form, "kind", 20)

            def send() -> dict[str, Any]:
                if kind not in rq.KINDS:
                    raise ParameterError("choose microdata or synthetic data")
                return rq.create_request(s, session.user, kind, parameters_of(form, kind),
                                         text_field(form, "purpose", rq.MAX_TEXT + 1))

            row = attempt(send, lambda err: requests_page(s, session, 400, f"The request was not sent: "
                                                          f"{err.message}", err.hint))
            if isinstance(row, Response):
                return row
            return RedirectResponse(f"/ui/analyst/requests?made={row['request_id']}", status_code=303)
        return await kit.post(request, ANALYST, 10, act)

    @router.post("/ui/analyst/requests/download")
    async def download(request: Request) -> Response:
        def act(s: Store, session: Session, form: FormData) -> Response:
            from accord.serve import requests as rq

            request_id = text_field(form, "request_id", 64)
            if not request_id:
                return requests_page(s, session, 400, "Choose a request to download.")
            def refused(err: AccordError) -> Response:
                if isinstance(err, rq.NotYourRequest):
                    s.audit(session.user.username, "hub.denied", {"route": request.url.path,
                                                                 "reason": "another analyst's request"})
                    return kit.problem(403, "This output is not yours",
                                       "Only the analyst who asked for a release downloads it. The attempt "
                                       "is on the audit log.", session)
                if isinstance(err, rq.NoSuchRequest):
                    return requests_page(s, session, 404, "There is no such request.")
                return requests_page(s, session, 409, f"Nothing to download: {err.message}", err.hint)

            got = attempt(lambda: rq.request_output(s, request_id, session.user), refused)
            if isinstance(got, Response):
                return got
            return Response(got.content, media_type="application/zip", headers={
                "Content-Disposition": f'attachment; filename="{got.filename}"', "X-Accord-SHA256": got.sha256})
        return await kit.post(request, ANALYST, 3, act)
