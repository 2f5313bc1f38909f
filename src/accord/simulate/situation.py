"""What happened to each simulated person and what they need: exploitation, control, GBV, health.

ILLUSTRATIVE, NOT STATISTICS (see ``population.py``). CTDC-derived shares drive the exploitation
group, the broad category of control and the recruiter; the split into the standard's finer codes
and all GBV / health / status shares are hand-set to give plausible correlations only.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from accord.simulate.arrays import IntArray, categorical
from accord.standard import Standard

GROUPS = ("Sexual", "Labor", "Other", "Slavery/Similar", "Forced Marriage", "Multiple")
CONTROL_CATEGORIES = ("Threats", "Financial", "Physical", "Survival", "Other")
CONTROL_CODES = {
    "Threats": ("physical_threats", "threatens_family", "threats_law_enforcement"),
    "Financial": ("debt_bondage", "takes_earnings", "restricts_financial_access"),
    "Physical": ("physical_abuse", "sexual_abuse"),
    "Survival": ("withholds_necessities", "restricts_medical_care"),
    "Other": ("false_promises", "psychological_abuse", "withholds_documents", "restricts_movement",
              "excessive_working_hours", "psychoactive_substances", "other"),
}
# Extra means of control reported beside the main one, by exploitation group (hand-set).
EXTRA_CONTROL = {
    "Sexual": {"psychological_abuse": 0.3, "sexual_abuse": 0.25, "physical_abuse": 0.2,
               "restricts_movement": 0.3, "psychoactive_substances": 0.1, "takes_earnings": 0.2},
    "Labor": {"withholds_documents": 0.35, "excessive_working_hours": 0.3, "debt_bondage": 0.3,
              "takes_earnings": 0.25, "threats_law_enforcement": 0.15},
}
RECRUITERS = ("Intimate Partner", "Family/Relative", "Friend/Acquaintance", "Other")
LABOUR = {  # CTDC Labor_Type -> standard forced_labour_industry (None: see begging below)
    "Domestic Work": "domestic_work", "Construction": "construction",
    "Manufacturing": "manufacturing", "Agriculture": "agriculture", "Begging": None,
    "Aquafarming": "fishing_aquaculture", "Hospitality": "hospitality", "Peddling": "trade",
    "Other": "other_services",
}
OTHER_EXPLOIT = {"forced_criminality": 0.4, "forced_begging": 0.2, "other": 0.22,
                 "forced_military": 0.05, "organ_removal": 0.02, "child_labour": 0.07,
                 "forced_adoption": 0.02, "surrogacy": 0.02}
MIGRATION = ("regular", "irregular", "undocumented", "asylum_seeker", "refugee", "stateless",
             "internally_displaced", "returnee")
MIGRATION_BY_CASE = (
    (0.25, 0.35, 0.2, 0.05, 0.03, 0.02, 0.0, 0.10),
    (0.15, 0.10, 0.05, 0.20, 0.30, 0.02, 0.18, 0.0),
    (0.05, 0.30, 0.25, 0.20, 0.10, 0.02, 0.0, 0.08),
)
GBV_FEMALE = {"rape": 0.32, "sexual_assault": 0.15, "physical_assault": 0.25,
              "forced_marriage": 0.08, "denial_of_resources": 0.10, "psychological_abuse": 0.10}
GBV_MALE = {"rape": 0.10, "sexual_assault": 0.15, "physical_assault": 0.50,
            "forced_marriage": 0.0, "denial_of_resources": 0.10, "psychological_abuse": 0.15}


def _mask_of(std: Standard, field: str, codes: tuple[str, ...] | list[str]) -> np.ndarray:
    values = std.field(field).code_values
    return np.asarray([1 << values.index(c) for c in codes], dtype=np.int64)


def _code(std: Standard, field: str, code: str) -> int:
    return std.field(field).code_values.index(code)


def situation(rng: np.random.Generator, std: Standard, m: dict[str, Any], case_type: IntArray,
              female: np.ndarray, age: IntArray, group: IntArray, reg_country: IntArray,
              citizenship: IntArray, n_countries: int) -> dict[str, IntArray]:
    n = len(case_type)
    vot, gbv_case = case_type == 0, case_type == 1
    minor = age < 18
    exp = _exploitation(rng, std, m, group, female, minor)
    control = _control(rng, std, m, group)
    recruiter = np.full(n, -1, dtype=np.int64)
    rel = {"Intimate Partner": "intimate_partner", "Family/Relative": "family",
           "Friend/Acquaintance": "friend_acquaintance"}
    for g_id, g in enumerate(GROUPS):
        sel = np.flatnonzero(group == g_id)
        cat = categorical(rng, [m["recruiter_given_exploit"][g][r] for r in RECRUITERS], len(sel))
        codes = np.asarray([_code(std, "recruiter_relationship", rel.get(r, "other_known"))
                            for r in RECRUITERS])[cat]
        # CTDC's "Other" covers both known people (employers, agents) and strangers.
        stranger = (cat == 3) & (rng.random(len(sel)) < 0.4)
        codes[stranger] = _code(std, "recruiter_relationship", "stranger")
        recruiter[sel] = np.where(rng.random(len(sel)) < 0.55, codes, -1)  # often not recorded

    exploitation_country = np.where(
        rng.random(n) < 0.75, reg_country,
        np.where(rng.random(n) < 0.5, citizenship, rng.integers(0, n_countries, n)))
    exploitation_country[~vot] = -1

    migration = np.full(n, -1, dtype=np.int64)
    for ct, probs in enumerate(MIGRATION_BY_CASE):
        sel = case_type == ct
        migration[sel] = categorical(rng, probs, int(sel.sum()))
    migration[rng.random(n) < 0.06] = -1
    uasc_codes = std.field("unaccompanied_separated").code_values
    uasc = np.full(n, uasc_codes.index("not_applicable"), dtype=np.int64)
    p_alone = np.where(case_type == 2, 0.55, 0.4)
    u = rng.random(n)
    uasc[minor] = np.where(u[minor] < p_alone[minor] * 0.55, uasc_codes.index("unaccompanied"),
                           np.where(u[minor] < p_alone[minor], uasc_codes.index("separated"),
                                    uasc_codes.index("accompanied")))
    uasc[rng.random(n) < 0.04] = -1
    dis = std.field("disability").code_values
    p_yes = np.clip(0.04 + age / 600, 0, 0.3)
    u = rng.random(n)
    disability = np.where(u < p_yes, dis.index("yes"),
                          np.where(u < 0.92, dis.index("no"), dis.index("unknown")))

    gbv = _gbv(rng, std, gbv_case, female, age)
    needs, services = _health(rng, std, female, age, gbv, exp)
    # Referrals come from a generator of their own (spawned, which leaves ``rng`` untouched), so
    # every draw above and after stays what it was before referrals were simulated.
    seq = rng.bit_generator.seed_seq
    assert isinstance(seq, np.random.SeedSequence)  # default_rng's generators have one
    referred, received = _referrals(np.random.default_rng(seq.spawn(1)[0]), std, case_type, age,
                                    gbv, exp, needs, migration)
    # Industries and types of sexual exploitation only make sense for the matching exploitation.
    return {"exploitation": exp["mask"], "industry": exp["industry"],
            "sexual_type": exp["sexual_type"], "control": control, "recruiter": recruiter,
            "exploitation_country": exploitation_country, "migration_status": migration,
            "uasc": uasc, "disability": disability.astype(np.int64), "gbv": gbv,
            "rh_needs": needs, "rh_services": services, "referred": referred,
            "services": received}


def _exploitation(rng: np.random.Generator, std: Standard, m: dict[str, Any], group: IntArray,
                  female: np.ndarray, minor: np.ndarray) -> dict[str, IntArray]:
    n = len(group)
    bit = {c: 1 << i for i, c in enumerate(std.field("type_of_exploitation").code_values)}
    mask = np.zeros(n, dtype=np.int64)
    industry = np.full(n, -1, dtype=np.int64)
    sexual = np.isin(group, [0, 5]) | ((group == 4) & (rng.random(n) < 0.3))
    labour = np.isin(group, [1, 5])
    mask[sexual] |= bit["sexual_exploitation"]
    mask[labour] |= bit["forced_labour"]
    mask[group == 3] |= bit["servitude"]
    mask[group == 4] |= bit["forced_marriage"]
    other = np.flatnonzero(group == 2)
    names = list(OTHER_EXPLOIT)
    pick = categorical(rng, list(OTHER_EXPLOIT.values()), len(other))
    chosen = np.asarray([bit[c] for c in names])[pick]
    # Surrogacy exploits women; for a man the same CTDC "Other" case is recorded as other.
    chosen[(chosen == bit["surrogacy"]) & ~female[other]] = bit["other"]
    mask[other] |= chosen
    mask[labour & minor & (rng.random(n) < 0.5)] |= bit["child_labour"]
    kinds = list(LABOUR)
    for is_f, s in ((True, "Female"), (False, "Male")):
        sel = np.flatnonzero(labour & (female == is_f))
        cat = categorical(rng, [m["labour_type_given_sex"][s][k] for k in kinds], len(sel))
        codes = np.asarray([_industry(std, LABOUR[k]) for k in kinds])
        industry[sel] = codes[cat]
        mask[sel[cat == kinds.index("Begging")]] |= bit["forced_begging"]
    sexual_type = np.zeros(n, dtype=np.int64)
    idx = np.flatnonzero(sexual)
    sexual_type[idx] = 1 << categorical(rng, [0.7, 0.1, 0.08, 0.12], len(idx))
    return {"mask": mask, "industry": industry, "sexual_type": sexual_type}


def _industry(std: Standard, code: str | None) -> int:
    return -1 if code is None else _code(std, "forced_labour_industry", code)


def _control(rng: np.random.Generator, std: Standard, m: dict[str, Any],
             group: IntArray) -> IntArray:
    n = len(group)
    control = np.zeros(n, dtype=np.int64)
    for g_id, g in enumerate(GROUPS):
        sel = np.flatnonzero(group == g_id)
        cat = categorical(rng, [m["control_given_exploit"][g][c] for c in CONTROL_CATEGORIES],
                          len(sel))
        for c_id, c in enumerate(CONTROL_CATEGORIES):
            sub = sel[cat == c_id]
            bits = _mask_of(std, "means_of_control", CONTROL_CODES[c])
            control[sub] |= bits[rng.integers(0, len(bits), len(sub))]
        for code, p in EXTRA_CONTROL.get(g, {}).items():
            control[sel[rng.random(len(sel)) < p]] |= _mask_of(std, "means_of_control", [code])[0]
    control[rng.random(n) < 0.12] = 0  # not recorded
    return control


def _gbv(rng: np.random.Generator, std: Standard, gbv_case: np.ndarray, female: np.ndarray,
         age: IntArray) -> IntArray:
    n = len(gbv_case)
    out = np.zeros(n, dtype=np.int64)
    codes = list(GBV_FEMALE)
    bits = _mask_of(std, "gbv_incident_type", codes)
    for is_f, table in ((True, GBV_FEMALE), (False, GBV_MALE)):
        sel = np.flatnonzero(gbv_case & (female == is_f))
        probs = np.asarray([table[c] for c in codes])
        out[sel] = bits[categorical(rng, probs, len(sel))]
        # Forced (child) marriage among girls 12-17 is far more common than the overall share.
        girls = sel[(age[sel] >= 12) & (age[sel] < 18) & (rng.random(len(sel)) < 0.2)] if is_f \
            else sel[:0]
        out[girls] = bits[codes.index("forced_marriage")]
        extra = sel[rng.random(len(sel)) < 0.25]
        out[extra] |= bits[codes.index("psychological_abuse")]
    return out


def _health(rng: np.random.Generator, std: Standard, female: np.ndarray, age: IntArray,
            gbv: IntArray, exp: dict[str, IntArray]) -> tuple[IntArray, IntArray]:
    n = len(age)
    b = {c: 1 << i for i, c in enumerate(std.field("rh_needs").code_values)}
    g = {c: 1 << i for i, c in enumerate(std.field("gbv_incident_type").code_values)}
    e = {c: 1 << i for i, c in enumerate(std.field("type_of_exploitation").code_values)}
    rape = (gbv & g["rape"]) > 0
    sexual_violence = rape | ((gbv & g["sexual_assault"]) > 0) | (
        (exp["mask"] & e["sexual_exploitation"]) > 0)
    fertile = female & (age >= 12) & (age <= 49)
    needs = np.zeros(n, dtype=np.int64)

    def add(cond: np.ndarray, p: float, code: str) -> None:
        needs[cond & (rng.random(n) < p)] |= b[code]

    add(rape, 0.6, "clinical_management_of_rape")
    add(sexual_violence & ~rape, 0.25, "clinical_management_of_rape")
    add(sexual_violence, 0.4, "post_exposure_prophylaxis")
    add(sexual_violence, 0.45, "sti_care")
    add(sexual_violence & fertile, 0.35, "emergency_contraception")
    add(fertile & (age >= 15), 0.15, "family_planning")
    pregnant = fertile & (age >= 14) & (rng.random(n) < 0.07)
    needs[pregnant] |= b["antenatal_care"]
    add(pregnant, 0.5, "safe_delivery")
    received = np.zeros(n, dtype=np.int64)
    for bit in b.values():
        received[((needs & bit) > 0) & (rng.random(n) < 0.65)] |= bit
    return needs, received


# Referral and uptake shares (hand-set, illustrative): who is referred to which service, and how
# often a referral ends in the service being received. GBV survivors are the focus (issue 18):
# psychosocial support and health care first, then legal aid, safe shelter and social care.
REFER_GBV = {"psychosocial": 0.75, "health": 0.45, "legal": 0.35, "shelter": 0.15,
             "social_care": 0.25, "livelihood": 0.12, "financial": 0.08, "education": 0.05}
REFER_VOT = {"shelter": 0.5, "psychosocial": 0.5, "health": 0.4, "legal": 0.45,
             "return_reintegration": 0.3, "livelihood": 0.2, "financial": 0.1}
REFER_MIGRANT = {"legal": 0.35, "shelter": 0.2, "health": 0.25, "social_care": 0.2,
                 "return_reintegration": 0.15, "education": 0.05}
UPTAKE = {"health": 0.8, "psychosocial": 0.7, "legal": 0.5, "shelter": 0.6, "social_care": 0.65,
          "livelihood": 0.35, "financial": 0.4, "education": 0.55, "return_reintegration": 0.5,
          "sexual_exploitation_rehabilitation": 0.55, "labour_exploitation_rehabilitation": 0.5,
          "rights_based_training": 0.6, "other": 0.5}


def _referrals(rng: np.random.Generator, std: Standard, case_type: IntArray, age: IntArray,
               gbv: IntArray, exp: dict[str, IntArray], rh_needs: IntArray,
               migration: IntArray) -> tuple[IntArray, IntArray]:
    """Services each person was referred to and those received (a subset), as masks over the
    service codes of ``referred_to`` / ``services_received``."""
    n = len(case_type)
    s = {c: 1 << i for i, c in enumerate(std.field("referred_to").code_values)}
    g = {c: 1 << i for i, c in enumerate(std.field("gbv_incident_type").code_values)}
    e = {c: 1 << i for i, c in enumerate(std.field("type_of_exploitation").code_values)}
    referred = np.zeros(n, dtype=np.int64)

    def refer(cond: np.ndarray, p: float | np.ndarray, code: str) -> None:
        referred[cond & (rng.random(n) < p)] |= s[code]

    gbv_case, vot, vm = case_type == 1, case_type == 0, case_type == 2
    for shares, cond in ((REFER_GBV, gbv_case), (REFER_VOT, vot), (REFER_MIGRANT, vm)):
        for code, p in shares.items():
            refer(cond, p, code)
    sexual = (gbv & (g["rape"] | g["sexual_assault"])) > 0
    physical = (gbv & (g["physical_assault"] | g["forced_marriage"])) > 0
    # Health care after rape or sexual assault, and whenever a reproductive-health need is stated.
    refer(gbv_case & (sexual | (rh_needs > 0)), 0.85, "health")
    refer(gbv_case & physical, 0.3, "shelter")  # safe accommodation away from the perpetrator
    refer(gbv_case & (age >= 10) & (age < 20), 0.25, "education")  # adolescents back to school
    refer(vot & ((exp["mask"] & e["sexual_exploitation"]) > 0), 0.5,
          "sexual_exploitation_rehabilitation")
    refer(vot & ((exp["mask"] & e["forced_labour"]) > 0), 0.4,
          "labour_exploitation_rehabilitation")
    refer(vot & (age >= 18), 0.1, "rights_based_training")
    referred[rng.random(n) < 0.08] = 0  # referrals not recorded

    # Fewer referrals end in a service for people without papers (fear of being reported) and
    # for adolescents (consent of a guardian, services for adults only).
    irregular = np.isin(migration, [MIGRATION.index("irregular"), MIGRATION.index("undocumented")])
    factor = np.where(irregular, 0.8, 1.0) * np.where((age >= 10) & (age < 20), 0.85, 1.0)
    received = np.zeros(n, dtype=np.int64)
    for code, bit in s.items():
        uptake = UPTAKE.get(code, 0.5) * factor
        received[((referred & bit) > 0) & (rng.random(n) < uptake)] |= bit
    return referred, received
