"""Record-level outputs by request (OpenSAFELY-style), see accord.serve.requests.

Analyst, through the hub's server: ``accord request microdata|synthetic|list`` and
``accord download``. Steward, on the hub store: ``accord hub requests list|approve|reject``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from accord.cli.common import DEFAULT_HUB, HubOption, JsonOption, console, print_json, user_errors
from accord.errors import AccordError

app = typer.Typer(help="Request k-anonymous microdata or DP synthetic data; a steward approves "
                       "it before it is released.", no_args_is_help=True)
hub_app = typer.Typer(help="Pending requests for record-level outputs: list, approve, reject.",
                      no_args_is_help=True)

ServerOption = Annotated[str, typer.Option("--server", help="The hub's URL, e.g. https://hub.example.org.")]
TokenOption = Annotated[Path, typer.Option("--token-file", help="File holding your API token.")]
PurposeOption = Annotated[str, typer.Option("--purpose", help="What the output is for (recorded; the "
                                                               "steward reads it).")]
TimeoutOption = Annotated[float, typer.Option("--timeout", help="Seconds to wait for the hub.")]
ActorOption = Annotated[str, typer.Option("--actor", help="Who decides (recorded in the audit log).")]


def _split(value: str | None) -> list[str]:
    return [v.strip() for v in (value or "").split(",") if v.strip()]


def _show(rows: list[dict[str, Any]], title: str) -> None:
    t = Table(title=title)
    for col in ("request", "kind", "by", "status", "requested", "decided by", "release / reason",
                "parameters"):
        t.add_column(col)
    for r in rows:
        t.add_row(r["request_id"], r["kind"], r["requester"], r["status"], r["requested_at"],
                  r.get("decided_by") or "-", r.get("release_id") or r.get("reason") or "-",
                  json.dumps(r["parameters"], sort_keys=True)[:70])
    console.print(t)


def _submit(server: str, token_file: Path, kind: str, parameters: dict[str, Any], purpose: str,
            timeout: float, as_json: bool) -> None:
    from accord.cli.remote import call_json
    from accord.serve.requests import check_parameters

    with user_errors():
        check_parameters(kind, parameters)  # the same checks as the hub's, before anything is sent
        row = call_json(server, token_file, "POST", "/api/requests",
                        {"kind": kind, "parameters": parameters, "purpose": purpose}, timeout,
                        what="the request")
    if as_json:
        print_json(row)
        return
    console.print(f"request {row['request_id']} ({kind}) is pending: a steward approves or rejects it; "
                  f"then `accord download {row['request_id']} --server {server} --token-file "
                  f"{token_file} --out DIR`", highlight=False)


@app.command("microdata")
def request_microdata(
    server: ServerOption, token_file: TokenOption,
    k: Annotated[int, typer.Option("--k", min=1, help="Minimum class size (CTDC used 11).")] = 11,
    l: Annotated[int, typer.Option("--l", min=1, help="Minimum l-diversity of each sensitive "  # noqa: E741
                                   "field.")] = 2,
    l_kind: Annotated[str, typer.Option("--l-kind", help="distinct or entropy.")] = "distinct",
    max_suppression: Annotated[float, typer.Option(
        "--max-suppression", min=0.0, max=1.0, help="Largest share of records to suppress.")] = 0.05,
    qi: Annotated[str | None, typer.Option("--qi", help="Quasi-identifiers (default: the standard's).")
                  ] = None,
    sensitive: Annotated[str | None, typer.Option(
        "--sensitive", help="Sensitive fields (default: the standard's; pass '' for none).")] = None,
    suppression: Annotated[str, typer.Option("--suppression", help="cells or records.")] = "cells",
    hxl: Annotated[bool, typer.Option("--hxl", help="Add an HXL hashtag row to the CSV.")] = False,
    weights: Annotated[str | None, typer.Option(
        "--weights", help="Which quasi-identifiers matter most: FIELD=N,... (default 1 each).")] = None,
    max_loss: Annotated[float, typer.Option(
        "--max-loss", min=0.0, max=1.0, help="Refuse when more than this share of the "
        "quasi-identifiers' information is lost.")] = 0.9,
    force: Annotated[bool, typer.Option("--force", help="Release whatever the loss.")] = False,
    purpose: PurposeOption = "",
    timeout: TimeoutOption = 600.0,
    as_json: JsonOption = False,
) -> None:
    """Request k-anonymous, l-diverse microdata (the options of `accord release microdata`)."""
    from accord.cli.anonymise_cmd import parse_weights

    with user_errors():
        params: dict[str, Any] = {
            "k": k, "l": l, "l_kind": l_kind, "max_suppression": max_suppression,
            "qi": _split(qi), "sensitive": None if sensitive is None else _split(sensitive),
            "suppression": suppression, "hxl": hxl, "weights": parse_weights(weights),
            "max_loss": None if force else max_loss}
    _submit(server, token_file, "microdata", params, purpose, timeout, as_json)


@app.command("synthetic")
def request_synthetic(
    server: ServerOption, token_file: TokenOption,
    epsilon: Annotated[float, typer.Option("--epsilon", help="Privacy loss of the release.")],
    rows: Annotated[int, typer.Option("--rows", min=1, help="Synthetic records to draw.")],
    delta: Annotated[float, typer.Option("--delta", help="Delta (Gaussian mechanism).")] = 1e-9,
    purpose: PurposeOption = "",
    timeout: TimeoutOption = 600.0,
    as_json: JsonOption = False,
) -> None:
    """Request DP synthetic data (the options of `accord release synthetic`).

    Paid from the ledger when a steward approves it."""
    _submit(server, token_file, "synthetic", {"epsilon": epsilon, "rows": rows, "delta": delta},
            purpose, timeout, as_json)


@app.command("list")
def request_list(server: ServerOption, token_file: TokenOption, timeout: TimeoutOption = 600.0,
                 as_json: JsonOption = False) -> None:
    """Your requests and their status."""
    from accord.cli.remote import call_json

    with user_errors():
        rows = call_json(server, token_file, "GET", "/api/requests", None, timeout)
    if as_json:
        print_json(rows)
    else:
        _show(rows, f"requests at {server}")


def download(
    request_id: Annotated[str, typer.Argument(help="The request's id (from `accord request`).")],
    server: ServerOption, token_file: TokenOption,
    out: Annotated[Path, typer.Option("--out", help="Directory to write the output's files to.")],
    timeout: TimeoutOption = 600.0,
    as_json: JsonOption = False,
) -> None:
    """Download the approved output of your request (record-level outputs are released only after
    a steward approves them)."""
    import hashlib
    import tempfile

    from accord.cli.remote import call
    from accord.serve.app import safe_extract

    with user_errors():
        if not request_id.replace("-", "").isalnum():
            raise AccordError("the request id is malformed", hint="e.g. rq-0123456789ab")
        if out.exists() and any(out.iterdir()):
            raise AccordError(f"{out} is not empty; refusing to overwrite", hint="choose a new directory")
        content, headers = call(server, token_file, "GET", f"/api/requests/{request_id}/output",
                                None, timeout, what="the download")
        digest = hashlib.sha256(content).hexdigest()
        if headers.get("x-accord-sha256") not in (None, digest):
            raise AccordError("the download does not match the digest the hub sent",
                              hint="download it again")
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="accord-download-") as tmp:
            archive = Path(tmp) / "output.zip"
            archive.write_bytes(content)
            safe_extract(archive, out, 64 * len(content) + 1024**2)
    files = sorted(p.name for p in out.iterdir())
    if as_json:
        print_json({"request_id": request_id, "sha256": digest, "out": str(out), "files": files})
        return
    console.print(f"request {request_id}: {len(files)} files in {out} ({', '.join(files)})",
                  highlight=False)


# ---- the steward, on the hub store ----------------------------------------------------------------
@hub_app.command("list")
def hub_requests_list(
    status: Annotated[str | None, typer.Option("--status", help="pending, approved or rejected.")] = None,
    hub: HubOption = DEFAULT_HUB, as_json: JsonOption = False,
) -> None:
    """List requests for record-level outputs (all, or of one status)."""
    from accord.cli.common import require_hub
    from accord.serve.requests import APPROVED, PENDING, REJECTED, list_requests
    from accord.store import open_store

    with user_errors():
        if status not in (None, PENDING, APPROVED, REJECTED):
            raise AccordError("--status must be pending, approved or rejected")
        require_hub(hub)
        with open_store(hub) as store:
            rows = list_requests(store, status=status)
    if as_json:
        print_json(rows)
    else:
        _show(rows, f"requests in {hub}")


@hub_app.command("approve")
def hub_requests_approve(
    request_id: Annotated[str, typer.Argument(help="The request's id.")],
    hub: HubOption = DEFAULT_HUB, actor: ActorOption = "hub-steward", as_json: JsonOption = False,
) -> None:
    """Approve a request: the release runs now, is recorded (and any DP cost paid), and its output
    is kept for the requesting analyst to download."""
    from accord.cli.common import require_hub
    from accord.serve.requests import approve_request
    from accord.store import open_store

    with user_errors():
        require_hub(hub)
        with open_store(hub) as store:
            row = approve_request(store, request_id, actor)
    if as_json:
        print_json(row)
        return
    console.print(f"request {request_id} approved: release {row['release_id']}; the analyst "
                  f"{row['requester']} may now download it", highlight=False)


@hub_app.command("reject")
def hub_requests_reject(
    request_id: Annotated[str, typer.Argument(help="The request's id.")],
    reason: Annotated[str, typer.Option("--reason", help="Why (recorded; the analyst sees it).")],
    hub: HubOption = DEFAULT_HUB, actor: ActorOption = "hub-steward", as_json: JsonOption = False,
) -> None:
    """Reject a request, with a reason; nothing is released or spent."""
    from accord.cli.common import require_hub
    from accord.serve.requests import reject_request
    from accord.store import open_store

    with user_errors():
        require_hub(hub)
        with open_store(hub) as store:
            row = reject_request(store, request_id, actor, reason)
    if as_json:
        print_json(row)
        return
    console.print(f"request {request_id} rejected", highlight=False)
