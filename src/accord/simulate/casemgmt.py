"""Partner style "case management": a CSV dumped from a case-management database.

Its own column names and codes (``F``/``M``, ``VOT``/``GBV``/``VMS``), a missing-value code
(``-99``), day-first dates, a ``;`` delimiter and Windows-1252 text (so accented names are
re-encoded), one 0/1 column per means of control (CTDC style), a free-text notes column whose
cells sometimes start with ``=``, ``+``, ``-`` or ``@``, and phones written as ``+66 ...``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from accord.simulate.columns import (
    RecordView,
    area_column,
    citizenship_column,
    code_column,
    country_column,
    date_column,
    int_column,
    mask_column,
    phone_column,
    relabel,
    reverse,
)
from accord.simulate.population import CASE_TYPES
from accord.standard import Standard


@dataclass(frozen=True)
class CaseStyle:
    delimiter: str = ";"
    encoding: str = "cp1252"
    date_format: str = "%d/%m/%Y"
    missing: str = "-99"
    prefix: str = "CM"
    system: str = "case-management system (simulated)"


CASE = {"trafficking_victim": "VOT", "gbv_survivor": "GBV", "vulnerable_migrant": "VMS"}
SEX = {"female": "F", "male": "M", "transgender_female": "TF", "transgender_male": "TM",
       "non_conforming": "NC", "unknown": "U"}
MIGRATION = {"regular": "REG", "irregular": "IRR", "undocumented": "UND", "asylum_seeker": "ASY",
             "refugee": "REF", "stateless": "STL", "internally_displaced": "IDP",
             "returnee": "RET"}
UASC = {"unaccompanied": "UAM", "separated": "SC", "accompanied": "ACC", "not_applicable": "NA"}
SERVICE = {"education": "EDU", "financial": "FIN", "health": "MED",
           "labour_exploitation_rehabilitation": "LER", "legal": "LEG", "livelihood": "LIV",
           "rights_based_training": "RBT", "sexual_exploitation_rehabilitation": "SER",
           "social_care": "SOC", "shelter": "SHL", "psychosocial": "PSS",
           "return_reintegration": "RTN", "other": "OTH"}
YESNO = {"yes": "Y", "no": "N", "unknown": "U"}
EXPLOIT = {"forced_labour": "FL", "sexual_exploitation": "SE", "child_labour": "CL",
           "forced_marriage": "FM", "servitude": "SV", "forced_military": "FMIL",
           "organ_removal": "OR", "forced_begging": "BEG", "forced_adoption": "FA",
           "surrogacy": "SUR", "forced_criminality": "CRIM", "other": "OTH"}
INDUSTRY = {"agriculture": "AGR", "mining": "MIN", "manufacturing": "MAN", "utilities": "UTL",
            "construction": "CON", "trade": "TRD", "transport": "TRN", "hospitality": "HOS",
            "fishing_aquaculture": "FSH", "domestic_work": "DOM", "other_services": "SRV",
            "other": "OTH"}
SEXUAL = {"prostitution": "PROST", "pornography": "PORN", "remote_interactive": "ONLINE",
          "private_sexual_services": "PRIV"}
RECRUITER = {"intimate_partner": "IP", "family": "FAM", "friend_acquaintance": "FRI",
             "other_known": "OTH", "stranger": "STR"}
GBV = {"rape": "GBV1", "sexual_assault": "GBV2", "physical_assault": "GBV3",
       "forced_marriage": "GBV4", "denial_of_resources": "GBV5", "psychological_abuse": "GBV6"}
RH = {"clinical_management_of_rape": "CMR", "emergency_contraception": "EC",
      "post_exposure_prophylaxis": "PEP", "antenatal_care": "ANC", "family_planning": "FP",
      "safe_delivery": "SBA", "sti_care": "STI"}
CONSENT = {"Y": "yes", "N": "no"}
NOTES = ("", "", "", "", "", "", "follow-up next week", "referred to shelter",
         "=> referred to legal aid", "+ medical follow-up", "-- no answer on phone --",
         "@hotline referral", "interpreter needed")


def control_flag_columns(std: Standard) -> dict[str, str]:
    """Standard means-of-control code -> the CTDC-style 0/1 column that holds it."""
    field = std.field("means_of_control")
    out = {}
    for code in field.codes or ():
        out[code.code] = code.ctdc or f"meansOfControl_{code.code}"
    return out


def case_columns(view: RecordView, rng: np.random.Generator,
                 style: CaseStyle) -> dict[str, pa.Array]:
    pop, recs, codes = view.pop, view.recs, view.codes
    n = recs.size
    miss = pa.scalar(style.missing)
    cols: dict[str, pa.Array] = {}
    cols["CaseNo"] = pc.binary_join_element_wise(
        pa.scalar(style.prefix + "-"), pc.utf8_lpad(int_column(recs.seq + 1), 7, "0"), "")
    cols["DateReg"] = date_column(recs.registration, style.date_format)
    cols["Category"] = code_column(view.person(pop.case_type), relabel(CASE_TYPES, CASE))
    cols["CountryCode"] = country_column(view.person(pop.reg_country), pop.countries, True)
    cols["Province"] = area_column(view, rng)
    # Staff habits the normalisation must absorb: surnames in capitals, stray trailing spaces.
    upper = pa.array(rng.random(n) < 0.4)
    cols["Surname"] = pc.if_else(upper, pc.utf8_upper(recs.family), recs.family)
    padded = pa.array(rng.random(n) < 0.03)
    cols["FirstName"] = pc.if_else(padded, pc.binary_join_element_wise(recs.given, " ", ""),
                                   recs.given)
    cols["Gender"] = code_column(view.person(pop.sex), relabel(codes("sex"), SEX))
    cols["DOB"] = date_column(recs.dob, style.date_format)
    cols["AgeAtReg"] = int_column(recs.age)
    cols["Nationality"] = citizenship_column(view, "/")
    cols["LegalStatus"] = code_column(view.person(pop.migration_status),
                                      relabel(codes("migration_status"), MIGRATION))
    cols["UASC"] = code_column(view.person(pop.uasc),
                               relabel(codes("unaccompanied_separated"), UASC))
    cols["Disab"] = code_column(view.person(pop.disability), relabel(codes("disability"), YESNO))
    cols["ExplTypes"] = mask_column(view.person(pop.exploitation),
                                    relabel(codes("type_of_exploitation"), EXPLOIT), ",")
    cols["Sector"] = code_column(view.person(pop.industry),
                                 relabel(codes("forced_labour_industry"), INDUSTRY))
    cols["SexExplType"] = mask_column(view.person(pop.sexual_type),
                                      relabel(codes("type_of_sexual_exploitation"), SEXUAL), ",")
    cols["CountryExpl"] = country_column(view.person(pop.exploitation_country), pop.countries,
                                         True)
    cols["RecruiterRel"] = code_column(view.person(pop.recruiter),
                                       relabel(codes("recruiter_relationship"), RECRUITER))
    control = view.person(pop.control)
    for i, column in enumerate(control_flag_columns(view.std).values()):
        cols[column] = pa.array(np.where((control >> i) & 1, "1", "0"))
    cols["GBVType"] = mask_column(view.person(pop.gbv),
                                  relabel(codes("gbv_incident_type"), GBV), ",")
    cols["RH_Needs"] = mask_column(view.person(pop.rh_needs), relabel(codes("rh_needs"), RH), ",")
    cols["RH_Services"] = mask_column(view.person(pop.rh_services),
                                      relabel(codes("rh_services_received"), RH), ",")
    cols["Phone"] = phone_column(view, rng.random(n) < 0.5, spaced=True)
    cols["IDDoc"] = pc.binary_join_element_wise(
        pa.scalar("P"), int_column(recs.document), "")
    notes = np.asarray(NOTES, dtype=object)[rng.integers(0, len(NOTES), n)]
    cols["Notes"] = pc.if_else(pc.equal(pa.array(notes, pa.string()), ""),
                               pa.scalar(None, pa.string()), pa.array(notes, pa.string()))
    # Consent (standard 0.2), drawn after every other column so earlier draws stay as they were.
    # Partners export only people who agreed to share; a few refuse research use.
    cols["ConsentShare"] = pa.array(["Y"] * n, pa.string())
    cols["ConsentLink"] = pa.array(["Y"] * n, pa.string())
    cols["ConsentResearch"] = pa.array(np.where(rng.random(n) < 0.05, "N", "Y").tolist(), pa.string())
    # Referrals (no draw here: the population holds them).
    cols["ReferredTo"] = mask_column(view.person(pop.referred),
                                     relabel(codes("referred_to"), SERVICE), ",")
    cols["ServicesRec"] = mask_column(view.person(pop.services),
                                      relabel(codes("services_received"), SERVICE), ",")
    cols = _defects(cols, recs.defect, recs.registration, style)
    # The database writes its missing-value code into every empty cell but the notes.
    return {k: (v if k == "Notes" else pc.fill_null(v, miss)) for k, v in cols.items()}


def _defects(cols: dict[str, pa.Array], defect: np.ndarray, registration: np.ndarray,
             style: CaseStyle) -> dict[str, pa.Array]:
    def put(name: str, rows: np.ndarray, value: Any) -> None:
        if rows.any():
            cols[name] = pc.if_else(pa.array(rows), value, cols[name])

    put("Gender", defect == 0, pa.scalar("FF"))
    year = registration.astype("datetime64[Y]").astype(np.int64) + 1970
    bad = np.datetime64("2001-02-28").astype("datetime64[D]")
    template = str(date_column(np.array([bad]), style.date_format)[0])  # e.g. 28/02/2001
    put("DateReg", defect == 1, pa.array([template.replace("28", "30").replace("2001", str(y))
                                          for y in year], type=pa.string()))
    put("DOB", defect == 2, pa.scalar(None, pa.string()))
    put("AgeAtReg", defect == 2, pa.scalar("150"))
    put("Category", defect == 3, pa.scalar(None, pa.string()))
    return cols


def case_mapping(std: Standard, style: CaseStyle) -> dict[str, Any]:
    def codes(field: str) -> tuple[str, ...]:
        return std.field(field).code_values

    fmt = style.date_format
    return {
        "mapping_version": 1,
        "description": f"Partner using a {style.system}",
        # "auto" is the mapping format's way to say UTF-8 with a byte-order mark.
        "source": {"format": "csv", "delimiter": style.delimiter,
                   "encoding": "auto" if style.encoding == "utf-8-sig" else style.encoding},
        "missing_values": ["", style.missing],
        "fields": {
            "case_id": {"column": "CaseNo"},
            "registration_date": {"column": "DateReg", "date_format": fmt},
            "case_type": {"column": "Category", "codes": reverse(CASE_TYPES, CASE)},
            "country_of_registration": {"column": "CountryCode"},
            "area_of_registration": {"column": "Province"},
            "family_name": {"column": "Surname"},
            "given_name": {"column": "FirstName"},
            "sex": {"column": "Gender", "codes": reverse(codes("sex"), SEX)},
            "date_of_birth": {"column": "DOB", "date_format": fmt},
            "age": {"column": "AgeAtReg"},
            "citizenship": {"column": "Nationality", "split": "/"},
            "migration_status": {"column": "LegalStatus",
                                 "codes": reverse(codes("migration_status"), MIGRATION)},
            "unaccompanied_separated": {
                "column": "UASC", "codes": reverse(codes("unaccompanied_separated"), UASC)},
            "disability": {"column": "Disab", "codes": reverse(codes("disability"), YESNO)},
            "type_of_exploitation": {"column": "ExplTypes", "split": ",",
                                     "codes": reverse(codes("type_of_exploitation"), EXPLOIT)},
            "forced_labour_industry": {
                "column": "Sector", "codes": reverse(codes("forced_labour_industry"), INDUSTRY)},
            "type_of_sexual_exploitation": {
                "column": "SexExplType", "split": ",",
                "codes": reverse(codes("type_of_sexual_exploitation"), SEXUAL)},
            "country_of_exploitation": {"column": "CountryExpl"},
            "recruiter_relationship": {
                "column": "RecruiterRel",
                "codes": reverse(codes("recruiter_relationship"), RECRUITER)},
            "means_of_control": {
                "flags": {col: code for code, col in control_flag_columns(std).items()}},
            "gbv_incident_type": {"column": "GBVType", "split": ",",
                                  "codes": reverse(codes("gbv_incident_type"), GBV)},
            "rh_needs": {"column": "RH_Needs", "split": ",",
                         "codes": reverse(codes("rh_needs"), RH)},
            "rh_services_received": {"column": "RH_Services", "split": ",",
                                     "codes": reverse(codes("rh_services_received"), RH)},
            "phone": {"column": "Phone"},
            "document_number": {"column": "IDDoc"},
            "consent_statistics": {"column": "ConsentShare", "codes": CONSENT},
            "consent_linkage": {"column": "ConsentLink", "codes": CONSENT},
            "consent_research": {"column": "ConsentResearch", "codes": CONSENT},
            "referred_to": {"column": "ReferredTo", "split": ",",
                            "codes": reverse(codes("referred_to"), SERVICE)},
            "services_received": {"column": "ServicesRec", "split": ",",
                                  "codes": reverse(codes("services_received"), SERVICE)},
        },
    }
