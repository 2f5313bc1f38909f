"""The analyst's routes of the shared hub: protected tables, DP tables, estimates, the report and
the privacy budget, each through the same library calls (and so the same protections, parameter
checks and refusals) as the local CLI commands. Every route answers with published figures only:
no route reads out a record, an encoding or a pseudonym.

Who may do what (rows of the matrix in accord.serve.app; tests/test_serve.py checks them):

| route                      | submitter | analyst | steward | auditor |
| -------------------------- | --------- | ------- | ------- | ------- |
| POST /api/stats            | 403       | yes     | yes     | 403     |
| POST /api/report           | 403       | yes     | yes     | 403     |
| POST /api/release/tables   | 403       | yes     | yes     | 403     |
| POST /api/estimate         | 403       | yes     | yes     | 403     |
| GET  /api/budget           | 403       | yes     | yes     | yes     |
| POST /api/budget/set       | 403       | 403     | yes     | 403     |
| POST /api/budget/grant     | 403       | 403     | yes     | 403     |
| POST /api/budget/quota     | 403       | 403     | yes     | 403     |

Who made a release is the token's user, never a name the client sends. Answers:
400 a malformed body (the message names the field, never echoes its value); 409 a release refused
(budget, chain, disclosure rules: the CLI's exit 3); 422 a request this hub cannot answer (the
CLI's exit 2); 503 the store is unreachable (e.g. PostgreSQL restarting): nothing was spent, retry.

Concurrency: on PostgreSQL every chained write (release record, ledger spend, audit) takes one
transaction-scoped advisory lock before reading the chain's head (accord.store.postgres_store), so
concurrent DP releases are serialised at the spend and the ledger is never overspent. On DuckDB the
server holds the hub file in one process and these routes run one at a time (a lock below).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from starlette.concurrency import run_in_threadpool

from accord.errors import AccordError, ParameterError, ReleaseRefused, StoreError
from accord.release.dp.params import MAX_DELTA, MAX_EPSILON
from accord.serve.accounts import Role, User
from accord.serve.deps import AnalysisLimit, allow, error
from accord.store import Store, open_store

if TYPE_CHECKING:
    from accord.research.estimate.pipeline import PipelineOptions

M = TypeVar("M", bound=BaseModel)
ANALYSTS = {Role.ANALYST, Role.STEWARD}
MAX_BOOTSTRAP = 2000  # a server bound (CPU shared by every user); the local CLI has none


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=False)


class StatsBody(_Body):
    threshold: int = Field(10, ge=2)
    protection: int | None = Field(None, ge=1)
    unit: Literal["auto", "records", "persons"] = "auto"
    privacy: Literal["dp", "suppression"] = "dp"
    rho: float | None = Field(None, gt=0, le=1, allow_inf_nan=False)

    @model_validator(mode="after")
    def _options_of_the_method(self) -> StatsBody:
        """As the CLI: an option the chosen method does not use is refused, not ignored."""
        if self.privacy == "dp" and self.protection is not None:
            raise ValueError("protection applies to privacy 'suppression' only")
        if self.privacy == "suppression" and self.rho is not None:
            raise ValueError("rho applies to privacy 'dp' only")
        return self


class TablesBody(_Body):
    epsilon: float = Field(gt=0, le=MAX_EPSILON, allow_inf_nan=False)
    delta: float = Field(1e-9, gt=0, le=MAX_DELTA, allow_inf_nan=False)
    mechanism: Literal["gaussian", "laplace"] = "gaussian"
    tables: list[str] = Field(default_factory=list, max_length=64)
    purpose: str = Field("", max_length=500)


class EstimateBody(_Body):
    by: list[str] = Field(default_factory=list, max_length=8)
    method: str = "stepwise"
    bootstrap: int = Field(0, ge=0, le=MAX_BOOTSTRAP)
    seed: int = 20130101
    average: bool = False
    latent: bool = False
    threshold: int = Field(10, ge=2)
    min_list_size: int = Field(10, ge=0)
    privacy: Literal["dp", "suppression"] = "dp"
    rho: float | None = Field(None, gt=0, le=1, allow_inf_nan=False)


class BudgetSetBody(_Body):
    epsilon: float = Field(gt=0, le=MAX_EPSILON, allow_inf_nan=False)
    delta: float = Field(1e-6, gt=0, le=MAX_DELTA, allow_inf_nan=False)


class BudgetGrantBody(_Body):
    epsilon: float = Field(gt=0, le=MAX_EPSILON, allow_inf_nan=False)
    reason: str = Field(max_length=500)


class BudgetQuotaBody(_Body):
    org: str = Field(min_length=1, max_length=64)
    epsilon: float | None = Field(gt=0, le=MAX_EPSILON, allow_inf_nan=False)  # null removes it
    reason: str = Field(max_length=500)


def field_errors(err: ValidationError) -> str:
    """Which fields are wrong and why, from pydantic's errors, without the values given."""
    parts = []
    for e in err.errors(include_input=False, include_url=False, include_context=False):
        where = ".".join(str(p) for p in e["loc"]) or "body"
        if e["type"] == "value_error" and not e["loc"]:  # a rule across fields: its message names them
            parts.append(str(e["msg"]).removeprefix("Value error, "))
            continue
        kind = {"extra_forbidden": "is not a known field", "missing": "is required"}.get(e["type"])
        parts.append(f"{where} {kind or '(' + str(e['msg']).split(',')[0].lower() + ')'}")
    return "; ".join(parts)


async def _parse(request: Request, model: type[M]) -> M:
    raw = await request.body()
    if len(raw) > 64_000:
        raise error(413, "the request body is larger than the server accepts")
    try:
        return model.model_validate_json(raw or b"{}")
    except ValidationError as err:
        if any(e["type"] == "json_invalid" for e in err.errors()):
            raise error(400, "the request body is not JSON",
                         hint="send a JSON object with the command's options") from None
        raise error(400, f"invalid request: {field_errors(err)}",
                     hint="the fields and their ranges are those of the CLI command's options") from None


# At most this many analyses run at once in one server process; the others wait their turn.
# Each loads the hub's people into memory (about 0.7 GB for a hub of 1M records), and 20 at once
# on 1M records got the server killed by the kernel for memory (benchmarks/results/server.md);
# with the CPU-bound work of a release, more at once than the machine has cores finishes none
# sooner. Waiting happens before a worker thread is taken, so pushes are not starved of threads.
# The limit (accord.serve.deps.AnalysisLimit) is the app's: these routes, the approval of a
# requested release (API and web) and the web UI's report and tables all take their turn in it.
MAX_CONCURRENT_ANALYSES = 2


def analysis_router(hub: Path | str, guard: AbstractContextManager[object],
                    limit: AnalysisLimit) -> APIRouter:
    """The analyst's routes; ``guard`` is the app's (accord.serve.deps.store_guard), ``limit`` its
    limit on analyses at once."""
    router = APIRouter()

    @contextmanager
    def store() -> Iterator[Store]:
        """The hub store for one request; failures become the HTTP answers described above."""
        with guard:
            try:
                with open_store(hub) as s:
                    yield s
            except StoreError as err:
                raise error(503, "the hub store is not available; nothing was released or spent",
                             hint=err.hint or "retry in a moment") from None
            except ParameterError as err:  # the same check as the CLI's (it never repeats the value)
                raise error(400, f"invalid request: {err.message}", err.hint) from None
            except ReleaseRefused as err:
                raise error(409, err.message, err.hint, exit_code=err.exit_code) from None
            except AccordError as err:
                raise error(422, err.message, err.hint, exit_code=err.exit_code) from None

    async def run(request: Request, roles: set[Role], work: Callable[[Store, User], Any],
                  check: Callable[[Store, User], None] | None = None) -> Any:
        """``work`` in its turn; ``check`` (cheap: no data read) first, outside the limit, so a
        request it refuses neither waits nor computes."""
        if check is not None:
            def first() -> None:
                with store() as s:
                    check(s, allow(request, s, roles))

            await run_in_threadpool(first)

        def job() -> Any:
            with store() as s:
                return work(s, allow(request, s, roles))

        return await limit.run(request.url.path, job)

    def dp_tables_affordable(body: StatsBody) -> Callable[[Store, User], None] | None:
        """A DP release of the stats tables the budget cannot pay: refused before its turn."""
        if body.privacy != "dp":
            return None

        def check(s: Store, user: User) -> None:
            from accord.research.stats import require_dp_tables_affordable

            require_dp_tables_affordable(s, body.rho, actor=user.username)

        return check

    @router.post("/api/stats")
    async def stats(request: Request) -> Any:
        body = await _parse(request, StatsBody)

        def work(s: Store, user: User) -> Any:
            from accord.research.stats import tables_on_record

            return tables_on_record(s, body.threshold, body.protection, body.unit, user.username,
                                    "tables", body.privacy, body.rho).to_dict()

        return await run(request, ANALYSTS, work, dp_tables_affordable(body))

    @router.post("/api/report")
    async def report(request: Request) -> HTMLResponse:
        body = await _parse(request, StatsBody)

        def work(s: Store, user: User) -> HTMLResponse:
            from accord.release.suppression import SuppressionRules
            from accord.research.report.stages import publish_report

            rules = SuppressionRules(threshold=body.threshold, protection=body.protection)
            with tempfile.TemporaryDirectory(prefix="accord-report-") as tmp:
                out = Path(tmp) / "report.html"
                release_id, result = publish_report(s, out, rules, body.unit, user.username,
                                                    method=body.privacy, rho=body.rho)
                html = out.read_text(encoding="utf-8")
            return HTMLResponse(html, headers={"X-Accord-Release": release_id,
                                               "X-Accord-Data-Version": result.data_version})

        response: HTMLResponse = await run(request, ANALYSTS, work, dp_tables_affordable(body))
        return response

    @router.post("/api/release/tables")
    async def dp_tables(request: Request) -> Any:
        body = await _parse(request, TablesBody)

        def work(s: Store, user: User) -> Any:
            from accord.release.dp.release import release_tables

            rel = release_tables(s, body.epsilon, delta=body.delta, mechanism=body.mechanism,
                                 names=body.tables or None, actor=user.username,
                                 purpose=body.purpose)
            return {"release_id": rel.release_id, "parameters": rel.parameters,
                    "budget_after": rel.budget.to_dict(), "chain_head": rel.chain_head,
                    "tables": {t.spec.name: {"columns": list(t.columns),
                                             "rows": [list(r) for r in t.rows]}
                               for t in rel.tables}}

        def affordable(s: Store, user: User) -> None:
            from accord.release.dp import ledger
            from accord.release.dp.release import tables_cost

            ledger.require_affordable(s, tables_cost(body.epsilon, body.delta, body.mechanism,
                                                     body.tables or None), actor=user.username)

        return await run(request, ANALYSTS, work, affordable)

    @router.post("/api/estimate")
    async def estimate(request: Request) -> Any:
        body = await _parse(request, EstimateBody)

        def options(user: User) -> PipelineOptions:
            """The CLI's options (accord.cli.estimate_cmd builds them with the same call)."""
            from accord.research.estimate import METHODS
            from accord.research.estimate.pipeline import PipelineOptions

            if body.method not in METHODS:
                raise error(400, f"invalid request: method (use one of {', '.join(METHODS)})")
            return PipelineOptions.of(
                by=body.by, threshold=body.threshold, min_list_size=body.min_list_size,
                method=body.method, bootstrap=body.bootstrap, seed=body.seed,
                average=body.average, latent=body.latent, privacy=body.privacy, rho=body.rho,
                actor=user.username)

        def work(s: Store, user: User) -> Any:
            from accord.research.estimate.pipeline import estimate_hub

            opts = options(user)
            summary = estimate_hub(s, opts, None)
            summary["release_id"] = s.record_release(
                "estimate", opts.parameters(),
                {"overall": summary["overall"], "strata": summary["strata"]}, user.username)
            return summary

        def affordable(s: Store, user: User) -> None:
            from accord.research.estimate.pipeline import require_estimate_affordable

            require_estimate_affordable(s, options(user))

        return await run(request, ANALYSTS, work, affordable)

    @router.get("/api/budget")
    async def budget(request: Request) -> Any:
        def work(s: Store, user: User) -> Any:
            from accord.release.dp import ledger

            current = ledger.current_budget(s)
            return {"budget": current.to_dict(), "spends": ledger.spends(s),
                    "events": ledger.events(s), "chain": ledger.verify(s).to_dict(),
                    "quotas": [q.to_dict(current.delta) for q in ledger.quotas(s)]}

        return await run(request, {Role.ANALYST, Role.STEWARD, Role.AUDITOR}, work)

    @router.post("/api/budget/set")
    async def budget_set(request: Request) -> Any:
        body = await _parse(request, BudgetSetBody)

        def work(s: Store, user: User) -> Any:
            from accord.release.dp import ledger

            return ledger.set_budget(s, body.epsilon, body.delta, user.username).to_dict()

        return await run(request, {Role.STEWARD}, work)

    @router.post("/api/budget/grant")
    async def budget_grant(request: Request) -> Any:
        body = await _parse(request, BudgetGrantBody)

        def work(s: Store, user: User) -> Any:
            from accord.release.dp import ledger

            return ledger.grant(s, body.epsilon, user.username, body.reason).to_dict()

        return await run(request, {Role.STEWARD}, work)

    @router.post("/api/budget/quota")
    async def budget_quota(request: Request) -> Any:
        body = await _parse(request, BudgetQuotaBody)

        def work(s: Store, user: User) -> Any:
            from accord.release.dp import ledger

            quota = ledger.set_quota(s, body.org, body.epsilon, user.username, body.reason)
            return quota.to_dict(ledger.current_budget(s).delta)

        return await run(request, {Role.STEWARD}, work)

    return router
