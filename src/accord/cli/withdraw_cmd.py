"""``accord withdraw`` (a partner, through the hub's server) and ``accord hub withdraw`` (the steward,
on the hub store): withdraw a partner's records by record key or a whole batch.

Withdrawn records leave the hub and every later release; the data version changes; the privacy
budget is not restored (see accord.store.withdraw)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from accord.cli.common import DEFAULT_HUB, HubOption, JsonOption, console, print_json, user_errors
from accord.errors import AccordError

BatchOption = Annotated[str | None, typer.Option("--batch", help="Withdraw every record of this batch "
                                                 "(its id, as `hub status` or /api/batches shows it).")]
RecordsOption = Annotated[Path | None, typer.Option(
    "--records", help="File of record keys to withdraw: one per line, or a CSV with a record_key "
                      "column (as in the contribution's records.parquet).")]


def _target(batch: str | None, records: Path | None) -> tuple[str | None, list[str] | None]:
    from accord.store.withdraw import read_record_keys

    if (batch is None) == (records is None):
        raise AccordError("give either --batch ID or --records FILE",
                          hint="--batch withdraws a whole batch; --records the keys listed in a file")
    if records is None:
        return batch, None
    keys = read_record_keys(records.read_text(encoding="utf-8"))
    if not keys:
        raise AccordError(f"{records} holds no record keys", hint="one record key per line")
    return None, keys


def _say(outcome: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print_json(outcome)
        return
    what = f"batch {outcome['batch_id'][:12]}" if outcome.get("batch_id") else "the listed records"
    console.print(f"withdrew {outcome['withdrawn']:,} records of {outcome['partner']} ({what}); "
                  f"data version now {outcome['data_version']}; the privacy budget is not restored "
                  f"(withdrawal {outcome['withdrawal_id']})", highlight=False)


def withdraw(
    server: Annotated[str, typer.Option("--server", help="The hub's URL, e.g. https://hub.example.org.")],
    token_file: Annotated[Path, typer.Option("--token-file", help="File holding your API token.")],
    batch: BatchOption = None,
    records: RecordsOption = None,
    timeout: Annotated[float, typer.Option("--timeout", help="Seconds to wait for the hub.")] = 600.0,
    as_json: JsonOption = False,
) -> None:
    """Withdraw your organisation's records from the hub (a batch, or listed record keys)."""
    from accord.cli.remote import call_json

    with user_errors():
        batch_id, keys = _target(batch, records)
        body = {"batch_id": batch_id} if batch_id is not None else {"record_keys": keys}
        outcome = call_json(server, token_file, "POST", "/api/withdrawals", body, timeout,
                            what="the withdrawal")
    _say(outcome, as_json)


def hub_withdraw(
    partner: Annotated[str, typer.Option("--partner", help="Whose records (the partner name of its "
                                                           "contributions).")],
    batch: BatchOption = None,
    records: RecordsOption = None,
    hub: HubOption = DEFAULT_HUB,
    actor: Annotated[str, typer.Option("--actor", help="Who withdraws (recorded in the audit log).")
                     ] = "hub-steward",
    as_json: JsonOption = False,
) -> None:
    """Withdraw a partner's records from the hub store (a batch, or listed record keys)."""
    from accord.cli.common import require_hub
    from accord.store import open_store
    from accord.store.withdraw import withdraw as withdraw_records

    with user_errors():
        require_hub(hub)
        batch_id, keys = _target(batch, records)
        with open_store(hub) as store:
            outcome = withdraw_records(store, partner, actor, batch_id=batch_id, record_keys=keys)
    _say(outcome.to_dict(), as_json)
