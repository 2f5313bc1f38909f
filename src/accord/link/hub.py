"""Linking every contribution in the hub store into a ``persons`` table.

Each pair of partners is linked one-to-one (Fellegi-Sunter/EM, automatic threshold unless
given); the links are then clustered across partners without ever joining two records of one
partner unless they share the partner's person pseudonym. Records without an encoding stay
persons of their own.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from itertools import combinations
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from accord.errors import StoreError
from accord.link.cluster import ClusterRecord, cluster_records
from accord.link.comparisons import comparison_levels
from accord.link.encodings import EncodedSet
from accord.link.fellegi_sunter import LN2, FSModel
from accord.link.match import MatchConfig, match_sets
from accord.protect.encoding.bloom import UNORDERED_SUFFIX
from accord.protect.encoding.files import EncodingFileError, EncodingInfo
from accord.protect.encoding.pipeline import CHECK_COLUMN, ENCODED_PREFIX, FINGERPRINT_COLUMN
from accord.protect.encoding.schema import (
    EncodingSchema,
    FieldKind,
    UnsafeEncodingError,
    check_safe,
    default_schema,
    scale_note,
    unit_schema,
)
from accord.protect.unit import birth_year_estimates
from accord.store import Store
from accord.store.hub import REENCODE_HINT

Progress = Callable[[str], None]


@dataclass(frozen=True)
class LinkSummary:
    records: int
    persons: int
    encoded_records: int
    pairs: dict[str, int] = field(default_factory=dict)  # "a|b" -> linked pairs
    thresholds: dict[str, float] = field(default_factory=dict)
    automatic: bool = True

    def as_dict(self) -> dict[str, Any]:
        return {"records": self.records, "persons": self.persons,
                "encoded_records": self.encoded_records, "linked_pairs": self.pairs,
                "thresholds": self.thresholds, "threshold_chosen":
                "automatic" if self.automatic else "given"}


def _encoded_sets(store: Store, schema: EncodingSchema) -> dict[str, EncodedSet]:
    if not store.table_exists("linkage_encodings"):
        return {}
    table = store.query("SELECT * FROM linkage_encodings ORDER BY partner, record_key")
    if table.num_rows == 0:
        return {}
    stamps = {(r[FINGERPRINT_COLUMN], r[CHECK_COLUMN]) for r in
              table.select([FINGERPRINT_COLUMN, CHECK_COLUMN]).to_pylist()}
    if len({fp for fp, _ in stamps}) > 1 and schema.fingerprint() in {fp for fp, _ in stamps}:
        # an older Accord took a contribution of an older format beside current ones
        raise EncodingFileError(
            "some of the hub's encodings were made with another encoding schema than this one "
            "(an older encoding format, or another schema), so they cannot be linked", hint=REENCODE_HINT)
    if len(stamps) > 1:
        raise EncodingFileError(
            "the hub holds encodings made with different schemas or linkage secrets",
            hint="every partner must re-encode with the collaborative's one schema and secret")
    fingerprint, check = stamps.pop()
    older = [f.name for f in schema.fields if f.kind is FieldKind.DATE
             and ENCODED_PREFIX + f.name + UNORDERED_SUFFIX not in table.column_names]
    if older and fingerprint != schema.fingerprint():
        raise EncodingFileError(
            "the hub's encodings were made with an older encoding format (format 3 or before: "
            "no day/month-swap filter of the birth date), which this version does not link",
            hint=REENCODE_HINT)
    if fingerprint != schema.fingerprint():
        raise EncodingFileError("the hub's encodings were made with another encoding schema",
                                hint="pass that schema file with --schema")
    info = EncodingInfo(schema, fingerprint, check)
    renamed = table.rename_columns([c[len(ENCODED_PREFIX):] if c.startswith(ENCODED_PREFIX)
                                    else c for c in table.column_names])
    years = _birth_years(store)
    out: dict[str, EncodedSet] = {}
    for partner in sorted(set(renamed["partner"].to_pylist())):
        part = renamed.filter(pc.equal(renamed["partner"], partner))
        enc = EncodedSet.from_table(part, info, id_column="record_key")
        est = np.array([years.get((partner, k), np.nan) for k in enc.ids], dtype=np.float64)
        out[partner] = replace(enc, birth_years=est)
    return out


def _birth_years(store: Store) -> dict[tuple[str, str], float]:
    """Birth year estimated from the age at registration, which the hub holds anyway.

    Linkage compares it only where the encoded birth date says nothing (unknown at either side):
    the simulator's and real partners' records often carry an age without a birth date. The
    estimate is the registration date in years, less the age, less half a year.
    """
    if "birth_year_estimate" in store.query("SELECT * FROM records LIMIT 0").column_names:
        # a linkage unit's store: the partners sent the estimate, not the age and date
        rows = store.query("SELECT partner, record_key, birth_year_estimate FROM records "
                           "WHERE birth_year_estimate IS NOT NULL")
        est = rows["birth_year_estimate"].to_numpy(zero_copy_only=False).astype(np.float64)
        return dict(zip(zip(rows["partner"].to_pylist(), rows["record_key"].to_pylist(),
                            strict=True), est.tolist(), strict=True))
    rows = store.query("SELECT partner, record_key, registration_date, age FROM records "
                       "WHERE age IS NOT NULL AND registration_date IS NOT NULL")
    if rows.num_rows == 0:
        return {}
    est = birth_year_estimates(rows["registration_date"], rows["age"])
    return dict(zip(zip(rows["partner"].to_pylist(), rows["record_key"].to_pylist(), strict=True),
                    est.tolist(), strict=True))


# A merge that would put two records of different partners in one person is refused when the
# model finds them at least this much (log2 Bayes factor) more likely two people than one.
CONTRADICTION = -4.0


def _compatibility(partners: list[str], keys: list[str], sets: dict[str, EncodedSet],
                   models: dict[tuple[str, str], FSModel]) -> Callable[[int, int], bool]:
    """compatible(i, j) for the clustering: no clear evidence that records i and j differ."""
    local = {p: {k: n for n, k in enumerate(s.ids.tolist())} for p, s in sets.items()}

    def compatible(i: int, j: int) -> bool:
        (pi, ki), (pj, kj) = sorted([(partners[i], keys[i]), (partners[j], keys[j])])
        model = models.get((pi, pj))
        xi, xj = local.get(pi, {}).get(ki), local.get(pj, {}).get(kj)
        if model is None or xi is None or xj is None:
            return True
        ia, ib = np.array([xi]), np.array([xj])
        gamma = comparison_levels(sets[pi], sets[pj], ia, ib)
        return bool(model.pair_log_bayes_factor(gamma, ia, ib)[0] / LN2 >= CONTRADICTION)

    return compatible


def link_hub(store: Store, schema: EncodingSchema | None = None,
             config: MatchConfig | None = None, progress: Progress | None = None,
             actor: str = "hub", allow_unsafe: bool = False, unit: bool = False) -> LinkSummary:
    """Link all contributions and (re)write the ``persons`` table.

    ``unit``: the store is a linkage unit's (`accord.link.unit`: encodings without clear
    attributes); otherwise it is a hub holding the encodings next to clear citizenship and sex,
    which is refused above the size the attack harness measured safe unless ``allow_unsafe``.
    """
    sch = schema or (unit_schema() if unit else default_schema())
    unsafe = check_safe(sch, allow_unsafe, unit=unit)
    cfg = config or MatchConfig()
    say = progress or (lambda _m: None)
    if not store.table_exists("records"):
        raise StoreError("the hub holds no records yet", hint="add contributions with `accord hub add`")
    # A pseudonym hashes name, birth date and sex: without a birth date it says only "same name
    # and sex", which different people share, so it does not make records one person.
    recs = store.query("SELECT batch_id, partner, record_key, CASE WHEN dob_quality IS NULL OR "
                       "dob_quality = 'unknown' THEN NULL ELSE person_pseudonym END AS "
                       "person_pseudonym FROM records ORDER BY partner, record_key")
    partners = recs["partner"].to_pylist()
    keys = recs["record_key"].to_pylist()
    index = {(p, k): i for i, (p, k) in enumerate(zip(partners, keys, strict=True))}
    sets = _encoded_sets(store, sch)
    note = None if unit else scale_note(sum(len(s) for s in sets.values()))
    if note and not allow_unsafe:
        raise UnsafeEncodingError(
            f"the hub holds name encodings next to clear citizenship and sex: {note}",
            hint="link at a linkage unit instead (`accord ingest --linkage-unit-out`, "
                 "`accord link --unit-file`, `accord link --persons`; docs/linkage.md), or pass "
                 "--unsafe-encoding to accept the risk (the audit record says so)")
    ei: list[np.ndarray] = []
    ej: list[np.ndarray] = []
    sc: list[np.ndarray] = []
    pair_counts: dict[str, int] = {}
    thresholds: dict[str, float] = {}
    models: dict[tuple[str, str], FSModel] = {}
    automatic = cfg.threshold is None
    for pa_, pb_ in combinations(sorted(sets), 2):
        a, b = sets[pa_], sets[pb_]
        say(f"linking {pa_} with {pb_}")
        r = match_sets(a, b, cfg)
        models[(pa_, pb_)] = r.model
        gi = np.array([index.get((pa_, k), -1) for k in a.ids[r.ia]], dtype=np.int64)
        gj = np.array([index.get((pb_, k), -1) for k in b.ids[r.ib]], dtype=np.int64)
        ok = (gi >= 0) & (gj >= 0)  # an encoding without its record (should not happen) is ignored
        ei.append(gi[ok])
        ej.append(gj[ok])
        sc.append(r.score[ok])
        pair_counts[f"{pa_}|{pb_}"] = int(ok.sum())
        thresholds[f"{pa_}|{pb_}"] = r.threshold
    edges_i = np.concatenate(ei) if ei else np.empty(0, np.int64)
    edges_j = np.concatenate(ej) if ej else np.empty(0, np.int64)
    scores = np.concatenate(sc) if sc else np.empty(0, np.float64)
    say("clustering")
    cluster_in = [ClusterRecord(p, s) for p, s in
                  zip(partners, recs["person_pseudonym"].to_pylist(), strict=True)]
    labels = cluster_records(cluster_in, edges_i, edges_j, scores,
                             _compatibility(partners, keys, sets, models))
    best = np.full(len(partners), np.nan)
    kept = labels[edges_i] == labels[edges_j] if len(edges_i) else np.zeros(0, bool)
    for arr in (edges_i, edges_j):
        np.fmax.at(best, arr[kept], scores[kept])
    persons = pa.table({
        "person_id": pa.array(labels, pa.int64()),
        "batch_id": recs["batch_id"], "partner": recs["partner"],
        "record_key": recs["record_key"],
        "match_score": pa.array(best, pa.float64(), mask=np.isnan(best)),
    })
    summary = LinkSummary(len(partners), len(np.unique(labels)),
                          sum(len(s) for s in sets.values()), pair_counts, thresholds, automatic)
    with store.transaction():
        store.write_table("persons", persons, mode="replace")
        store.audit(actor, "link", {"schema_fingerprint": sch.fingerprint(),
                                    **({"unsafe_encoding": unsafe} if unsafe else {}),
                                    **({"privacy_note": note} if note else {}),
                                    **summary.as_dict()})
    return summary
