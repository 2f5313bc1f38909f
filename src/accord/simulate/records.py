"""From people to partner records: who is seen by which partner, and what re-registration garbles.

A share ``overlap`` of the people is seen by two partners (a few by three when there are three or
more). The first registration writes the person as they are (with their own way of reporting the
date of birth); each later registration may introduce the errors real re-registration brings:
another transliteration, given and family names swapped, a compound family name cut short,
"Nguyen Thi Lan" written "Nguyen T. Lan", typos, a birth date defaulted to 1 January, reduced to the
year, day and month swapped, or missing, and a different phone number. The kinds introduced are
recorded per record (bit mask over ``ERROR_KINDS``) for the ground truth.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from accord.simulate.arrays import IntArray, categorical
from accord.simulate.capture import assign_from_captures
from accord.simulate.names import (
    NameTokens,
    can_transliterate,
    load_vocabulary,
    render,
    transliterate,
    typo,
)
from accord.simulate.population import Population

ERROR_KINDS = ("transliteration", "name_swap", "typo", "compound_name", "initial",
               "dob_default_jan1", "dob_year_only", "dob_day_month_swap", "dob_missing",
               "phone_changed")
DEFECTS = ("unknown_code", "bad_date", "age_out_of_range", "missing_required")
END = np.datetime64("2025-06-30")
E = {k: 1 << i for i, k in enumerate(ERROR_KINDS)}


@dataclass(frozen=True)
class Records:
    partner: IntArray
    person: IntArray
    seq: IntArray  # 0-based order within the partner (by registration date)
    repeat: np.ndarray  # bool: registered again by another partner (may carry errors)
    reopened: np.ndarray  # bool: a second case of the person at the same partner
    given: pa.Array
    family: pa.Array
    registration: np.ndarray  # datetime64[D]
    dob: np.ndarray  # datetime64[D], NaT = left blank
    age: IntArray  # reported age at registration, -1 = blank
    phone: IntArray  # -1 = none
    document: IntArray  # -1 = none
    errors: IntArray  # bit mask over ERROR_KINDS
    defect: IntArray  # index into DEFECTS, -1 = a good row

    @property
    def size(self) -> int:
        return len(self.person)


def replace_at(arr: pa.Array, idx: IntArray, values: list[str | None]) -> pa.Array:
    """A copy of ``arr`` with ``arr[idx] = values`` (pyarrow arrays are immutable)."""
    positions = np.arange(len(arr), dtype=np.int64)
    positions[idx] = len(arr) + np.arange(len(idx), dtype=np.int64)
    return pa.concat_arrays([arr, pa.array(values, type=arr.type)]).take(pa.array(positions))


def _assign(rng: np.random.Generator, n: int, partners: int, overlap: float,
            reopened: float) -> tuple[IntArray, IntArray, np.ndarray, np.ndarray]:
    weights = 1.0 / np.sqrt(np.arange(1, partners + 1))
    primary = categorical(rng, weights, n)
    person = [np.arange(n, dtype=np.int64)]
    partner = [primary]
    repeat = [np.zeros(n, dtype=bool)]
    if partners > 1 and overlap > 0:
        multi = np.flatnonzero(rng.random(n) < overlap)
        second = (primary[multi] + 1 + rng.integers(0, partners - 1, len(multi))) % partners
        person.append(multi)
        partner.append(second)
        repeat.append(np.ones(len(multi), dtype=bool))
        if partners > 2:
            third_sel = rng.random(len(multi)) < 0.15
            p1, p2 = primary[multi][third_sel], second[third_sel]
            third = np.array([next(p for p in range(partners) if p not in (a, b))
                              for a, b in zip(p1, p2, strict=True)], dtype=np.int64)
            # Rotate so the third partner is not always the lowest-numbered one left.
            shift = rng.integers(0, partners, len(third))
            for _ in range(partners):
                cand = (third + shift) % partners
                ok = (cand != p1) & (cand != p2)
                third = np.where(ok, cand, third)
                shift = np.where(ok, 0, shift + 1)
            person.append(multi[third_sel])
            partner.append(third)
            repeat.append(np.ones(len(third), dtype=bool))
    again = [np.zeros(sum(len(p) for p in person), dtype=bool)]
    if reopened > 0:
        # A case closed and opened again by the same partner: a new case number, the same
        # identifiers typed from the same file (so the same pseudonym), no re-registration errors.
        dup = np.flatnonzero(rng.random(n) < reopened)
        person.append(dup)
        partner.append(primary[dup])
        repeat.append(np.zeros(len(dup), dtype=bool))
        again.append(np.ones(len(dup), dtype=bool))
    return (np.concatenate(person), np.concatenate(partner), np.concatenate(repeat),
            np.concatenate(again))


def make_records(pop: Population, partners: int, overlap: float, seed: int,
                 bad_share: float = 0.005, reopened_share: float = 0.0,
                 caught: np.ndarray | None = None) -> Records:
    """Records of the people; ``caught`` (people, partners) replaces ``overlap`` when given:
    only people caught by some partner get records (see ``capture.py``)."""
    rng = np.random.default_rng([seed, 3])
    voc = load_vocabulary()
    if caught is None:
        person, partner, repeat, reopened = _assign(rng, pop.size, partners, overlap,
                                                    reopened_share)
    else:
        person, partner, repeat, reopened = assign_from_captures(rng, caught, reopened_share)
    m = len(person)
    # Later registrations come 1 week to 2 years after the previous one.
    registration = pop.first_registration[person].copy()
    later = rng.integers(7, 720, m).astype("timedelta64[D]")
    registration = np.where(repeat | reopened, np.minimum(registration + later, END),
                            registration)

    tokens: NameTokens = pop.names.take(person)
    errors = np.zeros(m, dtype=np.int64)

    def flag(p: float, applicable: np.ndarray | None = None) -> np.ndarray:
        f = repeat & (rng.random(m) < p)
        return f if applicable is None else f & applicable

    translit = flag(0.35, can_transliterate(tokens, voc))
    tokens, changed = transliterate(rng, tokens, translit, voc)
    errors[changed] |= E["transliteration"]
    compound = flag(0.5, tokens.f2 >= 0)
    f2 = tokens.f2.copy()
    f2[compound] = -1
    tokens = NameTokens(tokens.g1, tokens.g2, tokens.f1, f2)
    errors[compound] |= E["compound_name"]
    initial = flag(0.2, tokens.g2 >= 0)
    errors[initial] |= E["initial"]
    swap = flag(0.08, tokens.f1 >= 0)
    errors[swap] |= E["name_swap"]
    given, family = render(tokens, initial, swap, voc)
    typo_rows = np.flatnonzero(flag(0.15))
    if len(typo_rows):
        in_given = rng.random(len(typo_rows)) < 0.5
        u, v = rng.random(len(typo_rows)), rng.random(len(typo_rows))
        for target, sel in ((given, in_given), (family, ~in_given)):
            rows = typo_rows[sel]
            old = target.take(pa.array(rows)).to_pylist()
            new = [None if w is None else typo(w, a, b)
                   for w, a, b in zip(old, u[sel], v[sel], strict=True)]
            if target is given:
                given = replace_at(given, rows, new)
            else:
                family = replace_at(family, rows, new)
        errors[typo_rows] |= E["typo"]

    dob, age, dob_err = _dates(rng, pop, person, repeat, registration)
    errors |= dob_err
    phone = pop.phone[person].copy()
    phone[rng.random(m) < 0.2] = -1  # no phone given at this registration
    changed_phone = flag(0.4) & (phone >= 0)
    phone[changed_phone] = rng.integers(100_000_000, 999_999_999, int(changed_phone.sum()))
    errors[changed_phone] |= E["phone_changed"]
    document = pop.document[person].copy()
    document[repeat & (rng.random(m) < 0.3)] = -1

    order = np.lexsort((registration, partner))
    seq = np.empty(m, dtype=np.int64)
    sorted_partner = partner[order]
    starts = np.searchsorted(sorted_partner, np.arange(partners))
    seq[order] = np.arange(m) - starts[sorted_partner]
    idx = pa.array(order)
    recs = Records(
        partner=partner[order], person=person[order], seq=seq[order], repeat=repeat[order],
        reopened=reopened[order],
        given=given.take(idx), family=family.take(idx), registration=registration[order],
        dob=dob[order], age=age[order], phone=phone[order], document=document[order],
        errors=errors[order], defect=np.full(m, -1, dtype=np.int64),
    )
    return _inject_defects(rng, recs, partners, bad_share)


def _dates(rng: np.random.Generator, pop: Population, person: IntArray, repeat: np.ndarray,
           registration: np.ndarray) -> tuple[np.ndarray, IntArray, IntArray]:
    m = len(person)
    true = pop.dob[person]
    quality = pop.dob_quality[person]  # exact, default_jan_1, year_only, unknown
    years = true.astype("datetime64[Y]")
    jan1 = years.astype("datetime64[D]")
    age = ((registration - true).astype(np.int64) / 365.25).astype(np.int64)
    dob = np.where(quality == 0, true, np.where(quality == 1, jan1, np.datetime64("NaT")))
    unknown = quality == 3
    age = np.where(unknown, np.maximum(age + rng.integers(-3, 4, m), 0), age)
    age = np.where(unknown & (rng.random(m) < 0.2), -1, age)

    kind = np.where(repeat, categorical(rng, [0.74, 0.07, 0.06, 0.07, 0.06], m), 0)
    month = (true.astype("datetime64[M]") - years.astype("datetime64[M]")).astype(np.int64) + 1
    day = (true - true.astype("datetime64[M]").astype("datetime64[D]")).astype(np.int64) + 1
    errors = np.zeros(m, dtype=np.int64)
    to_jan1 = (kind == 1) & (quality == 0)
    dob = np.where(to_jan1, jan1, dob)
    errors[to_jan1] |= E["dob_default_jan1"]
    year_only = (kind == 2) & (quality <= 1)
    dob = np.where(year_only, np.datetime64("NaT"), dob)
    errors[year_only] |= E["dob_year_only"]
    swap = (kind == 3) & (quality == 0) & (day <= 12) & (day != month)
    swapped = (years.astype("datetime64[M]") + (day - 1).astype("timedelta64[M]")).astype(
        "datetime64[D]") + (month - 1).astype("timedelta64[D]")
    dob = np.where(swap, swapped, dob)
    errors[swap] |= E["dob_day_month_swap"]
    missing = (kind == 4) & (quality <= 2)
    dob = np.where(missing, np.datetime64("NaT"), dob)
    age = np.where(missing, -1, age)
    errors[missing] |= E["dob_missing"]
    return dob.astype("datetime64[D]"), age.astype(np.int64), errors


def _inject_defects(rng: np.random.Generator, recs: Records, partners: int,
                    share: float) -> Records:
    defect = recs.defect.copy()
    for p in range(partners):
        rows = np.flatnonzero(recs.partner == p)
        if len(rows) < 20 or share <= 0:
            continue
        k = max(round(share * len(rows)), len(DEFECTS) if len(rows) >= 200 else 1)
        chosen = rng.choice(rows, size=min(k, len(rows)), replace=False)
        defect[np.sort(chosen)] = np.arange(len(chosen)) % len(DEFECTS)
    return Records(**{**recs.__dict__, "defect": defect})


def error_names(mask: int) -> list[str]:
    return [k for i, k in enumerate(ERROR_KINDS) if mask & (1 << i)]
