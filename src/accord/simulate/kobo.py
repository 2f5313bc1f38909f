"""Partner style "Kobo/ODK": a KoboToolbox form export (XLSX, CSV or the JSON submissions list).

Group paths as column names (``grp_person/sex``), the form's own choice names, select_multiple
answers separated by spaces, ISO dates, and Kobo's metadata columns (``_uuid``, ``_index``...).
"""

from __future__ import annotations

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

CASE = {"trafficking_victim": "vot", "gbv_survivor": "gbv", "vulnerable_migrant": "vm"}
SEX = {"transgender_female": "trans_female", "transgender_male": "trans_male",
       "unknown": "prefer_not_say"}
EXPLOIT = {"forced_labour": "forced_lab", "sexual_exploitation": "sex_exp",
           "child_labour": "child_lab", "forced_military": "forced_mil", "organ_removal": "organ",
           "forced_begging": "begging", "forced_adoption": "adoption",
           "forced_criminality": "criminality"}
CONTROL = {"physical_threats": "threats", "threats_law_enforcement": "threat_police",
           "threatens_family": "threat_family", "debt_bondage": "debt",
           "false_promises": "false_promise", "withholds_documents": "documents",
           "restricts_movement": "movement", "excessive_working_hours": "long_hours",
           "psychoactive_substances": "drugs", "restricts_financial_access": "no_money",
           "restricts_medical_care": "no_medical", "withholds_necessities": "no_food"}
DISABILITY = {"unknown": "dont_know"}
RH = {"clinical_management_of_rape": "cmr", "emergency_contraception": "ec",
      "post_exposure_prophylaxis": "pep", "antenatal_care": "anc", "family_planning": "fp",
      "safe_delivery": "delivery", "sti_care": "sti"}
DEFECT_SEX = "x_other"


def kobo_columns(view: RecordView, rng: np.random.Generator) -> dict[str, pa.Array]:
    """The columns of the export, in order, as text arrays (null = not answered)."""
    pop, recs, codes = view.pop, view.recs, view.codes
    n = recs.size
    defect = recs.defect
    reg_date = date_column(recs.registration, "%Y-%m-%d")
    cols: dict[str, pa.Array] = {}
    cols["start"] = pc.binary_join_element_wise(reg_date, pa.scalar("T09:12:44.000+00:00"), "")
    cols["today"] = reg_date
    cols["deviceid"] = pa.array(np.where(rng.random(n) < 0.5, "collect:K3xq9", "ee.kobo:Aq7"))
    cols["grp_intake/registration_date"] = reg_date
    cols["grp_intake/case_type"] = code_column(view.person(pop.case_type),
                                               relabel(CASE_TYPES, CASE))
    cols["grp_intake/registration_country"] = country_column(
        view.person(pop.reg_country), pop.countries, alpha3=True)
    cols["grp_intake/registration_area"] = area_column(view, rng)
    cols["grp_person/given_name"] = recs.given
    cols["grp_person/family_name"] = recs.family
    cols["grp_person/sex"] = code_column(view.person(pop.sex), relabel(codes("sex"), SEX))
    cols["grp_person/dob_known"] = pa.array(np.where(np.isnat(recs.dob), "no", "yes"))
    cols["grp_person/dob"] = date_column(recs.dob, "%Y-%m-%d")
    cols["grp_person/age"] = int_column(recs.age)
    cols["grp_person/nationality"] = citizenship_column(view, " ")
    cols["grp_person/phone"] = phone_column(view, np.ones(n, dtype=bool), spaced=False)
    cols["grp_person/id_number"] = int_column(recs.document)
    cols["grp_person/migration_status"] = code_column(view.person(pop.migration_status),
                                                      codes("migration_status"))
    cols["grp_person/uasc"] = code_column(view.person(pop.uasc), codes("unaccompanied_separated"))
    cols["grp_person/disability"] = code_column(view.person(pop.disability),
                                                relabel(codes("disability"), DISABILITY))
    cols["grp_case/exploitation"] = mask_column(
        view.person(pop.exploitation), relabel(codes("type_of_exploitation"), EXPLOIT), " ")
    cols["grp_case/industry"] = code_column(view.person(pop.industry),
                                            codes("forced_labour_industry"))
    cols["grp_case/sex_exp_type"] = mask_column(view.person(pop.sexual_type),
                                                codes("type_of_sexual_exploitation"), " ")
    cols["grp_case/control"] = mask_column(view.person(pop.control),
                                           relabel(codes("means_of_control"), CONTROL), " ")
    cols["grp_case/recruiter"] = code_column(view.person(pop.recruiter),
                                             codes("recruiter_relationship"))
    cols["grp_case/country_exploitation"] = country_column(
        view.person(pop.exploitation_country), pop.countries, alpha3=False)
    cols["grp_gbv/incident"] = mask_column(view.person(pop.gbv), codes("gbv_incident_type"), " ")
    cols["grp_health/rh_needs"] = mask_column(view.person(pop.rh_needs),
                                              relabel(codes("rh_needs"), RH), " ")
    cols["grp_health/rh_services"] = mask_column(view.person(pop.rh_services),
                                                 relabel(codes("rh_services_received"), RH), " ")
    cols["grp_services/referred"] = mask_column(view.person(pop.referred),
                                                codes("referred_to"), " ")
    cols["grp_services/received"] = mask_column(view.person(pop.services),
                                                codes("services_received"), " ")
    cols["grp_consent/statistics"] = pa.array(["yes"] * n, pa.string())
    cols["grp_consent/linkage"] = pa.array(["yes"] * n, pa.string())
    cols["__version__"] = pa.array(["vQz8mPkR2"] * n)
    uuids = fake_uuids(rng, n)
    cols["meta/instanceID"] = pc.binary_join_element_wise(pa.scalar("uuid:"), uuids, "")
    cols["_id"] = int_column(recs.seq + 100_000_000)
    cols["_uuid"] = uuids
    cols["_submission_time"] = pc.binary_join_element_wise(reg_date, pa.scalar("T10:02:11"), "")
    cols["_validation_status"] = pa.nulls(n, pa.string())
    cols["_status"] = pa.array(["submitted_via_web"] * n)
    cols["_submitted_by"] = pa.array(np.where(rng.random(n) < 0.7, "field_team_1", "field_team_2"))
    cols["_index"] = int_column(recs.seq + 1)
    # Drawn last so the earlier draws are unchanged by standard 0.2's consent question.
    cols["grp_consent/research"] = pa.array(np.where(rng.random(n) < 0.05, "no", "yes").tolist(), pa.string())
    return _defects(cols, defect, recs.registration)


def _defects(cols: dict[str, pa.Array], defect: np.ndarray,
             registration: np.ndarray) -> dict[str, pa.Array]:
    def put(name: str, rows: np.ndarray, value: Any) -> None:
        if rows.any():
            cols[name] = pc.if_else(pa.array(rows), value, cols[name])

    put("grp_person/sex", defect == 0, pa.scalar(DEFECT_SEX))
    year = registration.astype("datetime64[Y]").astype(np.int64) + 1970
    put("grp_intake/registration_date", defect == 1,
        pa.array([f"{y}-02-30" for y in year], type=pa.string()))
    put("grp_person/dob", defect == 2, pa.scalar(None, pa.string()))
    put("grp_person/age", defect == 2, pa.scalar("150"))
    put("grp_intake/case_type", defect == 3, pa.scalar(None, pa.string()))
    return cols


def kobo_mapping(std: Standard, fmt: str, sheet: str | None) -> dict[str, Any]:
    def codes(field: str) -> tuple[str, ...]:
        return std.field(field).code_values

    source: dict[str, Any] = {"format": fmt}
    if fmt == "csv":
        source.update({"delimiter": ",", "encoding": "utf-8"})
    if sheet:
        source["sheet"] = sheet
    iso = "%Y-%m-%d"
    return {
        "mapping_version": 1,
        "description": 'Partner using KoboToolbox, form "Protection intake v3" (simulated)',
        "source": source,
        "missing_values": [""],
        "fields": {
            "case_id": {"column": "_uuid"},
            "registration_date": {"column": "grp_intake/registration_date", "date_format": iso},
            "case_type": {"column": "grp_intake/case_type", "codes": reverse(CASE_TYPES, CASE)},
            "country_of_registration": {"column": "grp_intake/registration_country"},
            "area_of_registration": {"column": "grp_intake/registration_area"},
            "given_name": {"column": "grp_person/given_name"},
            "family_name": {"column": "grp_person/family_name"},
            "sex": {"column": "grp_person/sex", "codes": reverse(codes("sex"), SEX)},
            "date_of_birth": {"column": "grp_person/dob", "date_format": iso},
            "age": {"column": "grp_person/age"},
            "citizenship": {"column": "grp_person/nationality", "split": " "},
            "phone": {"column": "grp_person/phone"},
            "document_number": {"column": "grp_person/id_number"},
            "migration_status": {"column": "grp_person/migration_status",
                                 "codes": reverse(codes("migration_status"), {})},
            "unaccompanied_separated": {"column": "grp_person/uasc",
                                        "codes": reverse(codes("unaccompanied_separated"), {})},
            "disability": {"column": "grp_person/disability",
                           "codes": reverse(codes("disability"), DISABILITY)},
            "type_of_exploitation": {"column": "grp_case/exploitation", "split": " ",
                                     "codes": reverse(codes("type_of_exploitation"), EXPLOIT)},
            "forced_labour_industry": {"column": "grp_case/industry",
                                       "codes": reverse(codes("forced_labour_industry"), {})},
            "type_of_sexual_exploitation": {
                "column": "grp_case/sex_exp_type", "split": " ",
                "codes": reverse(codes("type_of_sexual_exploitation"), {})},
            "means_of_control": {"column": "grp_case/control", "split": " ",
                                 "codes": reverse(codes("means_of_control"), CONTROL)},
            "recruiter_relationship": {"column": "grp_case/recruiter",
                                       "codes": reverse(codes("recruiter_relationship"), {})},
            "country_of_exploitation": {"column": "grp_case/country_exploitation"},
            "gbv_incident_type": {"column": "grp_gbv/incident", "split": " ",
                                  "codes": reverse(codes("gbv_incident_type"), {})},
            "rh_needs": {"column": "grp_health/rh_needs", "split": " ",
                         "codes": reverse(codes("rh_needs"), RH)},
            "rh_services_received": {"column": "grp_health/rh_services", "split": " ",
                                     "codes": reverse(codes("rh_services_received"), RH)},
            "referred_to": {"column": "grp_services/referred", "split": " ",
                            "codes": reverse(codes("referred_to"), {})},
            "services_received": {"column": "grp_services/received", "split": " ",
                                  "codes": reverse(codes("services_received"), {})},
            "consent_statistics": {"column": "grp_consent/statistics"},
            "consent_linkage": {"column": "grp_consent/linkage"},
            "consent_research": {"column": "grp_consent/research"},
        },
    }


def fake_uuids(rng: np.random.Generator, n: int) -> pa.Array:
    """Random version-4-shaped UUID strings, built as bytes with numpy (a Python loop over
    ``uuid.uuid4()`` would cost seconds per million)."""
    hexdigits = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
    nibbles = rng.integers(0, 16, size=(n, 32), dtype=np.uint8)
    nibbles[:, 12] = 4
    nibbles[:, 16] = 8 + (nibbles[:, 16] & 3)
    chars = hexdigits[nibbles]
    out = np.full((n, 36), ord("-"), dtype=np.uint8)
    for dst, src in ((slice(0, 8), slice(0, 8)), (slice(9, 13), slice(8, 12)),
                     (slice(14, 18), slice(12, 16)), (slice(19, 23), slice(16, 20)),
                     (slice(24, 36), slice(20, 32))):
        out[:, dst] = chars[:, src]
    strings = out.view("S36").ravel()
    return pc.cast(pa.array(strings, type=pa.binary(36)), pa.string())
