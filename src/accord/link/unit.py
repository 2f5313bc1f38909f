"""The linkage-unit layout: link at a party that holds the encodings but no clear attributes,
and give the hub person ids only.

Why (benchmarks/results/linkpriv2.md, docs/linkage.md, Threat model): a hub that holds the
name encodings next to each record's clear citizenship and sex can group similar name filters
within a citizenship and sex and label the groups by public name frequencies, and that grows
with the records it links (full names 5.3 % at 345k records, against 2.4 % from the clear
attributes alone). The citizenship groups are the attacker's power. Here the partners send
their encodings (unit schema: no citizenship) to a linkage unit in unit files
(`accord.protect.unit`), the hub gets contributions without encodings, the unit links
(`link_units`, the hub's own linker run on a store that holds only the unit files) and the hub
imports the persons (`import_persons`). Neither party holds name encodings next to
citizenship groups.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from accord.errors import AccordError, StoreError
from accord.link.hub import LinkSummary, link_hub
from accord.link.match import MatchConfig
from accord.protect.encoding.pipeline import CHECK_COLUMN, ENCODED_PREFIX, FINGERPRINT_COLUMN
from accord.protect.encoding.schema import EncodingSchema, check_safe, unit_schema
from accord.protect.unit import BIRTH_YEAR, UNIT_KEYS, UnitFileError
from accord.store import Store
from accord.store.duckdb_store import DuckDBStore

Progress = Callable[[str], None]
PERSON_COLUMNS = ("person_id", "partner", "record_key", "match_score")


@dataclass(frozen=True)
class UnitLinkResult:
    persons: pa.Table  # person_id, batch_id, partner, record_key, match_score
    summary: LinkSummary
    replaced: int  # rows of an earlier file replaced by a later one (the same record sent again)
    unsafe: list[str]


def _read_unit_file(path: Path) -> pa.Table:
    if not path.is_file():
        raise UnitFileError(f"no unit file at {path}", hint="check the --unit-file path")
    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowInvalid):
        raise UnitFileError(f"{path} is not a Parquet unit file",
                            hint="make it with `accord ingest --linkage-unit-out`") from None
    missing = [c for c in UNIT_KEYS if c not in table.column_names]
    if missing:
        raise UnitFileError(f"{path} lacks column(s) {', '.join(missing)}",
                            hint="make it with `accord ingest --linkage-unit-out`")
    clear = [c for c in table.column_names if c not in (*UNIT_KEYS, BIRTH_YEAR) and not c.startswith(
        ENCODED_PREFIX) and c not in (FINGERPRINT_COLUMN, CHECK_COLUMN)]
    if clear:  # the unit must not receive attributes: it would hold them next to the names
        raise UnitFileError(f"{path} holds {len(clear)} column(s) that are not encodings",
                            hint="send the linkage unit only what `accord ingest "
                                 "--linkage-unit-out` wrote")
    return table


def link_units(files: list[Path], schema: EncodingSchema | None = None,
               config: MatchConfig | None = None, progress: Progress | None = None,
               allow_unsafe: bool = False) -> UnitLinkResult:
    """Link the partners' unit files: persons keyed by (partner, record_key)."""
    sch = schema or unit_schema()
    unsafe = check_safe(sch, allow_unsafe, unit=True)
    if not files:
        raise UnitFileError("no unit files given", hint="pass --unit-file once per file")
    tables = [t for t in (_read_unit_file(p) for p in files) if t.num_rows]
    if not tables:
        raise UnitFileError("the unit files hold no records", hint="check the files")
    try:
        table = pa.concat_tables(tables, promote_options="default")
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        raise UnitFileError("the unit files have different columns (another schema?)",
                            hint="every partner must encode with the collaborative's one schema"
                            ) from None
    # The same record sent again in a later batch replaces the earlier one (as `hub add` does):
    # keep each (partner, record_key)'s last row in the order the files were given.
    n = table.num_rows
    table = table.append_column("_row", pa.array(range(n), pa.int64()))
    last = table.group_by(["partner", "record_key"]).aggregate([("_row", "max")])
    keep = pc.is_in(table["_row"], last["_row_max"])
    table = table.filter(keep).drop_columns(["_row"])
    replaced = n - table.num_rows
    pseudonym = table["person_pseudonym"]
    with DuckDBStore(":memory:") as store:
        store.write_table("records", pa.table({
            "batch_id": table["batch_id"], "partner": table["partner"],
            "record_key": table["record_key"], "person_pseudonym": pseudonym,
            # the unit file's pseudonym is NULL where the birth date is unknown (unit_rows)
            "dob_quality": pc.if_else(pc.is_null(pseudonym), pa.scalar("unknown"),
                                      pa.scalar("known")),
            "registration_date": pa.nulls(table.num_rows, pa.date32()),
            "age": pa.nulls(table.num_rows, pa.int32()),
            BIRTH_YEAR: (pc.cast(table[BIRTH_YEAR], pa.float64()) if BIRTH_YEAR in
                         table.column_names else pa.nulls(table.num_rows, pa.float64()))}),
            mode="replace")
        store.write_table("linkage_encodings", table.drop_columns(
            [c for c in ("person_pseudonym", BIRTH_YEAR) if c in table.column_names]),
                          mode="replace")
        summary = link_hub(store, sch, config, progress, actor="linkage-unit",
                           allow_unsafe=allow_unsafe, unit=True)
        persons = store.query("SELECT person_id, batch_id, partner, record_key, match_score "
                              "FROM persons ORDER BY person_id, partner, record_key")
    return UnitLinkResult(persons, summary, replaced, unsafe)


def read_persons(path: Path) -> pa.Table:
    if not path.is_file():
        raise AccordError(f"no persons file at {path}", hint="check the --persons path")
    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowInvalid):
        raise AccordError(f"{path} is not a Parquet persons file",
                          hint="make it at the linkage unit with `accord link --unit-file ... "
                               "--persons-out`") from None
    missing = [c for c in PERSON_COLUMNS if c not in table.column_names]
    if missing:
        raise AccordError(f"{path} lacks column(s) {', '.join(missing)}",
                          hint="make it with `accord link --unit-file ... --persons-out`")
    return table.select(list(PERSON_COLUMNS))


def import_persons(store: Store, persons: pa.Table, actor: str = "hub") -> dict[str, Any]:
    """(Re)write the hub's ``persons`` table from the linkage unit's persons.

    Every hub record is accounted for: a record the unit linked takes its person; one the unit
    does not know (no encoding, no linkage consent, or added after the unit's run) is a person
    of its own. A unit row whose record the hub does not hold (withdrawn, or not added yet) is
    counted and left out.
    """
    if not store.table_exists("records"):
        raise StoreError("the hub holds no records yet",
                         hint="add contributions with `accord hub add`")
    keys = persons.group_by(["partner", "record_key"]).aggregate([("person_id", "count")])
    if keys.num_rows != persons.num_rows:
        raise AccordError("the persons file lists a record more than once",
                          hint="use the file `accord link --unit-file ... --persons-out` wrote")
    with store.transaction():
        store.write_table("_unit_persons", persons, mode="replace")
        joined = store.query(
            "SELECT r.batch_id, r.partner, r.record_key, u.person_id AS unit_person, "
            "u.match_score FROM records r LEFT JOIN _unit_persons u "
            "ON r.partner = u.partner AND r.record_key = u.record_key "
            "ORDER BY r.partner, r.record_key")
        unknown = int(store.scalar(
            "SELECT count(*) FROM _unit_persons u WHERE NOT EXISTS (SELECT 1 FROM records r "
            "WHERE r.partner = u.partner AND r.record_key = u.record_key)"))
        store.execute("DROP TABLE _unit_persons")
        unit_person = joined["unit_person"].to_pylist()
        ids: dict[int, int] = {}
        # unit persons keep one (negative) label each; a record the unit did not see is a person
        # of its own (its row number)
        labels = [i if p is None else ids.setdefault(int(p), -1 - len(ids))
                  for i, p in enumerate(unit_person)]
        # dense person ids: unit persons first (in order of appearance), then single records
        order: dict[int, int] = {}
        dense = [order.setdefault(v, len(order)) for v in labels]
        table = pa.table({"person_id": pa.array(dense, pa.int64()),
                          "batch_id": joined["batch_id"], "partner": joined["partner"],
                          "record_key": joined["record_key"],
                          "match_score": pc.cast(joined["match_score"], pa.float64())})
        detail = {"layout": "linkage-unit", "records": table.num_rows,
                  "persons": len(order),
                  "records_from_unit": sum(p is not None for p in unit_person),
                  "records_not_in_unit": sum(p is None for p in unit_person),
                  "unit_records_not_in_hub": unknown}
        store.write_table("persons", table, mode="replace")
        store.audit(actor, "link", detail)
    return detail
