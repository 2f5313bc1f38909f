"""``release microdata``: k-anonymous, l-diverse record-level files from the hub, on record.

Only quasi-identifiers (generalised) and sensitive fields are released; pseudonyms, record keys,
batch ids, partners, attributes and derived columns (age bands, years: they would undo the
generalisation) are not. Every release is recorded in the hub with its parameters, the data
version, what it achieved and who ran it, before the function returns.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from accord.errors import AccordError
from accord.release.anonymise.api import AnonymisationResult, Suppressing, anonymise
from accord.release.anonymise.engine import LKind, Metric
from accord.release.anonymise.hierarchy import SUPPRESSED, Hierarchy
from accord.release.anonymise.overtime import check_against_earlier, remember_rows
from accord.release.anonymise.search import ProgressFn
from accord.release.anonymise.standard_hierarchies import as_strings, hierarchy_for
from accord.release.datapackage import write_datapackage
from accord.release.risk import assess_risk
from accord.safe_csv import write_csv
from accord.standard.model import FieldRole, Standard
from accord.store.base import Store
from accord.store.groups import EMBEDDED, GroupEngine

HXL_TAGS = {
    "registration_date": "#date +registration",
    "country_of_registration": "#country +code +registration",
    "area_of_registration": "#adm1 +code +registration",
    "citizenship": "#country +code +citizenship",
    "country_of_exploitation": "#country +code +exploitation",
}


# Above this normalised information loss (share of the quasi-identifiers' information lost) a
# release keeps too little to be worth the risk of publishing it; --force overrides.
DEFAULT_MAX_LOSS = 0.9
PERSON = "__accord_person__"


@dataclass(frozen=True)
class MicrodataSettings:
    k: int = 11
    l: int = 2  # noqa: E741
    l_kind: LKind = "distinct"
    max_suppression: float = 0.05
    metric: Metric = "entropy"
    qi: tuple[str, ...] = ()  # empty: the standard's quasi-identifiers
    sensitive: tuple[str, ...] | None = None  # None: the standard's sensitive fields
    hxl: bool = False
    suppression: Suppressing = "cells"
    weights: tuple[tuple[str, float], ...] = ()  # quasi-identifier -> importance (default 1)
    max_loss: float | None = DEFAULT_MAX_LOSS  # None: release whatever the loss (--force)


@dataclass(frozen=True)
class MicrodataRelease:
    release_id: str
    files: dict[str, str]
    result: AnonymisationResult
    parameters: dict[str, Any]


def _fields(standard: Standard, names: Sequence[str], available: Sequence[str]) -> list[str]:
    unknown = [n for n in names if n not in standard.field_names]
    if unknown:
        raise AccordError(f"{len(unknown)} field(s) are not in the standard: {', '.join(unknown)}",
                          hint="See `accord standard dictionary` for field names.")
    return [n for n in names if n in available]


def _hxl(column: str) -> str:
    if column in HXL_TAGS:
        return HXL_TAGS[column]
    if "__" in column:
        field, code = column.split("__", 1)
        return f"#indicator +bool +{field} +{code}"
    return f"#meta +{column}"


def _released_table(result: AnonymisationResult, qi: Sequence[str], single: Sequence[str],
                    multi: Sequence[str], standard: Standard) -> pa.Table:
    t = result.table
    cols: dict[str, pa.Array | pa.ChunkedArray] = {q: t.column(q) for q in qi}
    for s in single:
        cols[s] = t.column(s)
    for s in multi:
        keys = t.column(s).to_pylist()
        for code in standard.field(s).code_values:
            flags = [None if k in ("", SUPPRESSED) else int(code in k.split("|")) for k in keys]
            cols[f"{s}__{code}"] = pa.array(flags, type=pa.int8())
    return pa.table(cols)


def _dictionary(table: pa.Table, result: AnonymisationResult, standard: Standard
                ) -> list[list[str]]:
    rows = [["column", "label", "role", "released as", "hxl"]]
    for name in table.column_names:
        if "__" in name:
            field, code = name.split("__", 1)
            f = standard.field(field)
            rows.append([name, f"{f.label}: {f.label_of(code)}", "sensitive",
                         "1 = yes, 0 = no, empty = not recorded or suppressed", _hxl(name)])
        elif name in result.levels:
            f = standard.field(name)
            level, top = result.levels[name], result.level_labels[name] - 1
            rows.append([name, f.label, "quasi-identifier",
                         f"generalised to level {level} of {top}; '*' = suppressed", _hxl(name)])
        else:
            f = standard.field(name)
            rows.append([name, f.label, "sensitive", "code as in the standard; '*' = suppressed",
                         _hxl(name)])
    return rows


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def release_microdata(store: Store, out_dir: Path, standard: Standard, settings: MicrodataSettings,
                      actor: str, progress: ProgressFn | None = None,
                      groups: GroupEngine = EMBEDDED) -> MicrodataRelease:
    """Anonymise the hub's records, write Parquet + CSV + dictionary, record the release."""
    if not store.table_exists("records"):
        raise AccordError("the hub has no records yet", hint="Add contributions first.")
    # The person of each record: the linked person where linkage has run, else the partner's
    # pseudonym (one partner's records of one person are one person; across partners they are
    # only known to be one person once linked). k counts these people, not records.
    linked = store.table_exists("persons")
    person = ("coalesce(CAST(p.person_id AS VARCHAR), r.partner || ':' || r.person_pseudonym, "
              "r.partner || ':' || r.record_key)" if linked else
              "coalesce(r.partner || ':' || r.person_pseudonym, r.partner || ':' || r.record_key)")
    join = ("LEFT JOIN persons p ON p.partner = r.partner AND p.record_key = r.record_key"
            if linked else "")
    # Record-level releases are research use: only records whose consent_research is "yes" (standard
    # 0.2; a hub without the column predates per-record consent).
    consent = "consent_research" in store.query("SELECT * FROM records LIMIT 0").column_names
    where = " WHERE r.consent_research = 'yes'" if consent else ""
    # Ordered, so the same hub gives the same file (and a steward can audit it row by row).
    records = store.query(f"SELECT r.*, {person} AS {PERSON} FROM records r {join}{where} "
                          "ORDER BY r.partner, r.record_key")
    people = [str(v) for v in records.column(PERSON).to_pylist()]
    records = records.drop_columns([PERSON])
    data_version = store.data_version()
    available = records.column_names
    qi = _fields(standard, settings.qi or [f.name for f in standard.by_role(
        FieldRole.QUASI_IDENTIFIER)], available)
    sensitive = _fields(standard, settings.sensitive if settings.sensitive is not None else [
        f.name for f in standard.by_role(FieldRole.SENSITIVE)], available)
    prepared: dict[str, list[str]] = {}
    hierarchies: dict[str, Hierarchy] = {}
    for name in qi:
        prepared[name] = as_strings(records.column(name), standard.field(name))
        hierarchies[name] = hierarchy_for(standard.field(name), prepared[name], standard)
    for name in sensitive:
        prepared[name] = as_strings(records.column(name), standard.field(name))
    table = pa.table({n: pa.array(v, type=pa.string()) for n, v in prepared.items()})
    multi = [s for s in sensitive if standard.field(s).type.is_multi]
    result = anonymise(table, qi, hierarchies, k=settings.k, sensitive=sensitive, l=settings.l,
                       l_kind=settings.l_kind, max_suppression=settings.max_suppression,
                       metric=settings.metric, suppression=settings.suppression,
                       multi_valued=multi, progress=progress, people=people,
                       weights=dict(settings.weights), max_loss=settings.max_loss,
                       groups=groups)
    single = [s for s in sensitive if s not in multi]
    released = _released_table(result, qi, single, multi, standard)
    # not subtractable from an earlier file of another data version (withdrawals, additions)
    check_against_earlier(store, data_version, released, qi, result.levels, hierarchies,
                          settings.k, settings.l)
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {"parquet": out_dir / "microdata.parquet", "csv": out_dir / "microdata.csv",
             "dictionary": out_dir / "data_dictionary.csv"}
    try:
        pq.write_table(released, files["parquet"])
        rows: list[list[Any]] = []
        if settings.hxl:
            rows.append([_hxl(c) for c in released.column_names])
        rows.extend(list(r.values()) for r in released.to_pylist())
        write_csv(files["csv"], released.column_names, rows)
        dictionary = _dictionary(released, result, standard)
        write_csv(files["dictionary"], dictionary[0], dictionary[1:])
        parameters = {"k": settings.k, "l": settings.l, "l_kind": settings.l_kind,
                      "max_suppression": settings.max_suppression, "metric": settings.metric,
                      "quasi_identifiers": qi, "sensitive": sensitive,
                      "suppression": settings.suppression,
                      "multi_valued_sensitive": "0/1 flag columns; l-diversity per flag",
                      "hxl": settings.hxl, "standard": f"{standard.name} {standard.version}",
                      "k_counts": "linked persons" if linked else
                      "partner-scoped pseudonyms (not linked: a person seen by two partners "
                      "counts twice)",
                      "l_counts": "recorded values only",
                      "weights": dict(settings.weights), "max_loss": settings.max_loss}
        after = assess_risk(result.table, qi, top=0, groups=groups)
        results = {**result.summary(), "data_version": data_version,
                   "risk_after": {"global_risk": after.global_risk,
                                  "expected_reidentifications": after.expected_reidentifications,
                                  "max_individual_risk": float(after.individual_risk.max())},
                   "files": {k: {"name": p.name, "sha256": _sha256(p)} for k, p in files.items()}}
        with store.transaction():
            release_id = store.record_release("microdata", parameters, results, actor)
            remember_rows(store, release_id, data_version, released, qi, result.levels)
    except BaseException:
        # A file without a release record must not be left behind.
        for p in files.values():
            p.unlink(missing_ok=True)
        raise
    record = out_dir / "release.json"
    record.write_text(json.dumps({"release_id": release_id, "actor": actor,
                                  "data_version": data_version, "parameters": parameters,
                                  "results": results}, indent=2, default=str), encoding="utf-8")
    package = write_datapackage(
        out_dir, "accord-microdata", "Accord k-anonymous microdata",
        [files["csv"], files["parquet"], files["dictionary"], record],
        description="Records of people who consented to research, generalised to k-anonymity; "
                    "parameters in release.json.",
        properties={"accord:release_id": release_id, "accord:data_version": data_version})
    return MicrodataRelease(release_id=release_id,
                            files={k: str(p) for k, p in {**files, "record": record,
                                                           "datapackage": package}.items()},
                            result=result, parameters=parameters)


