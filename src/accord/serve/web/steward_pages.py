"""The steward's pages beyond the dashboard: decide requested record-level releases, set and grant
the privacy budget, manage organisations, users and API tokens.

Each action calls the same function as its CLI command and API route (accord.serve.requests,
accord.release.dp.ledger, accord.serve.accounts), which audits it; nothing here writes the store
itself. An action that cannot be undone (approve a release, change the budget, disable an account,
reset a password, revoke a token) first shows a confirmation page that says in plain words what
will happen; only its "confirm" button does it. A secret made here (a one-time password, an API
token) is shown once, on the answer to the form, and is kept nowhere but as a hash. A request is
shown by its parameters and summary only: no page shows a record.

| route                               | steward | the other roles |
| ----------------------------------- | ------- | --------------- |
| GET  /ui/steward/requests           | yes     | 403 (audited)   |
| POST /ui/steward/requests/approve   | yes     | 403             |
| POST /ui/steward/requests/reject    | yes     | 403             |
| GET  /ui/steward/budget             | yes     | 403             |
| POST /ui/steward/budget/set         | yes     | 403             |
| POST /ui/steward/budget/grant       | yes     | 403             |
| POST /ui/steward/budget/quota       | yes     | 403             |
| GET  /ui/steward/accounts           | yes     | 403             |
| POST /ui/steward/accounts/org       | yes     | 403             |
| POST /ui/steward/accounts/user      | yes     | 403             |
| POST /ui/steward/accounts/disable   | yes     | 403             |
| POST /ui/steward/accounts/reset     | yes     | 403             |
| POST /ui/steward/accounts/reopen    | yes     | 403             |
| POST /ui/steward/accounts/unlock    | yes     | 403             |
| POST /ui/steward/accounts/role      | yes     | 403             |
| POST /ui/steward/tokens/create      | yes     | 403             |
| POST /ui/steward/tokens/revoke      | yes     | 403             |
"""

from __future__ import annotations

import math
import re
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse
from starlette.datastructures import FormData
from starlette.responses import Response

from accord.errors import AccordError, ParameterError, ReleaseRefused
from accord.serve.accounts import Role
from accord.serve.web.kit import Kit, attempt, text_field
from accord.serve.web.sessions import Session
from accord.store import Store

STEWARD = {Role.STEWARD}
_ID = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
ROLE_CHOICES = [(Role.SUBMITTER.value, "partner (uploads its organisation's contributions)"),
                (Role.ANALYST.value, "analyst (reports, tables, requests)"),
                (Role.STEWARD.value, "data steward (runs the hub)"),
                (Role.AUDITOR.value, "auditor (reads the audit log)")]
# What a finished action says on the page it returns to (the id comes from the address: checked).
DONE = {
    "approved": "Request {id} was approved. The release is on record and its requester can download it.",
    "rejected": "Request {id} was rejected. Its requester sees the reason.",
    "budget_set": "The privacy budget was changed. The change is on the ledger and the audit log.",
    "budget_grant": "The grant was added to the privacy budget. It is on the ledger and the audit log.",
    "budget_quota": "The organisation's share was changed. It is on the ledger and the audit log.",
    "org": "Organisation {id} was added.",
    "disabled": "The account {id} was closed: it cannot sign in and its API tokens no longer work.",
    "revoked": "API token {id} was revoked. It stopped working at once.",
    "role": "{id}'s role was changed. It applies from their next page or API call on.",
    "unlocked": "{id} can sign in again: the failed sign-ins counted against the name were forgotten. "
                "Their password is unchanged.",
}


def org_names(s: Store) -> list[str]:
    """The hub's organisations, by name ([] before the first one is added)."""
    if not s.table_exists("hub_orgs"):
        return []
    return [r["org"] for r in s.query("SELECT org FROM hub_orgs ORDER BY org").to_pylist()]


def number(form: FormData, name: str, label: str, default: float | None = None) -> float:
    raw = text_field(form, name, 40)
    if not raw and default is not None:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ParameterError(f"{label}: enter a number, such as 1 or 0.5") from None
    if not math.isfinite(value):
        raise ParameterError(f"{label}: enter a number, such as 1 or 0.5")
    return value


def request_words(kind: str, params: dict[str, Any] | None) -> list[str]:
    """A request's parameters in plain words (the parameters only: never a record)."""
    p = params or {}
    if kind == "synthetic":
        return [f"{int(p.get('rows', 0)):,} made-up records drawn from a model of the hub's data "
                "that was fitted with differential privacy",
                f"spends epsilon {p.get('epsilon', 0):.3g} at delta {p.get('delta', 0):g} of the "
                "hub's privacy budget"]
    qi = ", ".join(p.get("qi") or []) or "the standard's quasi-identifiers"
    sensitive = p.get("sensitive")
    words = [f"each combination of {qi} is shared by at least {p.get('k')} people (k-anonymity)",
             f"at least {p.get('l')} different values of each sensitive field in every such group "
             f"(l-diversity, {p.get('l_kind')}); sensitive fields: "
             f"{', '.join(sensitive) if sensitive else 'the standard' + chr(39) + 's'}",
             f"at most {100 * float(p.get('max_suppression') or 0):.3g}% of the records may be "
             f"suppressed (by {p.get('suppression')})"]
    if p.get("max_loss") is not None:
        words.append(f"refused if more than {100 * float(p['max_loss']):.3g}% of the information is lost")
    if p.get("weights"):
        words.append("weights: " + ", ".join(f"{k} {v:g}" for k, v in p["weights"].items()))
    if p.get("hxl"):
        words.append("with HXL tags")
    return words


def summary_words(summary: dict[str, Any] | None) -> str:
    """An approved release's public summary as short text (counts and measures only)."""
    if not summary:
        return ""
    parts = []
    for key, value in summary.items():
        if isinstance(value, dict | list):
            continue
        parts.append(f"{key.replace('_', ' ')}: {value:.3g}" if isinstance(value, float)
                     else f"{key.replace('_', ' ')}: {value}")
    return "; ".join(parts[:12])


def add_routes(router: APIRouter, kit: Kit) -> None:
    def done_notice(request: Request) -> str | None:
        code = request.query_params.get("done", "")
        ident = request.query_params.get("id", "")
        if code not in DONE or (ident and not _ID.match(ident)):
            return None
        return DONE[code].format(id=ident)

    def confirm(session: Session, title: str, action: str, fields: dict[str, str], statements: list[str],
                button: str, cancel: str, danger: bool = False) -> Response:
        return kit.page("confirm.html.j2", 200, session, title=title, action=action, fields=fields,
                        statements=statements, button=button, cancel=cancel, danger=danger, path="")

    def secret(session: Session, title: str, label: str, value: str, lines: list[str], back: str) -> Response:
        return kit.page("secret.html.j2", 201, session, title=title, label=label, value=value, lines=lines,
                        back=back, path="")

    # ------------------------------------------------------------ requests
    def requests_page(s: Store, session: Session, status: int = 200, error: str | None = None,
                      hint: str | None = None, notice: str | None = None) -> Response:
        from accord.release.dp import ledger
        from accord.serve import requests as rq

        rows = rq.list_requests(s)
        for r in rows:
            r["words"] = request_words(r["kind"], r["parameters"])
            r["summary_text"] = summary_words(r["summary"])
        pending = [r for r in rows if r["status"] == rq.PENDING]
        decided = list(reversed([r for r in rows if r["status"] != rq.PENDING]))[:50]
        return kit.page("steward_requests.html.j2", status, session, title="Requested releases",
                        pending=pending, decided=decided, budget=ledger.current_budget(s), error=error,
                        hint=hint, notice=notice, path="/ui/steward/requests")

    @router.get("/ui/steward/requests")
    def steward_requests(request: Request) -> Response:
        return kit.get(request, STEWARD, lambda s, session: requests_page(
            s, session, notice=done_notice(request)))

    @router.post("/ui/steward/requests/approve")
    async def approve(request: Request) -> Response:
        def check(s: Store, session: Session, form: FormData) -> Response | None:
            """The confirmation page, or a refusal; None when the release may take its turn."""
            from accord.release.dp import ledger
            from accord.serve import requests as rq

            request_id = text_field(form, "request_id", 64)
            if not request_id:
                return requests_page(s, session, 400, "Choose a request to approve.")
            try:
                row = rq.get_request(s, request_id)
            except rq.NoSuchRequest:
                return requests_page(s, session, 404, "There is no such request.")
            if row["status"] != rq.PENDING:
                return requests_page(s, session, 409, f"Request {request_id} is {row['status']} already; "
                                     "only a pending request is decided.")
            try:  # before the confirmation page
                rq.require_other_decider(row, session.user.username)
            except rq.OwnRequest as err:
                return requests_page(s, session, 403, f"{err.message[0].upper()}{err.message[1:]}.", err.hint)
            if form.get("confirm") != "yes":
                budget = ledger.current_budget(s)
                what = ("k-anonymous microdata: record-level rows, generalised so that no one stands out"
                        if row["kind"] == "microdata" else "synthetic data: made-up records, no real person's")
                lines = [f"The hub runs this release now: {what}.",
                         *[w[0].upper() + w[1:] + "." for w in request_words(row["kind"], row["parameters"])],
                         f"{row['requester']} ({row['org']}) can then download the output. Every download "
                         "is on the audit log.",
                         "If the release cannot meet its parameters, nothing is released or spent and "
                         "the request stays pending."]
                if row["kind"] == "synthetic":
                    lines.append(f"The hub's budget has epsilon {budget.remaining_epsilon:.3g} left "
                                 f"(at delta {budget.delta:g}).")
                if row["purpose"]:
                    lines.insert(0, f"Purpose given: {row['purpose']}")
                return confirm(session, f"Approve request {request_id}?", "/ui/steward/requests/approve",
                               {"request_id": request_id}, lines, "Approve and run the release",
                               "/ui/steward/requests")
            # a release the budget cannot pay is refused before it waits for its turn
            refusal = attempt(lambda: rq.require_request_affordable(s, request_id),
                              lambda err: not_released(s, session, err))
            return refusal if isinstance(refusal, Response) else None

        def act(s: Store, session: Session, form: FormData) -> Response:
            from accord.serve import requests as rq

            request_id = text_field(form, "request_id", 64)
            refusal = attempt(lambda: rq.approve_request(s, request_id, session.user.username),
                              lambda err: not_released(s, session, err))
            if isinstance(refusal, Response):
                return refusal
            return RedirectResponse(f"/ui/steward/requests?done=approved&id={request_id}", status_code=303)

        def not_released(s: Store, session: Session, err: AccordError) -> Response:
            return requests_page(s, session, 409, f"Nothing was released and the request is still "
                                 f"pending: {err.message}", err.hint)
        return await kit.post(request, STEWARD, 4, act, check=check, analysis="/ui/steward/requests/approve")

    @router.post("/ui/steward/requests/reject")
    async def reject(request: Request) -> Response:
        def act(s: Store, session: Session, form: FormData) -> Response:
            from accord.serve import requests as rq

            request_id = text_field(form, "request_id", 64)
            reason = text_field(form, "reason", rq.MAX_TEXT + 1)
            if not request_id:
                return requests_page(s, session, 400, "Choose a request to reject.")
            if not reason:
                return requests_page(s, session, 400, "Give a reason for rejecting the request: its "
                                     "requester will see it.")
            def refused(err: AccordError) -> Response:
                if isinstance(err, rq.NoSuchRequest):
                    return requests_page(s, session, 404, "There is no such request.")
                return requests_page(s, session, 409, f"The request was not rejected: {err.message}",
                                     err.hint)

            refusal = attempt(lambda: rq.reject_request(s, request_id, session.user.username, reason), refused)
            if isinstance(refusal, Response):
                return refusal
            return RedirectResponse(f"/ui/steward/requests?done=rejected&id={request_id}", status_code=303)
        return await kit.post(request, STEWARD, 4, act)

    # ------------------------------------------------------------ budget
    def budget_page(s: Store, session: Session, status: int = 200, error: str | None = None,
                    hint: str | None = None, notice: str | None = None) -> Response:
        from accord.release.dp import ledger

        budget = ledger.current_budget(s)
        spends = list(reversed(ledger.spends(s)))
        history = list(reversed(ledger.events(s)))
        for e in history:
            e["eps_at"] = ledger.epsilon_from_rho(float(e["rho"]), budget.delta)
        quotas = [q.to_dict(budget.delta) for q in ledger.quotas(s)]
        orgs = org_names(s)
        return kit.page("steward_budget.html.j2", status, session, title="Privacy budget", budget=budget,
                        quotas=quotas, orgs=orgs,
                        total_epsilon=ledger.epsilon_from_rho(budget.total_rho, budget.delta),
                        granted_epsilon=ledger.epsilon_from_rho(budget.granted_rho, budget.delta),
                        spends=spends, history=history, chain=ledger.verify(s), error=error, hint=hint,
                        notice=notice, path="/ui/steward/budget")

    @router.get("/ui/steward/budget")
    def steward_budget(request: Request) -> Response:
        return kit.get(request, STEWARD, lambda s, session: budget_page(s, session, notice=done_notice(request)))

    def budget_action(s: Store, session: Session, form: FormData, grant: bool) -> Response:
        from accord.release.dp import ledger
        from accord.release.dp.params import check_delta, check_epsilon

        budget = ledger.current_budget(s)
        try:
            epsilon = check_epsilon(number(form, "epsilon", "epsilon"), "epsilon")
            if grant:
                reason = text_field(form, "reason", 500)
                if not reason:
                    raise ParameterError("a grant needs a reason, e.g. '2027 allowance'")
                delta = budget.delta
                added = ledger.rho_from_epsilon_delta(epsilon, delta)
                new_total = budget.total_rho + added
            else:
                delta = check_delta(number(form, "delta", "delta", budget.delta), "delta")
                new_total = ledger.rho_from_epsilon_delta(epsilon, delta) + budget.granted_rho
        except ParameterError as err:
            return budget_page(s, session, 400, f"Nothing was changed: {err.message}.", err.hint)
        left_now = budget.remaining_epsilon
        left_after = ledger.epsilon_from_rho(max(new_total - budget.spent_rho, 0.0), delta)
        if not grant and new_total + 1e-12 < budget.spent_rho:
            return budget_page(s, session, 409, "Nothing was changed: the new budget is smaller than what "
                               "has already been spent.", "a budget can be raised, not taken back below "
                               "what is spent")
        if form.get("confirm") != "yes":
            spent = f"Already spent: epsilon {budget.spent_epsilon:.3g} on {budget.spends} release(s)."
            if grant:
                lines = [f"Adds epsilon {epsilon:.3g} (at delta {delta:g}) to the hub's lifetime budget, "
                         f"for the reason: {text_field(form, 'reason', 500)}.", spent,
                         f"Left now: epsilon {left_now:.3g}. Left after the grant: epsilon {left_after:.3g}.",
                         "Every release with noise, by any analyst, draws from this one budget. A grant "
                         "cannot be taken back."]
                fields = {"epsilon": repr(epsilon), "reason": text_field(form, "reason", 500)}
            else:
                lines = [f"Sets the hub's budget to epsilon {epsilon:.3g} at delta {delta:g} "
                         f"(now epsilon {budget.epsilon:.3g} at delta {budget.delta:g}), plus what was "
                         "granted.", spent,
                         f"Left now: epsilon {left_now:.3g}. Left after the change: epsilon {left_after:.3g}.",
                         "A larger budget lets more be published about the same people, and so tells "
                         "more about each of them." if new_total > budget.total_rho else
                         "A smaller budget protects the people in the hub more, and leaves less for "
                         "later releases."]
                fields = {"epsilon": repr(epsilon), "delta": repr(delta)}
            return confirm(session, "Grant more privacy budget?" if grant else "Change the privacy budget?",
                           f"/ui/steward/budget/{'grant' if grant else 'set'}", fields, lines,
                           "Grant it" if grant else "Set the budget", "/ui/steward/budget")
        def change() -> None:
            if grant:
                ledger.grant(s, epsilon, session.user.username, text_field(form, "reason", 500))
            else:
                ledger.set_budget(s, epsilon, delta, session.user.username)

        refusal = attempt(change, lambda err: budget_page(
            s, session, 409 if isinstance(err, ReleaseRefused) else 400,
            f"Nothing was changed: {err.message}.", err.hint))
        if isinstance(refusal, Response):
            return refusal
        return RedirectResponse(f"/ui/steward/budget?done={'budget_grant' if grant else 'budget_set'}",
                                status_code=303)

    @router.post("/ui/steward/budget/set")
    async def budget_set(request: Request) -> Response:
        return await kit.post(request, STEWARD, 4, lambda s, session, form: budget_action(s, session, form, False))

    @router.post("/ui/steward/budget/grant")
    async def budget_grant(request: Request) -> Response:
        return await kit.post(request, STEWARD, 4, lambda s, session, form: budget_action(s, session, form, True))

    def quota_action(s: Store, session: Session, form: FormData) -> Response:
        from accord.release.dp import ledger
        from accord.release.dp.params import check_epsilon

        budget = ledger.current_budget(s)
        org = text_field(form, "org", 64)
        reason = text_field(form, "reason", 500)
        given = text_field(form, "epsilon", 40)
        try:
            epsilon = None if not given else check_epsilon(number(form, "epsilon", "epsilon"), "epsilon")
            if not reason:
                raise ParameterError("a quota needs a reason, e.g. 'agreed share for 2027'")
            if org not in org_names(s):
                raise ParameterError("choose one of the hub's organisations")
        except ParameterError as err:
            return budget_page(s, session, 400, f"Nothing was changed: {err.message}.", err.hint)
        if form.get("confirm") != "yes":
            now = {q.org: q for q in ledger.quotas(s)}.get(org)
            spent = ledger.epsilon_from_rho(now.spent_rho if now else 0.0, budget.delta)
            before = ("no quota (the hub's budget alone limits it)" if now is None or now.quota_rho is None
                      else f"epsilon {ledger.epsilon_from_rho(now.quota_rho, budget.delta):.3g}")
            lines = [(f"Gives {org} a quota of epsilon {epsilon:.3g} (at delta {budget.delta:g}) of the "
                      "hub's budget." if epsilon is not None else
                      f"Removes {org}'s quota: the hub's budget alone will limit its releases."),
                     f"Now: {before}. Its users have spent epsilon {spent:.3g}.",
                     f"Reason: {reason}.",
                     "A quota divides the hub's one budget among organisations; it does not add to it."]
            fields = {"org": org, "epsilon": "" if epsilon is None else repr(epsilon), "reason": reason}
            return confirm(session, f"Change {org}'s share of the budget?", "/ui/steward/budget/quota",
                           fields, lines, "Change the share", "/ui/steward/budget")
        refusal = attempt(lambda: ledger.set_quota(s, org, epsilon, session.user.username, reason),
                          lambda err: budget_page(s, session, 409 if isinstance(err, ReleaseRefused) else 400,
                                                  f"Nothing was changed: {err.message}.", err.hint))
        if isinstance(refusal, Response):
            return refusal
        return RedirectResponse("/ui/steward/budget?done=budget_quota", status_code=303)

    @router.post("/ui/steward/budget/quota")
    async def budget_quota(request: Request) -> Response:
        return await kit.post(request, STEWARD, 5, quota_action)  # csrf, org, epsilon, reason, confirm

    # ------------------------------------------------------------ accounts and tokens
    def accounts_page(s: Store, session: Session, status: int = 200, error: str | None = None,
                      hint: str | None = None, notice: str | None = None) -> Response:
        from accord.serve.accounts import list_tokens, list_users

        orgs = s.query("SELECT org, created_at, created_by FROM hub_orgs ORDER BY org").to_pylist()
        users = list_users(s)
        locked = kit.limiter.locked_names(s, [str(u["username"]) for u in users])
        return kit.page("steward_accounts.html.j2", status, session, title="Accounts and tokens", orgs=orgs,
                        users=users, locked=locked, tokens=list(reversed(list_tokens(s))), roles=ROLE_CHOICES,
                        error=error, hint=hint, notice=notice, path="/ui/steward/accounts")

    @router.get("/ui/steward/accounts")
    def steward_accounts(request: Request) -> Response:
        return kit.get(request, STEWARD, lambda s, session: accounts_page(s, session, notice=done_notice(request)))

    def account_error(s: Store, session: Session, err: AccordError) -> Response:
        status = 409 if "already" in err.message else 400
        return accounts_page(s, session, status, f"Nothing was changed: {err.message}.", err.hint)

    @router.post("/ui/steward/accounts/org")
    async def org_add(request: Request) -> Response:
        def act(s: Store, session: Session, form: FormData) -> Response:
            from accord.serve.accounts import add_org

            org = text_field(form, "org", 64)
            refusal = attempt(lambda: add_org(s, org, session.user.username),
                              lambda err: account_error(s, session, err))
            if isinstance(refusal, Response):
                return refusal
            return RedirectResponse(f"/ui/steward/accounts?done=org&id={org}", status_code=303)
        return await kit.post(request, STEWARD, 3, act)

    @router.post("/ui/steward/accounts/user")
    async def user_add(request: Request) -> Response:
        def act(s: Store, session: Session, form: FormData) -> Response:
            from accord.serve.accounts import AccountError, add_user, one_time_password

            username = text_field(form, "username", 64)
            org = text_field(form, "org", 64)
            password = one_time_password()
            def add() -> Role:
                try:
                    role = Role(text_field(form, "role", 20))
                except ValueError:
                    raise AccountError("choose a role") from None
                add_user(s, username, org, role, password, session.user.username, one_time=True)
                return role

            role = attempt(add, lambda err: account_error(s, session, err))
            if isinstance(role, Response):
                return role
            return secret(session, f"Account {username} added", f"One-time password of {username}", password,
                          [f"{username} is a {dict(ROLE_CHOICES)[role.value].split(' (')[0]} of {org}.",
                           "Give this password to them in person or by another safe channel. They must "
                           "choose their own password when they first sign in.",
                           "It is shown only now: the hub keeps only a hash of it. If it is lost, reset "
                           "the password."], "/ui/steward/accounts")
        return await kit.post(request, STEWARD, 5, act)

    def reopen_action(s: Store, session: Session, form: FormData) -> Response:
        from accord.serve.accounts import reopen_user

        username = text_field(form, "username", 64)
        if not username:
            return accounts_page(s, session, 400, "Choose an account.")
        if form.get("confirm") != "yes":
            return confirm(session, f"Reopen the account {username}?", "/ui/steward/accounts/reopen",
                           {"username": username},
                           [f"{username} can sign in again, with a one-time password you give them; they "
                            "choose their own at the first sign-in.",
                            "Their old password does not come back, nor do the API tokens revoked when the "
                            "account was closed: make new ones if they need them."],
                           "Reopen the account", "/ui/steward/accounts")
        password = attempt(lambda: reopen_user(s, username, session.user.username),
                           lambda err: account_error(s, session, err))
        if isinstance(password, Response):
            return password
        return secret(session, f"Account {username} reopened", f"One-time password of {username}", password,
                      ["Give it to them in person or by another safe channel. They must choose their own "
                       "password when they sign in with it.",
                       "It is shown only now: the hub keeps only a hash of it."], "/ui/steward/accounts")

    @router.post("/ui/steward/accounts/reopen")
    async def user_reopen(request: Request) -> Response:
        return await kit.post(request, STEWARD, 3, reopen_action)  # csrf, username, confirm

    def unlock_action(s: Store, session: Session, form: FormData) -> Response:
        from accord.serve.accounts import unlock_user

        # No confirmation page: lifting a lockout gives back what the limit took, nothing more
        # (the password is unchanged), and the page says so.
        username = text_field(form, "username", 64)
        if not username:
            return accounts_page(s, session, 400, "Choose an account.")
        cleared = attempt(lambda: unlock_user(s, username, session.user.username),
                          lambda err: account_error(s, session, err))
        if isinstance(cleared, Response):
            return cleared
        return RedirectResponse(f"/ui/steward/accounts?done=unlocked&id={username}", status_code=303)

    def role_action(s: Store, session: Session, form: FormData) -> Response:
        from accord.serve.accounts import AccountError, set_role

        username = text_field(form, "username", 64)
        given = text_field(form, "role", 20)
        if not username:
            return accounts_page(s, session, 400, "Choose an account.")
        try:
            role = Role(given)
        except ValueError:
            return account_error(s, session, AccountError("choose a role"))
        if form.get("confirm") != "yes":
            label = dict(ROLE_CHOICES)[role.value]
            return confirm(session, f"Change {username}'s role to {label.split(' (')[0]}?", "/ui/steward/accounts/role",
                           {"username": username, "role": role.value},
                           [f"{username}'s role will be {label} from their next page or API call on, "
                            "with their current password and tokens.",
                            "The change is on the audit log. A steward cannot approve a request they "
                            "made themselves, whatever their role was when they made it."],
                           "Change the role", "/ui/steward/accounts")
        old = attempt(lambda: set_role(s, username, role, session.user.username),
                      lambda err: account_error(s, session, err))
        if isinstance(old, Response):
            return old
        return RedirectResponse(f"/ui/steward/accounts?done=role&id={username}", status_code=303)

    @router.post("/ui/steward/accounts/role")
    async def user_role(request: Request) -> Response:
        return await kit.post(request, STEWARD, 4, role_action)  # csrf, username, role, confirm

    @router.post("/ui/steward/accounts/unlock")
    async def user_unlock(request: Request) -> Response:
        return await kit.post(request, STEWARD, 2, unlock_action)  # csrf, username

    def user_action(s: Store, session: Session, form: FormData, reset: bool) -> Response:
        from accord.serve.accounts import disable_user, reset_password

        username = text_field(form, "username", 64)
        if not username:
            return accounts_page(s, session, 400, "Choose an account.")
        if form.get("confirm") != "yes":
            if reset:
                lines = [f"{username}'s password stops working now, and they are signed out of the web "
                         "pages everywhere.",
                         "You get a one-time password to give them; they choose their own at the next "
                         "sign-in. Their API tokens keep working."]
            else:
                lines = [f"{username} can no longer sign in, is signed out everywhere, and every API "
                         "token of theirs is revoked.",
                         "The account stays on the audit log under its name. You can reopen it later "
                         "with a new one-time password; its tokens stay revoked."]
            return confirm(session, f"Reset the password of {username}?" if reset else f"Close the account {username}?",
                           f"/ui/steward/accounts/{'reset' if reset else 'disable'}", {"username": username},
                           lines, "Reset the password" if reset else "Close the account",
                           "/ui/steward/accounts", danger=not reset)
        def change() -> str:
            if reset:
                return reset_password(s, username, session.user.username)
            disable_user(s, username, session.user.username)
            return ""

        password = attempt(change, lambda err: account_error(s, session, err))
        if isinstance(password, Response):
            return password
        if not reset:
            return RedirectResponse(f"/ui/steward/accounts?done=disabled&id={username}", status_code=303)
        return secret(session, f"New one-time password for {username}", f"One-time password of {username}",
                      password, ["Give it to them in person or by another safe channel. They must choose "
                                 "their own password when they sign in with it.",
                                 "It is shown only now: the hub keeps only a hash of it."],
                      "/ui/steward/accounts")

    @router.post("/ui/steward/accounts/disable")
    async def user_disable(request: Request) -> Response:
        return await kit.post(request, STEWARD, 4, lambda s, session, form: user_action(s, session, form, False))

    @router.post("/ui/steward/accounts/reset")
    async def user_reset(request: Request) -> Response:
        return await kit.post(request, STEWARD, 4, lambda s, session, form: user_action(s, session, form, True))

    @router.post("/ui/steward/tokens/create")
    async def token_create(request: Request) -> Response:
        def act(s: Store, session: Session, form: FormData) -> Response:
            from accord.serve.accounts import create_token

            username = text_field(form, "username", 64)
            if not username:
                return accounts_page(s, session, 400, "Choose whose token to create.")
            made = attempt(lambda: create_token(s, username, session.user.username),
                           lambda err: account_error(s, session, err))
            if isinstance(made, Response):
                return made
            token_id, token = made
            return secret(session, f"API token {token_id} for {username}", f"API token of {username}", token,
                          [f"It acts as {username} on the hub's API (e.g. `accord push --server URL "
                           "--token-file FILE`). Save it in a file only its owner can read "
                           "(chmod 600) and pass that file.",
                           "It is shown only now: the hub keeps only a hash of it. Revoke it here if it "
                           "is lost or leaked."], "/ui/steward/accounts")
        return await kit.post(request, STEWARD, 3, act)

    @router.post("/ui/steward/tokens/revoke")
    async def token_revoke(request: Request) -> Response:
        def act(s: Store, session: Session, form: FormData) -> Response:
            from accord.serve.accounts import revoke_token

            token_id = text_field(form, "token_id", 64)
            if not token_id:
                return accounts_page(s, session, 400, "Choose a token to revoke.")
            if form.get("confirm") != "yes":
                return confirm(session, f"Revoke API token {token_id}?", "/ui/steward/tokens/revoke",
                               {"token_id": token_id},
                               ["The token stops working at once: a command or script that uses it is "
                                "refused from then on.",
                                "Its owner keeps their account; create a new token for them if needed."],
                               "Revoke the token", "/ui/steward/accounts", danger=True)
            refusal = attempt(lambda: revoke_token(s, token_id, session.user.username),
                              lambda err: account_error(s, session, err))
            if isinstance(refusal, Response):
                return refusal
            return RedirectResponse(f"/ui/steward/accounts?done=revoked&id={token_id}", status_code=303)
        return await kit.post(request, STEWARD, 4, act)
