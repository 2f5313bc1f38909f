"""`accord link --evaluate`: precision, recall and F1 of the hub's persons against ground truth.

The truth (written by the simulator) names records by partner and case number; the hub knows
them only by record key, HMAC(partner key, normalised case number). So evaluation needs the
partners' keys: it is a test-bench tool, run where those keys are (never at a real hub).
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from accord.errors import InputFileError, KeyMissingError
from accord.link.evaluate import PairScores, pair_scores, pairs_from_clusters
from accord.protect.keys import PartnerKey, load_partner_key
from accord.protect.normalise import normalise_codes
from accord.protect.pseudonym import hmac_column
from accord.store import Store


def _variants(name: str) -> list[str]:
    return list(dict.fromkeys([name, name.replace("_", "-"), name.replace("-", "_")]))


def find_partner_key(keys_dir: Path, partner: str) -> PartnerKey:
    for v in _variants(partner):
        for cand in (keys_dir / v / "partner.key", keys_dir / f"{v}.key"):
            if cand.exists():
                return load_partner_key(cand)
    raise KeyMissingError(f"no key for partner {partner} under {keys_dir}",
                          hint="give --keys DIR holding DIR/<partner>/partner.key or "
                               "DIR/<partner>.key for every partner in the truth file")


def read_truth(path: Path) -> pa.Table:
    if not path.exists():
        raise InputFileError(f"no truth file at {path}", hint="check the --evaluate path")
    try:
        table = pacsv.read_csv(path, convert_options=pacsv.ConvertOptions(
            column_types={"partner": pa.string(), "case_id": pa.string(), "person_id": pa.string()}))
    except pa.ArrowException:  # empty, not CSV, not UTF-8: Arrow's message can quote the file
        raise InputFileError(f"{path} is not a readable CSV truth file",
                             hint="the truth is a UTF-8 CSV with partner, case_id and person_id columns") from None
    missing = {"partner", "case_id", "person_id"} - set(table.column_names)
    if missing:
        raise InputFileError(f"{path} lacks column(s) {', '.join(sorted(missing))}",
                             hint="the truth needs partner, case_id and person_id columns")
    return table


def evaluate_hub(store: Store, truth_path: Path, keys_dir: Path) -> PairScores:
    truth = read_truth(truth_path)
    persons = store.query("SELECT person_id, partner, record_key FROM persons")
    hub_partners = set(persons["partner"].to_pylist())
    true_members: dict[str, list[str]] = defaultdict(list)
    for partner in sorted(set(truth["partner"].to_pylist())):
        part = truth.filter(pc.equal(truth["partner"], partner))
        hub_name = next((v for v in _variants(partner) if v in hub_partners), partner)
        msg = pc.binary_join_element_wise("case", normalise_codes(part["case_id"]), "|")
        rkeys = hmac_column(msg, find_partner_key(keys_dir, partner)).to_pylist()
        for pid, rk in zip(part["person_id"].to_pylist(), rkeys, strict=True):
            true_members[str(pid)].append(f"{hub_name}:{rk}")
    found: dict[str, list[str]] = defaultdict(list)
    for pid, partner, rk in zip(persons["person_id"].to_pylist(), persons["partner"].to_pylist(),
                                persons["record_key"].to_pylist(), strict=True):
        found[str(pid)].append(f"{partner}:{rk}")
    return pair_scores(pairs_from_clusters(found), pairs_from_clusters(true_members))
