"""``accord ingest``: map, validate and protect one export into a contribution."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from accord.cli.common import (
    JsonOption,
    check_file_name,
    console,
    make_progress,
    plain,
    print_json,
    refuse_existing,
    user_errors,
)
from accord.protect.job import build_contribution
from accord.protect.keys import load_partner_key


def _check_writable(path: Path, option: str) -> None:
    """Checked before any row is read: a report that cannot be written after the contribution was
    would leave a contribution without its quarantine report."""
    from accord.errors import AccordError

    if path.is_dir():
        raise AccordError(f"{option} {path} is a directory", hint="give a file path, e.g. contribution.quarantine.csv")
    if not path.parent.is_dir():
        raise AccordError(f"the folder of {option} {path} does not exist",
                          hint="create it first, or choose another path")
    existed = path.exists()
    try:  # the only sure test of writability is to open the file for writing
        with path.open("a", encoding="utf-8"):
            pass
    except OSError as exc:
        raise AccordError(f"{option} {path} cannot be written ({exc.strerror or type(exc).__name__})",
                          hint="choose a path you can write to") from None
    finally:
        if not existed and path.exists():
            path.unlink()


def ingest(
    export: Annotated[Path, typer.Argument(help="The partner's export (CSV, XLSX or Kobo/ODK JSON).")],
    mapping: Annotated[Path, typer.Option("--mapping", help="Mapping YAML that brings the export to the standard.")],
    partner: Annotated[str, typer.Option("--partner", help="Partner id, e.g. iom-th.")],
    out: Annotated[Path, typer.Option("--out", help="Contribution directory to write (must not exist).")],
    key_file: Annotated[Path | None, typer.Option(
        "--key-file", help="Pseudonym key (default: $ACCORD_KEY_FILE or accord-keys/partner.key).")] = None,
    quarantine: Annotated[Path | None, typer.Option(
        "--quarantine", help="Quarantine report path (default: next to --out). Stays at the partner.")] = None,
    linkage_secret: Annotated[Path | None, typer.Option(
        "--linkage-secret", help="The collaborative's shared linkage secret: also write Bloom-filter linkage "
        "encodings, so the hub can count people across partners.", envvar="ACCORD_LINKAGE_SECRET")] = None,
    linkage_schema: Annotated[Path | None, typer.Option(
        "--linkage-schema", help="Encoding schema file (default: the packaged schema).")] = None,
    unsafe_encoding: Annotated[bool, typer.Option(
        "--unsafe-encoding", help="Accept an encoding schema the attack harness shows to be unsafe "
        "(e.g. name parts encoded on their own, no diffusion); the manifest records it.")] = False,
    linkage_unit_out: Annotated[Path | None, typer.Option(
        "--linkage-unit-out", help="With --linkage-secret: write the encodings to this file for "
        "the collaborative's linkage unit instead of into the contribution (the hub then never "
        "holds them; default schema without citizenship).")] = None,
    as_json: JsonOption = False,
    overwrite: Annotated[bool, typer.Option(
        "--overwrite", help="Replace an existing quarantine report (a contribution is never replaced).")] = False,
) -> None:
    """Map, validate and protect one export: writes a contribution and a quarantine report."""
    with user_errors():
        from accord.protect.job import quarantine_path

        check_file_name(out, what="folder")  # a new folder: '' or '.' was a ValueError (exit 70)
        report = quarantine or quarantine_path(out)
        refuse_existing(report, overwrite=overwrite, option="--quarantine")
        _check_writable(report, "--quarantine")
        key = load_partner_key(key_file)
        encoder = None
        from accord.errors import AccordError

        if linkage_unit_out is not None:
            check_file_name(linkage_unit_out, "--linkage-unit-out")
        if linkage_unit_out is not None and linkage_secret is None:
            raise AccordError("--linkage-unit-out needs --linkage-secret",
                              hint="pass the collaborative's linkage secret file")
        if linkage_secret is not None:
            from accord.protect.encoding.pipeline import pipeline_encoder
            from accord.protect.encoding.schema import load_schema
            from accord.protect.encoding.secrets import load_linkage_secret

            encoder = pipeline_encoder(load_linkage_secret(linkage_secret),
                                       load_schema(linkage_schema) if linkage_schema else None,
                                       allow_unsafe=unsafe_encoding,
                                       unit=linkage_unit_out is not None)
        with make_progress(transient=True) as bar:
            task = bar.add_task("ingest", total=None)

            def step(msg: str) -> None:
                bar.update(task, description=msg, advance=1)

            result = build_contribution(export, mapping, partner, out, key, quarantine=quarantine, progress=step,
                                   linkage_encoder=encoder.encode if encoder else None,
                                   linkage_meta=encoder.manifest if encoder else None,
                                   linkage_unit=linkage_unit_out)
    m = result.manifest
    reasons = result.reasons
    summary = {"contribution": str(result.contribution), "batch_id": m.batch_id, "partner": m.partner,
               "rows_in": m.rows_in, "accepted": m.accepted, "quarantined": m.quarantined,
               "blank_rows": m.blank_rows, "quarantine_report": str(result.quarantine_report),
               "withheld": m.withheld, "consent": m.consent,
               "reasons": dict(reasons), "notices": dict(result.notices)}
    if linkage_unit_out is not None:
        summary["linkage_unit_file"] = str(linkage_unit_out)
    if as_json:
        print_json(summary)
        return
    console.print(f"[bold]{plain(export.name)}[/] -> [bold]{plain(out)}[/]  (partner {plain(partner)})",
                  markup=True)
    console.print(f"rows in {m.rows_in:,} = accepted {m.accepted:,} + quarantined {m.quarantined:,}"
                  + (f" + withheld {m.withheld:,} (no consent to share)" if m.withheld else "")
                  + (f"   ({m.blank_rows} blank rows skipped)" if m.blank_rows else ""))
    if m.consent.get("no_linkage_consent") or m.consent.get("no_research_consent"):
        console.print(f"consent: {m.consent.get('no_linkage_consent', 0):,} shared without linkage, "
                      f"{m.consent.get('no_research_consent', 0):,} kept out of research releases")
    for notice, n in result.notices.items():
        console.print(f"[yellow]note:[/] {n:,} x {plain(notice)}" if n > 1 else f"[yellow]note:[/] {plain(notice)}",
                      markup=True, highlight=False)
    if reasons:
        t = Table(title="quarantined, by reason", show_edge=False)
        t.add_column("reason")
        t.add_column("findings", justify="right")
        for reason, n in reasons.most_common():
            t.add_row(reason, f"{n:,}")
        console.print(t)
        console.print(f"quarantine report (keep it at the partner): {result.quarantine_report}")
    linked = " and linkage encodings" if encoder else " (no linkage encodings: pass --linkage-secret to add them)"
    if linkage_unit_out is not None:
        linked = (f"; linkage encodings written to {linkage_unit_out} (send it to the linkage "
                  "unit, never to the hub)")
    console.print(f"identifiers replaced by keyed pseudonyms{linked} and dropped; send the contribution "
                  "directory to the hub.")
