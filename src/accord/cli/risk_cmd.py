"""``accord risk``: disclosure risk of the hub's records (or of any CSV)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import pyarrow as pa
import typer
from rich.table import Table

from accord.cli.common import (
    HubOption,
    JsonOption,
    console,
    err_console,
    print_json,
    require_hub,
    user_errors,
)
from accord.cli.engine_opts import (
    EngineOption,
    SparkConfOption,
    SparkMasterOption,
    check_engine,
    group_engine,
)
from accord.errors import StoreError
from accord.release.risk import RiskInputError, RiskReport, assess_risk
from accord.standard import load_standard
from accord.standard.model import FieldRole


def _split(value: str | None) -> list[str]:
    return [v.strip() for v in (value or "").split(",") if v.strip()]


def standard_fields(role: FieldRole, available: list[str]) -> list[str]:
    """The standard's fields with a role, in standard order, that the table actually has."""
    return [f.name for f in load_standard().fields if f.role == role and f.name in available]


PERSON = "__accord_person__"


def read_hub_records(hub: Path) -> tuple[pa.Table, list[str]]:
    """All records of the hub store (the store holds no identifiers) and the person of each:
    the linked person where `accord link` has run, else the partner's person pseudonym."""
    require_hub(hub)
    from accord.store import open_store  # the store stage comes before release

    store = open_store(hub, read_only=True)
    try:
        if not store.table_exists("records"):
            raise StoreError("the hub has no records yet", hint="Add contributions first.")
        linked = store.table_exists("persons")
        person = ("coalesce(CAST(p.person_id AS VARCHAR), r.partner || ':' || "
                  "r.person_pseudonym, r.partner || ':' || r.record_key)" if linked else
                  "coalesce(r.partner || ':' || r.person_pseudonym, r.partner || ':' || "
                  "r.record_key)")
        join = ("LEFT JOIN persons p ON p.partner = r.partner AND p.record_key = r.record_key"
                if linked else "")
        table = store.query(f"SELECT r.*, {person} AS {PERSON} FROM records r {join}")
        people = [str(v) for v in table.column(PERSON).to_pylist()]
        return table.drop_columns([PERSON]), people
    finally:
        store.close()


def _print(report: RiskReport, show_values: bool) -> None:
    # Column names (and the riskiest classes' values with --show-values) are the user's text: the
    # console reads no markup (a '[/b]' crashed the command, a '[age]' vanished).
    s = report.summary()
    t = Table(title=f"Disclosure risk of {report.records} records, {report.people} people "
              f"({', '.join(report.qi)})")
    t.add_column("measure")
    t.add_column("value", justify="right")
    t.add_row("equivalence classes", str(report.classes))
    t.add_row("smallest class (records / people)",
              f"{report.smallest_class} / {report.smallest_class_people}")
    unit = "people" if report.counted == "people" else "records"
    for k, v in report.k_violations.items():
        t.add_row(f"records in classes of fewer than {k} {unit}",
                  f"{v} ({v / report.records:.1%})")
    t.add_row("model", "sample (sdcMicro, weighted)" if report.weighted else
              f"1 / {'people' if report.counted == 'people' else 'records'} in the class")
    t.add_row("highest individual risk", f"{s['individual_risk']['max']:.4f}")
    t.add_row("records with risk > 0.1", str(s["individual_risk"]["records_above_0.1"]))
    t.add_row("expected re-identifications", f"{report.expected_reidentifications:.2f}")
    t.add_row("global risk", f"{report.global_risk:.2%}")
    for ld in report.l_diversity:
        name = ld.field if ld.flag is None else f"{ld.field} (flag)"
        t.add_row(f"l-diversity of {name} (distinct / entropy)",
                  f"{ld.distinct_min} / {ld.entropy_min:.2f}")
    console.print(t)
    if report.drivers:
        d = Table(title="What each quasi-identifier adds (the measures again without it)")
        d.add_column("quasi-identifier")
        d.add_column("expected re-identifications without it", justify="right")
        d.add_column("records with risk > 0.1 without it", justify="right")
        for drv in sorted(report.drivers, key=lambda x: x.expected_reidentifications_without):
            d.add_row(drv.qi, f"{drv.expected_reidentifications_without:.2f}", str(drv.records_above_01_without))
        console.print(d)
    if not report.riskiest:
        return
    r = Table(title="Riskiest combinations" + ("" if show_values else " (values not shown: --show-values)"))
    if show_values:
        for q in report.qi:
            r.add_column(q)
    else:
        r.add_column("#", justify="right")
        r.add_column("rarest quasi-identifiers (records in the table holding the class's value)")
    r.add_column("records", justify="right")
    r.add_column("risk", justify="right")
    for i, c in enumerate(report.riskiest, start=1):
        shown = ([str(c.values[q]) for q in report.qi] if show_values else
                 [str(i), ", ".join(f"{q} ({n:,})" for q, n in c.rarest[:3])])
        r.add_row(*shown, str(c.size), f"{c.risk:.3f}")
    console.print(r)


# Said on stderr, so it also reaches a terminal that pipes --json into a file.
VALUES_WARNING = ("warning: --show-values: the riskiest classes' quasi-identifier values are shown; they point "
                  "at the people most at risk: keep this output out of logs, tickets and shared screens")

def risk_command(
    hub: HubOption = Path("accord-hub.duckdb"),
    qi: Annotated[str | None, typer.Option(
        "--qi", help="Quasi-identifiers, comma-separated (default: the standard's).")] = None,
    sensitive: Annotated[str | None, typer.Option(
        "--sensitive", help="Sensitive fields for l-diversity (default: the standard's).")
    ] = None,
    data: Annotated[Path | None, typer.Option(
        "--data", help="Assess a CSV file instead of the hub.", exists=True, dir_okay=False)
    ] = None,
    sep: Annotated[str, typer.Option("--sep", help="Separator of --data.")] = ",",
    multi_valued: Annotated[str | None, typer.Option(
        "--multi-valued", help="Sensitive columns of --data holding sets ('a|b'): assessed per "
        "flag (list fields of the hub always are).")] = None,
    weight: Annotated[str | None, typer.Option(
        "--weight", help="Sampling-weight column: use sdcMicro's sample risk model.")] = None,
    top: Annotated[int, typer.Option("--top", min=0, help="Riskiest combinations to list.")
                   ] = 10,
    show_values: Annotated[bool, typer.Option(
        "--show-values", help="List the riskiest combinations with their quasi-identifier values "
        "(they point at the people most at risk; by default only sizes, risks and the rarest fields, "
        "with a warning when shown).")] = False,
    as_json: JsonOption = False,
    engine: EngineOption = "embedded",
    spark_master: SparkMasterOption = "local[*]",
    spark_conf: SparkConfOption = None,
) -> None:
    """Equivalence classes, k-anonymity, l-diversity, individual and global re-identification
    risk, and what each quasi-identifier adds to it.

    The riskiest combinations are listed by size, risk and their rarest fields, not their values
    (those point at the people most at risk): --show-values lists the values, with a warning.
    """
    with user_errors():
        check_engine(engine, spark_master, spark_conf)  # before any data is read
        if data is not None:
            from accord.cli.anonymise_cmd import read_csv_as_strings, refuse_counts

            table = read_csv_as_strings(data, sep)
            refuse_counts(table, [*_split(qi), *([weight] if weight else [])])
            people = None
        else:
            table, people = read_hub_records(hub)
        qi_cols = _split(qi) or standard_fields(FieldRole.QUASI_IDENTIFIER, table.column_names)
        if data is not None and not _split(qi):
            expected = standard_fields(FieldRole.QUASI_IDENTIFIER,
                                       [f.name for f in load_standard().fields])
            absent = [f for f in expected if f not in qi_cols]
            if absent:
                # Risk measured on a few columns looks reassuring and means nothing: an attacker
                # knows more than the columns that happen to carry the standard's names.
                raise RiskInputError(
                    f"the file has {len(qi_cols)} of the standard's {len(expected)} "
                    "quasi-identifiers" + (f" ({', '.join(qi_cols)})" if qi_cols else "")
                    + f"; missing: {', '.join(absent)}",
                    hint="Name every column an attacker could know with --qi COL,COL,... "
                    "(the risk is only as good as that list).")
        sens_cols = (_split(sensitive) if sensitive is not None or data is not None
                     else standard_fields(FieldRole.SENSITIVE, table.column_names))
        with group_engine(engine, spark_master, spark_conf) as groups:
            report = assess_risk(table, qi_cols, sens_cols, weight=weight, top=top,
                                 multi_valued=_split(multi_valued), people=people,
                                 groups=groups, drivers=True)
    if show_values and report.riskiest:
        err_console.print(VALUES_WARNING, highlight=False)
    if as_json:
        print_json(report.summary(show_values=show_values))
    else:
        console.print(f"quasi-identifiers used ({len(report.qi)}): {', '.join(report.qi)}",
                      highlight=False)
        _print(report, show_values)
