"""A plausible, correlated population of people served by protection partners.

THE DISTRIBUTIONS HERE ARE ILLUSTRATIVE, NOT STATISTICS. Shares for sex, exploitation type, age,
control and recruiter come from ``marginals.yaml`` (derived once, at development time, from the
k-anonymised CTDC 2020 release; see its header); everything else (GBV incident types,
reproductive-health needs, migration status, disability...) is a hand-set guess that gives the
data the right *shape* (sexual exploitation mostly female, GBV survivors mostly women and girls,
unaccompanied status only for children) so that the pipeline, tables and linkage meet realistic
structure. Nothing here should be quoted as a fact about trafficking or GBV.

Coded fields are int arrays of indices into the standard's code list (-1 = not recorded);
multi-valued fields are bit masks over the code list.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

import numpy as np
import yaml

from accord.simulate.arrays import IntArray, categorical
from accord.simulate.names import NameTokens, draw_names, load_vocabulary
from accord.simulate.situation import situation
from accord.standard import Standard

CASE_TYPES = ("trafficking_victim", "gbv_survivor", "vulnerable_migrant")
EXPLOIT_GROUPS = ("Sexual", "Labor", "Other", "Slavery/Similar", "Forced Marriage", "Multiple")
AGE_BANDS = ((0, 8), (9, 17), (18, 20), (21, 23), (24, 26), (27, 29), (30, 38), (39, 47), (48, 70))
DOB_QUALITY = ("exact", "default_jan_1", "year_only", "unknown")

# Where people of each naming region tend to be registered (besides their own country, which
# stands for returnees and internal trafficking). Illustrative.
DESTINATIONS: dict[str, tuple[str, ...]] = {
    "vietnamese": ("TH", "MY", "KH"), "thai": ("TH", "MY"), "khmer": ("TH", "MY", "KH"),
    "burmese": ("TH", "MY"), "filipino": ("MY", "AE", "PH"), "indonesian": ("MY", "AE", "ID"),
    "arabic": ("TR", "LB", "JO", "DE"), "hispanic": ("US", "MX", "CO", "ES"),
    "west_african": ("LY", "IT", "NE", "ES"), "east_european": ("PL", "DE", "TR", "MD"),
    "horn_africa": ("LY", "SD", "IT"), "south_asian": ("MY", "AE", "IN"),
}
REGION_WEIGHTS = {
    "vietnamese": 4, "thai": 3, "khmer": 4, "burmese": 4, "filipino": 10, "indonesian": 5,
    "arabic": 12, "hispanic": 12, "west_african": 12, "east_european": 22, "horn_africa": 6,
    "south_asian": 6,
}
START = np.datetime64("2015-01-01")
DAYS = int((np.datetime64("2024-12-31") - START).astype(int))


@lru_cache(maxsize=1)
def load_marginals() -> dict[str, Any]:
    text = resources.files("accord.simulate").joinpath("marginals.yaml").read_text("utf-8")
    data: dict[str, Any] = yaml.safe_load(text)
    return data


@dataclass(frozen=True)
class Population:
    person_id: IntArray
    names: NameTokens
    region: IntArray
    countries: tuple[str, ...]  # country code table for citizenship / registration / exploitation
    citizenship: IntArray
    citizenship2: IntArray
    reg_country: IntArray
    case_type: IntArray
    sex: IntArray
    female: np.ndarray
    dob: np.ndarray  # datetime64[D], the true date of birth
    dob_quality: IntArray  # index into DOB_QUALITY: how the person reports it
    first_registration: np.ndarray  # datetime64[D]
    exploitation: IntArray  # mask over type_of_exploitation
    industry: IntArray
    sexual_type: IntArray  # mask
    control: IntArray  # mask over means_of_control
    recruiter: IntArray
    exploitation_country: IntArray
    migration_status: IntArray
    uasc: IntArray
    disability: IntArray
    gbv: IntArray  # mask
    rh_needs: IntArray  # mask
    rh_services: IntArray  # mask
    referred: IntArray  # mask over referred_to (service types)
    services: IntArray  # mask over services_received (a subset of referred)
    phone: IntArray  # national significant number, 9 digits
    document: IntArray  # 7-8 digit number; -1 = none

    @property
    def size(self) -> int:
        return len(self.person_id)


def make_population(n: int, seed: int, std: Standard) -> Population:
    voc = load_vocabulary()
    rng = np.random.default_rng([seed, 1])
    m = load_marginals()

    region_names = [r.name for r in voc.regions]
    region = categorical(rng, [REGION_WEIGHTS[r] for r in region_names], n)
    countries = sorted({c for r in voc.regions for c in r.countries}
                       | {c for d in DESTINATIONS.values() for c in d})
    cidx = {c: i for i, c in enumerate(countries)}
    citizenship = np.empty(n, dtype=np.int64)
    reg_country = np.empty(n, dtype=np.int64)
    for r_id, reg in enumerate(voc.regions):
        sel = np.flatnonzero(region == r_id)
        own = np.asarray([cidx[c] for c in reg.countries])[
            categorical(rng, reg.country_weights, len(sel))]
        citizenship[sel] = own
        dest = np.asarray([cidx[c] for c in DESTINATIONS[reg.name]])[
            rng.integers(0, len(DESTINATIONS[reg.name]), len(sel))]
        reg_country[sel] = np.where(rng.random(len(sel)) < 0.3, own, dest)
    citizenship2 = np.where(rng.random(n) < 0.02, rng.integers(0, len(countries), n), -1)
    citizenship2[citizenship2 == citizenship] = -1

    case_type = categorical(rng, [0.55, 0.25, 0.20], n)
    sex_codes = std.field("sex").code_values
    sex = np.empty(n, dtype=np.int64)
    vot_f = m["sex"]["Female"]
    p_sex = {  # female, male, trans f, trans m, non-conforming, unknown
        0: [vot_f * 0.99, (1 - vot_f) * 0.99, 0.003, 0.001, 0.002, 0.004],
        1: [0.92, 0.065, 0.004, 0.002, 0.004, 0.005],
        2: [0.45, 0.54, 0.002, 0.001, 0.002, 0.005],
    }
    for ct, p in p_sex.items():
        sel = case_type == ct
        sex[sel] = categorical(rng, p, int(sel.sum()))
    female = np.isin(sex, [sex_codes.index("female"), sex_codes.index("transgender_female")])

    # Exploitation group (CTDC categories) for victims of trafficking, conditioned on sex.
    group = np.full(n, -1, dtype=np.int64)
    for is_f, key in ((True, "Female"), (False, "Male")):
        sel = (case_type == 0) & (female == is_f)
        probs = [m["exploit_given_sex"][key][g] for g in EXPLOIT_GROUPS]
        group[sel] = categorical(rng, probs, int(sel.sum()))

    age = _ages(rng, m, case_type, female, group)
    dob_quality = categorical(rng, [0.72, 0.12, 0.08, 0.08], n)
    first = START + rng.integers(0, DAYS, n).astype("timedelta64[D]")
    # True birth date: the registration date minus the age, minus part of a year.
    dob = first - (age * 365.25 + rng.integers(0, 365, n)).astype("timedelta64[D]")

    sit = situation(rng, std, m, case_type, female, age, group, reg_country, citizenship,
                    len(countries))
    names = draw_names(np.random.default_rng([seed, 2]), region, female, voc)
    return Population(
        person_id=np.arange(n, dtype=np.int64), names=names, region=region,
        countries=tuple(countries), citizenship=citizenship, citizenship2=citizenship2,
        reg_country=reg_country, case_type=case_type, sex=sex, female=female, dob=dob,
        dob_quality=dob_quality, first_registration=first,
        phone=rng.integers(100_000_000, 999_999_999, n),
        document=np.where(rng.random(n) < 0.55, rng.integers(1_000_000, 99_999_999, n), -1),
        **sit,
    )


def _ages(rng: np.random.Generator, m: dict[str, Any], case_type: IntArray,
          female: np.ndarray, group: IntArray) -> IntArray:
    n = len(case_type)
    band = np.zeros(n, dtype=np.int64)
    table = m["age_band_given_sex_exploit"]
    keys = ["0--8", "9--17", "18--20", "21--23", "24--26", "27--29", "30--38", "39--47", "48+"]
    for g_id, g in enumerate(EXPLOIT_GROUPS):
        for is_f, s in ((True, "Female"), (False, "Male")):
            sel = (group == g_id) & (female == is_f)
            band[sel] = categorical(rng, [table[s][g][k] for k in keys], int(sel.sum()))
    lo = np.asarray([b[0] for b in AGE_BANDS])[band]
    hi = np.asarray([b[1] for b in AGE_BANDS])[band]
    age = lo + (rng.random(n) * (hi - lo + 1)).astype(np.int64)
    gbv = case_type == 1
    # GBV survivors: mostly young women, about a fifth of them girls under 18.
    age[gbv] = np.clip(rng.gamma(4.0, 5.0, int(gbv.sum())) + 6, 5, 75).astype(np.int64)
    vm = case_type == 2
    child = rng.random(n) < 0.3
    age[vm & child] = rng.integers(0, 18, int((vm & child).sum()))
    age[vm & ~child] = rng.integers(18, 66, int((vm & ~child).sum()))
    return age.astype(np.int64)
