"""The report's disclosure-risk section: record-level data as stored, and as a release would
generalise them.

As stored (full registration date, age in years) nearly every record is unique on the
quasi-identifiers, which is true and is why record-level data never leave the hub as they are. A
reader also needs to see what a release would look like, so the section measures the same records
again with the hierarchies that ``accord release microdata`` uses: at a fixed publication level
(ages to CTDC bands, countries and areas to UN M49 sub-regions, dates to years, code lists as
recorded), and at the levels ``accord release microdata --k 5`` would choose (its optimal lattice
search, on the quasi-identifiers only: a second or two on the demo hub). Only aggregates are
shown: never a class, a combination or a value.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa
from markupsafe import Markup, escape

from accord.errors import AccordError
from accord.release.anonymise.api import anonymise
from accord.release.anonymise.hierarchy import Hierarchy
from accord.release.anonymise.standard_hierarchies import as_strings, hierarchy_for
from accord.release.risk import RiskInputError, RiskReport, assess_risk
from accord.standard import Field, FieldRole, FieldType, Standard, load_standard
from accord.store import Store

K_RELEASE = 5  # the k of the "as a release would choose" column (`release microdata --k 5`)
MAX_SUPPRESSION = 0.05  # as `accord release microdata` by default

# Names of the levels of each hierarchy of accord.release.anonymise.standard_hierarchies, most
# specific first; the top level (*) is "not released".
_AGE = ("years", "CTDC age band", "minor / adult")
_COUNTRY = ("country", "UN M49 sub-region", "UN M49 region")
_AREA = ("area", "country", "UN M49 sub-region", "UN M49 region")
_DATE = ("date", "month", "year", "five-year period")


def level_names(field: Field) -> tuple[str, ...]:
    if field.name == "area_of_registration":
        return _AREA
    if field.type in (FieldType.COUNTRY, FieldType.COUNTRIES):
        return _COUNTRY
    if field.type == FieldType.DATE:
        return _DATE
    if field.type == FieldType.INTEGER and field.name == "age":
        return _AGE
    return ("as recorded", "grouped")


def publication_level(field: Field) -> int:
    """The fixed level a standard publication would release a quasi-identifier at: ages in CTDC
    bands, countries and areas as UN M49 sub-regions, dates as years, codes as recorded."""
    wanted = {_AGE: 1, _COUNTRY: 1, _AREA: 2, _DATE: 2}
    return wanted.get(level_names(field), 0)


def describe_level(field: Field, level: int, height: int) -> str:
    if level >= height - 1:
        return "not released (*)"
    names = level_names(field)
    return names[level] if level < len(names) else f"level {level}"


@dataclass(frozen=True)
class Prepared:
    table: pa.Table  # quasi-identifiers as strings, the rest unchanged
    hierarchies: dict[str, Hierarchy]


def prepare(records: pa.Table, qi: list[str], standard: Standard) -> Prepared:
    out = records
    hierarchies = {}
    for name in qi:
        field = standard.field(name)
        values = as_strings(records.column(name), field)
        hierarchies[name] = hierarchy_for(field, values, standard)
        out = out.set_column(out.column_names.index(name), name, pa.array(values, pa.string()))
    return Prepared(out, hierarchies)


def generalise(prepared: Prepared, levels: dict[str, int]) -> pa.Table:
    """The quasi-identifiers at the given hierarchy levels."""
    out = prepared.table
    for name, level in levels.items():
        h = prepared.hierarchies[name]
        up = {row[0]: row[min(level, h.height - 1)] for row in h.rows}
        values = [up[v] for v in out.column(name).to_pylist()]
        out = out.set_column(out.column_names.index(name), name, pa.array(values, pa.string()))
    return out


def _share(r: RiskReport) -> str:
    share = r.global_risk if r.global_risk <= 1 else r.global_risk / max(r.records, 1)
    return f"{share:.1%}"


def _compare(reports: list[tuple[str, RiskReport]]) -> str:
    def row(label: str, cells: list[str]) -> str:
        return f"<tr><th>{escape(label)}</th>" + "".join(f"<td>{escape(c)}</td>" for c in cells) + "</tr>"

    rs = [r for _, r in reports]
    body = [row("records", [f"{r.records:,}" for r in rs]),
            row("equivalence classes", [f"{r.classes:,}" for r in rs]),
            row("smallest class", [f"{r.smallest_class:,}" for r in rs])]
    body += [row(f"records in classes smaller than {k}", [f"{r.k_violations.get(k, 0):,}" for r in rs])
             for k in sorted(rs[0].k_violations)]
    body += [row("records an attacker could expect to re-identify",
                 [f"{r.expected_reidentifications:,.1f}" for r in rs]),
             row("global risk (share of records)", [_share(r) for r in rs])]
    head = "".join(f"<th>{escape(t)}</th>" for t, _ in reports)
    return f"<table><tr><th></th>{head}</tr>{''.join(body)}</table>"


def field_label(standard: Standard, name: str) -> str:
    """A sensitive column's label: ``type_of_exploitation__sexual_exploitation`` (one flag of a
    list of codes) reads "Type of exploitation: Sexual exploitation"."""
    base, _, code = name.partition("__")
    try:
        field = standard.field(base)
    except (KeyError, AccordError):
        return name.replace("_", " ").capitalize()
    if not code:
        return field.label
    try:
        return f"{field.label}: {field.label_of(code)}"
    except (KeyError, AccordError):
        return f"{field.label}: {code.replace('_', ' ')}"


def _diversity(stored: RiskReport, published: RiskReport, standard: Standard) -> str:
    after = {x.field: x for x in published.l_diversity}
    body = "".join(
        f"<tr><td>{escape(field_label(standard, x.field))}</td><td>{x.distinct_min}</td>"
        f"<td>{after[x.field].distinct_min}</td>"
        f"<td>{x.records_below_2:,}</td><td>{after[x.field].records_below_2:,}</td></tr>"
        for x in stored.l_diversity)
    return ("<details><summary>How varied the sensitive fields are within each group "
            "(l-diversity)</summary><p class='note'>A group of records that share their "
            "quasi-identifiers and all have the same sensitive value would reveal that value "
            "for everyone in it.</p><div class='scroll'><table><tr><th>Field</th>"
            "<th>distinct values in the least diverse class, as stored</th><th>at publication level</th>"
            "<th>records in classes with fewer than 2 values, as stored</th><th>at publication level</th>"
            f"</tr>{body}</table></div></details>")


def _k_release(prepared: Prepared, qi: list[str]) -> tuple[RiskReport, dict[str, int], str] | str:
    """Risk after the generalisation and suppression `accord release microdata --k 5` would
    choose (quasi-identifiers only), or why there is none."""
    try:
        result = anonymise(prepared.table.select(qi), qi, prepared.hierarchies, k=K_RELEASE,
                           max_suppression=MAX_SUPPRESSION)
        note = (f"{result.records_with_suppressed_cells:,} records had {result.suppressed_cells:,} cells "
                f"suppressed (set to *), {result.suppressed_records:,} of them entirely")
        return assess_risk(result.table, qi, top=0), result.levels, note
    except AccordError as err:
        return err.message


def risk_html(store: Store, standard: Standard | None = None) -> Markup:
    standard = standard or load_standard()
    if not store.table_exists("records"):
        return Markup("<p>No records yet.</p>")
    records = store.query("SELECT * FROM records")
    present = set(records.column_names)
    qi = [f.name for f in standard.by_role(FieldRole.QUASI_IDENTIFIER) if f.name in present]
    sensitive = [f.name for f in standard.by_role(FieldRole.SENSITIVE) if f.name in present]
    try:
        stored = assess_risk(records, qi, sensitive, top=0)
        prepared = prepare(records.select([*qi, *sensitive]), qi, standard)
        fixed = {n: publication_level(standard.field(n)) for n in qi}
        published = assess_risk(generalise(prepared, fixed), qi, sensitive, top=0)
    except RiskInputError as err:
        return Markup(f"<p>Risk not assessed: {escape(err.message)}</p>")
    k_release = _k_release(prepared, qi)
    reports = [("as stored", stored), ("at publication level", published)]
    k_title = f"as a k = {K_RELEASE} release"
    chosen: dict[str, int] = {}
    k_note = ""
    if isinstance(k_release, str):
        k_note = (f"<p>No k = {K_RELEASE} release within {MAX_SUPPRESSION:.0%} suppression: "
                  f"{escape(k_release)}</p>")
    else:
        report, chosen, suppressed = k_release
        reports.append((k_title, report))
        k_note = (f"<p>The k = {K_RELEASE} column is the generalisation <code>accord release "
                  f"microdata --k {K_RELEASE} --l 1</code> would choose (least information lost, "
                  f"then local suppression of the remaining outliers' cells, touching at most "
                  f"{MAX_SUPPRESSION:.0%} of records: here {escape(suppressed)}; a * matches only * "
                  "when classes are counted).</p>")
    height = {n: prepared.hierarchies[n].height for n in qi}
    head = ("<tr><th>quasi-identifier</th><th>at publication level</th>"
            + (f"<th>{escape(k_title)}</th>" if chosen else "") + "</tr>")
    rows = "".join(
        f"<tr><td>{escape(standard.field(n).label)}</td>"
        f"<td>{escape(describe_level(standard.field(n), fixed[n], height[n]))}</td>"
        + (f"<td>{escape(describe_level(standard.field(n), chosen[n], height[n]))}</td>" if chosen else "")
        + "</tr>" for n in qi)
    return Markup(
        "<p>Disclosure risk of the hub's record-level data (no identifiers) with the standard's "
        "quasi-identifiers: <em>as stored</em> (if the records were released as they are), "
        "<em>at publication level</em> (after a fixed generalisation a record-level release would "
        "start from) and as a k-anonymous release would look. Record-level data leave the hub only "
        "through <code>accord release microdata</code> or as synthetic data. The riskiest "
        "combinations are shown to the hub steward in <code>accord risk</code>, never here.</p>"
        "<details><summary>Risk figures in detail</summary>"
        f"<div class='scroll'><table>{head}{rows}</table></div>"
        f"<div class='scroll'>{_compare(reports)}</div>{k_note}</details>"
        f"{_diversity(stored, published, standard)}")
