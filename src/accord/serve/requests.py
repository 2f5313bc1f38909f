"""Record-level outputs by request, OpenSAFELY-style: an analyst asks, a steward decides.

k-anonymous microdata and DP synthetic data are record-shaped, so the hub never runs them on an
analyst's say-so. An analyst *requests* one with its parameters (checked here as the CLI checks
them, so a request that could never run is refused at once); a steward lists the pending requests
and approves or rejects each with a reason. Approval runs the release then, in one transaction
with the decision: the release record (parameters, data version, results) and, for synthetic data,
the DP spend go on the ledger and the tamper-evident chain, and the output files are kept in the
hub (``hub_request_outputs``, a zip) so the same bytes are downloaded whatever the engine. A
release that fails (too much information lost, budget exhausted, chain broken) rolls everything
back: the request stays pending, nothing is spent. Only the analyst who asked downloads the
output, only once approved. Every step is on the audit trail.

Plain functions over a :class:`~accord.store.Store`: the API (:mod:`accord.serve.requests_api`), the
CLI (``accord hub requests``) and the web UI call the same code.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import secrets
import tempfile
import uuid
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from accord.errors import AccordError, ParameterError
from accord.serve.accounts import User
from accord.store import Store
from accord.store.base import now_iso

REQUESTS_SQL = (
    """CREATE TABLE IF NOT EXISTS hub_requests (
        request_id VARCHAR PRIMARY KEY, kind VARCHAR NOT NULL, requester VARCHAR NOT NULL,
        org VARCHAR NOT NULL, parameters VARCHAR NOT NULL, purpose VARCHAR NOT NULL,
        status VARCHAR NOT NULL, requested_at VARCHAR NOT NULL, decided_at VARCHAR,
        decided_by VARCHAR, reason VARCHAR, release_id VARCHAR, summary VARCHAR)""",
    """CREATE TABLE IF NOT EXISTS hub_request_outputs (
        request_id VARCHAR PRIMARY KEY, filename VARCHAR NOT NULL, sha256 VARCHAR NOT NULL,
        content BLOB NOT NULL)""",
)
KINDS = ("microdata", "synthetic")
PENDING, APPROVED, REJECTED = "pending", "approved", "rejected"
MAX_SYNTHETIC_ROWS = 1_000_000
MAX_TEXT = 1000
_COLUMNS = ("request_id", "kind", "requester", "org", "parameters", "purpose", "status",
            "requested_at", "decided_at", "decided_by", "reason", "release_id", "summary")


class RequestError(AccordError):
    """A request cannot be made or decided as asked."""


class NoSuchRequest(RequestError):
    """No request with that id."""


class NotYourRequest(RequestError):
    """The request is another analyst's."""


class NotApproved(RequestError):
    """The request has not been approved (pending or rejected)."""


class AlreadyDecided(RequestError):
    """The request was approved or rejected already."""


class OwnRequest(RequestError):
    """A steward asked to approve a request they made themselves (four eyes: another decides)."""


@dataclass(frozen=True)
class Output:
    filename: str
    sha256: str
    content: bytes


def ensure_requests(store: Store) -> None:
    for sql in REQUESTS_SQL:
        store.execute(sql)
    store.ensure_row_order("hub_requests")


# ---- parameters: the CLI's checks, on a JSON object ---------------------------------------------
def _integer(params: Mapping[str, Any], name: str, default: int, low: int, high: int) -> int:
    value = params.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ParameterError(f"{name} must be a whole number from {low} to {high:,}",
                             hint=f"e.g. {name}: {default}")
    return value


def _share(params: Mapping[str, Any], name: str, default: float | None, nullable: bool = False
           ) -> float | None:
    value = params.get(name, default)
    if value is None and nullable:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not (
            math.isfinite(value) and 0.0 <= value <= 1.0):
        raise ParameterError(f"{name} must be a number from 0 to 1", hint=f"e.g. {name}: {default}")
    return float(value)


def _choice(params: Mapping[str, Any], name: str, choices: tuple[str, ...]) -> str:
    value = params.get(name, choices[0])
    if value not in choices:
        raise ParameterError(f"{name} must be one of {', '.join(choices)}")
    return str(value)


def _fields(params: Mapping[str, Any], name: str, known: set[str], nullable: bool) -> list[str] | None:
    value = params.get(name)
    if value is None:
        if nullable:
            return None
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ParameterError(f"{name} must be a list of field names")
    unknown = [v for v in value if v not in known]
    if unknown:  # field names come from the public standard, never from a record
        raise ParameterError(f"{name}: {len(unknown)} field(s) are not in the standard: "
                             f"{', '.join(unknown[:10])}",
                             hint="See `accord standard dictionary` for field names.")
    return list(value)


def check_parameters(kind: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """A request's parameters, checked and completed with the CLI's defaults; ParameterError names
    the field at fault."""
    if kind not in KINDS:
        raise ParameterError(f"kind must be one of {', '.join(KINDS)}")
    if not isinstance(params, Mapping):
        raise ParameterError("parameters must be a JSON object")
    if kind == "synthetic":
        from accord.release.dp.params import check_delta, check_epsilon
        from accord.release.dp.release import DEFAULT_DELTA

        allowed = {"epsilon", "delta", "rows"}
        extra = sorted(set(params) - allowed)
        if extra:
            raise ParameterError(f"unknown parameter(s) for synthetic data: {', '.join(extra[:5])}",
                                 hint=f"use {', '.join(sorted(allowed))}")
        if "epsilon" not in params or "rows" not in params:
            raise ParameterError("synthetic data need epsilon and rows", hint="e.g. epsilon 1, rows 1000")
        return {"epsilon": check_epsilon(params["epsilon"], "epsilon"),
                "delta": check_delta(params.get("delta", DEFAULT_DELTA), "delta"),
                "rows": _integer(params, "rows", 1000, 1, MAX_SYNTHETIC_ROWS)}
    from accord.release.anonymise.microdata import DEFAULT_MAX_LOSS
    from accord.standard import load_standard

    allowed = {"k", "l", "l_kind", "max_suppression", "qi", "sensitive", "suppression", "hxl",
               "weights", "max_loss"}
    extra = sorted(set(params) - allowed)
    if extra:
        raise ParameterError(f"unknown parameter(s) for microdata: {', '.join(extra[:5])}",
                             hint=f"use {', '.join(sorted(allowed))}")
    known = set(load_standard().field_names)
    hxl = params.get("hxl", False)
    if not isinstance(hxl, bool):
        raise ParameterError("hxl must be true or false")
    weights = params.get("weights") or {}
    if not isinstance(weights, dict) or not all(
            isinstance(k, str) and isinstance(v, int | float) and not isinstance(v, bool)
            and math.isfinite(v) and v > 0 for k, v in weights.items()):
        raise ParameterError("weights must map field names to positive numbers",
                             hint='e.g. {"sex": 5, "age": 3} (the others weigh 1)')
    _fields({"weights": list(weights)}, "weights", known, nullable=False)
    return {"k": _integer(params, "k", 11, 1, 1_000_000),
            "l": _integer(params, "l", 2, 1, 1_000),
            "l_kind": _choice(params, "l_kind", ("distinct", "entropy")),
            "max_suppression": _share(params, "max_suppression", 0.05),
            "qi": _fields(params, "qi", known, nullable=False),
            "sensitive": _fields(params, "sensitive", known, nullable=True),
            "suppression": _choice(params, "suppression", ("cells", "records")),
            "hxl": hxl, "weights": {k: float(v) for k, v in weights.items()},
            "max_loss": _share(params, "max_loss", DEFAULT_MAX_LOSS, nullable=True)}


def _text(value: Any, name: str, required: bool = False) -> str:
    if value is None:
        value = ""
    if not isinstance(value, str) or len(value) > MAX_TEXT or (required and not value.strip()):
        raise ParameterError(f"{name} must be {'a non-empty' if required else 'a'} text of at most "
                             f"{MAX_TEXT} characters")
    return value.strip()


# ---- the workflow ---------------------------------------------------------------------------------
def _public(row: dict[str, Any]) -> dict[str, Any]:
    out = dict(row)
    for name in ("parameters", "summary"):
        out[name] = json.loads(out[name]) if out.get(name) else None
    return out


def create_request(store: Store, user: User, kind: str, parameters: Mapping[str, Any],
                   purpose: str = "") -> dict[str, Any]:
    """An analyst's request, checked and stored as pending."""
    checked = check_parameters(kind, parameters)
    why = _text(purpose, "purpose")
    request_id = f"rq-{uuid.uuid4().hex[:12]}"
    with store.transaction():
        ensure_requests(store)
        store.execute("INSERT INTO hub_requests (request_id, kind, requester, org, parameters, purpose, "
                      "status, requested_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                      [request_id, kind, user.username, user.org,
                       json.dumps(checked, sort_keys=True), why, PENDING, now_iso()])
        store.audit(user.username, "hub.request", {"request_id": request_id, "kind": kind,
                                                   "parameters": checked})
    return get_request(store, request_id)


def list_requests(store: Store, requester: str | None = None, status: str | None = None
                  ) -> list[dict[str, Any]]:
    """Requests, oldest first: one analyst's (``requester``) or all; optionally of one status."""
    if not store.table_exists("hub_requests"):
        return []
    where, params = [], []
    if requester is not None:
        where.append("requester = ?")
        params.append(requester)
    if status is not None:
        where.append("status = ?")
        params.append(status)
    sql = (f"SELECT {', '.join(_COLUMNS)} FROM hub_requests"
           + (" WHERE " + " AND ".join(where) if where else "")
           + " ORDER BY " + store.order_sql("hub_requests", "requested_at", "request_id"))
    return [_public(r) for r in store.query(sql, params).to_pylist()]


def get_request(store: Store, request_id: str) -> dict[str, Any]:
    rows = store.query(f"SELECT {', '.join(_COLUMNS)} FROM hub_requests WHERE request_id = ?",
                       [request_id]).to_pylist() if store.table_exists("hub_requests") else []
    if not rows:
        raise NoSuchRequest(f"no request {request_id}", hint="`accord hub requests list` lists them")
    return _public(rows[0])


def _claim(store: Store, request_id: str) -> dict[str, Any]:
    """Take a pending request for a decision, inside the caller's transaction. The conditional
    UPDATE locks the row on PostgreSQL: a second steward deciding at the same time waits, then
    finds it decided (and nothing of theirs is written); DuckDB refuses the second update at once."""
    import duckdb

    ensure_requests(store)
    mark = f"deciding-{secrets.token_hex(8)}"
    try:
        store.execute("UPDATE hub_requests SET status = ? WHERE request_id = ? AND status = ?",
                      [mark, request_id, PENDING])
    except duckdb.TransactionException:  # DuckDB's optimistic concurrency: the other one won
        raise AlreadyDecided(f"request {request_id} is being decided by someone else") from None
    row = get_request(store, request_id)
    if row["status"] != mark:
        raise AlreadyDecided(f"request {request_id} is {row['status']} already; only a pending request "
                             "is decided")
    row["status"] = PENDING
    return row


def _zip(folder: Path) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for f in sorted(folder.iterdir()):
            if f.is_file():
                zf.write(f, arcname=f.name)
    return buf.getvalue()


def _run_release(store: Store, row: dict[str, Any], out: Path) -> tuple[str, dict[str, Any]]:
    """Run the requested release into ``out``: (release id, public summary)."""
    params = row["parameters"]
    purpose = f"request {row['request_id']}" + (f": {row['purpose']}" if row["purpose"] else "")
    if row["kind"] == "microdata":
        from accord.release.anonymise.microdata import MicrodataSettings, release_microdata
        from accord.standard import load_standard

        settings = MicrodataSettings(
            k=params["k"], l=params["l"], l_kind=params["l_kind"],
            max_suppression=params["max_suppression"], qi=tuple(params["qi"]),
            sensitive=None if params["sensitive"] is None else tuple(params["sensitive"]),
            hxl=params["hxl"], suppression=params["suppression"],
            weights=tuple(params["weights"].items()), max_loss=params["max_loss"])
        rel = release_microdata(store, out, load_standard(), settings, row["requester"])
        return rel.release_id, rel.result.summary()
    from accord.release.synthesize.pipeline import release_synthetic, write_synthetic

    syn = release_synthetic(store, params["epsilon"], params["rows"], delta=params["delta"],
                            actor=row["requester"], purpose=purpose)
    write_synthetic(syn, out)
    return syn.release_id, {"rows": params["rows"], "rho": syn.result.measured.rho,
                            "utility": syn.reports["utility"], "budget_after": syn.budget.to_dict()}


def require_request_affordable(store: Store, request_id: str) -> dict[str, Any]:
    """The request; a pending one whose DP cost the budget cannot pay is refused (ReleaseRefused,
    exit 3) before its release waits for a turn or reads a record, and stays pending. The
    request's planned cost, checked by the ledger's one check (``ledger.require_affordable``)."""
    row = get_request(store, request_id)
    if row["kind"] == "synthetic" and row["status"] == PENDING:
        from accord.release.dp import ledger
        from accord.release.dp.mechanism import rho_from_epsilon_delta

        params = row["parameters"]
        ledger.require_affordable(store, rho_from_epsilon_delta(params["epsilon"], params["delta"]),
                                  f"request {request_id}", actor=str(row["requester"]))
    return row


def require_other_decider(row: dict[str, Any], actor: str) -> None:
    """Refuse (OwnRequest) ``actor`` deciding the request ``row`` they made themselves."""
    if row["requester"] == actor:
        raise OwnRequest(f"request {row['request_id']} is your own; another steward decides it",
                         hint="ask another data steward to approve or reject it")


def approve_request(store: Store, request_id: str, actor: str) -> dict[str, Any]:
    """Run the requested release and keep its output for the analyst, all in one transaction.
    Never by the requester (a user whose role changed from analyst to steward since asking):
    a record-level release is decided by a second person."""
    require_other_decider(get_request(store, request_id), actor)
    require_request_affordable(store, request_id)
    with store.transaction():
        row = _claim(store, request_id)
        with tempfile.TemporaryDirectory(prefix="accord-request-") as tmp:
            out = Path(tmp) / "output"
            release_id, summary = _run_release(store, row, out)
            content = _zip(out)
        digest = hashlib.sha256(content).hexdigest()
        filename = f"{request_id}-{row['kind']}.zip"
        store.execute("INSERT INTO hub_request_outputs (request_id, filename, sha256, content) "
                      "VALUES (?, ?, ?, ?)", [request_id, filename, digest, content])
        store.execute("UPDATE hub_requests SET status = ?, decided_at = ?, decided_by = ?, "
                      "release_id = ?, summary = ? WHERE request_id = ?",
                      [APPROVED, now_iso(), actor, release_id,
                       json.dumps(summary, sort_keys=True, default=str), request_id])
        store.audit(actor, "hub.request_approve", {"request_id": request_id, "kind": row["kind"],
                                                   "requester": row["requester"],
                                                   "release_id": release_id, "output_sha256": digest})
    return get_request(store, request_id)


def reject_request(store: Store, request_id: str, actor: str, reason: str | None) -> dict[str, Any]:
    why = _text(reason, "reason", required=True)
    with store.transaction():
        row = _claim(store, request_id)
        store.execute("UPDATE hub_requests SET status = ?, decided_at = ?, decided_by = ?, reason = ? "
                      "WHERE request_id = ?", [REJECTED, now_iso(), actor, why, request_id])
        store.audit(actor, "hub.request_reject", {"request_id": request_id, "kind": row["kind"],
                                                  "requester": row["requester"], "reason": why})
    return get_request(store, request_id)


def request_output(store: Store, request_id: str, user: User) -> Output:
    """The approved output of ``user``'s own request (the download is audited)."""
    row = get_request(store, request_id)
    if row["requester"] != user.username:
        raise NotYourRequest("the request is another analyst's; only its requester downloads its output")
    if row["status"] != APPROVED:
        raise NotApproved(f"request {request_id} is {row['status']}; only an approved request has an "
                          "output", hint="a steward approves it with `accord hub requests approve`")
    got = store.query("SELECT filename, sha256, content FROM hub_request_outputs WHERE request_id = ?",
                      [request_id]).to_pylist()
    if not got:
        raise NotApproved(f"request {request_id} has no output")
    content = bytes(got[0]["content"])
    if hashlib.sha256(content).hexdigest() != got[0]["sha256"]:
        raise RequestError(f"the output of request {request_id} does not match its recorded digest",
                           hint="the hub was changed outside Accord: check it with `accord hub verify`")
    store.audit(user.username, "hub.request_download", {"request_id": request_id,
                                                        "sha256": got[0]["sha256"]})
    return Output(got[0]["filename"], got[0]["sha256"], content)
