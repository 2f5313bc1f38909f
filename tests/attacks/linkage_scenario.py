"""The attack scenario: simulated partners encode their records; the hub holds the encodings and
sex and citizenship in clear; the attacker's public name list comes from another simulation seed.

The partners' side uses the real encoder (as the protect step does); the attacker
(`linkage_attacker`) sees only the encoded columns, the schema and the clear attributes.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pyarrow as pa

from accord.protect.encoding import Encoder, EncodingSchema, FieldKind, LinkageSecret
from accord.protect.normalise import normalise_names
from accord.simulate.names import load_vocabulary, render
from accord.simulate.population import make_population
from accord.simulate.records import make_records
from accord.standard import load_standard
from tests.attacks.linkage_attacker import EncodedField, Group, HubView, Label, PublicList, Truth

SECRET = LinkageSecret(b"attack-scenario-linkage-secret!!")
COMPONENT = {"given_name": "given", "family_name": "family"}
CLEAR_INDEX = {"sex": 0, "citizenship": 1}  # the attributes the hub holds in clear (a Group)


@dataclass(frozen=True)
class Partners:
    """Identifier table of every partner's records (the protect step's input) and the truth."""

    table: pa.Table  # given_name, family_name, date_of_birth, sex, citizenship
    groups: list[Group]
    truth: Truth


def _norm(values: pa.Array) -> list[str | None]:
    out = normalise_names(values).to_pylist()
    return [v if v else None for v in out]


@lru_cache(maxsize=4)
def simulated_partners(people: int, seed: int = 11, partners: int = 2) -> Partners:
    std = load_standard()
    pop = make_population(people, seed, std)
    recs = make_records(pop, partners, 0.15, seed)
    sex_codes = std.field("sex").code_values
    sex = [sex_codes[i] for i in pop.sex[recs.person]]
    cit = [pop.countries[i] for i in pop.citizenship[recs.person]]
    dob = [None if np.isnat(d) else str(d) for d in recs.dob]
    table = pa.table({"given_name": recs.given, "family_name": recs.family,
                      "date_of_birth": pa.array(dob, pa.string()), "sex": sex,
                      "citizenship": cit})
    truth = Truth({"given": _norm(recs.given), "family": _norm(recs.family)})
    return Partners(table, list(zip(sex, cit, strict=True)), truth)


@lru_cache(maxsize=2)
def public_list(people: int = 200_000, seed: int = 9_001) -> PublicList:
    """The ideal attacker's name list: the simulator's pools and weights, other people."""
    std = load_standard()
    pop = make_population(people, seed, std)
    no = np.zeros(people, bool)
    given, family = render(pop.names, no, no, load_vocabulary())
    g, f = _norm(given), _norm(family)
    sex_codes = std.field("sex").code_values
    counts: dict[tuple[str, ...], dict[Group, Counter[Label]]] = defaultdict(
        lambda: defaultdict(Counter))
    for i in range(people):
        grp = (sex_codes[pop.sex[i]], pop.countries[pop.citizenship[i]])
        if g[i]:
            counts[("given",)][grp][(g[i],)] += 1
        if f[i]:
            counts[("family",)][grp][(f[i],)] += 1
        if g[i] and f[i]:
            counts[("given", "family")][grp][(g[i], f[i])] += 1
    return PublicList({k: dict(v) for k, v in counts.items()})


def hub_view(partners: Partners, schema: EncodingSchema, seed: int = 0) -> HubView:
    """Encode as the partners would and keep what the hub holds: the filters of name fields."""
    enc = Encoder(schema, SECRET, np.random.default_rng(seed)).encode(partners.table)
    fields = []
    for spec in schema.fields:
        if spec.kind is not FieldKind.NAME:
            continue
        cols = spec.sources
        col = enc[spec.name].combine_chunks()
        present = col.is_valid().to_numpy(zero_copy_only=False)
        width = col.type.byte_width
        raw = np.frombuffer(col.buffers()[1], np.uint8, count=len(col) * width)
        filters = raw.reshape(len(col), width).copy()
        filters[~present] = 0
        fields.append(EncodedField(
            spec.name, tuple(COMPONENT[c] for c in cols), filters, present, spec.n_hashes,
            spec.ngram, spec.hash_domain, schema.hardening.flip_probability,
            schema.hardening.diffusion, CLEAR_INDEX.get(spec.salt or "")))
    return HubView(tuple(fields), partners.groups)


def coarsen(view: HubView, public: PublicList, keep_citizenship: bool) -> tuple[HubView,
                                                                                 PublicList]:
    """The hub's view and the attacker's list when the hub holds less in clear next to the
    encodings: sex only (citizenship kept only inside the encodings) instead of sex and
    citizenship. The attacker then conditions on sex alone."""
    if keep_citizenship:
        return view, public

    def grp(g: Group) -> Group:
        return (g[0], "")

    counts: dict[tuple[str, ...], dict[Group, Counter[Label]]] = {}
    for comps, by_group in public.counts.items():
        merged: dict[Group, Counter[Label]] = defaultdict(Counter)
        for g, counter in by_group.items():
            merged[grp(g)].update(counter)
        counts[comps] = dict(merged)
    return HubView(view.fields, [grp(g) for g in view.groups]), PublicList(counts)
