"""Linkage privacy benchmark: what a curious hub labels from the name encodings (issue 11).

Simulated partners (the project's simulator, two partners, 15 % overlap) encode their records
with each schema below; the attacker of `tests/attacks/linkage_attacker.py` sees only the hub's
view (encoded name columns, the public schema, sex and citizenship in clear) and an ideal public
name list (the simulator's pools and weights, 200,000 people drawn with another seed). For each
schema it prints the share of records whose given name, family name and both names the attacks
label correctly, against the clear-attribute baseline (the commonest name of the record's sex and
citizenship) and the commonest-name baseline.

Run (from the repository root):

    .venv/bin/python benchmarks/linkage_privacy.py [--people 10000,40000] [--schemas all]

The linkage unit's view (`--schemas unit`: the unit schema, sex only next to the encodings) and
the hub layout's (`format3`) in one run, at 345k records (benchmarks/results/linkpriv3.md):

    nice -n 10 .venv/bin/python benchmarks/linkage_privacy.py --people 300000 \
        --schemas unit,format3 [--language] [--check-all-pairs]

`--language` adds, for the unit's view, the attack that first infers language groups from the
encodings; `--check-all-pairs` runs the attacks with the all-pairs cluster step too and counts
the neighbour pairs the LSH step misses; `--all-pairs` uses the all-pairs step only (as before
the LSH step; slow above about 100k records). `--sex-only` gives any schema's view sex only.

Besides the named schemas, `--schemas` takes `dD-pP[-sCOLUMN]` for the one-name-field schema at
diffusion D and randomised response P, optionally salted with a column (e.g. `d5-p0.03`,
`d3-p0.02-scitizenship`), to measure candidate hardenings.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from accord.protect.encoding import default_schema  # noqa: E402
from accord.protect.encoding.schema import (  # noqa: E402
    EncodingSchema,
    schema_from_dict,
    unit_schema,
)
from tests.attacks.linkage_attacker import (  # noqa: E402
    Rates,
    baseline_rates,
    best_attack,
    cluster_threshold,
    compare_cluster_steps,
    language_attack,
)
from tests.attacks.linkage_scenario import (  # noqa: E402
    coarsen,
    hub_view,
    public_list,
    simulated_partners,
)


def _schema(parts: bool, flip: float, diffusion: int) -> EncodingSchema:
    doc = default_schema().model_dump(mode="json", exclude_none=True)
    doc["hardening"] = {"flip_probability": flip, "diffusion": diffusion}
    if parts:
        doc["fields"] = [{"name": "given_name", "kind": "name"},
                         {"name": "family_name", "kind": "name"}, *doc["fields"][1:]]
    return schema_from_dict(doc)


SCHEMAS = {
    "plain": ("plain keyed filters, name parts apart (negative control)", _schema(True, 0.0, 0)),
    "format2": ("format 2 default: name parts apart, randomised response p=0.02",
                _schema(True, 0.02, 0)),
    "parts-diffused": ("name parts apart, diffusion 3, p=0.02", _schema(True, 0.02, 3)),
    "joint": ("one name field (given+family), p=0.02, no diffusion", _schema(False, 0.02, 0)),
    "format3": ("format 3 default: one name field, diffusion 3, p=0.02", default_schema()),
    "unit": ("unit schema (name, birth date, sex; no citizenship): the linkage unit's view, "
             "sex only", unit_schema()),
}
SEX_ONLY_SCHEMAS = {"unit"}  # the linkage unit holds no clear citizenship


def _schema_for(key: str) -> tuple[str, EncodingSchema]:
    if key in SCHEMAS:
        return SCHEMAS[key]
    try:
        d, p, *salt = key.split("-")
        diffusion, flip = int(d.removeprefix("d")), float(p.removeprefix("p"))
    except ValueError:
        raise SystemExit(f"unknown schema {key!r}: one of {', '.join(SCHEMAS)} or "
                         "dD-pP[-sCOLUMN]") from None
    schema = _schema(False, flip, diffusion)
    label = f"one name field, diffusion {diffusion}, p={flip:g}"
    if salt:
        doc = schema.model_dump(mode="json", exclude_none=True)
        doc["fields"][0]["salt"] = salt[0].removeprefix("s")
        schema, label = schema_from_dict(doc), f"{label}, salted with {salt[0][1:]}"
    return label, schema


def _pct(r: Rates) -> str:
    return f"{100 * r.given:5.1f} | {100 * r.family:5.1f} | {100 * r.full:5.1f}"


def _excess(best: Rates, clear: Rates) -> str:
    return (f"excess over the clear baseline: given {100 * (best.given - clear.given):+.1f}, "
            f"family {100 * (best.family - clear.family):+.1f} points")


def _cost(t0: float, c0: float) -> str:
    return (f"{time.perf_counter() - t0:.0f} (CPU {time.process_time() - c0:.0f}, peak RSS "
            f"{_peak_gb():.1f} GB, load {os.getloadavg()[0]:.1f})")


def run(people: int, names: list[str], sex_only: bool, all_pairs: bool = False,
        check_all_pairs: bool = False, language: bool = False) -> None:
    partners = simulated_partners(people)
    public = public_list()
    print(f"\n### {people:,} simulated people, {partners.table.num_rows:,} records "
          f"(nproc {os.cpu_count()}, load average {os.getloadavg()[0]:.1f}; cluster step: "
          f"{'every pair' if all_pairs else 'LSH candidates'})\n")
    print("| schema | attack | given % | family % | full name % | seconds |")
    print("| --- | --- | --- | --- | --- | --- |")
    for key in names:
        label, schema = _schema_for(key)
        unit = key in SEX_ONLY_SCHEMAS or sex_only
        clear_label = "sex" if unit else "sex and citizenship"
        full_view = hub_view(partners, schema)
        view, pub = coarsen(full_view, public, keep_citizenship=not unit)
        clear, common = baseline_rates(view, pub, partners.truth)
        print(f"| {label} | baseline: commonest name for the {clear_label} | "
              f"{_pct(clear)} | |")
        print(f"| | baseline: commonest name | {_pct(common)} | |")
        steps = [all_pairs, not all_pairs] if check_all_pairs else [all_pairs]
        for step_all_pairs in steps:
            t0, c0 = time.perf_counter(), time.process_time()
            results = best_attack(view, pub, partners.truth, all_pairs=step_all_pairs)
            step = "every pair" if step_all_pairs else "LSH"
            for name, r in results.items():
                if name == "best":
                    continue
                print(f"| | {name} (cluster step: {step}) | {_pct(r)} | |")
            best = results["best"]
            print(f"| | **best attack** (cluster step: {step}; {_excess(best, clear)}) | "
                  f"{_pct(best)} | {_cost(t0, c0)} |")
            sys.stdout.flush()
        if check_all_pairs:
            for f in view.fields:
                t0, c0 = time.perf_counter(), time.process_time()
                agree = compare_cluster_steps(f, view)
                print(f"| | cluster step check, field {f.name}: {agree.pairs:,} ordered pairs at "
                      f"Dice >= {cluster_threshold(f):.3f} comparing every pair; LSH missed "
                      f"{agree.missed:,}, added {agree.extra:,}; same clusters: "
                      f"{agree.same_clusters} | | | | {_cost(t0, c0)} |")
        if language and unit:
            for how, what in (("mixture", "inferred (bit-profile mixture, unsupervised)"),
                              ("known", "inferred from one cluster in ten whose group is known"),
                              ("oracle", "ORACLE: the true groups, an upper bound")):
                t0, c0 = time.perf_counter(), time.process_time()
                lang = language_attack(view, public, partners.truth, partners.groups, how)
                for name, r in lang.rates.items():
                    if name != "best":
                        print(f"| | language groups {how}, then {name} | {_pct(r)} | |")
                best = lang.rates["best"]
                print(f"| | **best attack after language groups {what}** ({lang.groups} groups "
                      f"from the public list; {100 * lang.accuracy:.1f} % of records with a "
                      f"name put in their true group; {_excess(best, clear)}) | {_pct(best)} | "
                      f"{_cost(t0, c0)} |")
        sys.stdout.flush()


def _peak_gb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--people", default="10000")
    ap.add_argument("--schemas", default="all", help="comma list of " + ", ".join(SCHEMAS))
    ap.add_argument("--sex-only", action="store_true",
                    help="the hub holds only sex in clear next to the encodings (not citizenship)")
    ap.add_argument("--all-pairs", action="store_true",
                    help="the cluster step compares every pair of filters (slow; as before LSH)")
    ap.add_argument("--check-all-pairs", action="store_true",
                    help="run the attacks with both cluster steps and count the neighbour pairs "
                         "the LSH step misses")
    ap.add_argument("--language", action="store_true",
                    help="for sex-only views (the unit), also the attack that first infers "
                         "language groups from the name encodings")
    args = ap.parse_args()
    names = [k for k in SCHEMAS if k != "unit"] if args.schemas == "all" \
        else args.schemas.split(",")
    for n in (int(x) for x in args.people.split(",")):
        run(n, names, args.sex_only, args.all_pairs, args.check_all_pairs, args.language)


if __name__ == "__main__":
    main()
