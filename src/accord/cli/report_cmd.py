"""``accord report``: write the self-contained HTML report."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from accord.cli.common import DEFAULT_HUB, HubOption, OverwriteOption, console, refuse_existing, user_errors
from accord.cli.remote import ServerOption, TokenFileOption, call
from accord.cli.stats_cmd import (
    ActorOption,
    Method,
    MethodOption,
    ProtectionOption,
    RhoOption,
    ThresholdOption,
    Unit,
    UnitOption,
    check_privacy_options,
    parse_unit,
    require_hub,
)
from accord.errors import AccordError
from accord.release.suppression import SuppressionRules
from accord.research.report.stages import publish_report
from accord.store import open_store


def report(
    out: Annotated[Path, typer.Option("--out", help="HTML file to write.")],
    hub: HubOption = DEFAULT_HUB,
    threshold: ThresholdOption = 10,
    protection: ProtectionOption = None,
    unit: UnitOption = Unit.AUTO,
    method: MethodOption = Method.DP,
    rho: RhoOption = None,
    actor: ActorOption = "hub-steward",
    server: ServerOption = None,
    token_file: TokenFileOption = None,
    overwrite: OverwriteOption = False,
) -> None:
    """Write the report: one HTML file with tables, charts and how the data were protected."""
    with user_errors():
        refuse_existing(out, overwrite=overwrite)
        check_privacy_options(method, protection, rho)
        if server:  # the shared hub's server renders it (publish_report) as the token's user
            html, headers = call(server, token_file, "POST", "/api/report", {
                "threshold": threshold, "protection": protection, "unit": parse_unit(unit),
                "privacy": method.value, "rho": rho})
            try:
                out.parent.mkdir(parents=True, exist_ok=True)
                out.write_bytes(html)
            except OSError as exc:
                raise AccordError(f"cannot write {out}: {exc.strerror}",
                                  hint="choose a writable path with --out") from None
            console.print(f"wrote {out} (data version {headers.get('x-accord-data-version')}, "
                          f"release {headers.get('x-accord-release')})")
            return
        require_hub(hub)
        rules = SuppressionRules(threshold=threshold, protection=protection)
        try:
            with open_store(hub) as store:
                release_id, stats = publish_report(store, out, rules, parse_unit(unit), actor,
                                                   method=method.value, rho=rho)
        except OSError as exc:
            raise AccordError(f"cannot write {out}: {exc.strerror}",
                              hint="choose a writable path with --out") from None
    console.print(f"wrote {out} (data version {stats.data_version}, release {release_id})")
